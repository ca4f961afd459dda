"""Long steps say where they are: in their log, in luigi (local and central), on the dashboard."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import run_cli
from pipeline.orchestration.runners import LineRelay
from pipeline.progress import StepProgress, format_seconds, parse_line

LINE = re.compile(r"progress: (?P<step>[\w-]+): (?P<phase>\w+) (?P<done>\d+)/(?P<total>\d+)"
                  r".*?, (?P<pct>\d+)% done")


def test_lines_name_the_phase_the_share_and_what_is_left(caplog):
    progress = StepProgress("train", {"hashing": 0.5, "passes": 0.5}, interval=0)
    with caplog.at_level(logging.INFO, logger="progress"):
        for i in range(1, 11):
            progress.update("hashing", i, 10, "blocks")
        progress.update("passes", 5, 10, "block visits")
    lines = [f"{r.name}: {r.getMessage()}" for r in caplog.records]
    assert lines[0].startswith("progress: train: hashing 1/10 blocks, 5% done")
    assert "50% done" in lines[9] and "left" in lines[9]
    assert lines[-1].startswith("progress: train: passes 5/10 block visits, 75% done, ~")
    assert [parse_line(line) for line in lines][-1] == 75
    assert parse_line("2026 INFO something else 40% done") is None


def test_lines_come_at_a_readable_rate(caplog):
    progress = StepProgress("make-dataset", {"writing": 1.0}, interval=3600)
    with caplog.at_level(logging.INFO, logger="progress"):
        for i in range(1, 1001):
            progress.update("writing", i, 1000)
    # The first (forced by nothing: the clock starts at 0) and the last only.
    assert len(caplog.records) == 2
    assert caplog.records[-1].getMessage().endswith("100% done")


def test_durations_read_well():
    assert format_seconds(12) == "12 s"
    assert format_seconds(180) == "3 min"
    assert format_seconds(4800) == "1 h 20 min"


def test_the_status_is_the_latest_progress_line_at_most_once_an_interval():
    sent: list[str] = []
    relay = LineRelay("train", sent.append, interval=3600)
    relay.line("starting")  # the first line goes out at once
    relay.line("progress: train: hashing 3/26 blocks, 6% done, ~3 min left")
    relay.line("INFO distributed chatter")  # does not displace the progress line
    relay.line("progress: train: hashing 4/26 blocks, 8% done, ~3 min left")
    relay.flush()
    relay.line("model written")  # once there was progress, the status stays progress
    relay.flush()
    assert sent == ["starting", "progress: train: hashing 4/26 blocks, 8% done, ~3 min left"]
    assert list(relay.tail)[-2:] == ["progress: train: hashing 4/26 blocks, 8% done, ~3 min left",
                                     "model written"]  # the log keeps every line


def test_a_training_run_reports_progress_every_few_seconds(tmp_path, dataset_dir):
    out = tmp_path / "model.joblib"
    started = time.monotonic()
    result = run_cli("train", "--dataset-dir", str(dataset_dir), "--out-model", str(out))
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    found = [m.groupdict() for m in map(LINE.search, result.stderr.splitlines()) if m]
    assert {f["step"] for f in found} == {"train"}
    assert {f["phase"] for f in found} == {"hashing", "passes", "trees"}
    shares = [int(f["pct"]) for f in found]
    assert shares == sorted(shares) and shares[-1] == 100
    # Not a flood: about one line per five seconds of work, plus each phase's ends.
    assert len(found) <= took / 5 + 8, len(found)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def luigid(tmp_path):
    port = _free_port()
    luigid = Path(sys.executable).parent / "luigid"
    proc = subprocess.Popen([str(luigid), "--port", str(port), "--logdir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/static/visualiser/index.html", timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("luigid did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _tasks(url: str, status: str) -> dict:
    query = urllib.parse.quote(json.dumps({"status": status, "upstream_status": "",
                                           "search": ""}))
    with urllib.request.urlopen(f"{url}/api/task_list?data={query}", timeout=10) as response:
        return json.loads(response.read())["response"]


def test_luigid_shows_each_steps_progress(tmp_path, luigid):
    result = run_cli("run", "--source", "synthetic:4000", "--data-root", str(tmp_path / "root"),
                     "--luigi-url", luigid)
    assert result.returncode == 0, result.stderr[-3000:]
    done = _tasks(luigid, "DONE")
    by_family = {task["name"]: task for task in done.values()}
    assert {"MakeDataset", "Train", "Evaluate"} <= set(by_family)
    for family, step in (("MakeDataset", "make-dataset"), ("Train", "train"),
                         ("Evaluate", "evaluate")):
        task = by_family[family]
        assert task["status_message"].startswith(f"progress: {step}: "), task
        assert task["progress_percentage"] == 100, task
