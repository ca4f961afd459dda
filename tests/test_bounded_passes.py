"""The two schedules of the linear models' passes: blocks kept in memory, or streamed.

The plain pieces (the memory estimate, the windows, which of them are in flight,
the GBM's rows hashed again) on their own; both schedules on a real cluster.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from distributed import get_task_stream
from test_train import _count_hashed_rows, _hashed_rows
from threadpoolctl import threadpool_limits

from conftest import read_split
from pipeline.dataset import Dataset, read_part
from pipeline.distributed.fit import _hash_train_file, fit_candidates, spread, workers_budget
from pipeline.distributed.sgd import stream_linear
from pipeline.features import FeatureSpec
from pipeline.gbm import gbm_step, thin
from pipeline.metrics import regression_metrics
from pipeline.model import n_epochs
from pipeline.params import HASHED_MEMORY_SHARE, MAX_ROWS
from pipeline.sgd import (
    FULL,
    WindowTracker,
    chains_for,
    fits_in_memory,
    gbm_rows,
    hash_block,
    hashed_budget,
    new_models,
    oof_frame,
    stream_windows,
    visit,
    visit_order,
    window_placement,
)
from pipeline.splitting import fold_of

GB = 2**30


def test_the_blocks_of_a_million_rows_fit_two_small_workers_and_of_ten_million_do_not():
    budget = hashed_budget([4 * GB, 4 * GB])
    assert budget == HASHED_MEMORY_SHARE * 8 * GB
    assert fits_in_memory(800_000, budget)  # 1M input rows: their training split
    assert not fits_in_memory(8_000_000, budget)
    # A worker without a limit: the memory counts as enough.
    assert fits_in_memory(10**9, hashed_budget([4 * GB, None]))
    assert fits_in_memory(10**9, hashed_budget([4 * GB, 0]))


def test_the_pass_streams_every_block_once_in_windows_a_few_blocks_per_worker():
    windows = stream_windows(11, n_workers=2, per_worker=2, seed=0)
    assert [len(w) for w in windows] == [4, 4, 3]
    assert sorted(sum(windows, [])) == list(range(11))
    assert sum(windows, []) != list(range(11))  # shuffled, not in file order
    assert stream_windows(11, n_workers=2, per_worker=2, seed=1) != windows
    assert window_placement([7, 3, 5], ["a", "b"]) == ["a", "b", "a"]


@pytest.mark.parametrize("n_workers", [2, 3])
def test_each_chain_starts_a_window_where_it_ended_the_last(n_workers):
    workers = [f"w{i}" for i in range(n_workers)]
    placement = window_placement(list(range(2 * n_workers)), workers)
    for chain in range(n_workers):
        ended = None
        starts = []
        for window in range(4):
            order = visit_order(placement, chain, window, seed=0, shift=-window)
            holders = [placement[i] for i in order]
            assert ended is None or holders[0] == ended
            ended = holders[-1]
            starts.append(holders[0])
        # Side by side: in each window, every chain at another worker.
        assert starts[0] == workers[chain]
    for window in range(4):
        firsts = {placement[visit_order(placement, c, window, 0, shift=-window)[0]]
                  for c in range(n_workers)}
        assert len(firsts) == n_workers


def test_at_most_two_windows_are_in_flight_and_each_goes_once_visited():
    tracker = WindowTracker([4, 4, 4, 2])
    assert tracker.start() == [0, 1]
    assert tracker.start() == []
    for _ in range(3):
        assert not tracker.visited(0)
    assert tracker.start() == []  # window 0 not visited by every chain yet
    tracker.visited(1)  # the next window's visits do not free the first
    assert tracker.in_flight() == [0, 1]
    assert tracker.visited(0)
    assert tracker.start() == [2]
    assert tracker.in_flight() == [1, 2]
    with pytest.raises(ValueError, match="no visit in flight"):
        tracker.visited(3)  # not started
    for _ in range(3):
        tracker.visited(1)
    assert tracker.start() == [3]
    for window, left in ((2, 4), (3, 2)):
        for _ in range(left):
            tracker.visited(window)
    assert tracker.in_flight() == [] and tracker.start() == []


def test_the_gbm_rows_hashed_again_are_those_thin_keeps_of_the_block(sample_csv):
    df = pd.read_csv(sample_csv, index_col=0).head(500)
    df["vintage"] = np.nan  # a cleaned column the raw sample does not have
    spec = FeatureSpec().fit(df)
    models = visit(new_models([FULL, 0, 1], seed=0), hash_block(df, spec, 88.0, False, 2))
    expected = thin(oof_frame(hash_block(df, spec, 88.0, True, 2), [models], 88.0), 3)
    found = thin(gbm_rows(df, spec, 88.0, 3, 2, [models]), 1)
    pd.testing.assert_frame_equal(found, expected)
    assert gbm_step(MAX_ROWS) == 1 and gbm_step(MAX_ROWS + 1) == 2
    assert gbm_step(8_000_000) == 4


def fit(client, dataset, **kwargs):
    files = Dataset(dataset).files
    return fit_candidates(client, files("train"), files("valid"), **kwargs)


def mae(candidate) -> float:
    return regression_metrics(candidate.pairs[:, 0], candidate.pairs[:, 1])["mae"]


def test_the_in_memory_schedule_is_chosen_when_the_blocks_fit_and_is_what_it_was(
        client, dataset_dir):
    limits = [w["memory_limit"] for w in client.scheduler_info(n_workers=-1)["workers"].values()]
    assert workers_budget(client) == hashed_budget(limits)
    found = fit(client, dataset_dir, kinds=("sgd",), seed=2, epochs=2)["sgd"]
    assert found.info["schedule"] == "in-memory" and found.info["epochs"] == 2
    # The same models as the chain of blocks kept in memory, worked out here.
    files = [f for f in Dataset(dataset_dir).files("train") if len(read_part(f))]
    model = found.model
    blocks = [hash_block(read_part(f), model.spec, model.target_mean_, False, 5)
              for f in files]
    placement = spread(client, len(files))
    (carried,) = chains_for([FULL], len(set(placement)))
    models = new_models(carried, seed=2)
    with threadpool_limits(1):  # as the workers run BLAS: its sums in the same order
        for epoch in range(2):
            for i in visit_order(placement, 0, epoch, seed=2):
                visit(models, blocks[i])
    np.testing.assert_array_equal(model.estimator_.coef_, models[FULL].coef_)
    np.testing.assert_array_equal(model.estimator_.intercept_, models[FULL].intercept_)


def test_the_streaming_schedule_hashes_each_file_once_and_the_gbm_rows_again(
        client, dataset_dir):
    train_rows = len(read_split(dataset_dir, "train"))
    valid_rows = len(read_split(dataset_dir, "valid"))
    n_files = len(Dataset(dataset_dir).files("train"))
    client.run(_count_hashed_rows)
    before = sum(client.run(_hashed_rows).values())
    with get_task_stream(client) as tasks:
        found = fit(client, dataset_dir, memory_budget=0)
    hashed = sum(client.run(_hashed_rows).values()) - before
    keys = [t["key"] for t in tasks.data if isinstance(t["key"], str)]
    assert sum(k.startswith("hash-train-block") for k in keys) == n_files
    assert sum(k.startswith("hash-gbm-rows") for k in keys) == n_files
    # Each training row once in the pass, each GBM row (here every one) once more.
    assert hashed == train_rows + valid_rows + train_rows
    for candidate in found.values():
        assert candidate.info["schedule"] == "streaming"
        assert candidate.info["epochs"] == n_epochs(train_rows)
    # Every row updates the model as often as the passes in memory would make it.
    assert found["sgd"].model.estimator_.t_ - 1 == n_epochs(train_rows) * train_rows
    assert found["lightgbm"].info["gbm_rows"] == train_rows
    assert found["lightgbm"].info["gbm_every_nth_row"] == 1
    assert mae(found["sgd"]) < 1.8  # one pass over a few thousand rows: a model still


def test_streamed_models_validate_as_well_as_those_kept_in_memory(client, dataset_dir):
    kept = fit(client, dataset_dir, epochs=3)
    streamed = fit(client, dataset_dir, epochs=3, memory_budget=0)
    for kind in ("sgd", "lightgbm"):
        assert kept[kind].info["schedule"] == "in-memory"
        assert streamed[kind].info["schedule"] == "streaming"
        assert streamed[kind].info["epochs"] == 3
        assert abs(mae(streamed[kind]) - mae(kept[kind])) < 0.05, kind


class HeldBlocks:
    """A progress that counts the hashed training blocks held on the workers at each step."""

    def __init__(self, client):
        self.client = client
        self.held: list[int] = []
        self.phases: set[str] = set()

    def update(self, phase, done, total, detail="", force=False):
        self.phases.add(phase)
        keys = [k for held in self.client.has_what().values() for k in held]
        self.held.append(sum(str(k).startswith("hash-train-block") for k in keys))


def test_streamed_blocks_are_freed_behind_the_chains_which_may_visit_them_twice(
        client, dataset_dir):
    files = Dataset(dataset_dir).files("train")
    df = pd.concat([read_part(f) for f in files])
    spec = FeatureSpec().fit(df)
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    folds = [FULL, 0, 1]
    progress = HeldBlocks(client)
    with get_task_stream(client) as tasks:
        # Windows of one block per worker, each visited twice, two in flight at most.
        chains = stream_linear(client, files, _hash_train_file, (spec, 88.0, False, 2), workers,
                               1, folds, rounds=2, seed=0, progress=progress)
    models = {k: m for c in client.gather(chains) for k, m in c.items()}
    assert sorted(models) == folds
    # SGD counts its updates: every row twice, a fold model's rows outside its fold.
    assert models[FULL].t_ - 1 == 2 * len(df)
    outside = (fold_of(df["description"], 2) != 0).sum()
    assert models[0].t_ - 1 == 2 * outside
    keys = [t["key"] for t in tasks.data if isinstance(t["key"], str)]
    assert sum(k.startswith("hash-train-block") for k in keys) == len(files)
    assert progress.phases == {"hashing", "passes"}
    assert 0 < max(progress.held) <= 2 * len(workers)
