"""Parse an input CSV's records into partitions of strings, keeping every record.

The cluster reads a file as ranges of whole records
(:mod:`pipeline.distributed.csv_blocks`); this module reads its header and
the bytes of a range, and parses a range into a frame.  Every record gets its
number in the file (0 for the first after the header), which becomes the
row's index, so ids are unique whatever the file holds.  A record with more
fields than the header is not dropped: it becomes a row whose
``_parse_error`` says so, and the cleaner sets it aside as a reject.

Input that is not plain CSV in an ASCII-compatible encoding is prepared first
(:func:`pipeline.textfiles.prepare_input`): a compressed stream cannot be cut
into byte blocks, so it is decoded once into a scratch file beside the step's
output.  Bytes that are not valid in
the file's encoding are replaced (U+FFFD) and the rows holding them counted
(``_undecodable``): the steps fail past a small share, naming an encoding to try.
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd

from pipeline.csv_records import scan_block
from pipeline.params import BLOCKSIZE
from pipeline.schema import SchemaError, check_columns
from pipeline.textfiles import undecodable_hint

log = logging.getLogger(__name__)

#: Default partition size (see :data:`pipeline.params.BLOCKSIZE`).
DEFAULT_BLOCKSIZE = BLOCKSIZE

#: Column set on rows that could not be parsed; empty on good rows.
PARSE_ERROR = "_parse_error"

#: Column that is True on rows that held bytes invalid in the file's encoding.
UNDECODABLE = "_undecodable"

#: Default text encoding of input files.
DEFAULT_ENCODING = "utf-8"

#: Largest share of rows with undecodable bytes a step accepts (with a warning).
MAX_UNDECODABLE_SHARE = 0.01

class EncodingProblem(ValueError):
    """Too many rows held bytes that are not valid in the file's encoding."""


def file_size(path: str | Path) -> int:
    """Bytes in a file, local or behind an fsspec URL."""
    fs, _, [p] = fsspec.get_fs_token_paths(str(path))
    return int(fs.size(p))


def _delimiter_hint(columns: list[str]) -> str:
    if len(columns) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
            if sep in columns[0]:
                return (f" (the header is one column holding {name}: the file is separated "
                        f"by {name}, not commas; export it as comma-separated CSV)")
    return ""


def read_header(path: str | Path, encoding: str = DEFAULT_ENCODING) -> list[str]:
    """Column names of a CSV, with a clear error when it is missing, empty or not a CSV.

    Parameters
    ----------
    path : str or pathlib.Path
        A plain-text file (see :func:`pipeline.textfiles.prepare_input`).
    encoding : str, default "utf-8"

    Returns
    -------
    list of str
        The unnamed index column is ``""``.

    Raises
    ------
    SchemaError
        When the file is absent, empty, or has no parsable header.
    """
    try:
        if file_size(path) == 0:
            raise SchemaError(f"{path}: the file is empty")
    except FileNotFoundError as err:
        raise SchemaError(f"{path}: no such file") from err
    try:
        with fsspec.open(str(path), "rb") as fh:
            header = pd.read_csv(fh, nrows=0, encoding=encoding, encoding_errors="replace")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as err:
        raise SchemaError(f"{path}: not a readable CSV ({str(err)[:200]})") from err
    return ["" if str(c) == "Unnamed: 0" else str(c) for c in header.columns]


def check_header(columns: list[str], required: tuple[str, ...], source: str) -> None:
    """:func:`pipeline.schema.check_columns`, with a hint when the delimiter is not a comma.

    Parameters
    ----------
    columns : list of str
    required : tuple of str
    source : str

    Raises
    ------
    SchemaError
    """
    try:
        check_columns(columns, required, source)
    except SchemaError as err:
        raise SchemaError(str(err)[:600] + _delimiter_hint(columns)) from err


def read_range(path: str, start: int, stop: int) -> bytes:
    """The bytes ``start:stop`` of a file, local or behind an fsspec URL (none when empty)."""
    if stop <= start:
        return b""
    with fsspec.open(path, "rb") as fh:
        fh.seek(start)
        return fh.read(stop - start)


def scan_range(path: str, start: int, stop: int) -> np.ndarray:
    """:func:`pipeline.csv_records.scan_block` of the bytes ``start:stop`` of a file."""
    return scan_block(read_range(path, start, stop))


def _empty_frame(names: list[str], first_row: int) -> pd.DataFrame:
    frame = pd.DataFrame({n: pd.Series(dtype="object") for n in names},
                         index=pd.RangeIndex(first_row, first_row))
    frame[PARSE_ERROR] = pd.Series(dtype="object")
    frame[UNDECODABLE] = pd.Series(dtype="bool")
    return frame


def _slow_parse(block: bytes, names: list[str], has_header: bool,
                encoding: str) -> pd.DataFrame:
    # Only for blocks with a malformed record: the csv module gives every record as it
    # is, and a record of the wrong width is kept as a row saying so.  Blank and
    # blank-only lines are skipped, as pandas skips them.
    text = block.decode(encoding, errors="replace")
    records = csv.reader(io.StringIO(text, newline=""))
    if has_header:
        next(records, None)
    rows, errors = [], []
    for record in records:
        if not record or (len(record) == 1 and record[0] and not record[0].strip(" \t")):
            continue
        if len(record) == len(names):
            rows.append([v if v != "" else None for v in record])
            errors.append("")
        else:
            rows.append([None] * len(names))
            line = ",".join(record)
            errors.append(f"wrong number of fields ({len(record)}, expected {len(names)}): "
                          f"{line[:120]}")
    frame = pd.DataFrame(rows, columns=names, dtype="object")
    frame[PARSE_ERROR] = errors
    return frame


def parse_block(
    block: bytes,
    columns: list[str],
    has_header: bool,
    first_row: int = 0,
    expected_rows: int | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> pd.DataFrame:
    """Parse whole CSV records into strings, marking malformed and undecodable ones.

    Parameters
    ----------
    block : bytes
        Whole records of the file.
    columns : list of str
        The file's header.
    has_header : bool
        Whether the block starts with the header line (the first block).
    first_row : int, default 0
        Number of the block's first record (0 is the first after the header): the
        rows' index.
    expected_rows : int, optional
        Records the boundary scan counted; a parse that disagrees is an error rather
        than a silently lost or invented row.
    encoding : str, default "utf-8"

    Returns
    -------
    pandas.DataFrame
        One row per record, all columns as strings, plus :data:`PARSE_ERROR` and
        :data:`UNDECODABLE`, indexed by record number.
    """
    names = [c or "Unnamed: 0" for c in columns]
    if not block.strip():
        frame = _empty_frame(names, first_row)
    else:
        options = {"dtype": "object", "keep_default_na": False, "na_values": [""],
                   "encoding": encoding, "encoding_errors": "replace", "names": names,
                   "header": 0 if has_header else None, "index_col": False}
        try:
            with warnings.catch_warnings():
                # A line with extra fields is only a warning to the fast parser (the
                # extra fields are dropped): make it an error so the line is set aside.
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(io.BytesIO(block), **options)
            frame[PARSE_ERROR] = ""
        except (pd.errors.ParserError, pd.errors.ParserWarning):
            frame = _slow_parse(block, names, has_header, encoding)
        try:
            block.decode(encoding)
            frame[UNDECODABLE] = False
        except UnicodeDecodeError:
            text = frame[names].astype("object")
            frame[UNDECODABLE] = np.column_stack(
                [text[c].str.contains("\ufffd", regex=False).fillna(False).to_numpy(bool)
                 for c in names]).any(axis=1)
        frame.index = pd.RangeIndex(first_row, first_row + len(frame))
    if expected_rows is not None and len(frame) != expected_rows:
        raise RuntimeError(f"records {first_row}-{first_row + expected_rows - 1}: the parser "
                           f"found {len(frame)} rows where the record scan found "
                           f"{expected_rows}; please report this file")
    return frame


def check_undecodable(path: str | Path, encoding: str, bad: int, rows: int,
                      shown: str | Path | None = None) -> None:
    """Warn about rows with undecodable bytes, and fail past :data:`MAX_UNDECODABLE_SHARE`.

    Parameters
    ----------
    path : str or pathlib.Path
        The file as read (after :func:`pipeline.textfiles.prepare_input`).
    encoding : str
    bad : int
        Rows that held invalid bytes.
    rows : int
        Rows read.
    shown : str or pathlib.Path, optional
        The name to give the file in messages (the input as the user gave it).

    Raises
    ------
    EncodingProblem
    """
    if bad == 0:
        return
    share = bad / max(rows, 1)
    what = (f"{shown or path}: {bad:,} of {rows:,} rows ({share:.1%}) hold bytes that are not "
            f"valid {encoding}")
    if share > MAX_UNDECODABLE_SHARE:
        raise EncodingProblem(f"{what}, more than the {MAX_UNDECODABLE_SHARE:.0%} allowed: "
                              f"{undecodable_hint(path, encoding)}")
    log.warning("%s; they are kept with U+FFFD in place of those bytes", what)
