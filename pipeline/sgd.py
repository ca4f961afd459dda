"""The linear model: hashed features on the workers, SGD fitted incrementally with dask-ml.

The features of every training partition are computed in parallel and kept
in the cluster's memory; dask-ml's ``Incremental`` then passes the model from
block to block, in a new shuffled block order each pass, for several passes.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp
from dask_ml.wrappers import Incremental
from distributed import default_client
from sklearn.linear_model import SGDRegressor

from pipeline.cleaning import split_bucket
from pipeline.features import FeatureSpec, combine_stats, partition_stats
from pipeline.model import SgdModel, clip_points
from pipeline.schema import TARGET
from pipeline.splits import split_parts

#: Hyperparameters hand-tuned on the validation split of the challenge sample.
SGD_PARAMS = {
    "loss": "squared_error",
    "penalty": "l2",
    "alpha": 1e-5,
    "learning_rate": "constant",
    "eta0": 0.03,
    "average": True,
}

#: Passes scale with the data so that small sets get enough updates and big sets
#: no more than they need: about this many row updates in total, within bounds.
TARGET_ROW_UPDATES = 200_000
MIN_EPOCHS, MAX_EPOCHS = 3, 40

#: Folds of the cross-fitting that gives the GBM out-of-fold text scores.
N_FOLDS = 5


def n_epochs(rows: int) -> int:
    """Number of passes over ``rows`` training rows.

    Parameters
    ----------
    rows : int

    Returns
    -------
    int
    """
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_ROW_UPDATES / max(rows, 1)))))


def fold_of(df: pd.DataFrame) -> np.ndarray:
    """Cross-fitting fold (0 to ``N_FOLDS - 1``) of each row, from its review hash.

    Duplicate reviews share a fold, as they share a split.

    Parameters
    ----------
    df : pandas.DataFrame

    Returns
    -------
    numpy.ndarray of int
    """
    return split_bucket(df["description"]) % N_FOLDS


def without_fold(df: pd.DataFrame, fold: int | None) -> pd.DataFrame:
    """The rows of ``df`` outside ``fold`` (all rows when ``fold`` is None)."""
    return df if fold is None else df[fold_of(df) != fold]


def _partition_stats(df: pd.DataFrame, fold: int | None) -> dict:
    return partition_stats(without_fold(df, fold))


def _features(df: pd.DataFrame, spec: FeatureSpec, fold: int | None) -> sp.csr_matrix:
    return spec.transform(without_fold(df, fold))


def _centred_target(df: pd.DataFrame, mean: float, fold: int | None) -> np.ndarray:
    return without_fold(df, fold)[TARGET].to_numpy(dtype="float64") - mean


def _features_and_actual(
    df: pd.DataFrame, spec: FeatureSpec, step: int
) -> tuple[sp.csr_matrix, np.ndarray]:
    df = df.iloc[::step]
    return spec.transform(df), df[TARGET].to_numpy(dtype="float64")


def _actual_and_predicted(block: tuple[sp.csr_matrix, np.ndarray], model: SgdModel) -> np.ndarray:
    x, actual = block
    predicted = clip_points(model.predict_features(x)) if len(actual) else np.empty(0)
    return np.column_stack([actual, predicted])


def fit_sgd(
    train_dir: Path, seed: int = 0, epochs: int | None = None, exclude_fold: int | None = None
) -> tuple[SgdModel, dict]:
    """Fit the SGD model on the training split, on the cluster of the current client.

    Parameters
    ----------
    train_dir : pathlib.Path
        The ``train/`` directory of a data set.
    seed : int, default 0
        Seeds the block order of every pass and SGD's own shuffling.
    epochs : int, optional
        Passes over the data; default from :func:`n_epochs`.
    exclude_fold : int, optional
        Leave this cross-fitting fold out (see :func:`fold_of`).

    Returns
    -------
    model : SgdModel
    info : dict
        Rows, epochs and timings.
    """
    model, info, _ = fit_and_score_sgd(train_dir, None, seed=seed, epochs=epochs,
                                       exclude_fold=exclude_fold)
    return model, info


def fit_and_score_sgd(
    train_dir: Path,
    valid_dir: Path | None,
    seed: int = 0,
    epochs: int | None = None,
    exclude_fold: int | None = None,
    train_stats: dict[str, dict] | None = None,
    valid_step: int = 1,
) -> tuple[SgdModel, dict, np.ndarray | None]:
    """Fit as :func:`fit_sgd` does, and score the rows of ``valid_dir`` with the result.

    The validation rows are hashed on the workers alongside the training rows,
    at a lower priority: their hashing fills the time in which the passes of
    the fit (one block at a time) leave workers idle, instead of following it.

    Parameters
    ----------
    train_dir : pathlib.Path
        The ``train/`` directory of a data set.
    valid_dir : pathlib.Path or None
        Rows to score (the ``valid/`` split); None scores nothing.
    seed : int, default 0
    epochs : int, optional
    exclude_fold : int, optional
        See :func:`fit_sgd`.
    train_stats : dict, optional
        :func:`pipeline.features.partition_stats` of each file of ``train_dir`` by file
        name, as make-dataset records them: they spare a read of the whole split
        before the hashing starts.  Ignored when ``exclude_fold`` is set or when they
        do not name exactly the files found.
    valid_step : int, default 1
        Score every ``valid_step``-th row of each validation file only.

    Returns
    -------
    model : SgdModel
    info : dict
        Rows, epochs and timings.
    scored : numpy.ndarray or None
        ``(actual, predicted)`` points of each row of ``valid_dir``, two columns.
    """
    client = default_client()
    t0 = time.perf_counter()
    names, parts = split_parts(train_dir)
    recorded = exclude_fold is None and train_stats is not None and sorted(train_stats) == names
    if recorded:
        stats = [train_stats[name] for name in names]
    else:
        stats = dask.compute(*[dask.delayed(_partition_stats)(p, exclude_fold) for p in parts])
    rows = sum(s["rows"] for s in stats)
    if rows == 0:
        raise ValueError(f"{train_dir}: the training split is empty")
    mean, std = combine_stats([s["numeric"] for s in stats])
    y_mean = sum(s["y_sum"] for s in stats) / rows
    spec = FeatureSpec(numeric_mean=mean.tolist(), numeric_std=std.tolist())
    width = spec.n_features

    # Known block lengths let dask-ml walk the blocks; empty partitions are left out.
    x_blocks, y_blocks = [], []
    for part, s in zip(parts, stats, strict=True):
        if s["rows"] == 0:
            continue
        x_blocks.append(da.from_delayed(
            dask.delayed(_features)(part, spec, exclude_fold), shape=(s["rows"], width),
            dtype=np.float32, meta=sp.csr_matrix((0, width), dtype=np.float32)))
        y_blocks.append(da.from_delayed(
            dask.delayed(_centred_target)(part, y_mean, exclude_fold), shape=(s["rows"],),
            dtype=np.float64))
    # Not waited for: the first pass starts on the blocks hashed first.
    x, y = client.persist([da.concatenate(x_blocks), da.concatenate(y_blocks)])
    valid_blocks = [] if valid_dir is None else client.compute(
        [dask.delayed(_features_and_actual)(p, spec, valid_step)
         for p in split_parts(valid_dir)[1]],
        priority=-1,
    )

    passes = epochs or n_epochs(rows)
    inc = Incremental(SGDRegressor(random_state=seed, **SGD_PARAMS), shuffle_blocks=True)
    with warnings.catch_warnings():
        # dask-ml ships the model (tens of MB of coefficients) with each pass's graph;
        # once per pass is expected, so the size warning is noise here.
        warnings.filterwarnings("ignore", message="Sending large graph")
        for epoch in range(passes):
            inc.random_state = seed + epoch  # a new block order each pass
            inc.partial_fit(x, y)
            if epoch == 0:
                t_first = time.perf_counter()
    del x, y  # the cluster may free the training features now
    t_fit = time.perf_counter()
    estimator = inc.estimator_
    if not np.all(np.isfinite(estimator.coef_)):
        raise FloatingPointError("SGD diverged: non-finite coefficients; lower eta0")
    model = SgdModel(spec=spec, estimator=estimator, target_mean=float(y_mean),
                     metadata={"model": "sgd", "params": {**SGD_PARAMS, "seed": seed}})
    scored = None
    if valid_dir is not None:
        [model_future] = client.scatter([model], broadcast=True)
        pieces = client.gather(client.map(_actual_and_predicted, valid_blocks,
                                          model=model_future))
        scored = np.concatenate(pieces) if pieces else np.empty((0, 2))
    info = {
        "rows": rows,
        "partitions": len(parts),
        "epochs": passes,
        "stats_from_dataset": recorded,
        # Hashing and the first pass overlap, so they are timed together.
        "seconds_features_and_first_pass": round(t_first - t0, 3),
        "seconds_later_passes": round(t_fit - t_first, 3),
        "seconds_scoring": round(time.perf_counter() - t_fit, 3),
    }
    return model, info, scored
