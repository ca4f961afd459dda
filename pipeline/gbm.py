"""The stacked model: LightGBM on the Dask cluster over dense features and a text score.

The text score of a training row comes from a linear model fitted without
that row's fold (cross-fitting), so the GBM learns how far to trust the text
from honest, out-of-fold scores.  Validation and later data get the score of
the linear model fitted on the whole training split.  The number of trees is
chosen on the validation split (LightGBM's Dask interface has no early
stopping, so the whole validation curve is recorded and its minimum kept).
The final prediction blends the GBM's with the linear model's, in the
proportion that scores best on the validation split.
"""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import default_client
from lightgbm.dask import DaskLGBMRegressor

from pipeline.gbm_features import GBM_CATEGORIES, GBM_FEATURES, gbm_frame
from pipeline.model import SgdModel, StackedGbmModel, blend
from pipeline.schema import TARGET
from pipeline.sgd import N_FOLDS, fit_sgd, fold_of

#: Hyperparameters hand-tuned on the validation split of the challenge sample.
GBM_PARAMS = {
    "objective": "regression_l1",
    "n_estimators": 1000,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "cat_smooth": 20,
    "min_data_per_group": 30,
    "deterministic": True,
    "verbose": -1,
}

_LABEL = "_label"

#: Rows per LightGBM machine at least: below this, the per-tree network exchange
#: between workers costs more than it saves, so fewer workers take part.
ROWS_PER_MACHINE = 100_000

#: Shares of the linear model tried in the blend (see :func:`choose_text_weight`).
TEXT_WEIGHTS = np.round(np.linspace(0.0, 1.0, 11), 2)


def _meta() -> pd.DataFrame:
    columns = {name: pd.Series(dtype="float32") for name in GBM_FEATURES}
    return pd.DataFrame({**columns, _LABEL: pd.Series(dtype="float64")})


def _oof_frame(df: pd.DataFrame, fold_models: list[SgdModel], mean: float) -> pd.DataFrame:
    folds = fold_of(df)
    score = np.zeros(len(df))
    for k, model in enumerate(fold_models):
        rows = folds == k
        if rows.any():
            score[rows] = model.predict_raw(df[rows])
    return gbm_frame(df, score).assign(**{_LABEL: df[TARGET].to_numpy("float64") - mean})


def _scored_frame(df: pd.DataFrame, text_model: SgdModel, mean: float) -> pd.DataFrame:
    score = text_model.predict_raw(df) if len(df) else np.empty(0)
    return gbm_frame(df, score).assign(**{_LABEL: df[TARGET].to_numpy("float64") - mean})


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


def fit_stacked_gbm(
    train_dir, valid_dir, text_model: SgdModel, epochs: int, seed: int = 0
) -> tuple[StackedGbmModel, dict]:
    """Fit LightGBM with out-of-fold text scores, choosing the trees on validation.

    Parameters
    ----------
    train_dir, valid_dir : pathlib.Path
        Split directories of a data set.
    text_model : SgdModel
        The linear model fitted on the whole training split.
    epochs : int
        Passes of each fold's linear model (as for ``text_model``).
    seed : int, default 0

    Returns
    -------
    model : StackedGbmModel
    info : dict
        Folds, best iteration and the validation curve's best MAE.
    """
    client = default_client()
    mean = text_model.target_mean
    fold_models = [fit_sgd(train_dir, seed=seed, epochs=epochs, exclude_fold=k)[0]
                   for k in range(N_FOLDS)]
    [folds_future, text_future] = client.scatter([fold_models, text_model], broadcast=True)
    train = dd.from_delayed(
        [dask.delayed(_oof_frame)(p, folds_future, mean)
         for p in dd.read_parquet(str(train_dir)).to_delayed()],
        meta=_meta(), verify_meta=False,
    )
    valid = dd.from_delayed(
        [dask.delayed(_scored_frame)(p, text_future, mean)
         for p in dd.read_parquet(str(valid_dir)).to_delayed()],
        meta=_meta(), verify_meta=False,
    )
    train, valid = client.persist([train, valid])
    rows = int(train.map_partitions(len).sum().compute())
    machines = max(1, min(len(client.scheduler_info(n_workers=-1)["workers"]),
                          rows // ROWS_PER_MACHINE))
    if train.npartitions > machines:
        # LightGBM trains one machine per worker holding data; on small data one
        # machine is faster than several exchanging histograms every tree.
        train, valid = client.persist([train.repartition(npartitions=machines),
                                       valid.repartition(npartitions=machines)])
    features = list(GBM_FEATURES)
    gbm = DaskLGBMRegressor(client=client, random_state=seed, **GBM_PARAMS)
    gbm.fit(
        train[features], train[_LABEL],
        eval_X=(valid[features],), eval_y=(valid[_LABEL],), eval_metric="l1",
        categorical_feature=list(GBM_CATEGORIES),
    )
    curve = np.asarray(gbm.evals_result_["valid_0"]["l1"])
    best = int(np.argmin(curve)) + 1
    # The validation split is a tenth of the rows and a dozen columns: small enough
    # to bring here and score with the booster for the blend.
    held_out = valid.compute()
    trees = gbm.booster_.predict(held_out[features], num_iteration=best) + mean
    label = held_out[_LABEL].to_numpy() + mean
    text_weight = choose_text_weight(trees, held_out["text_score"].to_numpy(), label)
    model = StackedGbmModel(
        text_model=text_model, booster=gbm.booster_, best_iteration=best, target_mean=mean,
        text_weight=text_weight,
        metadata={"model": "lightgbm", "params": {**GBM_PARAMS, "seed": seed}},
    )
    info = {"folds": N_FOLDS, "best_iteration": best, "machines": machines,
            "valid_l1_at_best": float(curve[best - 1]), "text_weight": text_weight}
    return model, info
