"""Where a review goes: its split, its cross-fitting fold and its cross-validation fold.

Everything follows from one number per row, the *bucket* (0-99), a hash of
the normalised description: the same review text always lands in the same
bucket, whatever file or partition it comes in, so duplicates never straddle
splits or folds, and a row's place never changes as the data grows.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from pipeline.params import CV_VALID_EVERY, SPLIT_EDGES

#: Names of the split directories of a data set.
SPLITS: tuple[str, ...] = ("train", "valid", "test")


def split_bucket(description: pd.Series) -> np.ndarray:
    """A bucket 0-99 per row from a hash of its normalised description.

    Parameters
    ----------
    description : pandas.Series of str

    Returns
    -------
    numpy.ndarray of int64
    """
    out = np.empty(len(description), dtype=np.int64)
    for i, text in enumerate(description.fillna("").to_numpy()):
        key = " ".join(str(text).lower().split()).encode("utf-8", "surrogatepass")
        out[i] = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % 100
    return out


def split_of(description: pd.Series) -> pd.Series:
    """Name of the split (see :data:`SPLITS`) of each row.

    Parameters
    ----------
    description : pandas.Series of str

    Returns
    -------
    pandas.Series of str
        On ``description``'s index.
    """
    bucket = split_bucket(description)
    names = pd.Series("test", index=description.index, dtype="object")
    names[bucket < SPLIT_EDGES["valid"]] = "valid"
    names[bucket < SPLIT_EDGES["train"]] = "train"
    return names


def fold_of(description: pd.Series, folds: int) -> np.ndarray:
    """Cross-fitting fold (0 to ``folds - 1``) of each training row.

    Parameters
    ----------
    description : pandas.Series of str
    folds : int

    Returns
    -------
    numpy.ndarray of int8
    """
    return (split_bucket(description) % folds).astype(np.int8)


def cv_folds(description: pd.Series, folds: int) -> tuple[np.ndarray, np.ndarray]:
    """Cross-validation fold of each row, and whether it validates when not tested.

    Parameters
    ----------
    description : pandas.Series of str
    folds : int

    Returns
    -------
    fold : numpy.ndarray of int64
        0 to ``folds - 1``; contiguous ranges of buckets.
    validates : numpy.ndarray of bool
        Rows that are validation rows of the folds they are not tested in.
    """
    bucket = split_bucket(description)
    return bucket * folds // 100, bucket % CV_VALID_EVERY == 0
