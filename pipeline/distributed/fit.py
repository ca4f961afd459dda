"""Fit the candidate models of a data set from one hashing of its rows.

Every training file is hashed once, on a worker chosen up front (so the
models' chains know where each block lives), and kept in the cluster's
memory; every n-th validation row is hashed once beside them.  The linear
model of the whole split and, for the stacked model, one per cross-fitting
fold learn in the same passes (:func:`pipeline.distributed.sgd.fit_linear`);
the GBM's out-of-fold text scores and every candidate's validation
predictions come from the same blocks.  Nothing is hashed twice.
"""

from __future__ import annotations

import dataclasses
import time
import uuid

import numpy as np
import pandas as pd
from distributed import Client, as_completed

from pipeline.dataset import read_part
from pipeline.distributed.cluster import map_files, submit_per_file
from pipeline.distributed.gbm import fit_stacked_gbm
from pipeline.distributed.sgd import fit_linear
from pipeline.features import FeatureSpec, PartitionStats, partition_stats
from pipeline.gbm_features import GBM_FEATURES
from pipeline.model import WineModel, clip_points, n_epochs
from pipeline.progress import StepProgress
from pipeline.sgd import (
    FULL,
    chains_for,
    hash_block,
    hash_valid,
    linear_model,
    n_folds,
    oof_frame,
    score_valid,
)
from pipeline.storage import as_path


@dataclasses.dataclass
class Candidate:
    """A fitted candidate model and what its validation says.

    Attributes
    ----------
    model : WineModel
    info : dict
        Rows, passes, timings and the like, for the model file's metadata.
    pairs : numpy.ndarray
        ``(actual, predicted)`` points of the validation rows scored, two columns.
    dense : pandas.DataFrame
        Their dense features (:func:`pipeline.gbm_features.gbm_frame`, the linear model's
        text score), row for row: what the interval's spread model learns from.
    """

    model: WineModel
    info: dict
    pairs: np.ndarray
    dense: pd.DataFrame


def _hash_train_file(path: str, spec: FeatureSpec, y_mean: float, dense: bool, folds: int):
    return hash_block(read_part(path), spec, y_mean, dense, folds)


def _hash_valid_file(path: str, spec: FeatureSpec, step: int):
    # Always with dense features: the interval's spread model learns from them.
    return hash_valid(read_part(path), spec, step, dense=True)


def _stats_of_file(path: str) -> PartitionStats:
    return partition_stats(read_part(path))


def pick(models: dict, fold: int):
    """One model of a chain's dict (see :func:`pipeline.distributed.sgd.fit_linear`)."""
    return models[fold]


def spread(client: Client, n: int) -> list[str]:
    """Workers to compute ``n`` blocks on, in turn, so each holds an even share.

    Parameters
    ----------
    client : distributed.Client
    n : int

    Returns
    -------
    list of str
        A worker address per block.
    """
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    return [workers[i % len(workers)] for i in range(n)]


def fit_candidates(
    client: Client,
    train_files: list[str],
    valid_files: list[str],
    kinds: tuple[str, ...] = ("sgd", "lightgbm"),
    seed: int = 0,
    train_stats: dict[str, PartitionStats] | None = None,
    valid_step: int = 1,
    epochs: int | None = None,
    progress: StepProgress | None = None,
) -> dict[str, Candidate]:
    """Fit the linear model and, if asked, the stacked GBM, from one hashing of the rows.

    Parameters
    ----------
    client : distributed.Client
    train_files, valid_files : list of str
        The Parquet files of the training and validation splits (paths or URLs), in
        file-name order (:meth:`pipeline.dataset.Dataset.files`).
    kinds : tuple of str
        ``"sgd"`` (always fitted: the others build on it) and/or ``"lightgbm"``.
    seed : int, default 0
    train_stats : dict, optional
        :func:`pipeline.features.partition_stats` of each training file by name, as
        make-dataset records them; spare a read of the split.  Ignored when they do
        not name exactly the files found.
    valid_step : int, default 1
        Hash and score every ``valid_step``-th row of each validation file.
    epochs : int, optional
        Passes over the training blocks; default :func:`pipeline.model.n_epochs`.
    progress : StepProgress, optional
        Phases ``hashing``, ``passes`` and (with the GBM) ``trees``.

    Returns
    -------
    dict of str to Candidate
        By kind.

    Raises
    ------
    ValueError
        When the training or the validation split is empty.
    """
    t0 = time.perf_counter()
    gbm = "lightgbm" in kinds
    files = list(train_files)
    names = [as_path(f).name for f in files]
    recorded = train_stats is not None and sorted(train_stats) == names
    if recorded:
        stats = [train_stats[name] for name in names]
    else:
        stats = map_files(client, _stats_of_file, files, name="train-stats-block")
    total = sum(stats, PartitionStats.zeros())
    rows = total.rows
    if rows == 0:
        raise ValueError("the training split is empty")
    y_mean = total.y_sum / rows
    spec = FeatureSpec().fit_stats(total.numeric)
    kept = [f for f, s in zip(files, stats, strict=True) if s.rows > 0]

    run = uuid.uuid4().hex[:8]
    k_folds = n_folds(rows)
    placement = spread(client, len(kept))
    blocks = submit_per_file(client, _hash_train_file, kept, spec, y_mean, gbm, k_folds,
                             name="hash-train-block", workers=placement)
    valid_blocks = submit_per_file(client, _hash_valid_file, valid_files, spec, valid_step,
                                   name="hash-valid-block")
    hashed = as_completed([*blocks, *valid_blocks])
    total = len(blocks) + len(valid_blocks)
    for _ in (progress.track("hashing", hashed, total, "blocks") if progress else hashed):
        pass
    t_hashed = time.perf_counter()

    folds = [FULL, *(range(k_folds) if gbm else ())]
    passes = epochs or n_epochs(rows)
    chains = fit_linear(client, blocks, placement, folds, passes, seed, progress)
    t_fit = time.perf_counter()
    full_chain = next(i for i, carried in enumerate(chains_for(folds, len(set(placement))))
                      if FULL in carried)
    valid = pd.concat(client.gather([client.submit(score_valid, b, chains, y_mean,
                                                   key=f"score-valid-block-{run}-{i}")
                                     for i, b in enumerate(valid_blocks)]),
                      ignore_index=True)
    if len(valid) == 0:
        raise ValueError("the validation split is empty")
    # Only the model of the whole split comes to the client, not the fold models.
    full = client.submit(pick, chains[full_chain], FULL, key=f"sgd-model-{run}")
    sgd = linear_model([{FULL: client.gather(full)}], spec, y_mean, seed)
    info = {"rows": rows, "partitions": len(files), "epochs": passes,
            "models_in_the_passes": len(folds), "stats_from_dataset": recorded,
            "seconds_hashing": round(t_hashed - t0, 3),
            "seconds_passes": round(t_fit - t_hashed, 3)}
    dense = valid[list(GBM_FEATURES)]
    found = {"sgd": Candidate(sgd, info, valid[["actual", "linear"]].to_numpy(), dense)}
    if gbm:
        frames = [client.submit(oof_frame, b, chains, y_mean, key=f"oof-score-{run}-{i}")
                  for i, b in enumerate(blocks)]
        # The blocks and the models go once the frames are made: LightGBM needs neither.
        del blocks, chains
        if progress is not None:
            progress.update("trees", 0, 1, "LightGBM on the out-of-fold text scores",
                            force=True)
        t_gbm = time.perf_counter()
        model, gbm_info, predicted = fit_stacked_gbm(client, frames, rows, valid, sgd, seed)
        if progress is not None:
            progress.update("trees", 1, 1, f"{gbm_info['best_iteration']} trees kept")
        gbm_info["seconds_gbm"] = round(time.perf_counter() - t_gbm, 3)
        pairs = np.column_stack([valid["actual"].to_numpy(), clip_points(predicted)])
        found["lightgbm"] = Candidate(model, {**info, **gbm_info, "folds": k_folds}, pairs,
                                      dense)
    return found
