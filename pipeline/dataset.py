"""A data set directory, as make-dataset writes it and every later step reads it.

One directory per split (``train/``, ``valid/``, ``test/``, and ``rejects/``)
of ``part.NNNNN.parquet`` files, one per CSV block, with ``stats.json`` (rows
per split), ``train_stats.json`` (per-file training statistics) and the
``_SUCCESS`` flag that makes it complete.  The steps read a split file by
file, in file-name order, so per-file records line up with the files and
"every n-th row of each file" names the same rows in every step.  Only the
files the flag lists are read: on an object store they sit under the attempt
it names (see :mod:`pipeline.atomic`).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.atomic import content_dir, read_success
from pipeline.storage import as_path

if TYPE_CHECKING:
    from pipeline.features import PartitionStats

#: Rows per split, the rows set aside and the text encoding read.
STATS_FILE = "stats.json"

#: :func:`pipeline.features.partition_stats` of every training file, by file name.
TRAIN_STATS_FILE = "train_stats.json"


def every_nth(rows: int, at_most: int) -> int:
    """Step that keeps at most about ``at_most`` of ``rows`` rows, evenly spread.

    Parameters
    ----------
    rows : int
    at_most : int

    Returns
    -------
    int
        1 (every row) up to ``at_most`` rows; else ``ceil(rows / at_most)``.
    """
    return max(1, math.ceil(rows / at_most))


def read_part(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """One Parquet file of a split, as the steps and their worker tasks read it.

    Parameters
    ----------
    path : str or path-like
        A file of :meth:`Dataset.files` (a path or a URL).
    columns : list of str, optional
        Only these columns (default: all).

    Returns
    -------
    pandas.DataFrame
        The file's rows, numbered from 0.
    """
    return pd.read_parquet(path, columns=columns)


class Dataset:
    """A complete make-dataset output.

    Parameters
    ----------
    path : str or path-like
        A local directory or an object-store URL.

    Attributes
    ----------
    path : pathlib.Path or upath.UPath
        The data set as given.
    root : pathlib.Path or upath.UPath
        Where its files are (``path`` itself, or the attempt its flag names).

    Raises
    ------
    FileNotFoundError
        When the directory or its ``_SUCCESS`` flag is missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = as_path(path)
        # The flag is read once: on an object store every read is a request.
        record = read_success(self.path)
        if record is None:
            raise FileNotFoundError(f"{self.path} is not a complete data set (no _SUCCESS "
                                    "flag); run make-dataset first")
        self.root = content_dir(self.path, record)
        self._listed: list[str] = record.get("files", [])
        self._counts: dict | None = None

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r})"

    def files(self, split: str) -> list[str]:
        """The split's Parquet files the flag lists, as paths or URLs.

        In file-name order: the flag lists the files sorted.
        """
        return [str(self.root / f) for f in self._listed
                if f.startswith(f"{split}/") and f.endswith(".parquet")]

    def counts(self) -> dict:
        """Rows per split (and ``input``, ``rejected``, ``encoding``), from ``stats.json``."""
        if self._counts is None:
            self._counts = json.loads((self.root / STATS_FILE).read_text())
        return dict(self._counts)

    def rows(self, split: str) -> int:
        """Rows of one split, as make-dataset counted them."""
        return int(self.counts().get(split, 0))

    def step(self, split: str, at_most: int) -> int:
        """Read every n-th row of each file of ``split`` to keep about ``at_most`` rows."""
        return every_nth(self.rows(split), at_most)

    def train_stats(self) -> dict[str, PartitionStats] | None:
        """The per-file training statistics make-dataset recorded, when usable.

        Returns
        -------
        dict or None
            File name to its :class:`pipeline.features.PartitionStats`; None when the file is
            absent or was made with other numeric features.
        """
        from pipeline.features import PartitionStats

        path = self.root / TRAIN_STATS_FILE
        if not path.is_file():
            return None
        stats = {name: PartitionStats.from_json(record)
                 for name, record in json.loads(path.read_text())["partitions"].items()}
        return None if any(v is None for v in stats.values()) else stats

    def read(self, split: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A whole split in memory, rows numbered from 0 (for small data sets only).

        Parameters
        ----------
        split : str
        columns : list of str, optional

        Returns
        -------
        pandas.DataFrame
        """
        parts = [read_part(f, columns) for f in self.files(split)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)

    def first_rows(self, split: str, n: int) -> pd.DataFrame:
        """The first ``n`` rows of a split, reading its files only as far as needed.

        Parameters
        ----------
        split : str
        n : int

        Returns
        -------
        pandas.DataFrame
            At most ``n`` rows, numbered from 0.
        """
        pieces, found = [], 0
        for f in self.files(split):
            pieces.append(read_part(f))
            found += len(pieces[-1])
            if found >= n:
                break
        if not pieces:
            return pd.DataFrame()
        return pd.concat(pieces, ignore_index=True).head(n)

    def fingerprint(self) -> str:
        """A short hash of the data set's file names and sizes: equal for the same data set.

        Returns
        -------
        str
            16 hex digits.
        """
        h = hashlib.sha256()
        for f in self._listed:
            h.update(f"{f}:{(self.root / f).stat().st_size}\n".encode())
        return h.hexdigest()[:16]
