"""The linear models' passes on the cluster: chains of models visiting hashed blocks.

Each chain is a sequence of tasks, one per block visited, each taking the
models the previous one returned (:func:`pipeline.sgd.visit`); a task runs
on the worker that holds its block, so only the models move.  The blocks are
either all hashed beforehand and kept (:func:`fit_linear`) or hashed window
by window as the chains go (:func:`stream_linear`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from distributed import Client, Future, as_completed

from pipeline.progress import StepProgress
from pipeline.sgd import (
    WindowTracker,
    chains_for,
    new_models,
    stream_windows,
    visit,
    visit_order,
    window_placement,
)


def fit_linear(
    client: Client,
    blocks: list[Future],
    placement: list[str],
    folds: list[int],
    passes: int,
    seed: int = 0,
    progress: StepProgress | None = None,
) -> list[Future]:
    """Fit one SGD model per entry of ``folds`` in the same passes over ``blocks``.

    Parameters
    ----------
    client : distributed.Client
    blocks : list of distributed.Future
        :class:`pipeline.sgd.TrainBlock` futures (need not be computed yet).
    placement : list of str
        The worker each block is computed on (see :func:`pipeline.distributed.fit.spread`).
    folds : list of int
        :data:`pipeline.sgd.FULL` and/or the folds to leave out.
    passes : int
    seed : int, default 0
    progress : StepProgress, optional
        Told of every block visited (phase ``"passes"``).

    Returns
    -------
    list of distributed.Future
        One per chain, each a dict of fold to fitted SGDRegressor; together they
        hold every model of ``folds``.
    """
    chains = chains_for(folds, len(set(placement)))
    run = uuid.uuid4().hex[:8]
    heads: list[Future] = []
    visited = as_completed()
    for c, carried in enumerate(chains):
        head: object = new_models(carried, seed)
        for epoch in range(passes):
            for i in visit_order(placement, c, epoch, seed):
                head = client.submit(visit, head, blocks[i],
                                     key=f"sgd-pass-{run}-{c}-{epoch}-{i}",
                                     workers=[placement[i]], allow_other_workers=True)
                visited.add(head)
        heads.append(head)
    total = visited.count()
    per_pass = total / max(passes, 1)
    done = 0
    # Futures are dropped as they finish, so a finished visit's models are freed.
    for _ in visited:
        done += 1
        if progress is not None:
            current = min(int(done / per_pass) + 1, passes)
            progress.update("passes", done, total,
                            f"block visits (pass {current}/{passes}, {len(folds)} models "
                            f"in {len(chains)} chains)")
    return heads


def stream_linear(
    client: Client,
    files: list[str],
    hash_file: Callable,
    args: tuple,
    workers: list[str],
    per_worker: int,
    folds: list[int],
    rounds: int,
    seed: int = 0,
    others: list[Future] | None = None,
    progress: StepProgress | None = None,
) -> list[Future]:
    """Fit the models of ``folds`` as :func:`fit_linear` does, hashing the blocks as they go.

    One pass over the files: they are hashed in windows of ``per_worker`` blocks per worker
    (:func:`pipeline.sgd.stream_windows`), each block on the worker the chains
    visit it on; a window is started only when every chain has visited the blocks
    of the window two before it, whose blocks are then freed.  A worker so holds
    at most two windows' blocks, however many rows there are.  Each chain starts
    a window where it ended the one before, at another worker than the other
    chains, so that the workers keep busy side by side.

    Parameters
    ----------
    client : distributed.Client
    files : list of str
        The training files, each one :class:`pipeline.sgd.TrainBlock`.
    hash_file : callable
        ``hash_file(path, *args)`` gives a file's block; its tasks are named
        ``hash-train-block``.
    args : tuple
    workers : list of str
        The workers to hash and visit on, in a fixed order (no more than the files).
    per_worker : int
        Blocks per worker in a window.
    folds : list of int
        See :func:`fit_linear`.
    rounds : int
        Visits of each chain to a window's blocks, each in a new order, before the
        next window: as many updates from one hashing as ``rounds`` passes give.
    seed : int, default 0
    others : list of distributed.Future
        Hashing started beside (the validation blocks), counted in the progress.
    progress : StepProgress, optional
        Told of every block hashed (phase ``"hashing"``), then of every block visited
        (``"passes"``).

    Returns
    -------
    list of distributed.Future
        See :func:`fit_linear`.
    """
    chains = chains_for(folds, len(workers))
    windows = stream_windows(len(files), len(workers), per_worker, seed)
    tracker = WindowTracker([len(w) * len(chains) * rounds for w in windows])
    run = uuid.uuid4().hex[:8]
    heads: list[object] = [new_models(carried, seed) for carried in chains]
    blocks: dict[int, list[Future]] = {}
    window_of: dict[str, int] = {}
    running = as_completed(others or [])
    hashes = len(others or []) + sum(len(w) for w in windows)
    visits = sum(len(w) for w in windows) * len(chains) * rounds

    def start(w: int) -> None:
        placement = window_placement(windows[w], workers)
        blocks[w] = [client.submit(hash_file, files[i], *args,
                                   key=f"hash-train-block-{run}-{w}-{i}", workers=[p],
                                   allow_other_workers=True)
                     for i, p in zip(windows[w], placement, strict=True)]
        running.update(blocks[w])
        for c in range(len(chains)):
            for r in range(w * rounds, (w + 1) * rounds):
                for j in visit_order(placement, c, r, seed, shift=-r):
                    heads[c] = client.submit(visit, heads[c], blocks[w][j],
                                             key=f"sgd-pass-{run}-{c}-{r}-{j}",
                                             workers=[placement[j]], allow_other_workers=True)
                    window_of[heads[c].key] = w
                    running.add(heads[c])

    for w in tracker.start():
        start(w)
    hashed = visited = 0
    for future in running:
        if future.status == "error":
            future.result()  # raises the task's error
        w = window_of.pop(future.key, None)
        if w is None:
            hashed += 1
            if progress is not None:
                progress.update("hashing", hashed, hashes, "blocks (streamed)")
            continue
        visited += 1
        if tracker.visited(w):
            del blocks[w]  # every chain has been by: the workers may free them
            for new in tracker.start():
                start(new)
        # The passes' share only moves once the hashing's is full, so the step's does not
        # go back.
        if progress is not None and hashed == hashes:
            progress.update("passes", visited, visits,
                            f"block visits ({len(folds)} models in {len(chains)} chains, "
                            f"{len(windows)} windows)")
    return heads
