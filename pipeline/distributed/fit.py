"""Fit the candidate models of a data set, hashing its rows once where memory allows.

Every n-th validation row is hashed once; every candidate's validation
predictions come from those blocks.  The linear model of the whole split
and, for the stacked model, one per cross-fitting fold learn in the same
passes over the hashed training blocks, on one of two schedules:

* in memory, when the hashed blocks fit in the workers' memory
  (:func:`pipeline.sgd.fits_in_memory`): every training file is hashed once,
  on a worker chosen up front (so the chains know where each block lives),
  and kept for all the passes (:func:`pipeline.distributed.sgd.fit_linear`);
  the GBM's out-of-fold text scores come from the same blocks.  Nothing is
  hashed twice.
* streaming, when they do not: one pass, the blocks hashed in windows as the
  chains go, visited as many times as the in-memory passes would, and freed
  behind them (:func:`pipeline.distributed.sgd.stream_linear`), so a worker's
  memory is bounded by the window, not by the data; then each training file is
  read again for the GBM's rows alone (every n-th, :func:`pipeline.sgd.gbm_rows`).
  Those rows, and only those, are hashed twice.
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid

import numpy as np
import pandas as pd
from distributed import Client, as_completed

from pipeline.dataset import read_part
from pipeline.distributed.cluster import map_files, submit_per_file
from pipeline.distributed.gbm import fit_stacked_gbm
from pipeline.distributed.sgd import fit_linear, stream_linear
from pipeline.features import FeatureSpec, PartitionStats, partition_stats
from pipeline.gbm import gbm_step
from pipeline.gbm_features import GBM_FEATURES
from pipeline.model import WineModel, clip_points, n_epochs
from pipeline.params import STREAM_BLOCKS_PER_WORKER
from pipeline.progress import StepProgress
from pipeline.sgd import (
    FULL,
    chains_for,
    fits_in_memory,
    gbm_rows,
    hash_block,
    hash_valid,
    hashed_budget,
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


def _gbm_rows_of_file(path: str, spec: FeatureSpec, y_mean: float, step: int, folds: int,
                      chains: list[dict]) -> pd.DataFrame:
    return gbm_rows(read_part(path), spec, y_mean, step, folds, chains)


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


def workers_budget(client: Client) -> float:
    """Bytes the hashed training blocks may take on the cluster's workers now.

    Parameters
    ----------
    client : distributed.Client

    Returns
    -------
    float
        :func:`pipeline.sgd.hashed_budget` of the workers' memory limits.
    """
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return hashed_budget([w.get("memory_limit") for w in workers])


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
    memory_budget: float | None = None,
) -> dict[str, Candidate]:
    """Fit the linear model and, if asked, the stacked GBM, on the schedule memory allows.

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
        Updates of each model by each of its rows; default :func:`pipeline.model.n_epochs`.
        In memory, passes over the kept blocks; streaming, visits to each window's
        blocks in the one pass.
    progress : StepProgress, optional
        Phases ``hashing``, ``passes`` and (with the GBM) ``trees``.
    memory_budget : float, optional
        Bytes the hashed training blocks may take for the in-memory schedule; default
        :func:`workers_budget`.  Above it, the streaming one.

    Returns
    -------
    dict of str to Candidate
        By kind.  Their ``info`` says the ``schedule`` (``"in-memory"`` or
        ``"streaming"``); streaming, ``seconds_passes`` includes the training rows'
        hashing, which goes on beside the pass.

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
    folds = [FULL, *(range(k_folds) if gbm else ())]
    budget = workers_budget(client) if memory_budget is None else memory_budget
    streaming = not fits_in_memory(rows, budget)
    if streaming:
        valid_blocks = submit_per_file(client, _hash_valid_file, valid_files, spec, valid_step,
                                       name="hash-valid-block")
        t_hashed = time.perf_counter()
        passes = epochs or n_epochs(rows)
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])[:len(kept)]
        chains = stream_linear(client, kept, _hash_train_file, (spec, y_mean, False, k_folds),
                               workers, STREAM_BLOCKS_PER_WORKER, folds, passes, seed,
                               valid_blocks, progress)
        n_chains_workers = len(workers)
    else:
        placement = spread(client, len(kept))
        blocks = submit_per_file(client, _hash_train_file, kept, spec, y_mean, gbm, k_folds,
                                 name="hash-train-block", workers=placement)
        valid_blocks = submit_per_file(client, _hash_valid_file, valid_files, spec,
                                       valid_step, name="hash-valid-block")
        hashed = as_completed([*blocks, *valid_blocks])
        n_hashes = len(blocks) + len(valid_blocks)
        for _ in (progress.track("hashing", hashed, n_hashes, "blocks") if progress
                  else hashed):
            pass
        t_hashed = time.perf_counter()
        passes = epochs or n_epochs(rows)
        chains = fit_linear(client, blocks, placement, folds, passes, seed, progress)
        n_chains_workers = len(set(placement))
    t_fit = time.perf_counter()
    carried = chains_for(folds, n_chains_workers)
    full_chain = next(i for i, models in enumerate(carried) if FULL in models)
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
            "schedule": "streaming" if streaming else "in-memory",
            "models_in_the_passes": len(folds), "stats_from_dataset": recorded,
            "seconds_hashing": round(t_hashed - t0, 3),
            "seconds_passes": round(t_fit - t_hashed, 3)}
    dense = valid[list(GBM_FEATURES)]
    found = {"sgd": Candidate(sgd, info, valid[["actual", "linear"]].to_numpy(), dense)}
    if gbm:
        if streaming:
            step = gbm_step(rows)
            fold_chains = [c for c, models in zip(chains, carried, strict=True)
                           if set(models) - {FULL}]
            frames = submit_per_file(client, _gbm_rows_of_file, kept, spec, y_mean, step,
                                     k_folds, fold_chains, name="hash-gbm-rows",
                                     workers=spread(client, len(kept)))
            # Thinned already: the GBM takes every row of them, as many as it would
            # have kept of all the rows.
            gbm_train_rows = math.ceil(rows / step)
        else:
            frames = [client.submit(oof_frame, b, chains, y_mean, key=f"oof-score-{run}-{i}")
                      for i, b in enumerate(blocks)]
            gbm_train_rows = rows
            # The blocks go once the frames are made: LightGBM does not need them.
            del blocks
        # Nor the models (the frames still being made hold on to them).
        del chains
        if progress is not None:
            progress.update("trees", 0, 1, "LightGBM on the out-of-fold text scores",
                            force=True)
        t_gbm = time.perf_counter()
        model, gbm_info, predicted = fit_stacked_gbm(client, frames, gbm_train_rows, valid,
                                                     sgd, seed)
        if streaming:
            gbm_info["gbm_every_nth_row"] = step
        if progress is not None:
            progress.update("trees", 1, 1, f"{gbm_info['best_iteration']} trees kept")
        gbm_info["seconds_gbm"] = round(time.perf_counter() - t_gbm, 3)
        pairs = np.column_stack([valid["actual"].to_numpy(), clip_points(predicted)])
        found["lightgbm"] = Candidate(model, {**info, **gbm_info, "folds": k_folds}, pairs,
                                      dense)
    return found
