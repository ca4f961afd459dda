"""Atomic outputs: what a writer killed outright leaves behind is swept by the next one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from pipeline import atomic
from pipeline.atomic import (
    STALE_AFTER_SECONDS,
    atomic_dir,
    atomic_file,
    scratch_dir,
    sweep_stale,
)

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pipeline import atomic

    kind, target = sys.argv[1], Path(sys.argv[2])
    with getattr(atomic, kind)(target) as tmp:
        if tmp.is_dir():
            (tmp / "part.0").write_text("half of it")
        else:
            tmp.write_text("half of it")
        print(tmp, flush=True)
        time.sleep(600)
""")


def start_writer(kind: str, target: Path) -> tuple[subprocess.Popen, Path]:
    """A process inside ``kind(target)``, stopped there; returns it and its temporary."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, kind, str(target)],
                            stdout=subprocess.PIPE, text=True)
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.exists() and tmp.parent == target.parent, tmp
    return proc, tmp


def age(path: Path) -> None:
    """Make ``path`` look older than the sweep's grace period."""
    old = time.time() - STALE_AFTER_SECONDS - 5
    os.utime(path, (old, old))


@pytest.mark.parametrize("kind", ["atomic_dir", "atomic_file", "scratch_dir"])
def test_a_killed_writers_temporary_is_swept_by_the_next_writer(tmp_path, kind):
    target = tmp_path / ("out.csv" if kind == "atomic_file" else "out")
    proc, debris = start_writer(kind, target)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert debris.exists() and not target.exists()  # nothing it could clean up
    age(debris)
    with getattr(atomic, kind)(target) as tmp:
        assert not debris.exists()
        if kind == "atomic_file":
            tmp.write_text("all of it")
        elif kind == "atomic_dir":
            (tmp / "part.0").write_text("all of it")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != target.name]
    assert leftovers == ([".out.csv.wine-pipeline"] if kind == "atomic_file" else [])
    if kind == "atomic_file":
        assert target.read_text() == "all of it"
    elif kind == "atomic_dir":
        assert (target / "part.0").read_text() == "all of it"


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    target = tmp_path / "ds"
    proc, tmp = start_writer("atomic_dir", target)
    try:
        age(tmp)  # old, but its writer holds it
        assert sweep_stale(target) == []
        assert (tmp / "part.0").read_text() == "half of it"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert sweep_stale(target) == [tmp]
    assert not tmp.exists()


def test_only_old_temporaries_of_the_same_output_are_swept(tmp_path):
    target = tmp_path / "ds"
    # Unlocked, as between a writer's mkdtemp and its lock: young, so kept.
    young = Path(tempfile.mkdtemp(prefix=".ds.", suffix=".tmp", dir=tmp_path))
    other = Path(tempfile.mkdtemp(prefix=".ds2.", suffix=".tmp", dir=tmp_path))
    keep = [tmp_path / "ds", tmp_path / ".ds.old", tmp_path / "ds.tmp", other]
    for path in keep:
        path.mkdir(exist_ok=True)
        age(path)
    assert sweep_stale(target) == []
    age(young)
    assert sweep_stale(target) == [young]
    assert all(path.exists() for path in keep)


def test_sweeping_where_nothing_was_written(tmp_path):
    assert sweep_stale(tmp_path / "missing" / "out.csv") == []
    with scratch_dir(tmp_path / "out.csv") as scratch:
        assert scratch.is_dir() and scratch.name.startswith(".out.csv.")
    assert not scratch.exists()
    with atomic_file(tmp_path / "out.csv") as tmp:
        tmp.write_text("x")
    with atomic_dir(tmp_path / "d") as tmp:
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.csv.wine-pipeline", "d",
                                                          "out.csv"]
