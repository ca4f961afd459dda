r"""Where the records of a CSV file begin, found block by block in parallel.

A CSV record may span lines: a quoted field can hold line breaks.  So a byte
block cannot be cut at just any newline; whether a newline ends a record
depends on the parser's state there, which depends on everything before it.

:func:`scan_block` runs the CSV state machine (the one pandas' C parser
follows: RFC 4180 quoting, a quote is special only at the start of a field,
``""`` inside quotes, ``\n``, ``\r\n`` and ``\r`` line ends, blank and
whitespace-only lines skipped) over one block from every possible entry
state at once.  The hypotheses meet within a field or two, after which one
pass continues.  :func:`chain_blocks` then walks the blocks' summaries from
the file's start, where the state is known, to find each block's first
record boundary and how many records come before it: every byte is scanned
once on a worker, and only a few integers per block reach the caller.
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np

#: Parser states.  RECORD: at the start of a record (nothing read yet); FIELD: at the
#: start of a field after a delimiter; UNQUOTED / QUOTED: inside a field; QUOTE: a quote
#: read inside a quoted field (closing it, or the first of a doubled quote); SPACE: only
#: blanks read on this line so far; CR: a record just ended with a carriage return.
RECORD, FIELD, UNQUOTED, QUOTED, QUOTE, SPACE, CR = range(7)
N_STATES = 7

_NL, _CR, _QUOTE, _SPACE, _TAB = 10, 13, 34, 32, 9


def _transitions(delimiter: int) -> tuple[np.ndarray, np.ndarray]:
    """The state machine as tables: next state, and whether a record ends, per byte."""
    nxt = np.empty((N_STATES, 256), dtype=np.int8)
    ends = np.zeros((N_STATES, 256), dtype=np.int8)
    for byte in range(256):

        def start(b: int) -> int:
            # A byte read where a new record begins.
            if b in (_NL, _CR):
                return RECORD  # a blank line: no record
            if b == _QUOTE:
                return QUOTED
            if b == delimiter:
                return FIELD
            if b in (_SPACE, _TAB):
                return SPACE
            return UNQUOTED

        nxt[RECORD, byte] = start(byte)
        nxt[CR, byte] = RECORD if byte == _NL else start(byte)
        # Only blanks so far: a line end makes it blank, anything else starts a field
        # that began with a blank, so a quote in it is an ordinary character.
        if byte in (_NL, _CR):
            nxt[SPACE, byte] = RECORD
        elif byte == delimiter:
            nxt[SPACE, byte] = FIELD
        elif byte in (_SPACE, _TAB):
            nxt[SPACE, byte] = SPACE
        else:
            nxt[SPACE, byte] = UNQUOTED
        for state in (FIELD, UNQUOTED, QUOTE):
            if byte == _NL:
                nxt[state, byte], ends[state, byte] = RECORD, 1
            elif byte == _CR:
                nxt[state, byte], ends[state, byte] = CR, 1
            elif byte == delimiter:
                nxt[state, byte] = FIELD
            elif byte == _QUOTE and state != UNQUOTED:
                # At a field's start a quote opens it; after a quote it was a doubled one.
                nxt[state, byte] = QUOTED
            else:
                nxt[state, byte] = UNQUOTED
        nxt[QUOTED, byte] = QUOTE if byte == _QUOTE else QUOTED
    return nxt, ends


@numba.njit(cache=True, nogil=True)
def _scan(data: np.ndarray, nxt: np.ndarray, ends: np.ndarray) -> np.ndarray:
    # Per entry state: exit state, offset just after the first line end outside quotes
    # (-1: none), records ended before that offset, records ended in the block.
    state = np.arange(N_STATES).astype(np.int8)
    cut = np.full(N_STATES, -1, dtype=np.int64)
    cut[RECORD] = 0
    before = np.zeros(N_STATES, dtype=np.int64)
    total = np.zeros(N_STATES, dtype=np.int64)
    n = data.shape[0]
    i = 0
    met = False
    # Lockstep until every hypothesis is in the same state: from then on they agree.
    while i < n and not met:
        b = data[i]
        met = True
        for s in range(N_STATES):
            st = nxt[state[s], b]
            total[s] += ends[state[s], b]
            state[s] = st
            if cut[s] < 0:
                before[s] = total[s]
                if b == _NL and st == RECORD:
                    cut[s] = i + 1
            if st != state[0]:
                met = False
        i += 1
    # One pass for all from the meeting point on.
    st = state[0]
    common = 0
    first = -1
    common_before = 0
    while i < n:
        b = data[i]
        common += ends[st, b]
        st = nxt[st, b]
        if first < 0 and b == _NL and st == RECORD:
            first = i + 1
            common_before = common
        i += 1
    out = np.empty((N_STATES, 4), dtype=np.int64)
    for s in range(N_STATES):
        out[s, 0] = st if met else state[s]
        if cut[s] < 0 and first >= 0:
            cut[s] = first
            before[s] = total[s] + common_before
        out[s, 1] = cut[s]
        out[s, 2] = before[s]
        out[s, 3] = total[s] + common
    return out


_TABLES: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def scan_block(data: bytes, delimiter: str = ",") -> np.ndarray:
    """Summarise one block of a CSV file for every state the parser may enter it in.

    Parameters
    ----------
    data : bytes
        The block's bytes (any byte range of the file).
    delimiter : str, default ","
        One ASCII character.

    Returns
    -------
    numpy.ndarray
        Shape ``(N_STATES, 4)``, int64; row ``s`` for entry state ``s``: the state after
        the block, the offset just after its first line end outside quotes (where a
        record may start; 0 when entered at a record start, -1 when there is none),
        the records ended before that offset, and the records ended in the block.
    """
    code = ord(delimiter)
    if code not in _TABLES:
        _TABLES[code] = _transitions(code)
    nxt, ends = _TABLES[code]
    return _scan(np.frombuffer(data, dtype=np.uint8), nxt, ends)


@dataclasses.dataclass(frozen=True)
class BlockCut:
    """One parse range of a CSV file: whole records only.

    Attributes
    ----------
    start, stop : int
        Byte range ``[start, stop)``.
    first_record : int
        Number of records (the header included) before ``start``.
    records : int
        Records in the range.
    """

    start: int
    stop: int
    first_record: int
    records: int


class UnclosedQuote(ValueError):
    """The file ends inside a quoted field."""


def chain_blocks(summaries: list[np.ndarray], offsets: list[int], size: int) -> list[BlockCut]:
    """Cut a file into ranges of whole records from its blocks' :func:`scan_block` summaries.

    Parameters
    ----------
    summaries : list of numpy.ndarray
        :func:`scan_block` of each block, in file order.
    offsets : list of int
        Byte offset of each block; the blocks cover the file without gaps.
    size : int
        Bytes in the file.

    Returns
    -------
    list of BlockCut
        One per block, in order (possibly empty ranges, when a record spans a whole
        block); together they cover every record exactly once.

    Raises
    ------
    UnclosedQuote
        When the file ends inside a quoted field: pandas would fail on it, and the
        rest of the file after the quote would be one field.
    """
    state = RECORD
    records = 0
    starts: list[tuple[int, int]] = []
    for summary, offset in zip(summaries, offsets, strict=True):
        exit_state, cut, before, total = (int(v) for v in summary[state])
        if cut < 0:
            starts.append((-1, -1))  # no record starts here: merged into the one before
        else:
            starts.append((offset + cut, records + before))
        records += total
        state = exit_state
    if state == QUOTED:
        raise UnclosedQuote("the file ends inside a quoted field (a quote that is never "
                            "closed): the rest of the file after it would be one value")
    if state in (FIELD, UNQUOTED, QUOTE):
        records += 1  # a last record without a line end
    cuts: list[BlockCut] = []
    next_start, next_first = size, records
    for start, first in reversed(starts):
        if start < 0:
            start, first = next_start, next_first
        cuts.append(BlockCut(start, next_start, first, next_first - first))
        next_start, next_first = start, first
    cuts.reverse()
    return cuts
