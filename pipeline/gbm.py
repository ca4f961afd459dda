"""The stacked model: LightGBM over dense features and a text score.

The text score of a training row comes from a linear model fitted without
that row's fold (cross-fitting, :mod:`pipeline.sgd`), so the GBM learns how
far to trust the text from honest, out-of-fold scores.  Validation and later
data get the score of the linear model fitted on the whole training split.
This module only sees their dense frames, made where the rows are hashed
(:mod:`pipeline.distributed.fit`).

Its cost is bounded as the rows grow (see :func:`boosting_plan`): fewer trees
with a larger learning rate on more rows (as accurate, for less CPU), the
rows above :data:`pipeline.params.MAX_ROWS` left out (evenly spread rows are
kept), and each worker's LightGBM machine on that worker's threads.  The
number of trees kept is the minimum of the validation curve (LightGBM's Dask
interface has no early stopping, so the whole curve is recorded).  The final
prediction blends the GBM's with the linear model's, in the proportion that
scores best on the validation split.  This module holds the plan and the
choices; :mod:`pipeline.distributed.gbm` fits on the cluster.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline.gbm_features import GBM_FEATURES
from pipeline.model import blend
from pipeline.params import (
    GBM_PARAMS,
    MAX_ROWS,
    MIN_TREES,
    SMALL_ROWS,
    TEXT_WEIGHTS,
    TREE_POWER,
)

LABEL = "_label"


def gbm_step(rows: int) -> int:
    """Every how many rows of each training block the GBM learns from.

    Parameters
    ----------
    rows : int
        Training rows in all.

    Returns
    -------
    int
        The least step that keeps at most :data:`pipeline.params.MAX_ROWS` rows.
    """
    return max(1, math.ceil(rows / MAX_ROWS))


def thin(frame: pd.DataFrame, step: int) -> pd.DataFrame:
    """Every ``step``-th row of a frame, with just the GBM's columns."""
    return frame.iloc[::step][[*GBM_FEATURES, LABEL]]


def boosting_plan(rows: int) -> dict[str, float]:
    """Trees and learning rate for ``rows`` training rows.

    The cost of boosting is rows times trees.  Up to :data:`SMALL_ROWS` rows the
    tuned trees and learning rate of :data:`GBM_PARAMS`; above, the trees fall as
    ``rows ** -TREE_POWER`` (not below :data:`MIN_TREES`) and the learning rate
    rises so that their product stays the same.  On large synthetic data this
    validates as well as keeping every tree or letting them fall with the square
    root, for less CPU.

    Parameters
    ----------
    rows : int

    Returns
    -------
    dict
        ``n_estimators`` and ``learning_rate``.
    """
    trees = GBM_PARAMS["n_estimators"]
    if rows > SMALL_ROWS:
        trees = max(MIN_TREES, round(trees * (SMALL_ROWS / rows) ** TREE_POWER))
    rate = GBM_PARAMS["learning_rate"] * GBM_PARAMS["n_estimators"] / trees
    return {"n_estimators": int(trees), "learning_rate": round(rate, 4)}


def choose_text_weight(gbm: np.ndarray, text: np.ndarray, actual: np.ndarray) -> float:
    """The share of the linear model in the blend that gives the lowest MAE.

    Parameters
    ----------
    gbm, text : numpy.ndarray
        Validation predictions of LightGBM and of the linear model.
    actual : numpy.ndarray
        Validation points.

    Returns
    -------
    float
        One of :data:`TEXT_WEIGHTS`; the smaller on ties.
    """
    errors = [np.mean(np.abs(actual - blend(gbm, text, w))) for w in TEXT_WEIGHTS]
    return float(TEXT_WEIGHTS[int(np.argmin(errors))])
