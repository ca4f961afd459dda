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
import time
from collections.abc import Callable, Sequence

from pipeline.progress import parse_line

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


class LineRelay:
    """Log a step's lines, keep the last ones, and report a status at a readable rate.

    The status is the latest line until the step prints a progress line (see
    :mod:`pipeline.progress`), and the latest progress line from then on; at most
    one every ``interval`` seconds, and the last one when the step ends.

    Parameters
    ----------
    prefix : str
        Put before each logged line (the step's name).
    set_status : callable, optional
        Receives the status text (luigi's status message).
    interval : float, default 1.0
    logger : logging.Logger, optional
        Where the lines are logged (default: this module's).
    """

    def __init__(self, prefix: str, set_status: StatusCallback | None,
                 interval: float = 1.0, logger: logging.Logger | None = None) -> None:
        self.prefix = prefix
        self.log = logger or log
        self.set_status = set_status
        self.interval = interval
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._last_sent = 0.0
        self._pending: str | None = None
        self._seen_progress = False

    def line(self, text: str) -> None:
        """Take one line of the step's output."""
        text = text.rstrip()
        if not text:
            return
        self.tail.append(text)
        self.log.info("[%s] %s", self.prefix, text)
        if self.set_status is None:
            return
        is_progress = parse_line(text) is not None
        if is_progress:
            # Without the log record's time and logger: the UI shows where the step is.
            self._pending, self._seen_progress = text[text.index("progress: "):][:300], True
        elif not self._seen_progress:
            self._pending = text[-300:]
        now = time.monotonic()
        if now - self._last_sent >= self.interval:
            self.flush()
            self._last_sent = now

    def flush(self) -> None:
        """Report the pending status, if any."""
        if self._pending is not None and self.set_status is not None:
            self.set_status(self._pending)
        self._pending = None


class LocalRunner(StepRunner):
    """Run each step as a subprocess of this Python, streaming its log into luigi's.

    Parameters
    ----------
    env : mapping, optional
        Extra environment for the step (over this process's own), e.g.
        ``WINE_LOG_LEVEL``, the step's ``--log-level``.
    """

    name = "local"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(env or {})

    def run(self, step, args, task_id, set_status=None):  # noqa: D102 - documented on the base
        argv = [sys.executable, "-m", "pipeline.cli", step, *args]
        log.info("starting %s: %s", task_id, " ".join(argv))
        relay = LineRelay(step, set_status)
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
            relay.line(line)
        relay.flush()
        code = proc.wait()
        if code != 0:
            raise StepFailed(f"step {step!r} ({task_id}) exited with {code}; last lines:\n"
                             + "\n".join(relay.tail))


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
