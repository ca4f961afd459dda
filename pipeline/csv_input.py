"""Open an input CSV as a Dask DataFrame of strings, after checking it can be read at all."""

from __future__ import annotations

from pathlib import Path

import dask.dataframe as dd
import pandas as pd

from pipeline.schema import SchemaError, check_columns

#: Default partition size: big enough to amortise task overhead, small enough for memory.
DEFAULT_BLOCKSIZE = "32MB"


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
    return [str(c) for c in header.columns]


def read_csv_strings(
    path: str | Path, required: tuple[str, ...], blocksize: str | int = DEFAULT_BLOCKSIZE
) -> dd.DataFrame:
    """Read a CSV lazily in ``blocksize`` partitions, every column as a string.

    Parameters
    ----------
    path : str or pathlib.Path
        Input file.
    required : tuple of str
        Columns the caller needs; checked before any partition is read.
    blocksize : str or int
        Bytes per partition; the partitions, not the file count, set the parallelism.

    Returns
    -------
    dask.dataframe.DataFrame

    Raises
    ------
    SchemaError
        Naming the missing column(s) or why the file cannot be read.
    """
    columns = read_header(path)
    check_columns(columns, required, str(path))
    # Strings everywhere: typing is the cleaner's job, so a bad value becomes a
    # counted reject instead of a parser crash or a silently inferred type.
    return dd.read_csv(
        str(path),
        blocksize=blocksize,
        dtype="object",
        keep_default_na=False,
        na_values=[""],
        encoding="utf-8",
        encoding_errors="replace",
    )
