"""Where a long step is, and roughly how long is left, at a readable rate.

A step names its phases and their shares of the work up front
(``StepProgress("train", {"hashing": 0.5, "passes": 0.4, "trees": 0.1})``);
each phase then counts its units.  A line is logged (logger ``progress``) at
most every :data:`INTERVAL` seconds and when a phase ends::

    ... INFO progress: train: passes 11/26 block visits (pass 2/3, ...), 48% done, ~3 min left

The runners turn the ``NN% done`` of such lines into luigi's progress bar and
status message (see :mod:`pipeline.orchestration.runners`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

log = logging.getLogger("progress")

#: Least seconds between two progress lines of a step.
INTERVAL = 5.0

#: What a progress line looks like to the runners: the logger's name, the share done.
LINE = re.compile(r"\bprogress: .*?(\d{1,3})% done")

T = TypeVar("T")


def format_seconds(seconds: float) -> str:
    """A short human duration: ``45 s``, ``3 min``, ``1 h 20 min``."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 / 60:.0f} min"


class StepProgress:
    """The progress of one step through weighted phases.

    Parameters
    ----------
    step : str
        The step's name, first in every line.
    phases : dict of str to float
        Each phase's share of the step's work (normalised to sum to 1).
    interval : float, default :data:`INTERVAL`
        Least seconds between two lines.
    """

    def __init__(self, step: str, phases: dict[str, float], interval: float = INTERVAL) -> None:
        total = sum(phases.values()) or 1.0
        self.step = step
        self.weights = {name: w / total for name, w in phases.items()}
        self.interval = interval
        self.started = time.monotonic()
        self._finished: dict[str, float] = {}
        self._current: tuple[str, float] | None = None
        self._last = 0.0

    def fraction(self) -> float:
        """Share of the step's work done, 0 to 1."""
        done = sum(self.weights[name] * f for name, f in self._finished.items())
        if self._current is not None:
            name, f = self._current
            done += self.weights.get(name, 0.0) * f
        return min(done, 1.0)

    def update(self, phase: str, done: float, total: float, detail: str = "",
               force: bool = False) -> None:
        """Record that ``done`` of ``total`` units of ``phase`` are finished.

        Parameters
        ----------
        phase : str
            One of the phases given at construction.
        done, total : float
        detail : str, optional
            Said after the counts (e.g. ``"of pass 2/3"``).
        force : bool, default False
            Log even if the last line was less than ``interval`` ago.
        """
        share = done / total if total else 1.0
        self._current = (phase, share)
        if share >= 1.0:
            self._finished[phase] = 1.0
            self._current = None
        now = time.monotonic()
        if not (force or share >= 1.0) and now - self._last < self.interval:
            return
        self._last = now
        overall = self.fraction()
        elapsed = now - self.started
        left = ""
        if 0.02 <= overall < 1.0:
            left = f", ~{format_seconds(elapsed / overall - elapsed)} left"
        counts = f"{done:.0f}/{total:.0f}" if total else "done"
        extra = f" {detail}" if detail else ""
        log.info("%s: %s %s%s, %d%% done%s", self.step, phase, counts, extra,
                 int(overall * 100), left)

    def track(self, phase: str, items: Iterable[T], total: int, detail: str = "") -> Iterator[T]:
        """Yield ``items`` (e.g. ``distributed.as_completed``), counting each as one unit.

        Parameters
        ----------
        phase : str
        items : iterable
        total : int
            How many items there are.
        detail : str, optional

        Yields
        ------
        object
            Each item.
        """
        done = 0
        self.update(phase, 0, total, detail, force=True)
        for item in items:
            done += 1
            self.update(phase, done, total, detail)
            yield item
        if done < total:
            self.update(phase, total, total, detail)


def parse_line(line: str) -> int | None:
    """The percentage of a progress line, or None for any other line.

    Parameters
    ----------
    line : str

    Returns
    -------
    int or None
    """
    match = LINE.search(line)
    return int(match.group(1)) if match else None
