"""train: fit the rating model on train/, choose and calibrate it on valid/, save one file.

``--model sgd`` fits the linear model on hashed features (:mod:`pipeline.sgd`);
``--model lightgbm`` stacks LightGBM on it (:mod:`pipeline.gbm`); ``auto``
fits both and keeps the one with the lower validation MAE.  Both come from
one hashing of the rows (:mod:`pipeline.fit`).  The kept model's 80%
prediction interval comes from its validation residuals.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
from distributed import default_client

from pipeline.atomic import check_not_input, check_replaceable, is_complete_dir
from pipeline.features import stats_from_json
from pipeline.fit import fit_candidates
from pipeline.metrics import regression_metrics
from pipeline.model import INTERVAL_COVERAGE, WineModel, package_versions
from pipeline.progress import StepProgress
from pipeline.splits import every_nth
from pipeline.steps.make_dataset import STATS_FILE, TRAIN_STATS_FILE

log = logging.getLogger(__name__)

#: Model kinds the train step knows.
MODEL_KINDS = ("auto", "sgd", "lightgbm")

#: Most validation rows scored to compare the models and place the interval: from
#: 20,000 rows the 80% interval's coverage is known to about ±0.3 points of percentage
#: and the MAE to about ±0.01, so scoring more only costs hashing time (a tenth of
#: the data: 100,000 rows at 1M) and grows with the data.  Evenly spread rows are kept.
VALID_SCORE_ROWS = 20_000

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


def recorded_train_stats(dataset: Path) -> dict[str, dict] | None:
    """The per-file training statistics make-dataset wrote, when usable.

    Parameters
    ----------
    dataset : pathlib.Path
        A make-dataset output.

    Returns
    -------
    dict or None
        File name to :func:`pipeline.features.partition_stats`; None when the file is
        absent (a data set made before it existed) or was made with other numeric features.
    """
    path = dataset / TRAIN_STATS_FILE
    if not path.is_file():
        return None
    stats = {name: stats_from_json(record)
             for name, record in json.loads(path.read_text())["partitions"].items()}
    return None if any(v is None for v in stats.values()) else stats


def validation_step(dataset: Path) -> int:
    """Score every n-th validation row, so that about :data:`VALID_SCORE_ROWS` are scored.

    Parameters
    ----------
    dataset : pathlib.Path
        A make-dataset output (its ``stats.json`` has the split's row count).

    Returns
    -------
    int
        1 up to :data:`VALID_SCORE_ROWS` validation rows.
    """
    counts = json.loads((dataset / STATS_FILE).read_text())
    return every_nth(counts.get("valid", 0), VALID_SCORE_ROWS)


def summarise_validation(
    pairs: np.ndarray, split_dir: Path
) -> tuple[dict[str, float], tuple[float, float]]:
    """Metrics and residual percentiles from validation predictions.

    Parameters
    ----------
    pairs : numpy.ndarray
        ``(actual, predicted)`` points, one row per validation row.
    split_dir : pathlib.Path
        Where the rows came from, for the error message.

    Returns
    -------
    metrics : dict
        See :func:`pipeline.metrics.regression_metrics`.
    quantiles : tuple of float
        Residual percentiles bounding :data:`pipeline.model.INTERVAL_COVERAGE` of the rows.
    """
    if len(pairs) == 0:
        raise ValueError(f"{split_dir}: the validation split is empty")
    tail = (1 - INTERVAL_COVERAGE) / 2
    residuals = pairs[:, 0] - pairs[:, 1]
    quantiles = tuple(float(q) for q in np.quantile(residuals, [tail, 1 - tail]))
    return regression_metrics(pairs[:, 0], pairs[:, 1]), quantiles


def fingerprint(dataset_dir: Path) -> str:
    """A short hash of the data set's file names and sizes.

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


def train(
    dataset_dir: str | Path, out_model: str | Path, seed: int = 0, model_kind: str = "auto"
) -> WineModel:
    """Train on the data set's ``train/`` split, validate on ``valid/``, save the model.

    Needs a connected Dask client (see :func:`pipeline.cluster.dask_client`).

    Parameters
    ----------
    dataset_dir : str or pathlib.Path
        Output of make-dataset.
    out_model : str or pathlib.Path
        Model file, written atomically.
    seed : int, default 0
    model_kind : {"auto", "sgd", "lightgbm"}
        Which model to fit; ``auto`` keeps the better on validation.

    Returns
    -------
    WineModel
    """
    if model_kind not in MODEL_KINDS:
        raise ValueError(f"unknown model {model_kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    dataset = require_dataset(dataset_dir)
    check_not_input(out_model, dataset)
    check_replaceable(out_model, directory=False)
    started = datetime.datetime.now(datetime.UTC)
    step = validation_step(dataset)
    kinds = ("sgd",) if model_kind == "sgd" else ("sgd", "lightgbm")
    phases = ({"hashing": 0.55, "passes": 0.3, "trees": 0.15} if "lightgbm" in kinds
              else {"hashing": 0.75, "passes": 0.25})
    found = fit_candidates(default_client(), dataset / "train", dataset / "valid", kinds,
                           seed=seed, train_stats=recorded_train_stats(dataset),
                           valid_step=step, progress=StepProgress("train", phases))
    if model_kind != "auto":
        found = {model_kind: found[model_kind]}
    scores = {}
    for name, candidate in found.items():
        scores[name] = summarise_validation(candidate.pairs, dataset / "valid")
        log.info("validation of %s: %s", name, json.dumps(scores[name][0]))
    chosen = min(scores, key=lambda name: scores[name][0]["mae"])
    model, info = found[chosen].model, found[chosen].info
    valid_metrics, model.residual_quantiles = scores[chosen]
    model.metadata = {
        **model.metadata,
        "trained_at": started.isoformat(timespec="seconds"),
        "versions": package_versions(),
        "train": info,
        "valid_metrics": valid_metrics,
        "valid_every_nth_row": step,
        "candidates_valid_mae": {name: s[0]["mae"] for name, s in scores.items()},
        "interval": {"coverage": INTERVAL_COVERAGE,
                     "residual_quantiles": list(model.residual_quantiles)},
        "data_fingerprint": fingerprint(dataset),
    }
    model.save(out_model)
    log.info("kept %s; model written to %s", chosen, out_model)
    return model
