"""The linear models' passes on the cluster: chains of models visiting hashed blocks.

Each chain is a sequence of tasks, one per block visited, each taking the
models the previous one returned (:func:`pipeline.sgd.visit`); a task runs
on the worker that holds its block, so only the models move.
"""

from __future__ import annotations

import uuid

from distributed import Client, Future, as_completed

from pipeline.progress import StepProgress
from pipeline.sgd import chains_for, new_models, visit, visit_order


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
