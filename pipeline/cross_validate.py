"""A k-fold estimate of each model's test error, with a confidence interval.

One split gives one number, and on a small data set it depends on which reviews
fell in the test part.  Here every labelled row of a data set
is test data exactly once: the review-hash buckets are cut into ``k`` folds,
and for each fold the models are fitted on the other folds (with their own
validation part for early stopping and model choice) and scored on it.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.atomic import atomic_file, check_not_input, check_replaceable
from pipeline.baselines import baseline_predictions, price_line, price_sums
from pipeline.dataset import Dataset
from pipeline.metrics import regression_metrics
from pipeline.params import CV_FOLDS
from pipeline.schema import TARGET
from pipeline.splitting import SPLITS, cv_folds

log = logging.getLogger(__name__)

MODELS = ("mean", "price_only", "sgd", "lightgbm")


def _baselines(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, np.ndarray]:
    # The two naive rules fitted on a fold's training rows, predicting its test rows.
    line = price_line(price_sums(train))
    return baseline_predictions(test, float(train[TARGET].mean()), line)


def summarise(per_fold: list[dict]) -> dict:
    """Mean and 95% t-interval of each model's MAE and R² over the folds.

    Parameters
    ----------
    per_fold : list of dict
        ``{"fold": k, "<model>": {"mae": ..., "r2": ...}, ...}`` per fold.

    Returns
    -------
    dict
        Per model: ``mae_mean``, ``mae_ci95`` (half-width), ``r2_mean``, ``r2_ci95``.
    """
    k = len(per_fold)
    t = stats.t.ppf(0.975, k - 1) if k > 1 else math.nan
    out = {}
    for model in MODELS:
        entry = {}
        for metric in ("mae", "r2", "within_2"):
            values = np.array([f[model][metric] for f in per_fold if model in f])
            if len(values) == 0:
                continue
            entry[f"{metric}_mean"] = float(values.mean())
            entry[f"{metric}_ci95"] = float(t * values.std(ddof=1) / math.sqrt(len(values))) \
                if len(values) > 1 else math.nan
        if entry:
            out[model] = entry
    return out


def cross_validate(
    dataset_dir: str | Path, out_json: str | Path, folds: int = CV_FOLDS, seed: int = 0,
    models: tuple[str, ...] = ("sgd", "lightgbm"),
) -> dict:
    """Fit and score the models ``folds`` times, each fold of reviews the test set once.

    Needs a connected Dask client.  The labelled rows of all splits are pooled.

    Parameters
    ----------
    dataset_dir : str or pathlib.Path
        Output of make-dataset.
    out_json : str or pathlib.Path
        Per-fold metrics and the summary, written atomically.
    folds : int, default :data:`pipeline.params.CV_FOLDS`
    seed : int, default 0
    models : tuple of str
        Which of ``sgd`` and ``lightgbm`` to fit (the baselines always run).

    Returns
    -------
    dict
        ``folds`` (per-fold metrics) and ``summary`` (see :func:`summarise`).
    """
    from pipeline.distributed.cluster import current_client
    from pipeline.distributed.fit import fit_candidates

    dataset = Dataset(dataset_dir)
    check_not_input(out_json, dataset.path)
    check_replaceable(out_json, directory=False)
    rows = pd.concat([dataset.read(s) for s in SPLITS], ignore_index=True)
    fold_of_row, validates = cv_folds(rows["description"], folds)
    per_fold = []
    for k in range(folds):
        test = rows[fold_of_row == k]
        rest = rows[fold_of_row != k]
        is_valid = validates[fold_of_row != k]
        train, valid = rest[~is_valid], rest[is_valid]
        result: dict = {"fold": k, "train_rows": len(train), "test_rows": len(test)}
        for name, pred in _baselines(train, test).items():
            result[name] = regression_metrics(test[TARGET], pred)
        with tempfile.TemporaryDirectory(prefix="wine-cv-") as tmp:
            for name, part in (("train", train), ("valid", valid)):
                (Path(tmp) / name).mkdir()
                # Several partitions so the cluster shares the work as in production.
                for i, index in enumerate(np.array_split(np.arange(len(part)), 4)):
                    part.iloc[index].to_parquet(Path(tmp, name, f"part.{i}.parquet"),
                                                index=False)
            found = fit_candidates(current_client(),
                                   *(sorted(str(f) for f in Path(tmp, name).glob("*.parquet"))
                                     for name in ("train", "valid")),
                                   kinds=models, seed=seed)
            for name, candidate in found.items():
                result[name] = regression_metrics(test[TARGET],
                                                  candidate.model.predict(test))
        log.info("fold %d: %s", k, json.dumps({m: round(result[m]["mae"], 4)
                                               for m in MODELS if m in result}))
        per_fold.append(result)
    report = {"folds": per_fold, "summary": summarise(per_fold), "seed": seed,
              "rows": len(rows)}
    with atomic_file(out_json) as tmp_path:
        tmp_path.write_text(json.dumps(report, indent=2))
    return report
