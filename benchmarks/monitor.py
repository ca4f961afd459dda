"""Peak resident memory of a set of process trees, polled in a background thread.

Every ``interval`` seconds the monitor walks each watched process and its
descendants and records their RSS.  On Linux it also reads ``VmHWM`` (the
kernel's own high-water mark of the RSS) from ``/proc/<pid>/status``, so a
spike shorter than the polling interval still counts in the overall peak; the
per-stage peaks come from the samples alone.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import psutil

MB = 1024 * 1024


def _hwm_bytes(pid: int) -> int:
    """Kernel high-water mark of the RSS of ``pid`` (0 where unavailable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _short_cmd(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
    except (psutil.Error, OSError):
        return "?"
    text = " ".join(cmd)
    for marker, name in (("ipykernel", "jupyter-kernel"), ("multiprocessing.spawn", "spawned"),
                         ("multiprocessing.forkserver", "forkserver"),
                         ("resource_tracker", "resource-tracker")):
        if marker in text:
            return name
    return Path(cmd[0]).name if cmd else "?"


@dataclasses.dataclass
class ProcStat:
    """What was seen of one process."""

    role: str
    label: str
    pid: int
    cmd: str
    peak_sampled: int = 0
    peak_hwm: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def peak(self) -> int:
        return max(self.peak_sampled, self.peak_hwm)


class Monitor:
    """Poll the RSS of watched process trees until stopped.

    Parameters
    ----------
    interval : float
        Seconds between polls.
    kill_above : dict, optional
        ``role -> bytes``: a watched tree whose summed RSS exceeds the bound is
        killed (used to keep the single-process reference from exhausting the machine).
    """

    def __init__(self, interval: float = 0.5, kill_above: dict[str, int] | None = None):
        self.interval = interval
        self.kill_above = dict(kill_above or {})
        self.killed: dict[str, str] = {}
        self._roots: dict[str, int] = {}
        self._root_labels: dict[str, str] = {}
        self._child_labels: dict[str, str] = {}
        self.procs: dict[int, ProcStat] = {}
        #: (time, pid, rss bytes, user+system CPU seconds) samples.
        self.samples: list[tuple[float, int, int, float]] = []
        #: role -> peak of the summed RSS of its tree.
        self.tree_peak: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-monitor", daemon=True)

    def watch(self, role: str, pid: int, label: str | None = None,
              child_label: str | None = None) -> None:
        """Watch process ``pid`` and its descendants under ``role``.

        ``label`` names the process itself (default ``role``); ``child_label`` names
        its spawned child, e.g. the worker process under a nanny.
        """
        with self._lock:
            self._roots[role] = pid
            self._root_labels[role] = label or role
            if child_label:
                self._child_labels[role] = child_label

    def unwatch(self, role: str) -> None:
        with self._lock:
            self._roots.pop(role, None)

    def start(self) -> Monitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def poll(self) -> None:
        """Take one sample of every watched tree."""
        now = time.time()
        with self._lock:
            roots = dict(self._roots)
        # One scan of /proc per poll for all the trees (psutil's children() scans it once
        # per call): the harness's own CPU comes out of the cores the pipeline uses.
        children: dict[int, list[int]] = {}
        for proc in psutil.process_iter(["ppid"]):
            children.setdefault(proc.info["ppid"], []).append(proc.pid)
        for role, root_pid in roots.items():
            tree = []
            todo = [root_pid]
            while todo:
                pid = todo.pop()
                try:
                    tree.append(psutil.Process(pid))
                except psutil.Error:
                    continue
                todo.extend(children.get(pid, []))
            if not tree or tree[0].pid != root_pid:
                continue
            total = 0
            for proc in tree:
                try:
                    with proc.oneshot():
                        rss = proc.memory_info().rss
                        times = proc.cpu_times()
                except psutil.Error:
                    continue
                cpu = times.user + times.system
                total += rss
                stat = self.procs.get(proc.pid)
                if stat is None:
                    cmd = _short_cmd(proc)
                    if proc.pid == root_pid:
                        label = self._root_labels.get(role, role)
                    elif role in self._child_labels and cmd == "spawned":
                        label = self._child_labels[role]
                    else:
                        label = f"{role}/{cmd}"
                    stat = ProcStat(role, label, proc.pid, cmd, first_seen=now)
                    self.procs[proc.pid] = stat
                stat.peak_sampled = max(stat.peak_sampled, rss)
                stat.peak_hwm = max(stat.peak_hwm, _hwm_bytes(proc.pid))
                stat.last_seen = now
                stat.cpu_seconds = cpu
                self.samples.append((now, proc.pid, rss, cpu))
            self.tree_peak[role] = max(self.tree_peak.get(role, 0), total)
            limit = self.kill_above.get(role)
            if limit and total > limit and role not in self.killed:
                self.killed[role] = (f"killed by the harness: {total / MB:.0f} MB resident, "
                                     f"above the {limit / MB:.0f} MB bound")
                for proc in reversed(tree):
                    try:
                        proc.kill()
                    except psutil.Error:
                        pass

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)
        self.poll()

    # ------------------------------------------------------------------ reports

    def peaks(self, roles: list[str] | None = None) -> list[dict]:
        """Peak RSS of every process seen (of ``roles``), largest first."""
        out = []
        for stat in self.procs.values():
            if roles is not None and stat.role not in roles:
                continue
            out.append({
                "role": stat.role,
                "process": stat.label,
                "pid": stat.pid,
                "cmd": stat.cmd,
                "peak_rss_mb": round(stat.peak / MB, 1),
                "peak_rss_sampled_mb": round(stat.peak_sampled / MB, 1),
                "cpu_seconds": round(stat.cpu_seconds, 2),
            })
        return sorted(out, key=lambda d: -d["peak_rss_mb"])

    def window_peaks(self, start: float, stop: float, roles: list[str] | None = None) -> dict:
        """Largest sampled RSS per process label between ``start`` and ``stop``.

        The window is widened by one polling interval at each end, so that a step
        shorter than the interval still has its samples.
        """
        out: dict[str, float] = {}
        for t, pid, rss, _ in self.samples:
            if start - self.interval <= t <= stop + self.interval:
                stat = self.procs[pid]
                if roles is not None and stat.role not in roles:
                    continue
                out[stat.label] = max(out.get(stat.label, 0.0), rss / MB)
        return {k: round(v, 1) for k, v in sorted(out.items())}

    def window_cpu(self, start: float, stop: float, roles: list[str] | None = None) -> dict:
        """CPU seconds (user + system) used per process label between ``start`` and ``stop``.

        Measured between the last samples before and within the window, so it is
        accurate to about one polling interval at each end.
        """
        before: dict[int, float] = {}
        last: dict[int, float] = {}
        for t, pid, _, cpu in self.samples:
            if t < start:
                before[pid] = cpu
            elif t <= stop:
                last[pid] = cpu
        out: dict[str, float] = {}
        for pid, cpu in last.items():
            stat = self.procs[pid]
            if roles is not None and stat.role not in roles:
                continue
            out[stat.label] = out.get(stat.label, 0.0) + cpu - before.get(pid, 0.0)
        return {k: round(v, 2) for k, v in sorted(out.items())}

    def write_timeline(self, path: Path, roles: list[str] | None = None) -> None:
        """Write the samples as CSV: seconds since the first sample, process, pid, RSS, CPU."""
        rows = [row for row in self.samples if roles is None or self.procs[row[1]].role in roles]
        if not rows:
            return
        t0 = rows[0][0]
        lines = ["seconds,process,pid,rss_mb,cpu_seconds"]
        lines += [f"{t - t0:.2f},{self.procs[pid].label},{pid},{rss / MB:.1f},{cpu:.2f}"
                  for t, pid, rss, cpu in rows]
        path.write_text("\n".join(lines) + "\n")
