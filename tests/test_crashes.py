"""Crashes: a step killed mid-write, a Dask worker killed mid-step, reruns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from distributed import Client, LocalCluster

from conftest import read_split
from pipeline.steps.make_dataset import make_dataset
from pipeline.steps.predict import predict
from synth import generate_csv

SPLITS = ("train", "valid", "test", "rejects")


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("crash") / "reviews.csv"
    generate_csv(rows=60_000, seed=11, out_csv=path)
    return path


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, big_csv, client):
    out = tmp_path_factory.mktemp("clean") / "ds"
    make_dataset(big_csv, out, blocksize="1MB")
    return out


def contents(dataset):
    frames = {s: read_split(dataset, s) for s in SPLITS}
    return {s: f.sort_values(list(f.columns)).reset_index(drop=True) for s, f in frames.items()}


def assert_same_dataset(a, b):
    left, right = contents(a), contents(b)
    for split in SPLITS:
        pd.testing.assert_frame_equal(left[split], right[split])


def test_sigkill_mid_write_leaves_nothing_complete(tmp_path, big_csv, clean_run, client):
    out = tmp_path / "ds"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "make-dataset", "--in-csv", str(big_csv),
         "--out-dir", str(out), "--blocksize", "1MB"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    # Wait until the step is writing partitions, then kill it and its cluster at once.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        temps = list(tmp_path.glob(".ds.*.tmp"))
        if temps and list((temps[0] / "train").glob("*.parquet")):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the step never started writing")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists()  # nothing a scheduler would take as done
    # The rerun ignores the debris and equals a clean run.
    make_dataset(big_csv, out, blocksize="1MB")
    assert (out / "_SUCCESS").is_file()
    assert_same_dataset(out, clean_run)


def kill_when(proc: subprocess.Popen, ready, what: str) -> None:
    """SIGKILL the step and its whole cluster once ``ready()`` is true."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the step finished or timed out before {what}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def start_step(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args],
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_sigkill_during_train_and_predict(tmp_path, dataset_dir, model_path, sample_csv, client):
    # train: killed once its cluster is up and the fit under way; no model may appear.
    out = tmp_path / "model.joblib"
    proc = start_step("train", "--dataset-dir", str(dataset_dir), "--out-model", str(out),
                      "--model", "sgd")
    lines: list[str] = []

    def fitting() -> bool:
        line = proc.stdout.readline()
        lines.append(line)
        return "LocalCluster" in line

    kill_when(proc, fitting, "fitting")
    assert not out.exists() and not list(tmp_path.glob(".model.joblib.*"))
    # predict: killed while its pieces are being written.
    pred = tmp_path / "pred.csv"
    proc = start_step("predict", "--model", str(model_path), "--input", str(sample_csv),
                      "--output", str(pred), "--blocksize", "300KB")
    kill_when(proc, lambda: any(tmp_path.glob(".pred.csv.*/part.*.csv")), "writing")
    assert not pred.exists()
    # Reruns complete and equal a clean run's output.
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "predict", "--model",
                             str(model_path), "--input", str(sample_csv), "--output", str(pred)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    clean = tmp_path / "clean.csv"
    predict(model_path, sample_csv, clean)
    assert pred.read_bytes() == clean.read_bytes()


def test_killed_worker_does_not_change_the_output(tmp_path, big_csv, clean_run):
    out = tmp_path / "ds"
    with LocalCluster(n_workers=3, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        pids = list(c.run(os.getpid).values())
        error: list[BaseException] = []

        def step():
            try:
                make_dataset(big_csv, out, blocksize="1MB")
            except BaseException as err:  # reported below
                error.append(err)

        worker = threading.Thread(target=step)
        worker.start()
        # Kill a worker process for real once the step is under way.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
                list(p.glob("train/*.parquet")) for p in tmp_path.glob(".ds.*.tmp")):
            time.sleep(0.05)
        os.kill(pids[0], signal.SIGKILL)
        worker.join(timeout=300)
        assert not worker.is_alive()
        assert not error, error
        # The nanny restarted the worker: a new process took the killed one's place.
        assert pids[0] not in c.run(os.getpid).values()
    assert_same_dataset(out, clean_run)


def test_same_input_same_seed_same_output(tmp_path, big_csv, clean_run, client):
    make_dataset(big_csv, tmp_path / "again", blocksize="1MB")
    assert_same_dataset(tmp_path / "again", clean_run)
