"""Connect a step to a Dask cluster (the one named, or a LocalCluster) and run tasks on it."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping

import dask
from dask.delayed import Delayed
from distributed import Client, Future, LocalCluster, as_completed, default_client

from pipeline.progress import StepProgress

log = logging.getLogger(__name__)

if not logging.getLogger().isEnabledFor(logging.DEBUG):
    # distributed sets its loggers to INFO on import; its start/stop chatter would
    # drown the step's own log.
    logging.getLogger("distributed").setLevel(logging.WARNING)

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"

#: Dask settings of every worker the pipeline runs on.  The statistical profiler
#: samples each worker's stack every 10 ms holding the GIL, which takes that time
#: from the Python code of every task (the feature hashing included), so it is off.
#: The images set the same through the environment (see :func:`worker_env`).
WORKER_CONFIG: dict[str, object] = {"distributed.worker.profile.enabled": False}


def worker_env(config: Mapping[str, object] = WORKER_CONFIG) -> dict[str, str]:
    """Dask settings as the environment variables Dask reads at start-up.

    For workers started as their own processes (``dask worker``), which read their
    settings from the environment.

    Parameters
    ----------
    config : mapping, default :data:`WORKER_CONFIG`
        Dotted Dask keys and their values.

    Returns
    -------
    dict
        E.g. ``{"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}``.
    """
    return {"DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
            for key, value in config.items()}


def local_cluster(n_workers: int | None = None, memory_limit: str | None = "auto") -> LocalCluster:
    """Start a LocalCluster of single-threaded worker processes.

    Parameters
    ----------
    n_workers : int, optional
        Worker processes; default one per CPU core.
    memory_limit : str, optional
        Per-worker memory limit passed to Dask (``"auto"`` shares the machine's memory).

    Returns
    -------
    distributed.LocalCluster
        A running cluster; close it when done.
    """
    # One thread per process: hashing and SGD hold the GIL, so processes are what scale.
    # The nannies hand the configuration current at start-up to their workers.
    with dask.config.set(WORKER_CONFIG):
        return LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=os.environ.get("WINE_PIPELINE_DASHBOARD", ":0"),
        )


@contextlib.contextmanager
def dask_client(scheduler: str | None = None) -> Iterator[Client]:
    """Yield a Dask client for one step.

    Parameters
    ----------
    scheduler : str, optional
        Scheduler address such as ``tcp://scheduler:8786``. Defaults to
        ``$DASK_SCHEDULER_ADDRESS``; when neither is set a LocalCluster is
        started for the duration of the block.

    Yields
    ------
    distributed.Client
        Connected client.
    """
    address = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if address:
        log.info("connecting to Dask scheduler %s", address)
        with Client(address, timeout="60s") as client:
            yield client
        return
    with local_cluster() as cluster, Client(cluster) as client:
        log.info("started a LocalCluster: %s, dashboard %s", cluster.scheduler_address,
                 client.dashboard_link)
        yield client


def current_client() -> Client:
    """The client of the cluster the step runs on, as :func:`dask_client` connected it.

    Returns
    -------
    distributed.Client

    Raises
    ------
    ValueError
        When no client is connected.
    """
    return default_client()


def worker_count(client: Client) -> int:
    """Number of workers the client's cluster has now (at least 1).

    Parameters
    ----------
    client : distributed.Client

    Returns
    -------
    int
    """
    return max(len(client.scheduler_info(n_workers=-1)["workers"]), 1)


def gather_tracked(client: Client, futures: list, progress: StepProgress | None, phase: str,
                   detail: str = "") -> list:
    """Wait for futures, telling ``progress`` as each one finishes, and gather them.

    Parameters
    ----------
    client : distributed.Client
    futures : list of distributed.Future
    progress : StepProgress or None
    phase : str
        The phase of ``progress`` the tasks make up.
    detail : str, optional
        Said after the counts (e.g. ``"blocks"``).

    Returns
    -------
    list
        The results, in order.
    """
    finished = as_completed(futures)
    for _ in (progress.track(phase, finished, len(futures), detail) if progress else finished):
        pass
    return client.gather(futures)


def compute_tracked(client: Client, tasks: list, progress: StepProgress | None, phase: str,
                    detail: str = "") -> list:
    """Compute delayed tasks on the cluster, telling ``progress`` as each one finishes.

    Parameters
    ----------
    client : distributed.Client
    tasks : list of dask.delayed.Delayed
    progress : StepProgress or None
    phase, detail : str
        See :func:`gather_tracked`.

    Returns
    -------
    list
        The tasks' results, in order.
    """
    return gather_tracked(client, client.compute(tasks), progress, phase, detail)


def compute_per_block(client: Client, func: Callable, blocks: list[Delayed], args: list[tuple],
                      *, name: str, progress: StepProgress | None, phase: str,
                      detail: str = "") -> list:
    """Compute ``func(block, *args[i])`` on the cluster for each lazy block, tracked.

    Parameters
    ----------
    client : distributed.Client
    func : callable
        Takes the block's value (a DataFrame, say) first.
    blocks : list of dask.delayed.Delayed
        E.g. :func:`pipeline.distributed.csv_blocks.read_csv_blocks`.
    args : list of tuple
        The further arguments of each block's call, one tuple per block; any may be
        a future (see :func:`broadcast`).
    name : str
        Name of the tasks on the dashboard (``name-<run>-<i>``).
    progress : StepProgress or None
    phase, detail : str
        See :func:`gather_tracked`.

    Returns
    -------
    list
        The calls' results, in the order of ``blocks``.
    """
    run = uuid.uuid4().hex[:8]
    tasks = [dask.delayed(func)(block, *extra, dask_key_name=f"{name}-{run}-{i}")
             for i, (block, extra) in enumerate(zip(blocks, args, strict=True))]
    return compute_tracked(client, tasks, progress, phase, detail)


def broadcast(client: Client, obj: object) -> Future:
    """Send ``obj`` (a model, say) to every worker once, for tasks to take as an argument."""
    [future] = client.scatter([obj], broadcast=True)
    return future


def submit_per_file(client: Client, func: Callable, files: list, *args: object,
                    name: str, workers: list[str] | None = None) -> list[Future]:
    """Start ``func(path, *args)`` on the cluster for each file, one task per file.

    Parameters
    ----------
    client : distributed.Client
    func : callable
        Takes the file's path (a str) first; any of ``args`` may be a future
        (see :func:`broadcast`).
    files : list of path-like
    *args
        Passed after the path.
    name : str
        Name of the tasks on the dashboard (``name-<run>-<i>``).
    workers : list of str, optional
        A worker per file to run its task on (others may take it when that one is
        gone), so that later tasks know where each result lives.

    Returns
    -------
    list of distributed.Future
        In the order of ``files``.
    """
    run = uuid.uuid4().hex[:8]
    if workers is None:
        return [client.submit(func, str(f), *args, key=f"{name}-{run}-{i}")
                for i, f in enumerate(files)]
    return [client.submit(func, str(f), *args, key=f"{name}-{run}-{i}", workers=[w],
                          allow_other_workers=True)
            for i, (f, w) in enumerate(zip(files, workers, strict=True))]


def map_files(client: Client, func: Callable, files: list, *args: object, name: str) -> list:
    """``func(path, *args)`` for each file, computed on the cluster and gathered.

    Parameters
    ----------
    client : distributed.Client
    func, files, *args, name
        See :func:`submit_per_file`.

    Returns
    -------
    list
        The results, in the order of ``files``.
    """
    return client.gather(submit_per_file(client, func, files, *args, name=name))
