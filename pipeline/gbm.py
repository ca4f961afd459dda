"""The stacked model: LightGBM on the Dask cluster over dense features and a text score.

The text score of a training row comes from a linear model fitted without
that row's fold (cross-fitting, :mod:`pipeline.sgd`), so the GBM learns how
far to trust the text from honest, out-of-fold scores.  Validation and later
data get the score of the linear model fitted on the whole training split.
Both come from blocks hashed once: this module only sees their dense frames.

Its cost is bounded as the rows grow (see :func:`boosting_plan`): fewer trees
with a larger learning rate on more rows (as accurate, for less CPU), the
rows above :data:`MAX_ROWS` left out (evenly spread rows are
kept), and each worker's LightGBM machine on that worker's threads.  The
number of trees kept is the minimum of the validation curve (LightGBM's Dask
interface has no early stopping, so the whole curve is recorded).  The final
prediction blends the GBM's with the linear model's, in the proportion that
scores best on the validation split.
"""

from __future__ import annotations

import math
import warnings

import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client, Future
from lightgbm.dask import DaskLGBMRegressor

from pipeline.gbm_features import GBM_CATEGORIES, GBM_FEATURES
from pipeline.model import SgdModel, StackedGbmModel, blend
from pipeline.params import (
    GBM_PARAMS,
    MAX_ROWS,
    MIN_TREES,
    ROWS_PER_MACHINE,
    SMALL_ROWS,
    TEXT_WEIGHTS,
    TREE_POWER,
)

LABEL = "_label"

def _meta() -> pd.DataFrame:
    columns = {name: pd.Series(dtype="float32") for name in GBM_FEATURES}
    return pd.DataFrame({**columns, LABEL: pd.Series(dtype="float64")})


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


def _threads(client: Client) -> int:
    """Threads of the workers' LightGBM machines (the fewest a worker has)."""
    info = client.scheduler_info(n_workers=-1)["workers"].values()
    return max(1, min((w.get("nthreads", 1) for w in info), default=1))


def fit_stacked_gbm(
    client: Client,
    train_frames: list[Future],
    train_rows: int,
    valid: pd.DataFrame,
    text_model: SgdModel,
    seed: int = 0,
) -> tuple[StackedGbmModel, dict, np.ndarray]:
    """Fit LightGBM on out-of-fold frames, choose the trees and the blend on validation.

    Parameters
    ----------
    client : distributed.Client
    train_frames : list of distributed.Future
        :func:`pipeline.sgd.oof_frame` of every training block.
    train_rows : int
        Rows in them.
    valid : pandas.DataFrame
        :func:`pipeline.sgd.score_valid` of the validation rows, with dense features.
    text_model : SgdModel
        The linear model fitted on the whole training split.
    seed : int, default 0

    Returns
    -------
    model : StackedGbmModel
    info : dict
        Rows used, best iteration, machines, threads, the blend.
    predicted : numpy.ndarray
        The stacked model's validation predictions (unclipped points), row for row.
    """
    step = max(1, math.ceil(train_rows / MAX_ROWS))
    parts = [client.submit(thin, f, step, key=f"gbm-rows-{f.key}") for f in train_frames]
    train = dd.from_delayed(parts, meta=_meta(), verify_meta=False)
    rows = int(math.ceil(train_rows / step))
    workers = len(client.scheduler_info(n_workers=-1)["workers"])
    machines = max(1, min(workers, rows // ROWS_PER_MACHINE))
    features = list(GBM_FEATURES)
    eval_frame = dd.from_pandas(valid[[*features, LABEL]], npartitions=machines)
    train = train.repartition(npartitions=machines) if train.npartitions > machines else train
    train, eval_frame = client.persist([train, eval_frame])
    # lightgbm.dask gives each machine its worker's threads.
    threads = _threads(client)
    plan = boosting_plan(rows)
    params = {**GBM_PARAMS, **plan}
    gbm = DaskLGBMRegressor(client=client, random_state=seed, **params)
    with warnings.catch_warnings():
        # The estimator always carries n_jobs, which the Dask interface sets per worker.
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        gbm.fit(
            train[features], train[LABEL],
            eval_X=(eval_frame[features],), eval_y=(eval_frame[LABEL],), eval_metric="l1",
            categorical_feature=list(GBM_CATEGORIES),
        )
    curve = np.asarray(gbm.evals_result_["valid_0"]["l1"])
    best = int(np.argmin(curve)) + 1
    mean = text_model.target_mean
    trees = gbm.booster_.predict(valid[features], num_iteration=best) + mean
    actual = valid[LABEL].to_numpy() + mean
    text = valid["text_score"].to_numpy(dtype="float64")
    text_weight = choose_text_weight(trees, text, actual)
    model = StackedGbmModel(
        text_model=text_model, booster=gbm.booster_, best_iteration=best, target_mean=mean,
        text_weight=text_weight,
        metadata={"model": "lightgbm", "params": {**params, "seed": seed}},
    )
    info = {"gbm_rows": rows, "gbm_every_nth_row": step, **plan, "best_iteration": best,
            "machines": machines, "threads_per_machine": threads,
            "valid_l1_at_best": float(curve[best - 1]), "text_weight": text_weight}
    return model, info, blend(trees, text, text_weight)
