"""The stacked model's LightGBM, fitted in one task on the cluster.

The out-of-fold frames are made on the workers that hold the blocks, thinned to
at most :data:`pipeline.params.MAX_ROWS` rows, and joined on one worker, where
LightGBM learns from them with that worker's threads (see :mod:`pipeline.gbm` for
the model and its plan).  One machine, not LightGBM's Dask interface over
several: the rows are bounded, and over several machines the model depended on
which worker LightGBM ranked first (it finds each machine's bins from that
machine's rows, in an order taken from a set), so it changed from run to run,
and the trees were chosen on the first machine's share of the validation rows.
"""

from __future__ import annotations

import math
import uuid

import lightgbm as lgb
import numpy as np
import pandas as pd
from distributed import Client, Future

from pipeline.gbm import LABEL, boosting_plan, choose_text_weight, gbm_step, thin
from pipeline.gbm_features import GBM_CATEGORIES, GBM_FEATURES
from pipeline.model import SgdModel, StackedGbmModel, blend
from pipeline.params import GBM_PARAMS


def fit_booster(frames: list[pd.DataFrame], valid: pd.DataFrame, params: dict, seed: int,
                threads: int) -> tuple[lgb.Booster, np.ndarray]:
    """LightGBM on the training frames, with the l1 on ``valid`` after every tree.

    Parameters
    ----------
    frames : list of pandas.DataFrame
        :func:`pipeline.gbm.thin` frames of out-of-fold scores, in file order.
    valid : pandas.DataFrame
        Validation rows: :data:`GBM_FEATURES` and :data:`pipeline.gbm.LABEL`.
    params : dict
        :data:`pipeline.params.GBM_PARAMS` and the boosting plan.
    seed : int
    threads : int

    Returns
    -------
    booster : lightgbm.Booster
    curve : numpy.ndarray
        Validation l1 after each tree, to choose how many to keep.
    """
    train = pd.concat(frames)
    features = list(GBM_FEATURES)
    gbm = lgb.LGBMRegressor(random_state=seed, n_jobs=threads, **params)
    gbm.fit(train[features], train[LABEL], eval_X=(valid[features],), eval_y=(valid[LABEL],),
            eval_metric="l1", categorical_feature=list(GBM_CATEGORIES))
    return gbm.booster_, np.asarray(gbm.evals_result_["valid_0"]["l1"])


def _threads(client: Client) -> int:
    """Threads of the worker LightGBM runs on (the fewest a worker has)."""
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
        Rows used, best iteration, threads, the blend.
    predicted : numpy.ndarray
        The stacked model's validation predictions (unclipped points), row for row.
    """
    step = gbm_step(train_rows)
    parts = [client.submit(thin, f, step, key=f"gbm-rows-{f.key}") for f in train_frames]
    rows = int(math.ceil(train_rows / step))
    threads = _threads(client)
    plan = boosting_plan(rows)
    params = {**GBM_PARAMS, **plan}
    features = list(GBM_FEATURES)
    [eval_rows] = client.scatter([valid[[*features, LABEL]]])
    booster, curve = client.submit(fit_booster, parts, eval_rows, params, seed, threads,
                                   key=f"lightgbm-{uuid.uuid4().hex[:8]}").result()
    best = int(np.argmin(curve)) + 1
    mean = text_model.target_mean_
    trees = booster.predict(valid[features], num_iteration=best) + mean
    actual = valid[LABEL].to_numpy() + mean
    text = valid["text_score"].to_numpy(dtype="float64")
    text_weight = choose_text_weight(trees, text, actual)
    model = StackedGbmModel(
        text_model_=text_model, booster_=booster, best_iteration_=best,
        target_mean_=mean, text_weight_=text_weight,
        metadata={"model": "lightgbm", "params": {**params, "seed": seed}},
    )
    info = {"gbm_rows": rows, "gbm_every_nth_row": step, **plan, "best_iteration": best,
            "threads": threads, "valid_l1_at_best": float(curve[best - 1]),
            "text_weight": text_weight}
    return model, info, blend(trees, text, text_weight)
