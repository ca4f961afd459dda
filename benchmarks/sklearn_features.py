"""The feature matrix built the scikit-learn way: the reference the compiled hashing equals.

:meth:`pipeline.features.FeatureSpec.transform` hashes with numba kernels
(:mod:`pipeline.hashing`).  This module builds the same matrix from Python token
lists and scikit-learn's ``HashingVectorizer``/``FeatureHasher``, as the pipeline did
before; the tests assert the two are identical (indices, data bits, shape) and the
features micro-benchmark times both, group by group.  Nothing in the pipeline calls it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import HashingVectorizer

from pipeline.features import (
    NUMERIC_FEATURES,
    FeatureSpec,
    bin_tokens,
    category_tokens,
    description_words,
    numeric_frame,
)


@functools.lru_cache(maxsize=500_000)
def _word_4grams(word: str) -> tuple[str, ...]:
    padded = f" {word} "
    if len(padded) <= 4:
        return (padded,)
    return tuple(padded[i : i + 4] for i in range(len(padded) - 3))


def char_4grams(text: str) -> list[str]:
    """Character 4-grams within words, padded by a space: scikit-learn's ``char_wb``.

    The same tokens as ``analyzer="char_wb", ngram_range=(4, 4)``, each distinct word
    cut once and cached.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str
    """
    grams: list[str] = []
    for word in text.lower().split():
        grams.extend(_word_4grams(word))
    return grams


def word_hasher(n_features: int, analyzer: str | Callable = "word") -> HashingVectorizer:
    """The words+bigrams (or ``analyzer``) vectorizer of one text block."""
    return HashingVectorizer(n_features=n_features, analyzer=analyzer, ngram_range=(1, 2),
                             alternate_sign=False, norm="l2", dtype=np.float32)


def token_hasher(n_features: int) -> FeatureHasher:
    """The vectorizer of one block of token lists."""
    return FeatureHasher(n_features=n_features, input_type="string", alternate_sign=False,
                         dtype=np.float32)


def _no_laps(name: str) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def sklearn_transform(spec: FeatureSpec, df: pd.DataFrame,
                      lap: Callable[[str], contextlib.AbstractContextManager] = _no_laps
                      ) -> sp.csr_matrix:
    """``spec.transform(df)`` built with scikit-learn, one (optionally timed) step a group.

    Parameters
    ----------
    spec : pipeline.features.FeatureSpec
    df : pandas.DataFrame
        Cleaned rows.
    lap : callable, optional
        ``lap(name)`` gives a context manager around each feature group's work (the
        micro-benchmark's timer); none by default.

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape ``(len(df), spec.n_features)``, float32.
    """
    with lap("description prep"):
        descriptions = df["description"].fillna("").to_numpy()
    with lap("word count"):
        words = description_words(df)
    with lap("words+bigrams"):
        text = word_hasher(spec.text_features).transform(descriptions)
    with lap("char 4-grams"):
        chars = word_hasher(spec.char_features, char_4grams).transform(descriptions)
        chars = chars * spec.char_weight
    with lap("title"):
        title = word_hasher(spec.title_features).transform(df["title"].fillna("").to_numpy())
        title = title * spec.title_weight
    with lap("categories"):
        categories = token_hasher(spec.category_features).transform(category_tokens(df))
        categories = categories * spec.category_weight
    with lap("bins"):
        bins = token_hasher(spec.bin_features).transform(bin_tokens(df, words))
        bins = bins * spec.bin_weight
    with lap("numeric"):
        numeric = numeric_frame(df, words)[list(NUMERIC_FEATURES)].to_numpy(dtype="float64")
        mean = spec.numeric_mean_
        numeric = np.where(np.isnan(numeric), mean, numeric)
        numeric = (numeric - mean) / spec.numeric_std_ * spec.numeric_weight
        numeric = sp.csr_matrix(numeric.astype(np.float32))
    with lap("hstack"):
        return sp.hstack([text, chars, title, categories, bins, numeric], format="csr",
                         dtype=np.float32)
