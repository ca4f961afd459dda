"""train: hashed features on the workers, an SGD regressor fitted incrementally with dask-ml.

The features of every training partition are computed in parallel and kept
in the cluster's memory; dask-ml's ``Incremental`` then passes the model
from block to block (in a new shuffled order each pass) for several passes.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import platform
import time
import warnings
from importlib import metadata as importlib_metadata
from pathlib import Path

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from dask_ml.wrappers import Incremental
from distributed import default_client
from sklearn.linear_model import SGDRegressor

from pipeline.atomic import is_complete_dir
from pipeline.features import FeatureSpec, combine_stats, numeric_frame, numeric_stats
from pipeline.metrics import add_sums, error_sums, metrics_from_sums
from pipeline.model import WineModel
from pipeline.schema import TARGET

log = logging.getLogger(__name__)

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

#: Libraries whose versions are recorded in the model file.
VERSIONED = ("dask", "distributed", "dask-ml", "scikit-learn", "numpy", "pandas", "pyarrow")


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


def require_dataset(dataset_dir: str | Path) -> Path:
    """Check that ``dataset_dir`` is a complete make-dataset output.

    Parameters
    ----------
    dataset_dir : str or pathlib.Path

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        When the directory or its ``_SUCCESS`` flag is missing.
    """
    path = Path(dataset_dir)
    if not is_complete_dir(path):
        raise FileNotFoundError(
            f"{path} is not a complete data set (no _SUCCESS flag); run make-dataset first"
        )
    return path


def _partition_stats(df: pd.DataFrame) -> dict:
    y = df[TARGET].to_numpy(dtype="float64")
    return {"rows": len(df), "numeric": numeric_stats(numeric_frame(df)),
            "y_sum": float(y.sum())}


def _features(df: pd.DataFrame, spec: FeatureSpec) -> sp.csr_matrix:
    return spec.transform(df)


def _centred_target(df: pd.DataFrame, mean: float) -> np.ndarray:
    return df[TARGET].to_numpy(dtype="float64") - mean


def _score_partition(df: pd.DataFrame, model: WineModel) -> dict[str, float]:
    return error_sums(df[TARGET].to_numpy(dtype="float64"), model.predict_frame(df))


def score_split(split_dir: Path, model: WineModel) -> dict[str, float]:
    """Metrics of ``model`` on a split, scored partition by partition on the workers.

    Parameters
    ----------
    split_dir : pathlib.Path
        A split directory of Parquet files.
    model : WineModel

    Returns
    -------
    dict
        See :func:`pipeline.metrics.metrics_from_sums`.
    """
    client = default_client()
    [model_future] = client.scatter([model], broadcast=True)
    parts = dd.read_parquet(str(split_dir)).to_delayed()
    sums = dask.compute(*[dask.delayed(_score_partition)(p, model_future) for p in parts])
    return metrics_from_sums(add_sums(list(sums)))


def fingerprint(dataset_dir: Path) -> str:
    """A short hash of the data set's statistics and file sizes.

    Parameters
    ----------
    dataset_dir : pathlib.Path

    Returns
    -------
    str
        16 hex digits; equal for the same data set.
    """
    h = hashlib.sha256()
    for f in sorted(dataset_dir.rglob("*")):
        if f.is_file():
            h.update(f"{f.relative_to(dataset_dir)}:{f.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def fit_sgd(
    train_dir: Path, seed: int = 0, epochs: int | None = None
) -> tuple[WineModel, dict]:
    """Fit the SGD model on the training split, on the cluster of the current client.

    Parameters
    ----------
    train_dir : pathlib.Path
        The ``train/`` directory of a data set.
    seed : int, default 0
        Seeds the block order of every pass and SGD's own shuffling.
    epochs : int, optional
        Passes over the data; default from :func:`n_epochs`.

    Returns
    -------
    model : WineModel
    info : dict
        Rows, epochs and timings.
    """
    client = default_client()
    t0 = time.perf_counter()
    parts = dd.read_parquet(str(train_dir)).to_delayed()
    stats = dask.compute(*[dask.delayed(_partition_stats)(p) for p in parts])
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
            dask.delayed(_features)(part, spec), shape=(s["rows"], width), dtype=np.float32,
            meta=sp.csr_matrix((0, width), dtype=np.float32)))
        y_blocks.append(da.from_delayed(
            dask.delayed(_centred_target)(part, y_mean), shape=(s["rows"],), dtype=np.float64))
    x, y = client.persist([da.concatenate(x_blocks), da.concatenate(y_blocks)])
    t_features = time.perf_counter()

    passes = epochs or n_epochs(rows)
    inc = Incremental(SGDRegressor(random_state=seed, **SGD_PARAMS), shuffle_blocks=True)
    with warnings.catch_warnings():
        # dask-ml ships the model (~13 MB of coefficients) with each pass's graph;
        # once per pass is expected, so the size warning is noise here.
        warnings.filterwarnings("ignore", message="Sending large graph")
        for epoch in range(passes):
            inc.random_state = seed + epoch  # a new block order each pass
            inc.partial_fit(x, y)
    t_fit = time.perf_counter()
    estimator = inc.estimator_
    if not np.all(np.isfinite(estimator.coef_)):
        raise FloatingPointError("SGD diverged: non-finite coefficients; lower eta0")
    model = WineModel(spec=spec, estimator=estimator, target_mean=float(y_mean))
    info = {
        "rows": rows,
        "partitions": len(parts),
        "epochs": passes,
        "seconds_features": round(t_features - t0, 3),
        "seconds_fit": round(t_fit - t_features, 3),
    }
    del x, y
    return model, info


def versions() -> dict[str, str]:
    """Versions of Python and the numeric libraries, for the model's metadata.

    Returns
    -------
    dict
    """
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def train(dataset_dir: str | Path, out_model: str | Path, seed: int = 0) -> WineModel:
    """Train on the data set's ``train/`` split, validate on ``valid/``, save the model.

    Needs a connected Dask client (see :func:`pipeline.cluster.dask_client`).

    Parameters
    ----------
    dataset_dir : str or pathlib.Path
        Output of make-dataset.
    out_model : str or pathlib.Path
        Model file, written atomically.
    seed : int, default 0

    Returns
    -------
    WineModel
    """
    dataset = require_dataset(dataset_dir)
    started = datetime.datetime.now(datetime.UTC)
    model, info = fit_sgd(dataset / "train", seed=seed)
    valid = score_split(dataset / "valid", model)
    log.info("validation: %s", json.dumps(valid))
    model.metadata = {
        "model": "sgd",
        "params": {**SGD_PARAMS, "seed": seed},
        "trained_at": started.isoformat(timespec="seconds"),
        "versions": versions(),
        "train": info,
        "valid_metrics": valid,
        "data_fingerprint": fingerprint(dataset),
    }
    model.save(out_model)
    log.info("model written to %s", out_model)
    return model
