"""Reading a data set's split directories file by file, and thinning them evenly.

make-dataset writes each split as ``part.NNNNN.parquet`` files, one per CSV
block.  The steps read them one partition per file, in file-name order, so
that per-file records (``train_stats.json``) line up with the partitions and
"every n-th row of each file" names the same rows in every step.
"""

from __future__ import annotations

import math
from pathlib import Path

import dask
import pandas as pd


def split_files(split_dir: Path) -> list[Path]:
    """The Parquet files of a split directory, in file-name order.

    Parameters
    ----------
    split_dir : pathlib.Path

    Returns
    -------
    list of pathlib.Path
    """
    return sorted(Path(split_dir).glob("*.parquet"))


def split_parts(split_dir: Path) -> tuple[list[str], list]:
    """The Parquet files of a split directory, and a delayed read of each.

    Parameters
    ----------
    split_dir : pathlib.Path

    Returns
    -------
    names : list of str
    parts : list of dask.delayed.Delayed
        Each yields a pandas.DataFrame.
    """
    files = split_files(split_dir)
    return [f.name for f in files], [dask.delayed(pd.read_parquet)(str(f)) for f in files]


def first_rows(split_dir: Path, n: int) -> pd.DataFrame:
    """The first ``n`` rows of a split, reading its files in order only as far as needed.

    On big data the first file is enough; reading every file would cost a pass
    over the split on the client.

    Parameters
    ----------
    split_dir : pathlib.Path
    n : int

    Returns
    -------
    pandas.DataFrame
        At most ``n`` rows, numbered from 0.
    """
    pieces, found = [], 0
    for f in split_files(split_dir):
        pieces.append(pd.read_parquet(f))
        found += len(pieces[-1])
        if found >= n:
            break
    if not pieces:
        return pd.DataFrame()
    # Files each number their rows from 0: renumber, so a row has one label.
    return pd.concat(pieces, ignore_index=True).head(n)


def every_nth(rows: int, at_most: int) -> int:
    """Step that keeps at most about ``at_most`` of ``rows`` rows, evenly spread.

    Parameters
    ----------
    rows : int
        Rows of the split.
    at_most : int
        Rows wanted.

    Returns
    -------
    int
        1 (every row) up to ``at_most`` rows; else ``ceil(rows / at_most)``.
    """
    return max(1, math.ceil(rows / at_most))
