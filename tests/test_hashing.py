"""The compiled hashing gives exactly scikit-learn's matrices, block by block and whole."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import zlib

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.utils import murmurhash3_32

from benchmarks.sklearn_features import (
    bin_tokens,
    category_tokens,
    char_4grams,
    sklearn_transform,
)
from conftest import ROOT
from pipeline import hashing
from pipeline.cleaning import clean_partition, parse_vintage
from pipeline.csv_input import parse_block, read_header
from pipeline.features import NUMERIC_FEATURES, FeatureSpec, NumericStats, description_words
from pipeline.gbm_features import CATEGORY_BUCKETS, category_code
from pipeline.schema import CATEGORY_COLUMNS
from pipeline.splitting import split_bucket

# Texts that stress tokenising, lower-casing, whitespace and UTF-8.
TRICKY = [
    "Château Côte-Rôtie, crème brûlée; déjà vu. NAÏVE Ångström øl",
    "葡萄酒很好 赤ワイン、とても良い。 와인 좋아요 CJK一二三",
    "🍷🍇 wine😀emoji 🍷🍷 👨‍👩‍👧 flags 🇫🇷🇮🇹",
    "İSTANBUL İzmir ıi Iİ DİYARBAKIR",  # İ lower-cases to i + U+0307 (not \\w)
    "STRASSE Straße ẞ GROẞ ß",
    "e\u0301te\u0301 cafe\u0301 n\u0303 combining\u0308 marks\u20dd",
    "ΟΔΟΣ ΟΔΟΣ. ΣΑΣ Σ ΑΣ-Β σς",  # final sigma depends on context
    "!!! ... --- ??? ;;; (((( )))) '' \"\" ¿¡ «» — – …",
    "1990 2010 12 3 ½ Ⅻ ² ٣ ௫ 1st 2nd 3,5 4.5",
    "__init__ a_b _ __ _x x_ snake_case_word",
    "",
    "   ",
    "a",
    "ab",
    "abc abcd abcde a b c",
    "tab\tsep\tand\nnew\nlines\r\nand\u00a0nbsp\u2003em\u2009thin\u3000ideo",
    "vt\x0bff\x0cfs\x1cgs\x1drs\x1eus\x1fnel\x85end",
    "zero\u200bwidth\u200dzwj\u2060wj\ufeffbom",
    "שלום עולם مرحبا بالعالم नमस्ते दुनिया ไทย ภาษา",
    "ＦＵＬＬＷＩＤＴＨ ａｂｃ ﬁne ﬂute Ǆǅǆ ǲ",
    "mixed CASE Words WITH Upper AND lower",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝 astral 𐍈 𝟘𝟙",
    "\x00nul\x01ctrl\x7fdel",
]


def assert_same_csr(got, expected) -> None:
    assert type(got) is type(expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    assert got.indices.dtype == expected.indices.dtype
    assert got.indptr.dtype == expected.indptr.dtype
    assert np.array_equal(got.indptr, expected.indptr)
    assert np.array_equal(got.indices, expected.indices)
    # Bit for bit: the same float32 values, not merely close ones.
    assert np.array_equal(got.data.view(np.uint32), expected.data.view(np.uint32))


def sklearn_words(texts, n_features, norm="l2"):
    return HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False,
                             norm=norm, dtype=np.float32).transform(texts)


def sklearn_chars(texts, n_features, norm="l2"):
    return HashingVectorizer(n_features=n_features, analyzer=char_4grams,
                             alternate_sign=False, norm=norm,
                             dtype=np.float32).transform(texts)


def sklearn_tokens(rows, n_features):
    return FeatureHasher(n_features=n_features, input_type="string", alternate_sign=False,
                         dtype=np.float32).transform(rows)


def frame(descriptions, titles=None, dtype="string", seed=0) -> pd.DataFrame:
    """A cleaned-like frame around the given texts, with varied categories and numbers."""
    n = len(descriptions)
    rng = np.random.default_rng(seed)
    titles = titles if titles is not None else [TRICKY[i % len(TRICKY)] for i in range(n)]
    values = ["France", "Côte d'Or", "", None, "Ñuble", "葡萄酒", "Rosé", "US", "x=y|z"]
    data = {"description": pd.Series(descriptions, dtype=object),
            "title": pd.Series(titles, dtype=object)}
    for j, col in enumerate(CATEGORY_COLUMNS):
        data[col] = pd.Series([values[(i * (j + 3) + j) % len(values)] for i in range(n)],
                              dtype=object)
    price = rng.choice([np.nan, 0.0, 4.0, 15.0, 22.5, 100.0, 3300.0], size=n)
    data["price"] = price
    data["points"] = rng.integers(80, 101, size=n).astype("float64")
    df = pd.DataFrame(data)
    strings = ["description", "title", *CATEGORY_COLUMNS]
    df[strings] = df[strings].astype(dtype)
    df["vintage"] = parse_vintage(df["title"].fillna("").astype("object"))
    return df


@pytest.fixture(scope="module")
def sample_clean(sample_csv) -> pd.DataFrame:
    # As make-dataset reads (every column a string) and cleans a partition.
    raw = parse_block(sample_csv.read_bytes(), read_header(sample_csv), has_header=True)
    clean, _ = clean_partition(raw, require_points=True)
    assert len(clean) > 5000
    return clean


@pytest.fixture(scope="module")
def sample_read_csv(sample_csv) -> pd.DataFrame:
    # pandas' own reading: "str" columns with NaN, float prices, vintage from the title.
    df = pd.read_csv(sample_csv, index_col=0)
    df["vintage"] = parse_vintage(df["title"].fillna("").astype("object"))
    return df


@pytest.fixture(scope="module")
def tricky_frame() -> pd.DataFrame:
    descriptions = [*TRICKY, None, *[t.upper() for t in TRICKY], "x " * 50 + "\t"]
    titles = [*reversed(TRICKY), None, *TRICKY, ""]
    return frame(descriptions, titles)


@pytest.fixture(scope="module")
def big_description() -> str:
    # About 1 MB of mixed words and whitespace in a single review.
    rng = np.random.default_rng(7)
    words = np.array(" ".join(TRICKY).split() + ["Wine", "TANNINS", "fruit_", "x", "2015"])
    seps = np.array([" ", " ", " ", "\t", "\n", "\u00a0", "  ", ", ", ". "])
    picks = rng.integers(0, len(words), size=140_000)
    gaps = rng.integers(0, len(seps), size=140_000)
    text = "".join(w + s for w, s in zip(words[picks], seps[gaps], strict=True))
    assert len(text.encode("utf-8")) > 1_000_000
    return text


# --- the building blocks ---------------------------------------------------------------

def test_murmur_matches_sklearn_on_random_bytes():
    rng = np.random.default_rng(0)
    for length in [*range(0, 17), 31, 64, 257]:
        for _ in range(20):
            raw = rng.integers(0, 256, size=length, dtype=np.uint8)
            buf = np.concatenate([np.array([9, 9], np.uint8), raw, np.array([9], np.uint8)])
            got = hashing._murmur3(buf, 2, 2 + length)
            assert got == murmurhash3_32(raw.tobytes(), seed=0, positive=True)


def test_column_of_minus_two_to_the_31_is_featurehashers():
    # FeatureHasher defines abs(-2**31) % n as (2**31 - 1 - (n - 1)) % n.
    for n in (1000, 2**20, 12345, 1):
        mask = n - 1 if n & (n - 1) == 0 else -1
        assert hashing._column(np.uint64(2**31), n, mask) == (2**31 - 1 - (n - 1)) % n
        assert hashing._column(np.uint64(2**31 + 5), n, mask) == (2**31 - 5) % n
        assert hashing._column(np.uint64(7), n, mask) == 7 % n


def test_char_classes_are_pythons_for_every_code_point():
    classes = hashing.char_classes()
    everything = [chr(c) for c in range(0x110000)]
    word = np.fromiter((ch.isalnum() or ch == "_" for ch in everything), bool, len(everything))
    space = np.fromiter((ch.isspace() for ch in everything), bool, len(everything))
    assert np.array_equal((classes & hashing.WORD) != 0, word)
    assert np.array_equal((classes & hashing.SPACE) != 0, space)
    assert word.sum() > 100_000 and 20 < space.sum() < 40


def test_lower_case_keeps_every_character_space_or_not():
    # Why words counted on the lower-cased text are description_words' count.
    for c in range(0x110000):
        ch = chr(c)
        low = ch.lower()
        assert low and all(x.isspace() == ch.isspace() for x in low), hex(c)


def test_counts_summed_in_float32_like_scipy():
    # Past 2**24 ones a float32 sum stops growing; sum_duplicates' does too.
    m = 2**24 + 3
    row = np.full(m, 5, dtype=np.int32)
    indices = np.empty(1, np.int32)
    data = np.empty(1, np.float32)
    assert hashing._emit_row(row, m, indices, data, 0) == 1
    assert indices[0] == 5 and data[0] == np.float32(2**24)


def test_rows_sorted_by_radix_and_insertion():
    rng = np.random.default_rng(1)
    for n_features in (2**20, 2**16, 1000, 2**31 - 1):
        for m in (0, 1, 5, 32, 33, 300, 5000):
            mask, passes, bits, spare, counts = hashing._row_tools(n_features, m)
            cols = rng.integers(0, n_features, size=m + 2).astype(np.int32)
            expected = np.sort(cols[:m])
            got = hashing._sort_row(cols, m, spare, counts, passes, bits)
            assert np.array_equal(got[:m], expected)


# --- each block against scikit-learn ---------------------------------------------------

@pytest.mark.parametrize("n_features", [2**20, 2**18, 1000, 7])
def test_words_and_chars_on_tricky_text(n_features):
    texts = [*TRICKY, *[t.upper() for t in TRICKY], *[t.title() for t in TRICKY]]
    assert_same_csr(hashing.hash_words(texts, n_features), sklearn_words(texts, n_features))
    assert_same_csr(hashing.hash_char_wb4(texts, n_features), sklearn_chars(texts, n_features))
    for norm in (None, "l2"):
        assert_same_csr(hashing.hash_words(texts, n_features, norm=norm),
                        sklearn_words(texts, n_features, norm=norm))
        assert_same_csr(hashing.hash_char_wb4(texts, n_features, norm=norm),
                        sklearn_chars(texts, n_features, norm=norm))


def test_counts_really_are_counted():
    # The tests above compare with scikit-learn; this one checks the values themselves.
    counts = hashing.hash_words(["Wine wine WINE red", "", "__"], 2**20, norm=None)
    assert counts.shape == (3, 2**20)
    # wine x3, red, "wine wine" x2, "wine red"
    assert sorted(counts[0].data.tolist()) == [1.0, 1.0, 2.0, 3.0]
    assert counts[1].nnz == 0 and counts[2].nnz == 1
    grams = hashing.hash_char_wb4(["ab abcde"], 2**20, norm=None)
    assert grams.sum() == 1 + 4  # " ab " and " abc", "abcd", "bcde", "cde "


@pytest.mark.slow  # scikit-learn's analyzers over all 1.1 million code points
def test_every_code_point_in_words_and_grams():
    # Each code point (but the lone surrogates) between word characters, in both blocks.
    points = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    texts = [" ".join(f"ab{chr(c)}cd" for c in points[i:i + 4096])
             for i in range(0, len(points), 4096)]
    assert_same_csr(hashing.hash_words(texts, 2**20, norm=None),
                    sklearn_words(texts, 2**20, norm=None))
    assert_same_csr(hashing.hash_char_wb4(texts, 2**20, norm=None),
                    sklearn_chars(texts, 2**20, norm=None))


def test_big_description(big_description):
    texts = ["short one", big_description, "", big_description.upper()[:5000]]
    assert_same_csr(hashing.hash_words(texts, 2**20), sklearn_words(texts, 2**20))
    assert_same_csr(hashing.hash_char_wb4(texts, 2**20), sklearn_chars(texts, 2**20))


def test_bytes_documents_are_decoded_like_sklearn():
    texts = ["Café Noir".encode(), "plain str", np.str_("NumPy Str")]
    assert_same_csr(hashing.hash_words(texts, 2**18), sklearn_words(texts, 2**18))
    assert_same_csr(hashing.hash_char_wb4(texts, 2**18), sklearn_chars(texts, 2**18))
    with pytest.raises(ValueError, match="np.nan is an invalid document"):
        hashing.hash_words(["ok", np.nan], 2**18)


def test_lone_surrogates_fail_where_sklearn_fails():
    texts = ["fine", "bad \ud800 word", "pair \ud83d\ude00"]
    # Not a word character: the word block does not encode it, and does not fail.
    assert_same_csr(hashing.hash_words(texts, 2**18), sklearn_words(texts, 2**18))
    # Inside a whitespace-separated word: its 4-grams have no UTF-8.
    with pytest.raises(UnicodeEncodeError):
        sklearn_chars(texts, 2**18)
    with pytest.raises(UnicodeEncodeError):
        hashing.hash_char_wb4(texts, 2**18)


def test_empty_input_raises():
    # scikit-learn's hashers raise StopIteration on no documents; ours a ValueError.
    with pytest.raises(StopIteration):
        sklearn_words([], 2**10)
    with pytest.raises(ValueError, match="empty"):
        hashing.hash_words([], 2**10)
    with pytest.raises(ValueError, match="empty"):
        hashing.hash_char_wb4([], 2**10)


@pytest.mark.parametrize("dtype", ["string", "object", "str"])
def test_categories_and_bins(tricky_frame, dtype):
    df = tricky_frame.copy()
    df[list(CATEGORY_COLUMNS)] = df[list(CATEGORY_COLUMNS)].astype(dtype)
    for n_features in (2**18, 2**16, 999):
        assert_same_csr(hashing.hash_categories(df, n_features),
                        sklearn_tokens(category_tokens(df), n_features))
        words = description_words(df)
        assert_same_csr(hashing.hash_bins(df, words, n_features),
                        sklearn_tokens(bin_tokens(df, words), n_features))


def test_categories_of_odd_values():
    # Non-strings give no category token; as tasters they print as themselves.
    df = frame(["a b"] * 8, dtype="object")
    df["country"] = pd.Series([1, 1.0, True, "1", "", None, np.nan, "True"], dtype=object)
    df["taster_name"] = pd.Series([1, 1.0, True, "1", "", None, np.nan, "none"], dtype=object)
    df = df.drop(columns=["region_2"])
    assert_same_csr(hashing.hash_categories(df, 2**18),
                    sklearn_tokens(category_tokens(df), 2**18))
    assert_same_csr(hashing.hash_bins(df, description_words(df), 2**16),
                    sklearn_tokens(bin_tokens(df), 2**16))


def test_hash_tokens_is_featurehasher():
    tokens = ["country=France", "winery=Château", "a", "", "x" * 1000, "🍷=🍷", None, "a"]
    hashed = hashing.hash_tokens(tokens, 2**18)
    expected = sklearn_tokens([[t] for t in tokens if t is not None], 2**18).indices
    assert hashed.tolist() == [*expected[:6].tolist(), -1, expected[6]]
    assert hashing.hash_tokens([], 2**18).size == 0


def test_word_count_of_the_char_kernel(tricky_frame, big_description):
    df = frame([*tricky_frame["description"].fillna("").tolist(), big_description])
    cps, starts = hashing.code_points(df["description"].fillna("").to_numpy())
    words = hashing.char_wb4_kernel(cps, starts, hashing.char_classes(), 2**20)[3]
    assert np.array_equal(words, regex_words(df["description"].fillna("").tolist()))


# --- the per-row numbers around the matrix: each equals its plain-Python definition ------

def regex_words(texts) -> np.ndarray:
    return np.array([len(re.findall(r"\S+", t)) for t in texts], dtype="float64")


@pytest.fixture(scope="module")
def texts(sample_clean, tricky_frame, big_description) -> list[str]:
    return [*sample_clean["description"].tolist(), *tricky_frame["description"].fillna(""),
            big_description, "a\ud800b c \udfff", " \ud83c\udf77 ", "", " \t\n"]


def test_word_count_is_the_regex_count(texts):
    df = pd.DataFrame({"description": pd.Series([*texts, None], dtype=object)})
    assert np.array_equal(description_words(df), regex_words([*texts, ""]))
    encodable = [t for t in texts if not re.search("[\ud800-\udfff]", t)]
    as_string = pd.DataFrame({"description": pd.Series(encodable, dtype="string")})
    assert np.array_equal(description_words(as_string), regex_words(encodable))


def test_category_code_is_crc32_of_each_value(sample_clean, tricky_frame):
    for values in [*(sample_clean[c] for c in CATEGORY_COLUMNS),
                   *(tricky_frame[c] for c in CATEGORY_COLUMNS),
                   pd.Series(["a", None, np.nan, "", "a", 3, "\ud800"], dtype=object)]:
        expected = np.array([zlib.crc32(v.encode("utf-8", "surrogatepass")) % CATEGORY_BUCKETS
                             if isinstance(v, str) else np.nan
                             for v in values.astype("object").tolist()], dtype=np.float32)
        assert np.array_equal(category_code(values), expected, equal_nan=True)


def python_blake2b(text: str) -> int:
    """The split's hash the plain-Python way (see :func:`pipeline.splitting.split_bucket`)."""
    key = " ".join(text.lower().split()).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def test_squeezed_blake2b_is_hashlibs(texts):
    # Lengths around BLAKE2b's 128-byte blocks, every whitespace kind, odd unicode.
    rng = np.random.default_rng(3)
    alphabet = list("aZ. \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u3000"
                    "éİẞΣ\ud800\udfff😀")
    randoms = ["".join(rng.choice(alphabet, size=n)) for n in rng.integers(0, 400, size=2000)]
    edges = ["x" * n for n in (0, 1, 127, 128, 129, 255, 256, 257)]
    edges += [" " * 130 + "y", "y" + " \t" * 200, "É" * 64, "é" * 64 + " "]
    every = [*texts, *randoms, *edges]
    expected = np.array([python_blake2b(t) for t in every], dtype=np.uint64)
    assert np.array_equal(hashing.squeezed_blake2b(every), expected)
    assert hashing.squeezed_blake2b([]).shape == (0,)


def test_split_bucket_of_odd_values():
    values = pd.Series(["A  b", None, np.nan, 3, 2.5, "\ud800", ""], dtype=object)
    expected = [python_blake2b(str(v)) % 100 for v in ["A  b", "", "", 3, 2.5, "\ud800", ""]]
    assert split_bucket(values).tolist() == expected
    as_string = pd.Series(["a b", None], dtype="string")
    assert split_bucket(as_string).tolist() == [python_blake2b(t) % 100 for t in ("a b", "")]


# --- the whole matrix ------------------------------------------------------------------

def with_scaling(spec: FeatureSpec, mean: list[float] | None = None,
                 std: list[float] | None = None) -> FeatureSpec:
    """``spec`` fitted to numeric means and standard deviations (default 0 and 1).

    Through :meth:`FeatureSpec.fit_stats`, on the sums one row with those moments would
    give (the standard deviations come back to within rounding).
    """
    n = len(NUMERIC_FEATURES)
    mean = np.asarray(mean if mean is not None else [0.0] * n, dtype="float64")
    std = np.asarray(std if std is not None else [1.0] * n, dtype="float64")
    return spec.fit_stats(NumericStats(count=np.ones(n), sum=mean, sumsq=std**2 + mean**2))


def spec_variants() -> list[FeatureSpec]:
    scaled = with_scaling(FeatureSpec(), [3.1, 10.2, 0.07, 2011.5, 0.04, 3.6],
                          [0.7, 4.4, 0.25, 5.5, 0.2, 0.35])
    odd = with_scaling(
        FeatureSpec(text_features=50_000, char_features=2**19 + 1, title_features=777,
                    category_features=2**10, bin_features=97, char_weight=0.7,
                    title_weight=1.3, category_weight=0.0, bin_weight=2.5, numeric_weight=0.5),
        [1.0] * len(NUMERIC_FEATURES), [3.0] * len(NUMERIC_FEATURES))
    return [with_scaling(FeatureSpec()), scaled, odd]


@pytest.mark.parametrize("spec", spec_variants(), ids=["default", "scaled", "odd"])
def test_transform_on_the_sample(sample_clean, spec):
    expected = sklearn_transform(spec, sample_clean)
    got = spec.transform(sample_clean)
    assert got.shape == (len(sample_clean), spec.n_features)
    assert got.nnz > 100 * len(sample_clean)
    assert_same_csr(got, expected)


def test_transform_on_the_sample_as_pandas_reads_it(sample_read_csv):
    spec = spec_variants()[1]
    assert_same_csr(spec.transform(sample_read_csv), sklearn_transform(spec, sample_read_csv))


def test_blocks_on_the_sample(sample_clean):
    descriptions = sample_clean["description"].fillna("").to_numpy()
    assert_same_csr(hashing.hash_words(descriptions, 2**20), sklearn_words(descriptions, 2**20))
    assert_same_csr(hashing.hash_char_wb4(descriptions, 2**20),
                    sklearn_chars(descriptions, 2**20))
    titles = sample_clean["title"].fillna("").to_numpy()
    assert_same_csr(hashing.hash_words(titles, 2**18), sklearn_words(titles, 2**18))
    assert_same_csr(hashing.hash_categories(sample_clean, 2**18),
                    sklearn_tokens(category_tokens(sample_clean), 2**18))
    assert_same_csr(hashing.hash_bins(sample_clean, description_words(sample_clean), 2**16),
                    sklearn_tokens(bin_tokens(sample_clean), 2**16))


@pytest.mark.parametrize("dtype", ["string", "object"])
@pytest.mark.parametrize("spec", spec_variants(), ids=["default", "scaled", "odd"])
def test_transform_on_tricky_rows(tricky_frame, dtype, spec):
    df = tricky_frame.copy()
    strings = ["description", "title", *CATEGORY_COLUMNS]
    df[strings] = df[strings].astype(dtype)
    assert df["description"].isna().sum() == 1
    assert_same_csr(spec.transform(df), sklearn_transform(spec, df))


def test_transform_with_a_big_description(big_description):
    df = frame(["first", big_description, "last one", ""], seed=3)
    spec = spec_variants()[1]
    assert_same_csr(spec.transform(df), sklearn_transform(spec, df))


def test_transform_with_a_surrogate():
    spec = with_scaling(FeatureSpec())
    # Object columns: Arrow strings cannot hold a lone surrogate at all.
    in_title = frame(["fine text", "more"], titles=["bad \udc80 title", "ok"], dtype="object")
    assert_same_csr(spec.transform(in_title), sklearn_transform(spec, in_title))
    in_text = frame(["bad\udc80 text", "more"], dtype="object")
    with pytest.raises(UnicodeEncodeError):
        sklearn_transform(spec, in_text)
    with pytest.raises(UnicodeEncodeError):
        spec.transform(in_text)


def test_transform_of_no_rows():
    empty = frame(["x"]).iloc[:0]
    with pytest.raises(StopIteration):
        sklearn_transform(with_scaling(FeatureSpec()), empty)
    with pytest.raises(ValueError, match="empty"):
        with_scaling(FeatureSpec()).transform(empty)


def test_module_imports_no_dask():
    code = ("import sys, pipeline.hashing; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'));"
            "print(bad); sys.exit(1 if bad else 0)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
