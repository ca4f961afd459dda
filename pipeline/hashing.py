"""Compiled feature hashing: the kernels behind :meth:`pipeline.features.FeatureSpec.transform`.

scikit-learn's ``HashingVectorizer`` spends almost all of its time building a Python
string per word, bigram and character 4-gram.  Here the lower-cased texts of a
partition become one array of code points, and numba kernels find the tokens, write
their UTF-8 bytes to a scratch buffer, hash them with scikit-learn's signed
MurmurHash3_x86_32 (seed 0) and count them per row into CSR.  Categories and bins
have few distinct values per partition, so each distinct token is built and hashed
once and the rows' codes (from ``pandas.factorize``) are mapped to its column.

The matrices equal scikit-learn's bit for bit (the tests compare them with
:mod:`benchmarks.sklearn_features`, the same features built the scikit-learn way),
so a model trained on either scores the same.

The split's hash of a description (:func:`pipeline.splitting.split_bucket`) is
here too, BLAKE2b in one kernel with the whitespace squeezing
(:func:`squeezed_blake2b`), equal to :mod:`hashlib`'s.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numba import njit
from sklearn.preprocessing import normalize

from pipeline.schema import CATEGORY_COLUMNS

#: Class bit of a code point that ``re``'s ``\w`` matches (the token pattern's characters).
WORD = 1
#: Class bit of a code point that :meth:`str.split` splits on.
SPACE = 2

_MASK = np.uint64(0xFFFFFFFF)
_C1 = np.uint64(0xCC9E2D51)
_C2 = np.uint64(0x1B873593)
_C3 = np.uint64(0xE6546B64)
_F1 = np.uint64(0x85EBCA6B)
_F2 = np.uint64(0xC2B2AE35)
_FIVE = np.uint64(5)
_S8, _S13, _S15, _S16, _S17, _S19, _S24 = (np.uint64(s) for s in (8, 13, 15, 16, 17, 19, 24))


@functools.cache
def char_classes() -> np.ndarray:
    r""":data:`WORD` and :data:`SPACE` bits of every code point, from Python's own rules.

    ``\w`` is found with the same ``re`` engine as scikit-learn's token pattern and
    ``\s`` is ``re``'s whitespace, the characters :meth:`str.split` splits on.
    Built once per process.

    Returns
    -------
    numpy.ndarray of uint8
        Indexed by code point (``0x110000`` entries), read-only.
    """
    every = np.arange(0x110000, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    classes = np.zeros(len(every), dtype=np.uint8)
    for bit, pattern in ((WORD, r"(?u)\w"), (SPACE, r"(?u)\s")):
        at = np.fromiter((m.start() for m in re.finditer(pattern, every)), dtype=np.int64)
        classes[at] |= bit
    classes.flags.writeable = False
    return classes


def _document(doc: object) -> object:
    # scikit-learn's ``decode`` for ``input="content"``: bytes are UTF-8, NaN is refused.
    if isinstance(doc, bytes):
        return doc.decode("utf-8", "strict")
    if doc is np.nan:
        raise ValueError("np.nan is an invalid document, expected byte or unicode string.")
    return doc


def _code_points(texts: Iterable) -> tuple[np.ndarray, np.ndarray, bool]:
    # code_points, and whether every text was a str (not bytes nor a str subclass).
    docs = list(texts)
    plain = all(type(d) is str for d in docs)
    if not plain:
        docs = [_document(d) for d in docs]
    lowered = [d.lower() for d in docs]
    starts = np.zeros(len(lowered) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, lowered), dtype=np.int64, count=len(lowered)),
              out=starts[1:])
    joined = "".join(lowered).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(joined, dtype=np.uint32), starts, plain


def code_points(texts: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Lower-case texts as one array of code points, with each text's start.

    Lower-casing is Python's :meth:`str.lower` (full Unicode mapping, as scikit-learn
    does it); documents are decoded as scikit-learn decodes them first.

    Parameters
    ----------
    texts : iterable of str or bytes

    Returns
    -------
    cps : numpy.ndarray of uint32
        Code points of all texts, one after the other (lone surrogates kept).
    starts : numpy.ndarray of int64
        ``len(texts) + 1`` offsets: text ``i`` is ``cps[starts[i]:starts[i + 1]]``.
    """
    cps, starts, _ = _code_points(texts)
    return cps, starts


@njit(cache=True, nogil=True)
def _murmur3(buf, start, stop):
    """MurmurHash3_x86_32, seed 0, of ``buf[start:stop]``, unsigned, in a uint64."""
    h = np.uint64(0)
    length = stop - start
    end = start + (length // 4) * 4
    i = start
    while i < end:
        k = (np.uint64(buf[i]) | (np.uint64(buf[i + 1]) << _S8)
             | (np.uint64(buf[i + 2]) << _S16) | (np.uint64(buf[i + 3]) << _S24))
        k = (k * _C1) & _MASK
        k = ((k << _S15) | (k >> _S17)) & _MASK
        k = (k * _C2) & _MASK
        h ^= k
        h = ((h << _S13) | (h >> _S19)) & _MASK
        h = (h * _FIVE + _C3) & _MASK
        i += 4
    tail = length & 3
    if tail:
        k = np.uint64(0)
        if tail == 3:
            k ^= np.uint64(buf[i + 2]) << _S16
        if tail >= 2:
            k ^= np.uint64(buf[i + 1]) << _S8
        k ^= np.uint64(buf[i])
        k = (k * _C1) & _MASK
        k = ((k << _S15) | (k >> _S17)) & _MASK
        k = (k * _C2) & _MASK
        h ^= k
    h ^= np.uint64(length)
    h ^= h >> _S16
    h = (h * _F1) & _MASK
    h ^= h >> _S13
    h = (h * _F2) & _MASK
    h ^= h >> _S16
    return h


@njit(cache=True, nogil=True)
def _column(h, n_features, mask):
    """FeatureHasher's column of an unsigned 32-bit hash: ``abs`` of it as int32, mod n.

    ``mask`` is ``n_features - 1`` when that is a power of two (then ``&`` is ``%``),
    else -1.
    """
    signed = np.int64(h)
    if signed >= 2147483648:
        signed -= 4294967296
    if signed == -2147483648:
        return (2147483647 - (n_features - 1)) % n_features
    if mask >= 0:
        return abs(signed) & mask
    return abs(signed) % n_features


@njit(cache=True, nogil=True)
def _put_utf8(c, buf, pos):
    """Write code point ``c`` as UTF-8 at ``buf[pos]``; return the position after it."""
    if c < 0x80:
        buf[pos] = c
        return pos + 1
    if c < 0x800:
        buf[pos] = 0xC0 | (c >> 6)
        buf[pos + 1] = 0x80 | (c & 0x3F)
        return pos + 2
    if c < 0x10000:
        buf[pos] = 0xE0 | (c >> 12)
        buf[pos + 1] = 0x80 | ((c >> 6) & 0x3F)
        buf[pos + 2] = 0x80 | (c & 0x3F)
        return pos + 3
    buf[pos] = 0xF0 | (c >> 18)
    buf[pos + 1] = 0x80 | ((c >> 12) & 0x3F)
    buf[pos + 2] = 0x80 | ((c >> 6) & 0x3F)
    buf[pos + 3] = 0x80 | (c & 0x3F)
    return pos + 4


@njit(cache=True, nogil=True)
def _sort_row(cols, m, spare, counts, passes, bits):
    """Sort ``cols[:m]`` (non-negative); return the array that holds the sorted values.

    Insertion sort for short rows, else a least-significant-digit radix sort of
    ``passes`` digits of ``bits`` bits, ping-ponging between ``cols`` and ``spare``:
    linear in the row's length, which suits rows of a few hundred hashes better
    than the comparison sort of ``numpy.sort``.
    """
    if m <= 32:
        for i in range(1, m):
            x = cols[i]
            j = i - 1
            while j >= 0 and cols[j] > x:
                cols[j + 1] = cols[j]
                j -= 1
            cols[j + 1] = x
        return cols
    size = 1 << bits
    digit = size - 1
    counts[: passes * size] = 0
    for i in range(m):
        v = cols[i]
        for p in range(passes):
            counts[p * size + ((v >> (bits * p)) & digit)] += 1
    src = cols
    dst = spare
    for p in range(passes):
        base = p * size
        total = 0
        for b in range(size):
            c = counts[base + b]
            counts[base + b] = total
            total += c
        shift = bits * p
        for i in range(m):
            v = src[i]
            at = base + ((v >> shift) & digit)
            dst[counts[at]] = v
            counts[at] += 1
        src, dst = dst, src
    return src


@njit(cache=True, nogil=True)
def _emit_row(row, m, indices, data, nnz):
    """Append each distinct column of the sorted ``row[:m]`` with its count; return the nnz.

    The count is summed in float32, one 1.0 at a time, as scipy's ``sum_duplicates``
    sums FeatureHasher's values.
    """
    if m == 0:
        return nnz
    one = np.float32(1.0)
    prev = row[0]
    count = one
    for i in range(1, m):
        c = row[i]
        if c == prev:
            count += one
        else:
            indices[nnz] = prev
            data[nnz] = count
            nnz += 1
            prev = c
            count = one
    indices[nnz] = prev
    data[nnz] = count
    return nnz + 1


@njit(cache=True, nogil=True)
def _longest(starts):
    longest = 0
    for r in range(starts.size - 1):
        longest = max(longest, starts[r + 1] - starts[r])
    return longest


@njit(cache=True, nogil=True)
def _row_tools(n_features, longest):
    """Power-of-two mask, radix digits and scratch of the rows of one kernel call."""
    mask = n_features - 1 if n_features & (n_features - 1) == 0 else -1
    key_bits = 1
    while (n_features - 1) >> key_bits:
        key_bits += 1
    passes = (key_bits + 7) // 8
    bits = (key_bits + passes - 1) // passes
    spare = np.empty(longest + 2, dtype=np.int32)
    counts = np.empty(passes << bits, dtype=np.int64)
    return mask, passes, bits, spare, counts


@njit(cache=True, nogil=True)
def words_kernel(cps, starts, classes, n_features):
    """Counts of the hashed words (runs of 2+ word characters) and bigrams of each text.

    A bigram is the UTF-8 of both words with one space between them, so the words of
    a row are written to the scratch buffer one space apart and each word and each
    bigram is a slice of it.

    Parameters
    ----------
    cps, starts : numpy.ndarray
        From :func:`code_points`.
    classes : numpy.ndarray of uint8
        :func:`char_classes`.
    n_features : int

    Returns
    -------
    indptr : numpy.ndarray of int64
    indices : numpy.ndarray of int32
        Sorted within each row, each column once; ``indices[:indptr[-1]]`` are used.
    data : numpy.ndarray of float32
        The counts, likewise.
    """
    n = starts.size - 1
    longest = _longest(starts)
    mask, passes, bits, spare, counts = _row_tools(n_features, longest)
    # Words need 2 characters and a separator, so a row of L code points has at most
    # (L + 1) // 3 words and fewer than L + 1 words and bigrams.
    bound = starts[n] + n
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices = np.empty(bound, dtype=np.int32)
    data = np.empty(bound, dtype=np.float32)
    buf = np.empty(5 * longest + 8, dtype=np.uint8)
    lo = np.empty(longest // 2 + 2, dtype=np.int64)
    hi = np.empty(longest // 2 + 2, dtype=np.int64)
    cols = np.empty(longest + 2, dtype=np.int32)
    nnz = 0
    for r in range(n):
        stop = starts[r + 1]
        j = starts[r]
        words = 0
        pos = 0
        while j < stop:
            if classes[cps[j]] & WORD:
                k = j + 1
                while k < stop and classes[cps[k]] & WORD:
                    k += 1
                if k - j >= 2:
                    lo[words] = pos
                    for q in range(j, k):
                        pos = _put_utf8(cps[q], buf, pos)
                    hi[words] = pos
                    buf[pos] = 32
                    pos += 1
                    words += 1
                j = k + 1  # cps[k] is not a word character
            else:
                j += 1
        m = 0
        for t in range(words):
            cols[m] = _column(_murmur3(buf, lo[t], hi[t]), n_features, mask)
            m += 1
            if t:
                cols[m] = _column(_murmur3(buf, lo[t - 1], hi[t]), n_features, mask)
                m += 1
        row = _sort_row(cols, m, spare, counts, passes, bits)
        nnz = _emit_row(row, m, indices, data, nnz)
        indptr[r + 1] = nnz
    return indptr, indices, data


@njit(cache=True, nogil=True)
def char_wb4_kernel(cps, starts, classes, n_features):
    """Counts of the hashed 4-grams of each whitespace-separated word padded by spaces.

    Each padded word is written once as UTF-8 with the byte offset of each of its code
    points, so each 4-gram is a slice of it.  A padded word of at most 4 code points is
    one gram.  The words are counted on the way.

    Parameters
    ----------
    cps, starts : numpy.ndarray
        From :func:`code_points`.
    classes : numpy.ndarray of uint8
        :func:`char_classes`.
    n_features : int

    Returns
    -------
    indptr, indices, data : numpy.ndarray
        As :func:`words_kernel`.
    words : numpy.ndarray of float64
        Whitespace-separated words per row.
    bad_row : int
        -1, or the first row with a lone surrogate in a word (which has no UTF-8),
        when the other outputs are incomplete.
    """
    n = starts.size - 1
    longest = _longest(starts)
    mask, passes, bits, spare, counts = _row_tools(n_features, longest)
    # A word of w code points gives max(1, w - 1) grams: at most L per row.
    bound = starts[n] + 1
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices = np.empty(bound, dtype=np.int32)
    data = np.empty(bound, dtype=np.float32)
    words = np.zeros(n, dtype=np.float64)
    buf = np.empty(4 * longest + 2, dtype=np.uint8)
    offsets = np.empty(longest + 3, dtype=np.int64)
    cols = np.empty(longest + 2, dtype=np.int32)
    nnz = 0
    buf[0] = 32
    offsets[0] = 0
    for r in range(n):
        stop = starts[r + 1]
        j = starts[r]
        m = 0
        count = 0
        while j < stop:
            if classes[cps[j]] & SPACE:
                j += 1
                continue
            count += 1
            pos = 1
            q = 1
            k = j
            while k < stop and not classes[cps[k]] & SPACE:
                c = cps[k]
                if 0xD800 <= c < 0xE000:
                    return indptr, indices, data, words, r
                offsets[q] = pos
                pos = _put_utf8(c, buf, pos)
                q += 1
                k += 1
            offsets[q] = pos
            buf[pos] = 32
            pos += 1
            offsets[q + 1] = pos
            padded = q + 1  # code points in " word "
            if padded <= 4:
                cols[m] = _column(_murmur3(buf, 0, pos), n_features, mask)
                m += 1
            else:
                for i in range(padded - 3):
                    cols[m] = _column(_murmur3(buf, offsets[i], offsets[i + 4]),
                                      n_features, mask)
                    m += 1
            j = k
        row = _sort_row(cols, m, spare, counts, passes, bits)
        nnz = _emit_row(row, m, indices, data, nnz)
        indptr[r + 1] = nnz
        words[r] = count
    return indptr, indices, data, words, -1


def _counts_matrix(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                   n_features: int, norm: str | None, trim: bool) -> sp.csr_matrix:
    nnz = int(indptr[-1])
    indices, data = indices[:nnz], data[:nnz]
    if trim:  # the kernels' outputs are sized for the worst case
        indices, data = indices.copy(), data.copy()
    # The constructor picks the index dtype as it does for FeatureHasher's arrays
    # (int32 unless the matrix is too large for it).
    matrix = sp.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, n_features))
    matrix.has_canonical_format = True
    if norm is not None:
        matrix = normalize(matrix, norm=norm, copy=False)
    return matrix


def _check_rows(starts: np.ndarray) -> None:
    if starts.size <= 1:
        raise ValueError("Cannot vectorize empty sequence.")


def hash_words_code_points(cps: np.ndarray, starts: np.ndarray, n_features: int,
                           norm: str | None = "l2", trim: bool = True) -> sp.csr_matrix:
    """:func:`hash_words` of texts already turned into :func:`code_points`.

    Parameters
    ----------
    cps, starts : numpy.ndarray
        From :func:`code_points`.
    n_features : int
    norm : {"l2", None}, default "l2"
    trim : bool, default True
        Copy the matrix's arrays out of the kernel's worst-case-sized ones (False when
        the matrix is short-lived, as in :meth:`pipeline.features.FeatureSpec.transform`).

    Returns
    -------
    scipy.sparse.csr_matrix
    """
    _check_rows(starts)
    indptr, indices, data = words_kernel(cps, starts, char_classes(), n_features)
    return _counts_matrix(indptr, indices, data, n_features, norm, trim)


def hash_char_wb4_code_points(
    cps: np.ndarray, starts: np.ndarray, n_features: int, norm: str | None = "l2",
    trim: bool = True, with_words: bool = False,
) -> sp.csr_matrix | tuple[sp.csr_matrix, np.ndarray]:
    """:func:`hash_char_wb4` of texts already turned into :func:`code_points`.

    Parameters
    ----------
    cps, starts : numpy.ndarray
        From :func:`code_points`.
    n_features : int
    norm : {"l2", None}, default "l2"
    trim : bool, default True
        As for :func:`hash_words_code_points`.
    with_words : bool, default False
        Also return the whitespace-separated words of each text, counted on the way:
        :func:`pipeline.features.description_words` of str texts (lower-casing maps
        no character across the space / non-space divide).

    Returns
    -------
    scipy.sparse.csr_matrix
        Or ``(matrix, words)`` with ``with_words``, words as float64.

    Raises
    ------
    UnicodeEncodeError
        When a word holds a lone surrogate, as scikit-learn raises encoding its gram.
    """
    _check_rows(starts)
    indptr, indices, data, words, bad = char_wb4_kernel(cps, starts, char_classes(),
                                                        n_features)
    if bad >= 0:
        text = cps[starts[bad]:starts[bad + 1]].tobytes().decode("utf-32-le", "surrogatepass")
        text.encode("utf-8")  # raises UnicodeEncodeError, as scikit-learn does
        raise AssertionError("the kernel saw a lone surrogate where there is none")
    matrix = _counts_matrix(indptr, indices, data, n_features, norm, trim)
    return (matrix, words) if with_words else matrix


def hash_description(texts: Iterable, text_features: int, char_features: int
                     ) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray | None]:
    """Both description blocks from one lower-casing: words+bigrams and char 4-grams.

    Parameters
    ----------
    texts : iterable of str or bytes
        One description each.
    text_features, char_features : int
        Columns of the two blocks.

    Returns
    -------
    text, chars : scipy.sparse.csr_matrix
        As :func:`hash_words` and :func:`hash_char_wb4` (l2-normalised).
    words : numpy.ndarray or None
        Whitespace-separated words per text, counted on the way; None when some text
        is bytes or a str subclass, whose count is left to the caller.
    """
    cps, starts, plain = _code_points(texts)
    text = hash_words_code_points(cps, starts, text_features, trim=False)
    chars, words = hash_char_wb4_code_points(cps, starts, char_features, trim=False,
                                             with_words=True)
    return text, chars, (words if plain else None)


def hash_words(texts: Iterable, n_features: int, norm: str | None = "l2") -> sp.csr_matrix:
    r"""Hashed words and bigrams: ``HashingVectorizer(ngram_range=(1, 2))``'s matrix.

    The same as ``HashingVectorizer(n_features=n_features, ngram_range=(1, 2),
    alternate_sign=False, norm=norm, dtype=numpy.float32).transform(texts)``: words
    are runs of two or more ``\w`` characters of the lower-cased text.

    Parameters
    ----------
    texts : iterable of str or bytes
        One document each (no missing values, as for scikit-learn).
    n_features : int
        Columns of the matrix.
    norm : {"l2", None}, default "l2"
        Row normalisation (scikit-learn's ``normalize``), or None for the counts.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(len(texts), n_features)``, float32.

    Raises
    ------
    ValueError
        When there are no texts (scikit-learn raises StopIteration).
    """
    cps, starts = code_points(texts)
    return hash_words_code_points(cps, starts, n_features, norm)


def hash_char_wb4(texts: Iterable, n_features: int, norm: str | None = "l2") -> sp.csr_matrix:
    """Hashed character 4-grams within padded words: the ``char_4grams`` analyzer's matrix.

    The same as ``HashingVectorizer(n_features=n_features,
    analyzer=benchmarks.sklearn_features.char_4grams, alternate_sign=False, norm=norm,
    dtype=numpy.float32).transform(texts)``.

    Parameters
    ----------
    texts : iterable of str or bytes
        One document each.
    n_features : int
        Columns of the matrix.
    norm : {"l2", None}, default "l2"
        Row normalisation, or None for the counts.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(len(texts), n_features)``, float32.

    Raises
    ------
    ValueError
        When there are no texts (scikit-learn raises StopIteration).
    UnicodeEncodeError
        When a word holds a lone surrogate, as with scikit-learn.
    """
    cps, starts = code_points(texts)
    return hash_char_wb4_code_points(cps, starts, n_features, norm)


@njit(cache=True, nogil=True)
def tokens_kernel(buf, ends, n_features):
    """FeatureHasher's column of each token, the tokens' UTF-8 one after another in ``buf``.

    Parameters
    ----------
    buf : numpy.ndarray of uint8
    ends : numpy.ndarray of int64
        Where each token ends in ``buf``.
    n_features : int

    Returns
    -------
    numpy.ndarray of int64
    """
    mask, _, _, _, _ = _row_tools(n_features, 0)
    out = np.empty(ends.size, dtype=np.int64)
    start = 0
    for i in range(ends.size):
        out[i] = _column(_murmur3(buf, start, ends[i]), n_features, mask)
        start = ends[i]
    return out


def hash_tokens(tokens: list[str | None], n_features: int) -> np.ndarray:
    """FeatureHasher's column of each token (-1 for None), hashed in one compiled call.

    Parameters
    ----------
    tokens : list of str or None
    n_features : int

    Returns
    -------
    numpy.ndarray of int64

    Raises
    ------
    UnicodeEncodeError
        When a token holds a lone surrogate, as FeatureHasher raises.
    """
    encoded = [b"" if t is None else t.encode("utf-8") for t in tokens]
    ends = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)))
    buf = np.frombuffer(b"".join(encoded) + b"\0", dtype=np.uint8)
    columns = tokens_kernel(buf, ends, n_features)
    columns[[i for i, t in enumerate(tokens) if t is None]] = -1
    return columns


def _token_matrix(cols: np.ndarray, n_features: int) -> sp.csr_matrix:
    # Rows of token columns (-1: no token) to FeatureHasher's matrix: ones, then
    # scipy's own sort and duplicate sum, as FeatureHasher does it.
    present = cols >= 0
    indptr = np.zeros(len(cols) + 1, dtype=np.int64)
    np.cumsum(present.sum(axis=1), out=indptr[1:])
    indices = cols[present].astype(np.int32)
    data = np.ones(indices.size, dtype=np.float32)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(len(cols), n_features))
    matrix.sum_duplicates()
    return matrix


def _hashed_codes(codes: np.ndarray, tokens: list[str | None], n_features: int) -> np.ndarray:
    # Column of each row from its code into the distinct tokens (None: no token).
    columns = np.append(hash_tokens(tokens, n_features), -1)
    return columns[codes]  # code -1 picks the trailing -1


def hash_categories(df: pd.DataFrame, n_features: int) -> sp.csr_matrix:
    """Hashed ``column=value`` tokens, each distinct value hashed once.

    The same as ``FeatureHasher(n_features, input_type="string", alternate_sign=False,
    dtype=numpy.float32).transform(pipeline.features.category_tokens(df))``.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with (some of) :data:`pipeline.schema.CATEGORY_COLUMNS`.
    n_features : int

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(len(df), n_features)``, float32 counts.

    Raises
    ------
    ValueError
        When ``df`` has no rows (scikit-learn raises StopIteration).
    """
    if len(df) == 0:
        raise ValueError("Cannot vectorize empty sequence.")
    columns = [c for c in CATEGORY_COLUMNS if c in df.columns]
    cols = np.full((len(df), len(columns)), -1, dtype=np.int64)
    for j, col in enumerate(columns):
        # category_tokens keeps the values that are non-empty strings.
        codes, uniques = pd.factorize(df[col])
        uniques = np.asarray(uniques, dtype=object).tolist()  # quicker than Arrow's __iter__
        tokens = [f"{col}={v}" if isinstance(v, str) and v else None for v in uniques]
        cols[:, j] = _hashed_codes(codes, tokens, n_features)
    return _token_matrix(cols, n_features)


def bands(df: pd.DataFrame, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Price band and description-length band of each row: quarters of a log unit.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with ``price``.
    words : numpy.ndarray
        Words per description.

    Returns
    -------
    price_band, length_band : numpy.ndarray of int
        ``-1`` as the price band of a missing price.
    """
    price = pd.to_numeric(df["price"], errors="coerce").to_numpy(dtype="float64")
    price_band = np.where(
        np.isnan(price), -1, np.floor(np.log1p(np.nan_to_num(price).clip(0)) * 4)
    ).astype(int)
    return price_band, np.floor(np.log1p(words) * 4).astype(int)


def hash_bins(df: pd.DataFrame, words: np.ndarray, n_features: int) -> sp.csr_matrix:
    """Hashed band tokens, each distinct token hashed once.

    The same as ``FeatureHasher(n_features, input_type="string", alternate_sign=False,
    dtype=numpy.float32).transform(pipeline.features.bin_tokens(df, words))``.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with ``price``, ``description`` and ``taster_name``.
    words : numpy.ndarray
        Words per description (:func:`pipeline.features.description_words`).
    n_features : int

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(len(df), n_features)``, float32 counts.

    Raises
    ------
    ValueError
        When ``df`` has no rows (scikit-learn raises StopIteration).
    """
    if len(df) == 0:
        raise ValueError("Cannot vectorize empty sequence.")
    price_band, length_band = bands(df, words)
    tasters = df["taster_name"].astype("object").where(df["taster_name"].notna(), "none")
    tasters = tasters.to_numpy()
    if pd.api.types.infer_dtype(tasters, skipna=False) != "string":
        # Values that compare equal may print differently (1, 1.0, True): tell them
        # apart by their text, which is what the token holds.
        tasters = np.array([f"{t}" for t in tasters], dtype=object)

    p_values, p_codes = np.unique(price_band, return_inverse=True)
    n_values, n_codes = np.unique(length_band, return_inverse=True)
    t_codes, t_values = pd.factorize(tasters)
    pair_values, pair_codes = np.unique(t_codes.astype(np.int64) * len(p_values) + p_codes,
                                        return_inverse=True)
    cols = np.empty((len(df), 3), dtype=np.int64)
    cols[:, 0] = _hashed_codes(p_codes, [f"price_band={p}" for p in p_values], n_features)
    cols[:, 1] = _hashed_codes(n_codes, [f"length_band={n}" for n in n_values], n_features)
    cols[:, 2] = _hashed_codes(
        pair_codes,
        [f"taster_price={t_values[pair // len(p_values)]}|{p_values[pair % len(p_values)]}"
         for pair in pair_values],
        n_features,
    )
    return _token_matrix(cols, n_features)


@njit(cache=True, nogil=True)
def words_count_kernel(cps, starts, classes):
    """Whitespace-separated words of each text (runs of code points without :data:`SPACE`).

    Parameters
    ----------
    cps, starts : numpy.ndarray
        As :func:`code_points` gives them (lower-cased or not: case never makes a space).
    classes : numpy.ndarray of uint8
        :func:`char_classes`.

    Returns
    -------
    numpy.ndarray of float64
    """
    n = starts.size - 1
    out = np.zeros(n, dtype=np.float64)
    for r in range(n):
        count = 0
        inside = False
        for j in range(starts[r], starts[r + 1]):
            if classes[cps[j]] & SPACE:
                inside = False
            elif not inside:
                inside = True
                count += 1
        out[r] = count
    return out


def _plain_code_points(docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    # code_points without the lower-casing, for str texts.
    starts = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, docs), dtype=np.int64, count=len(docs)), out=starts[1:])
    joined = "".join(docs).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(joined, dtype=np.uint32), starts


def count_words(texts: list[str]) -> np.ndarray:
    r"""Whitespace-separated words of each text: ``len(text.split())``, as ``\S+`` counts them.

    Parameters
    ----------
    texts : list of str

    Returns
    -------
    numpy.ndarray of float64
    """
    cps, starts = _plain_code_points(texts)
    return words_count_kernel(cps, starts, char_classes())


_IV = np.array([0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B,
                0xA54FF53A5F1D36F1, 0x510E527FADE682D1, 0x9B05688C2B3E6C1F,
                0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179], dtype=np.uint64)
_SIGMA = np.array([
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
], dtype=np.int64)
_S32, _S63 = np.uint64(32), np.uint64(63)


@njit(cache=True, nogil=True, inline="always")
def _mix(a, b, c, d, x, y):
    """BLAKE2b's G function on four state words and two message words."""
    a = a + b + x
    d ^= a
    d = (d >> _S32) | (d << _S32)
    c = c + d
    b ^= c
    b = (b >> _S24) | (b << np.uint64(40))
    a = a + b + y
    d ^= a
    d = (d >> _S16) | (d << np.uint64(48))
    c = c + d
    b ^= c
    b = (b >> _S63) | (b << np.uint64(1))
    return a, b, c, d


@njit(cache=True, nogil=True)
def _blake2b_compress(h, m, t, last):
    """BLAKE2b's compression of one 128-byte block ``m`` (16 uint64 words) into ``h``."""
    v0, v1, v2, v3, v4, v5, v6, v7 = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
    v8, v9, v10, v11 = _IV[0], _IV[1], _IV[2], _IV[3]
    v12, v13, v14, v15 = _IV[4] ^ np.uint64(t), _IV[5], _IV[6], _IV[7]
    if last:
        v14 = ~v14
    for r in range(12):
        s = _SIGMA[r % 10]
        v0, v4, v8, v12 = _mix(v0, v4, v8, v12, m[s[0]], m[s[1]])
        v1, v5, v9, v13 = _mix(v1, v5, v9, v13, m[s[2]], m[s[3]])
        v2, v6, v10, v14 = _mix(v2, v6, v10, v14, m[s[4]], m[s[5]])
        v3, v7, v11, v15 = _mix(v3, v7, v11, v15, m[s[6]], m[s[7]])
        v0, v5, v10, v15 = _mix(v0, v5, v10, v15, m[s[8]], m[s[9]])
        v1, v6, v11, v12 = _mix(v1, v6, v11, v12, m[s[10]], m[s[11]])
        v2, v7, v8, v13 = _mix(v2, v7, v8, v13, m[s[12]], m[s[13]])
        v3, v4, v9, v14 = _mix(v3, v4, v9, v14, m[s[14]], m[s[15]])
    h[0] ^= v0 ^ v8
    h[1] ^= v1 ^ v9
    h[2] ^= v2 ^ v10
    h[3] ^= v3 ^ v11
    h[4] ^= v4 ^ v12
    h[5] ^= v5 ^ v13
    h[6] ^= v6 ^ v14
    h[7] ^= v7 ^ v15


@njit(cache=True, nogil=True)
def _blake2b_64(buf, n, h, words):
    """``int.from_bytes(blake2b(buf[:n], digest_size=8).digest(), "big")``.

    ``buf`` must have room for ``n`` rounded up to 128 bytes; ``words`` is the same
    memory as uint64.
    """
    h[:] = _IV
    h[0] ^= np.uint64(0x01010008)  # digest of 8 bytes, no key, fan-out and depth 1
    blocks = max(1, (n + 127) // 128)
    buf[n:blocks * 128] = 0
    for i in range(blocks - 1):
        _blake2b_compress(h, words[16 * i:16 * i + 16], (i + 1) * 128, False)
    _blake2b_compress(h, words[16 * (blocks - 1):16 * blocks], n, True)
    x = h[0]
    out = np.uint64(0)
    for _ in range(8):  # the digest's bytes are h[0] little-endian; read them big-endian
        out = (out << _S8) | (x & np.uint64(0xFF))
        x >>= _S8
    return out


@njit(cache=True, nogil=True)
def squeezed_blake2b_kernel(data, offsets, classes):
    """BLAKE2b-64 of each UTF-8 text with its whitespace runs made one space, ends stripped.

    Parameters
    ----------
    data : numpy.ndarray of uint8
        The texts' UTF-8 bytes, one after the other (lone surrogates as
        ``"surrogatepass"`` writes them).
    offsets : numpy.ndarray of int64
        ``len(texts) + 1`` offsets into ``data``.
    classes : numpy.ndarray of uint8
        :func:`char_classes`: which code points are whitespace.

    Returns
    -------
    numpy.ndarray of uint64
        The digest of each squeezed text as a big-endian integer.
    """
    n = offsets.size - 1
    out = np.empty(n, dtype=np.uint64)
    words = np.empty((_longest(offsets) + 127) // 128 * 16 + 16, dtype=np.uint64)
    buf = words.view(np.uint8)
    h = np.empty(8, dtype=np.uint64)
    for r in range(n):
        pos = 0
        gap = False
        j = offsets[r]
        end = offsets[r + 1]
        while j < end:
            b = data[j]
            if b < 0x80:  # ASCII, most of the bytes: no decoding, one byte to copy
                if classes[b] & SPACE:
                    gap = pos > 0
                else:
                    if gap:
                        buf[pos] = 32
                        pos += 1
                        gap = False
                    buf[pos] = b
                    pos += 1
                j += 1
                continue
            if b < 0xE0:
                c, k = ((b & 0x1F) << 6) | (data[j + 1] & 0x3F), 2
            elif b < 0xF0:
                c = ((b & 0x0F) << 12) | ((data[j + 1] & 0x3F) << 6) | (data[j + 2] & 0x3F)
                k = 3
            else:
                c = (((b & 0x07) << 18) | ((data[j + 1] & 0x3F) << 12)
                     | ((data[j + 2] & 0x3F) << 6) | (data[j + 3] & 0x3F))
                k = 4
            if classes[c] & SPACE:
                gap = pos > 0
            else:
                if gap:
                    buf[pos] = 32
                    pos += 1
                    gap = False
                for i in range(k):
                    buf[pos + i] = data[j + i]
                pos += k
            j += k
        out[r] = _blake2b_64(buf, pos, h, words)
    return out


def squeezed_blake2b(texts: list[str]) -> np.ndarray:
    """BLAKE2b-64 of each text, lower-cased and with its whitespace squeezed.

    Equals ``int.from_bytes(hashlib.blake2b(" ".join(t.lower().split()).encode("utf-8",
    "surrogatepass"), digest_size=8).digest(), "big")`` for every ``t``, in one pass of
    compiled code instead of a Python call per text.

    Parameters
    ----------
    texts : list of str

    Returns
    -------
    numpy.ndarray of uint64
    """
    encoded = [t.lower().encode("utf-8", "surrogatepass") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)),
              out=offsets[1:])
    data = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8)
    return squeezed_blake2b_kernel(data, offsets, char_classes())


def compile_kernels() -> None:
    """Compile every kernel once, so numba's on-disk cache holds them.

    A process with a warm cache loads the kernels from disk instead of compiling
    them; the images call this at build time (``NUMBA_CACHE_DIR``).
    """
    frame = pd.DataFrame({col: ["a b"] for col in CATEGORY_COLUMNS})
    frame["price"], frame["taster_name"] = [1.0], ["a"]
    hash_description(["Ripe fruit, firm tannins."], 2**10, 2**10)
    hash_words(["a b"], 2**10)
    hash_categories(frame, 2**10)
    hash_bins(frame, np.array([2.0]), 2**10)
    count_words(["a b"])
    squeezed_blake2b(["a b"])
