"""The linear models: SGD chains over hashed training blocks, in memory or streamed.

Each training partition is hashed on a worker into a :class:`TrainBlock`.
Several SGD models learn in the same passes over those blocks: the model of
the whole split and, for the stacked model, one per cross-fitting fold, each
updated only with the rows outside its fold (a row mask, not a second
hashing).  The models travel from block to block in chains, one chain per
worker, each visiting the blocks of one worker before the next (so a chain
moves once or twice a pass, not at every block), in a new shuffled order each
pass.  This is what dask-ml's ``Incremental`` does for one estimator, for
several at once.

When the hashed blocks fit in the workers' memory (:func:`fits_in_memory`)
they are hashed once and kept for every pass, and the GBM's rows are scored
from them.  When they do not, the rows are streamed: the blocks are hashed in
windows (:func:`stream_windows`), at most two in memory at once
(:class:`WindowTracker`), each visited by every chain as many times as the
in-memory schedule would pass over it, then freed: one pass of hashing.  The
GBM's rows are then read and hashed again (:func:`gbm_rows`).

This module holds what runs on a block; :mod:`pipeline.distributed.sgd`
drives the passes on the cluster.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import SGDRegressor

from pipeline.features import FeatureSpec
from pipeline.gbm_features import gbm_frame
from pipeline.model import SgdModel, clip_points
from pipeline.params import (
    HASHED_MEMORY_SHARE,
    HASHED_ROW_BYTES,
    LARGE_ROWS,
    N_FOLDS,
    N_FOLDS_LARGE,
    SGD_PARAMS,
)
from pipeline.schema import TARGET
from pipeline.splitting import fold_of

#: The model fitted on every training row (the others leave one fold out).
FULL = -1


def n_folds(rows: int) -> int:
    """Cross-fitting folds for ``rows`` training rows.

    Parameters
    ----------
    rows : int

    Returns
    -------
    int
        :data:`N_FOLDS`, or :data:`N_FOLDS_LARGE` from :data:`LARGE_ROWS` rows on.
    """
    return N_FOLDS_LARGE if rows >= LARGE_ROWS else N_FOLDS


@dataclasses.dataclass
class TrainBlock:
    """One training partition, hashed once, as the models and the GBM need it.

    Attributes
    ----------
    x : scipy.sparse.csr_matrix
        Hashed features.
    y : numpy.ndarray
        Points minus the training mean.
    fold : numpy.ndarray of int8
        Cross-fitting fold of each row.
    dense : pandas.DataFrame or None
        The GBM's dense features (its ``text_score`` still to be filled in), when a
        GBM is to be fitted.
    """

    x: sp.csr_matrix
    y: np.ndarray
    fold: np.ndarray
    dense: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.y)


def hash_block(df: pd.DataFrame, spec: FeatureSpec, y_mean: float, dense: bool,
               folds: int = N_FOLDS) -> TrainBlock:
    """Hash a cleaned partition with its targets and folds (see :class:`TrainBlock`).

    Parameters
    ----------
    df : pandas.DataFrame
        Cleaned rows with ``points``.
    spec : FeatureSpec
    y_mean : float
        Training mean of the points, subtracted from the targets.
    dense : bool
        Whether to build the GBM's dense features too.
    folds : int, default :data:`N_FOLDS`
        Cross-fitting folds.

    Returns
    -------
    TrainBlock
    """
    y = df[TARGET].to_numpy(dtype="float64") - y_mean
    frame = gbm_frame(df, np.zeros(len(df))) if dense else None
    return TrainBlock(x=spec.transform(df), y=y, fold=fold_of(df["description"], folds),
                      dense=frame)


def new_models(folds: list[int], seed: int) -> dict[int, SGDRegressor]:
    """Unfitted SGD models, one per fold left out (:data:`FULL`: none left out).

    Parameters
    ----------
    folds : list of int
    seed : int
        Seeds SGD's shuffling within blocks; each model gets its own.

    Returns
    -------
    dict of int to sklearn.linear_model.SGDRegressor
    """
    return {k: SGDRegressor(random_state=seed + 1 + k, **SGD_PARAMS) for k in folds}


def visit(models: dict[int, SGDRegressor], block: TrainBlock) -> dict[int, SGDRegressor]:
    """One ``partial_fit`` of each model on the block's rows outside its fold.

    Parameters
    ----------
    models : dict of int to SGDRegressor
        Fold left out (:data:`FULL`: none) to model; updated in place.
    block : TrainBlock

    Returns
    -------
    dict
        ``models``, for the next block.
    """
    for fold, model in models.items():
        rows = slice(None) if fold == FULL else np.flatnonzero(block.fold != fold)
        x, y = block.x[rows], block.y[rows]
        if len(y):
            model.partial_fit(x, y)
    return models


def chains_for(folds: list[int], workers: int) -> list[list[int]]:
    """Share the models out over at most ``workers`` chains of about equal work.

    Parameters
    ----------
    folds : list of int
        Models to fit (:data:`FULL` updates on every row, a fold model on 1 - 1/K).
    workers : int

    Returns
    -------
    list of list of int
        The models each chain carries.
    """
    k_folds = max(len(folds) - (FULL in folds), 2)
    weight = {k: 1.0 if k == FULL else 1.0 - 1.0 / k_folds for k in folds}
    chains: list[list[int]] = [[] for _ in range(max(1, min(workers, len(folds))))]
    load = [0.0] * len(chains)
    for k in sorted(folds, key=lambda k: -weight[k]):
        i = int(np.argmin(load))
        chains[i].append(k)
        load[i] += weight[k]
    return chains


def visit_order(placement: list[str], chain: int, epoch: int, seed: int,
                shift: int = 0) -> list[int]:
    """Blocks in the order one chain visits them in one pass.

    The blocks of one worker come together, shuffled, and the workers in an
    order that starts at another worker for every chain, so chains run side by
    side and move between workers once per worker a pass.

    Parameters
    ----------
    placement : list of str
        The worker holding each block.
    chain, epoch, seed : int
    shift : int, default 0
        Added to the chain's first worker: each window (or round of one) of a
        streaming pass shifts it back by one more, so that each chain starts where
        it ended the one before.

    Returns
    -------
    list of int
        Block indices.
    """
    rng = np.random.default_rng([seed, epoch, chain])
    workers = sorted(set(placement))
    start = (chain + shift) % len(workers)
    order: list[int] = []
    for w in workers[start:] + workers[:start]:
        mine = [i for i, p in enumerate(placement) if p == w]
        order += [mine[j] for j in rng.permutation(len(mine))]
    return order


def hashed_budget(memory_limits: list[float | None]) -> float:
    """Bytes the hashed training blocks may take on workers with these memory limits.

    Parameters
    ----------
    memory_limits : list of float or None
        Each worker's memory limit in bytes; a worker without one (None or 0) makes
        the memory count as enough.

    Returns
    -------
    float
        :data:`HASHED_MEMORY_SHARE` of their sum; infinite when one has no limit.
    """
    if any(not limit for limit in memory_limits):
        return math.inf
    return HASHED_MEMORY_SHARE * float(sum(memory_limits))


def fits_in_memory(rows: int, budget: float) -> bool:
    """Whether the hashed blocks of ``rows`` training rows can stay in the workers' memory.

    Parameters
    ----------
    rows : int
    budget : float
        Bytes they may take (:func:`hashed_budget`).

    Returns
    -------
    bool
        Whether ``rows`` times :data:`HASHED_ROW_BYTES` is within ``budget``.
    """
    return rows * HASHED_ROW_BYTES <= budget


def stream_windows(n_blocks: int, n_workers: int, per_worker: int,
                   seed: int) -> list[list[int]]:
    """The blocks of each window of a streaming pass, window after window.

    The blocks in a shuffled order (so that the order of the files does not
    steer the models), cut into windows of ``per_worker`` blocks for each worker.

    Parameters
    ----------
    n_blocks, n_workers, per_worker, seed : int

    Returns
    -------
    list of list of int
        Block indices of each window; a block's worker is its position in the
        window modulo ``n_workers`` (see :func:`window_placement`).
    """
    size = max(1, n_workers * per_worker)
    order = np.random.default_rng([seed, 0]).permutation(n_blocks).tolist()
    return [order[i:i + size] for i in range(0, n_blocks, size)]


def window_placement(window: list[int], workers: list[str]) -> list[str]:
    """The worker of each block of a window: in turn, so each hashes an even share."""
    return [workers[j % len(workers)] for j in range(len(window))]


class WindowTracker:
    """Which windows of a streaming schedule are in flight, and when one may go.

    A window is started (its blocks hashed, its visits submitted) only while
    fewer than ``depth`` windows before it are unfinished, and finished once
    every chain has visited each of its blocks: then its blocks can be freed.

    Parameters
    ----------
    visits : list of int
        Block visits of each window (its blocks times the chains).
    depth : int, default 2
        Windows in flight at most.
    """

    def __init__(self, visits: list[int], depth: int = 2) -> None:
        self.left = list(visits)
        self.depth = depth
        self.started = 0
        self.finished = 0

    def start(self) -> list[int]:
        """Windows to start now (each returned once), in order."""
        ready = min(len(self.left), self.finished + self.depth)
        new = list(range(self.started, ready))
        self.started = max(self.started, ready)
        return new

    def visited(self, window: int) -> bool:
        """Count one visit of a block of ``window``; whether that finished the window."""
        if window >= self.started or self.left[window] <= 0:
            raise ValueError(f"window {window} has no visit in flight")
        self.left[window] -= 1
        while self.finished < self.started and self.left[self.finished] == 0:
            self.finished += 1
        return self.left[window] == 0

    def in_flight(self) -> list[int]:
        """Windows started and not finished."""
        return [w for w in range(self.started) if self.left[w] > 0]


def merged(chains: list[dict[int, SGDRegressor]]) -> dict[int, SGDRegressor]:
    """The models of every chain in one dict."""
    return dict(itertools.chain.from_iterable(c.items() for c in chains))


def oof_frame(block: TrainBlock, chains: list[dict[int, SGDRegressor]],
              y_mean: float) -> pd.DataFrame:
    """The GBM's training rows of a block: dense features and out-of-fold text scores.

    Parameters
    ----------
    block : TrainBlock
        With ``dense`` features.
    chains : list of dict
        The fitted fold models (see :func:`pipeline.distributed.sgd.fit_linear`).
    y_mean : float

    Returns
    -------
    pandas.DataFrame
        ``block.dense`` with ``text_score`` (points) from the model that did not see
        the row, and ``_label`` (points minus the training mean).
    """
    models = merged(chains)
    score = np.zeros(len(block))
    for k in sorted(set(models) - {FULL}):
        rows = np.flatnonzero(block.fold == k)
        if len(rows):
            score[rows] = models[k].predict(block.x[rows]) + y_mean
    frame = block.dense.copy()
    frame["text_score"] = score.astype(np.float32)
    frame["_label"] = block.y
    return frame


def gbm_rows(df: pd.DataFrame, spec: FeatureSpec, y_mean: float, step: int, folds: int,
             chains: list[dict[int, SGDRegressor]]) -> pd.DataFrame:
    """The GBM's training rows of a partition, hashed again: every ``step``-th row.

    What the streaming schedule gives the GBM: the rows :func:`pipeline.gbm.thin`
    keeps of :func:`oof_frame`, and their values, without the partition's other
    rows.

    Parameters
    ----------
    df : pandas.DataFrame
        Cleaned rows with ``points``.
    spec : FeatureSpec
    y_mean : float
    step : int
    folds : int
        Cross-fitting folds.
    chains : list of dict
        The fitted fold models.

    Returns
    -------
    pandas.DataFrame
        See :func:`oof_frame`.
    """
    return oof_frame(hash_block(df.iloc[::step], spec, y_mean, dense=True, folds=folds),
                     chains, y_mean)


@dataclasses.dataclass
class ValidBlock:
    """Validation rows hashed once: what every candidate model is scored from."""

    x: sp.csr_matrix
    actual: np.ndarray
    dense: pd.DataFrame | None = None


def hash_valid(df: pd.DataFrame, spec: FeatureSpec, step: int, dense: bool) -> ValidBlock:
    """Hash every ``step``-th validation row (and its GBM features, when wanted).

    Parameters
    ----------
    df : pandas.DataFrame
    spec : FeatureSpec
    step : int
    dense : bool

    Returns
    -------
    ValidBlock
    """
    df = df.iloc[::step]
    return ValidBlock(x=spec.transform(df), actual=df[TARGET].to_numpy(dtype="float64"),
                      dense=gbm_frame(df, np.zeros(len(df))) if dense else None)


def score_valid(block: ValidBlock, chains: list[dict[int, SGDRegressor]],
                y_mean: float) -> pd.DataFrame:
    """The linear model's validation predictions, with the GBM's features beside them.

    Parameters
    ----------
    block : ValidBlock
    chains : list of dict
        The fitted models; the one of :data:`FULL` scores.
    y_mean : float

    Returns
    -------
    pandas.DataFrame
        ``actual``, ``linear`` (clipped points), and, with dense features, those with
        ``text_score`` (the unclipped linear prediction) and ``_label``.
    """
    model = merged(chains)[FULL]
    raw = model.predict(block.x) + y_mean if len(block.actual) else np.empty(0)
    frame = (block.dense.copy() if block.dense is not None
             else pd.DataFrame(index=range(len(block.actual))))
    frame["text_score"] = raw.astype(np.float32)
    frame["_label"] = block.actual - y_mean
    frame["actual"] = block.actual
    frame["linear"] = clip_points(raw)
    return frame


def linear_model(chains: list[dict[int, SGDRegressor]], spec: FeatureSpec, y_mean: float,
                 seed: int) -> SgdModel:
    """The model file's linear model, from the model of :data:`FULL`.

    Raises
    ------
    FloatingPointError
        When SGD diverged.
    """
    estimator = merged(chains)[FULL]
    if not np.all(np.isfinite(estimator.coef_)):
        raise FloatingPointError("SGD diverged: non-finite coefficients; lower eta0")
    return SgdModel(spec=spec, seed=seed, estimator_=estimator, target_mean_=float(y_mean),
                    metadata={"model": "sgd", "params": {**SGD_PARAMS, "seed": seed}})
