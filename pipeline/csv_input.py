"""Read an input CSV as partitions of strings, keeping every record accounted for.

The file is cut into ``blocksize`` byte blocks, and every block is cut again at
its first record boundary, found by :mod:`pipeline.csv_records` (a quoted field
may hold line breaks, so not every newline ends a record).  Each range of whole
records is parsed by a worker.  Every record gets its number in the file (0 for
the first after the header), which becomes the row's index, so ids are unique
whatever the file holds.  A record with more fields than the header is not
dropped: it becomes a row whose ``_parse_error`` says so, and the cleaner sets
it aside as a reject.

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
import uuid
import warnings
from pathlib import Path

import dask
import fsspec
import numpy as np
import pandas as pd
from dask.delayed import Delayed
from dask.utils import parse_bytes
from distributed import Client

from pipeline.cluster import compute_tracked, worker_count
from pipeline.csv_records import chain_blocks, scan_block
from pipeline.params import BLOCKSIZE
from pipeline.progress import StepProgress
from pipeline.schema import SchemaError, check_columns
from pipeline.textfiles import undecodable_hint

log = logging.getLogger(__name__)

#: Default partition size (see :data:`pipeline.params.BLOCKSIZE`).
DEFAULT_BLOCKSIZE = BLOCKSIZE

#: Smallest block a file is cut into to give every worker work.
MIN_BLOCKSIZE = 256 * 1024

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
        A plain-text file (see :func:`prepare_input`).
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


def _read_range(path: str, start: int, stop: int) -> bytes:
    if stop <= start:
        return b""
    with fsspec.open(path, "rb") as fh:
        fh.seek(start)
        return fh.read(stop - start)


def _scan_range(path: str, start: int, stop: int) -> np.ndarray:
    return scan_block(_read_range(path, start, stop))


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


def effective_blocksize(size: int, blocksize: str | int, workers: int) -> int:
    """Bytes per block so that the blocks share out evenly over ``workers``.

    The block count is at least two a worker (a small file read in one block
    would keep all but one worker idle) and a multiple of the worker count:
    with 13 equal blocks on 2 workers, one worker does 7 while the other waits
    for it.  Blocks are never cut below :data:`MIN_BLOCKSIZE`.

    Parameters
    ----------
    size : int
        Bytes in the file.
    blocksize : str or int
        The largest block, e.g. ``"32MB"``.
    workers : int
        Worker processes that will parse the blocks.

    Returns
    -------
    int
        Bytes per block; the file has ``max(1, size // result)`` blocks, the last
        one taking the remainder.
    """
    limit = parse_bytes(blocksize) if isinstance(blocksize, str) else int(blocksize)
    workers = max(workers, 1)
    blocks = max(-(-size // max(limit, 1)), 2 * workers)
    blocks = -(-blocks // workers) * workers
    smallest = min(limit, MIN_BLOCKSIZE)
    if size // blocks < smallest:
        # Too small a file for that many blocks: as many as the floor allows, still a
        # multiple of the workers where the file is big enough for one each.
        blocks = max(size // smallest // workers * workers, min(size // smallest, workers), 1)
    return max(size // blocks, 1)


def read_csv_blocks(
    client: Client,
    path: str | Path,
    required: tuple[str, ...],
    blocksize: str | int = DEFAULT_BLOCKSIZE,
    workers: int | None = None,
    encoding: str = DEFAULT_ENCODING,
    progress: StepProgress | None = None,
) -> list[Delayed]:
    """Lazy partitions of whole records of a CSV, every column as a string.

    The record boundaries are found first, by one scan of every block on the
    client's cluster; the partitions are then parsed lazily.

    Parameters
    ----------
    client : distributed.Client
    path : str or pathlib.Path
        A plain-text input (see :func:`prepare_input`).
    required : tuple of str
        Columns the caller needs; checked before any partition is read.
    blocksize : str or int
        Bytes per partition at most (a partition can be longer by one record).
    workers : int, optional
        Workers that will parse the blocks (default: the cluster's now): the block
        count is fitted to them (see :func:`effective_blocksize`).
    encoding : str, default "utf-8"
        The file's text encoding (ASCII-compatible).
    progress : StepProgress, optional
        Told of each block scanned (phase ``"scanning"``).

    Returns
    -------
    list of dask.delayed.Delayed
        One pandas DataFrame each (see :func:`parse_block`), rows numbered
        consecutively through the file.

    Raises
    ------
    SchemaError
        Naming the missing column(s), why the file cannot be read, or where a quote
        is never closed.
    """
    path = str(path)
    columns = read_header(path, encoding)
    check_header(columns, required, path)
    size = file_size(path)
    step = effective_blocksize(size, blocksize, workers or worker_count(client))
    offsets = list(range(0, size, step))[: max(1, size // step)]
    stops = [*offsets[1:], size]
    token = uuid.uuid4().hex[:8]
    scans = [dask.delayed(_scan_range)(path, a, b, dask_key_name=f"scan-csv-block-{token}-{i}")
             for i, (a, b) in enumerate(zip(offsets, stops, strict=True))]
    summaries = compute_tracked(client, scans, progress, "scanning", "CSV blocks")
    try:
        cuts = chain_blocks(list(summaries), offsets, size)
    except ValueError as err:
        raise SchemaError(f"{path}: {err}") from err
    parts = []
    for i, cut in enumerate(cuts):
        # Record 0 of the file is the header: data rows are numbered from the next.
        first_row, rows = (0, cut.records - 1) if i == 0 else (cut.first_record - 1,
                                                                 cut.records)
        data = dask.delayed(_read_range)(path, cut.start, cut.stop,
                                         dask_key_name=f"read-csv-range-{token}-{i}")
        parts.append(dask.delayed(parse_block)(data, columns, i == 0, first_row, rows, encoding,
                                               dask_key_name=f"parse-csv-block-{token}-{i}"))
    return parts


def check_undecodable(path: str | Path, encoding: str, bad: int, rows: int,
                      shown: str | Path | None = None) -> None:
    """Warn about rows with undecodable bytes, and fail past :data:`MAX_UNDECODABLE_SHARE`.

    Parameters
    ----------
    path : str or pathlib.Path
        The file as read (after :func:`prepare_input`).
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
