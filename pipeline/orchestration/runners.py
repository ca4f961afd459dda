"""Runners start one step's command line and wait for it.

The runner is the one switch between running the DAG on this machine and
running it as containers.

A runner receives the step name and its arguments, exactly what
``wine-pipeline <step> <args>`` takes, so the CLI stays the only contract.
"""

from __future__ import annotations

import abc
import collections
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

#: Lines of a failed step's log quoted in the error.
TAIL_LINES = 30

StatusCallback = Callable[[str], None]


class StepFailed(RuntimeError):
    """A step exited non-zero; the message carries its last log lines."""


class StepRunner(abc.ABC):
    """Start ``wine-pipeline <step> <args>`` somewhere and wait for it to finish."""

    name: str = "abstract"

    @abc.abstractmethod
    def run(
        self,
        step: str,
        args: Sequence[str],
        task_id: str,
        set_status: StatusCallback | None = None,
    ) -> None:
        """Run one step to completion.

        Parameters
        ----------
        step : str
            Subcommand of ``wine-pipeline`` (``make-dataset``, ``train``, ...).
        args : sequence of str
            Its arguments; paths are as the step itself sees them.
        task_id : str
            luigi's task id, used to name and label what is started.
        set_status : callable, optional
            Receives the latest log line, shown as luigi's status message.

        Raises
        ------
        StepFailed
            When the step exits non-zero.
        """


def _relay(line: str, tail: collections.deque, set_status: StatusCallback | None,
           prefix: str) -> None:
    line = line.rstrip()
    if not line:
        return
    tail.append(line)
    log.info("[%s] %s", prefix, line)
    if set_status is not None:
        set_status(line[-200:])


class LocalRunner(StepRunner):
    """Run each step as a subprocess of this Python, streaming its log into luigi's.

    Parameters
    ----------
    env : mapping, optional
        Extra environment for the step, e.g. ``DASK_SCHEDULER_ADDRESS``.
    """

    name = "local"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(env or {})

    def run(self, step, args, task_id, set_status=None):  # noqa: D102 - documented on the base
        argv = [sys.executable, "-m", "pipeline.cli", step, *args]
        log.info("starting %s: %s", task_id, " ".join(argv))
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            _relay(line, tail, set_status, step)
        code = proc.wait()
        if code != 0:
            raise StepFailed(
                f"step {step!r} ({task_id}) exited with {code}; last lines:\n" + "\n".join(tail)
            )


def make_runner(name: str, **options) -> StepRunner:
    """Build the runner named by the DAG's one switch.

    Parameters
    ----------
    name : {"local", "docker"}
        ``local`` runs subprocesses; ``docker`` starts one container per step.
    **options
        Passed to the runner's constructor.

    Returns
    -------
    StepRunner
    """
    if name == "local":
        return LocalRunner(**options)
    if name == "docker":
        # Imported here so the local way needs no docker SDK.
        from pipeline.orchestration.docker_runner import DockerRunner

        # Image tag, network, data root, ... come from the environment Compose sets
        # (WINE_*); explicit options win.
        return DockerRunner.from_env(**options)
    raise ValueError(f"unknown runner {name!r}; choose 'local' or 'docker'")
