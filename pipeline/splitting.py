"""Where a review goes: its split, its cross-fitting fold and its cross-validation fold.

Everything follows from one number per row, the *bucket* (0-99), a hash of
the normalised description: the same review text always lands in the same
bucket, whatever file or partition it comes in, so duplicates never straddle
splits or folds, and a row's place never changes as the data grows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.hashing import squeezed_blake2b
from pipeline.params import CV_VALID_EVERY, SPLIT_EDGES

#: Names of the split directories of a data set.
SPLITS: tuple[str, ...] = ("train", "valid", "test")


def split_bucket(description: pd.Series) -> np.ndarray:
    """A bucket 0-99 per row from a hash of its normalised description.

    The hash is BLAKE2b with an 8-byte digest of the description lower-cased, its
    whitespace runs made one space and its ends stripped, as UTF-8; read as a
    big-endian integer, modulo 100.  :func:`pipeline.hashing.squeezed_blake2b`
    computes it for a whole partition in compiled code.

    Parameters
    ----------
    description : pandas.Series of str

    Returns
    -------
    numpy.ndarray of int64
    """
    texts = [t if type(t) is str else str(t) for t in description.fillna("").to_numpy()]
    return (squeezed_blake2b(texts) % np.uint64(100)).astype(np.int64)


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
