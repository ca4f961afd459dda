"""train: fit the rating model on train/, choose and calibrate it on valid/, save one file.

``--model sgd`` fits the linear model on hashed features (:mod:`pipeline.sgd`);
``--model lightgbm`` stacks LightGBM on it (:mod:`pipeline.gbm`); ``auto``
fits both and keeps the one with the lower validation MAE.  Both come from
one hashing of the rows (:mod:`pipeline.distributed.fit`).  The kept model's 80%
prediction interval is placed on its validation residuals
(:meth:`pipeline.model.WineModel.fit_interval`).
"""

from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.atomic import check_not_input, check_replaceable
from pipeline.dataset import Dataset
from pipeline.distributed.cluster import current_client
from pipeline.distributed.fit import Candidate, fit_candidates
from pipeline.intervals import segment_labels, spread_features
from pipeline.metrics import regression_metrics
from pipeline.model import WineModel
from pipeline.model_file import package_versions
from pipeline.params import VALID_SCORE_ROWS
from pipeline.progress import StepProgress

log = logging.getLogger(__name__)

#: Model kinds the train step knows.
MODEL_KINDS = ("auto", "sgd", "lightgbm")


def validation_metrics(pairs: np.ndarray, split_dir: Path) -> dict[str, float]:
    """Metrics of validation predictions.

    Parameters
    ----------
    pairs : numpy.ndarray
        ``(actual, predicted)`` points, one row per validation row.
    split_dir : pathlib.Path
        Where the rows came from, for the error message.

    Returns
    -------
    dict
        See :func:`pipeline.metrics.regression_metrics`.
    """
    if len(pairs) == 0:
        raise ValueError(f"{split_dir}: the validation split is empty")
    return regression_metrics(pairs[:, 0], pairs[:, 1])


def place_interval(candidate: Candidate, seed: int = 0) -> dict:
    """Give the candidate's model its 80% interval, placed on its validation rows.

    Parameters
    ----------
    candidate : Candidate
        The model, its validation predictions and their dense features.
    seed : int, default 0

    Returns
    -------
    dict
        :meth:`pipeline.model.WineModel.fit_interval`'s record, for the metadata.
    """
    actual, predicted = candidate.pairs[:, 0], candidate.pairs[:, 1]
    dense = candidate.dense
    # The validation rows' price and critic, from their dense features.
    price = np.where(dense["price_missing"] > 0, np.nan, np.expm1(dense["log_price"]))
    segments = segment_labels(pd.Series(price), dense["taster_name"].reset_index(drop=True))
    info = candidate.model.fit_interval(spread_features(dense, predicted), actual - predicted,
                                        segments, seed=seed)
    log.info("interval: %s%s", info["kind"],
             f" (the adaptive one was not kept: {info['reason']})" if "reason" in info else "")
    return info


def train(
    dataset_dir: str | Path, out_model: str | Path, seed: int = 0, model_kind: str = "auto"
) -> WineModel:
    """Train on the data set's ``train/`` split, validate on ``valid/``, save the model.

    Needs a connected Dask client (see :func:`pipeline.distributed.cluster.dask_client`).

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
    dataset = Dataset(dataset_dir)
    check_not_input(out_model, dataset.path)
    check_replaceable(out_model, directory=False)
    started = datetime.datetime.now(datetime.UTC)
    step = dataset.step("valid", VALID_SCORE_ROWS)
    kinds = ("sgd",) if model_kind == "sgd" else ("sgd", "lightgbm")
    phases = ({"hashing": 0.55, "passes": 0.3, "trees": 0.15} if "lightgbm" in kinds
              else {"hashing": 0.75, "passes": 0.25})
    found = fit_candidates(current_client(), dataset.files("train"), dataset.files("valid"),
                           kinds,
                           seed=seed, train_stats=dataset.train_stats(),
                           valid_step=step, progress=StepProgress("train", phases))
    if model_kind != "auto":
        found = {model_kind: found[model_kind]}
    scores = {}
    for name, candidate in found.items():
        scores[name] = validation_metrics(candidate.pairs, dataset.path / "valid")
        log.info("validation of %s: %s", name, json.dumps(scores[name]))
    chosen = min(scores, key=lambda name: scores[name]["mae"])
    model, info = found[chosen].model, found[chosen].info
    interval = place_interval(found[chosen], seed)
    model.annotate(
        trained_at=started.isoformat(timespec="seconds"),
        versions=package_versions(),
        train=info,
        valid_metrics=scores[chosen],
        valid_every_nth_row=step,
        candidates_valid_mae={name: s["mae"] for name, s in scores.items()},
        interval={**interval, "residual_quantiles": list(interval["constant_offsets"])},
        data_fingerprint=dataset.fingerprint(),
    )
    model.save(out_model)
    log.info("kept %s; model written to %s", chosen, out_model)
    return model
