"""Read an input CSV on the cluster as lazy partitions of whole records.

The file is cut into byte blocks sized to the cluster's workers
(:func:`effective_blocksize`), and every block is cut again at its first
record boundary, found by :mod:`pipeline.csv_records` from one scan of every
block on the workers (a quoted field may hold line breaks, so not every
newline ends a record).  Each range of whole records is then parsed by a
worker (:func:`pipeline.csv_input.parse_block`).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dask
from dask.delayed import Delayed
from dask.utils import parse_bytes
from distributed import Client

from pipeline.csv_input import (
    DEFAULT_BLOCKSIZE,
    DEFAULT_ENCODING,
    check_header,
    file_size,
    parse_block,
    read_header,
    read_range,
    scan_range,
)
from pipeline.csv_records import chain_blocks
from pipeline.distributed.cluster import compute_tracked, worker_count
from pipeline.progress import StepProgress
from pipeline.schema import SchemaError

#: Smallest block a file is cut into to give every worker work.
MIN_BLOCKSIZE = 256 * 1024


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
        A plain-text input (see :func:`pipeline.textfiles.prepare_input`).
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
        One pandas DataFrame each (see :func:`pipeline.csv_input.parse_block`), rows numbered
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
    scans = [dask.delayed(scan_range)(path, a, b, dask_key_name=f"scan-csv-block-{token}-{i}")
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
        data = dask.delayed(read_range)(path, cut.start, cut.stop,
                                        dask_key_name=f"read-csv-range-{token}-{i}")
        parts.append(dask.delayed(parse_block)(data, columns, i == 0, first_row, rows, encoding,
                                               dask_key_name=f"parse-csv-block-{token}-{i}"))
    return parts
