"""Read an input CSV as partitions of strings, keeping every line accounted for.

The file is cut into ``blocksize`` byte blocks at line ends (so partitions,
not files, set the parallelism) and each block is parsed by a worker.  A line
with more fields than the header is not dropped: it becomes a row whose
``_parse_error`` says so, and the cleaner sets it aside as a reject.  Bytes
that are not UTF-8 are replaced (U+FFFD) rather than failing the file.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import dask
import pandas as pd
from dask.bytes import read_bytes
from dask.delayed import Delayed
from dask.utils import parse_bytes

from pipeline.schema import SchemaError, check_columns

#: Default partition size: big enough to amortise task overhead, small enough for memory.
DEFAULT_BLOCKSIZE = "32MB"

#: Smallest block a file is cut into to give every worker work.
MIN_BLOCKSIZE = 256 * 1024

#: Column set on rows that could not be parsed; empty on good rows.
PARSE_ERROR = "_parse_error"

_READ_OPTIONS = {
    "dtype": "object",
    "keep_default_na": False,
    "na_values": [""],
    "encoding": "utf-8",
    "encoding_errors": "replace",
}


def read_header(path: str | Path) -> list[str]:
    """Column names of a CSV, with a clear error when it is missing, empty or not a CSV.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    list of str

    Raises
    ------
    SchemaError
        When the file is absent, empty, or has no parsable header.
    """
    p = Path(path)
    if not p.is_file():
        raise SchemaError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise SchemaError(f"{p}: the file is empty")
    try:
        header = pd.read_csv(p, nrows=0, encoding="utf-8", encoding_errors="replace")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SchemaError(f"{p}: not a readable CSV ({err})") from err
    return ["" if str(c).startswith("Unnamed: 0") else str(c) for c in header.columns]


def parse_block(block: bytes, columns: list[str], has_header: bool) -> pd.DataFrame:
    """Parse one block of CSV lines into strings, marking lines with too many fields.

    Parameters
    ----------
    block : bytes
        Whole lines of the file.
    columns : list of str
        The file's header.
    has_header : bool
        Whether the block starts with the header line (the first block).

    Returns
    -------
    pandas.DataFrame
        One row per record, all columns as strings, plus :data:`PARSE_ERROR`.
    """
    names = [c or "Unnamed: 0" for c in columns]
    options = {**_READ_OPTIONS, "names": names, "header": 0 if has_header else None,
               "index_col": False}
    if not block.strip():
        return pd.DataFrame({**{n: pd.Series(dtype="object") for n in names},
                             PARSE_ERROR: pd.Series(dtype="object")})
    try:
        with warnings.catch_warnings():
            # A line with extra fields is only a warning to the fast parser (the
            # extra fields are dropped): make it an error so the line is set aside.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.BytesIO(block), **options)
        frame[PARSE_ERROR] = ""
        return frame
    except (pd.errors.ParserError, pd.errors.ParserWarning):
        pass
    # Slow path, only for blocks with a malformed line: the csv module gives every
    # record as it is, and a record of the wrong width is kept as a row saying so.
    text = block.decode("utf-8", errors="replace")
    records = csv.reader(io.StringIO(text, newline=""))
    if has_header:
        next(records, None)
    rows, errors = [], []
    for record in records:
        if not record:
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


def effective_blocksize(path: str | Path, blocksize: str | int, workers: int) -> int:
    """Bytes per block so that the blocks share out evenly over ``workers``.

    The block count is at least two a worker (a small file read in one block
    would keep all but one worker idle) and a multiple of the worker count:
    with 13 equal blocks on 2 workers, one worker does 7 while the other waits
    for it.  Blocks are never cut below :data:`MIN_BLOCKSIZE`.

    Parameters
    ----------
    path : str or pathlib.Path
    blocksize : str or int
        The largest block, e.g. ``"32MB"``.
    workers : int
        Worker processes that will parse the blocks.

    Returns
    -------
    int
        Bytes per block.
    """
    limit = parse_bytes(blocksize) if isinstance(blocksize, str) else int(blocksize)
    size = Path(path).stat().st_size
    workers = max(workers, 1)
    blocks = max(-(-size // max(limit, 1)), 2 * workers)
    blocks = -(-blocks // workers) * workers
    smallest = min(limit, MIN_BLOCKSIZE)
    if size // blocks < smallest:
        # Too small a file for that many blocks: as many as the floor allows, still a
        # multiple of the workers where the file is big enough for one each.
        blocks = max(size // smallest // workers * workers, min(size // smallest, workers), 1)
    # Dask cuts ``size // blocksize`` blocks (widening them to cover the rest), so the
    # floor gives exactly ``blocks``.
    return max(size // blocks, 1)


def read_csv_blocks(
    path: str | Path,
    required: tuple[str, ...],
    blocksize: str | int = DEFAULT_BLOCKSIZE,
    workers: int = 1,
) -> list[Delayed]:
    """Lazy partitions of a CSV, every column as a string.

    Parameters
    ----------
    path : str or pathlib.Path
        Input file.
    required : tuple of str
        Columns the caller needs; checked before any partition is read.
    blocksize : str or int
        Bytes per partition at most.
    workers : int, default 1
        Workers that will parse the blocks: the block count is fitted to them
        (see :func:`effective_blocksize`).

    Returns
    -------
    list of dask.delayed.Delayed
        One pandas DataFrame each (see :func:`parse_block`).

    Raises
    ------
    SchemaError
        Naming the missing column(s) or why the file cannot be read.
    """
    columns = read_header(path)
    check_columns(columns, required, str(path))
    size = effective_blocksize(path, blocksize, workers)
    _, blocks = read_bytes(str(path), delimiter=b"\n", blocksize=size, sample=False)
    return [dask.delayed(parse_block)(block, columns, i == 0)
            for i, block in enumerate(blocks[0])]
