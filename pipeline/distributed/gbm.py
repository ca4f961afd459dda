"""The stacked model's LightGBM, fitted with LightGBM's Dask interface on the cluster.

The out-of-fold frames stay on the workers that made them; each worker's
LightGBM machine learns from its share with that worker's threads (see
:mod:`pipeline.gbm` for the model and its plan).
"""

from __future__ import annotations

import math
import warnings

import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client, Future
from lightgbm.dask import DaskLGBMRegressor

from pipeline.gbm import LABEL, boosting_plan, choose_text_weight, gbm_step, thin
from pipeline.gbm_features import GBM_CATEGORIES, GBM_FEATURES
from pipeline.model import SgdModel, StackedGbmModel, blend
from pipeline.params import GBM_PARAMS, ROWS_PER_MACHINE


def _meta() -> pd.DataFrame:
    columns = {name: pd.Series(dtype="float32") for name in GBM_FEATURES}
    return pd.DataFrame({**columns, LABEL: pd.Series(dtype="float64")})


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
        :func:`pipeline.sgd.oof_frame` of every training block (or
        :func:`pipeline.sgd.gbm_rows`, already thinned).
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
    step = gbm_step(train_rows)
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
    mean = text_model.target_mean_
    trees = gbm.booster_.predict(valid[features], num_iteration=best) + mean
    actual = valid[LABEL].to_numpy() + mean
    text = valid["text_score"].to_numpy(dtype="float64")
    text_weight = choose_text_weight(trees, text, actual)
    model = StackedGbmModel(
        text_model_=text_model, booster_=gbm.booster_, best_iteration_=best,
        target_mean_=mean, text_weight_=text_weight,
        metadata={"model": "lightgbm", "params": {**params, "seed": seed}},
    )
    info = {"gbm_rows": rows, "gbm_every_nth_row": step, **plan, "best_iteration": best,
            "machines": machines, "threads_per_machine": threads,
            "valid_l1_at_best": float(curve[best - 1]), "text_weight": text_weight}
    return model, info, blend(trees, text, text_weight)
