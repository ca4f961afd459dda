"""The data root on a real object store: SeaweedFS's S3 server, started for the session.

The whole DAG runs with an ``s3://`` data root and gives the predictions a local root
gives; a step killed mid-write leaves nothing complete and its rerun equals a clean
run; the object-store protocol of :mod:`pipeline.atomic` refuses what is not ours and
clears what killed writers left; an unusable store is named in one line.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow

s3fs = pytest.importorskip("s3fs")


@pytest.fixture
def s3_env(object_store, monkeypatch):
    """This process pointed at the test store (fresh s3fs instances, no cached listings)."""
    for name, value in object_store.env().items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    yield object_store
    s3fs.S3FileSystem.clear_instance_cache()


def store_fs(store) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(endpoint_url=store.endpoint, key=store.access_key,
                             secret=store.secret_key, skip_instance_cache=True,
                             use_listings_cache=False)


def unique_prefix(store, name: str) -> str:
    return f"s3://{store.bucket}/{name}-{os.getpid()}-{time.monotonic_ns()}"


def upload(store, local, url: str) -> str:
    store_fs(store).put_file(str(local), url)
    return url


def keys_below(store, url: str) -> list[str]:
    inner = url.split("://", 1)[1]
    return sorted(k[len(inner) + 1:] for k in store_fs(store).find(inner))


def test_the_whole_dag_on_the_object_store_predicts_what_a_local_root_does(
        object_store, sample_csv, tmp_path):
    store = object_store
    prefix = unique_prefix(store, "dag")
    source = upload(store, sample_csv, f"{prefix}/in/reviews.csv")
    inventory = upload(store, sample_csv, f"{prefix}/in/inventory.csv")
    root = f"{prefix}/root"
    first = run_cli("run", "--source", source, "--data-root", root, "--inventory", inventory,
                    env=store.env(), timeout=1200)
    assert first.returncode == 0, first.stderr[-3000:]
    lines = dict(line.split(":", 1) for line in first.stdout.splitlines())
    outputs = {k.strip(): v.split(" (of ")[0].strip() for k, v in lines.items()}
    for name in ("model", "report", "predictions", "sheet"):
        assert outputs[name].startswith(root + "/"), outputs
    fs = store_fs(store)
    assert fs.cat_file(outputs["report"]).startswith(b"<!DOCTYPE html")
    predicted = pd.read_csv(io.BytesIO(fs.cat_file(outputs["predictions"])))
    assert len(predicted) == len(pd.read_csv(sample_csv))
    # The data set is one attempt under its _SUCCESS, which lists every file of it.
    dataset = [k for k in keys_below(store, root) if k.startswith("dataset/")]
    marker = next(k for k in dataset if k.endswith("/_SUCCESS"))
    record = json.loads(fs.cat_file(f"{root}/{marker}"))
    base = marker.rsplit("/", 1)[0]
    assert {k for k in dataset if k != marker} == {
        f"{base}/{record['attempt']}/{f}" for f in record["files"]}

    again = run_cli("run", "--source", source, "--data-root", root, "--inventory", inventory,
                    env=store.env(), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "complete ones were encountered" in again.stderr
    assert "ran successfully" not in again.stderr

    local = run_cli("run", "--source", str(sample_csv), "--data-root", str(tmp_path / "local"),
                    "--inventory", str(sample_csv), timeout=1200)
    assert local.returncode == 0, local.stderr[-3000:]
    local_csv = next((tmp_path / "local" / "predictions").rglob("*.csv"))
    pd.testing.assert_frame_equal(predicted, pd.read_csv(local_csv))


def make_dataset_args(source: str, out: str) -> list[str]:
    # Small blocks: enough partitions that the step is still writing when it is killed.
    return ["make-dataset", "--in-csv", source, "--out-dir", out, "--blocksize", "32KB"]


def test_a_step_killed_mid_write_leaves_nothing_complete_and_its_rerun_equals_a_clean_run(
        s3_env, sample_csv):
    from pipeline.atomic import is_complete_dir
    from pipeline.dataset import Dataset

    store = s3_env
    prefix = unique_prefix(store, "kill")
    source = upload(store, sample_csv, f"{prefix}/reviews.csv")
    out = f"{prefix}/dataset"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli",
                             *make_dataset_args(source, out)],
                            env={**os.environ, **store.env()}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        # Killed (the step, its LocalCluster and its workers) once pieces are landing.
        while not any("/train/part." in k for k in keys_below(store, out)):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the step wrote no piece in time"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    left = keys_below(store, out)
    assert left and all(k.startswith(".attempt-") for k in left), left
    assert not is_complete_dir(out)
    with pytest.raises(FileNotFoundError, match="not a complete data set"):
        Dataset(out)

    rerun = run_cli(*make_dataset_args(source, out), env=store.env())
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    clean = run_cli(*make_dataset_args(source, f"{prefix}/clean"), env=store.env())
    assert clean.returncode == 0, clean.stderr[-3000:]
    # The killed attempt is gone: one attempt, and the marker naming it.
    attempts = {k.split("/", 1)[0] for k in keys_below(store, out) if k != "_SUCCESS"}
    assert len(attempts) == 1
    redone, fresh = Dataset(out), Dataset(f"{prefix}/clean")
    assert redone.counts() == fresh.counts()
    for split in ("train", "valid", "test", "rejects"):
        pd.testing.assert_frame_equal(redone.read(split), fresh.read(split))


def test_the_protocol_refuses_what_is_not_ours_and_sweeps_what_killed_writers_left(s3_env):
    from pipeline import atomic
    from pipeline.storage import as_path

    store = s3_env
    root = as_path(unique_prefix(store, "protocol"))
    fs = store_fs(store)

    # A file output: uploaded whole with its marker; a foreign object is never replaced.
    with atomic.atomic_file(root / "model.joblib") as tmp:
        tmp.write_bytes(b"model")
    assert (root / "model.joblib").read_bytes() == b"model"
    assert atomic.marker_path(root / "model.joblib").is_file()
    (root / "theirs.csv").write_text("a user's file")
    with pytest.raises(atomic.NotOurs, match="did not write it"):
        with atomic.atomic_file(root / "theirs.csv") as tmp:
            tmp.write_text("ours")
    assert (root / "theirs.csv").read_text() == "a user's file"

    # A failed block leaves the previous complete output as it was.
    with atomic.atomic_dir(root / "out") as tmp:
        (tmp / "a.json").write_text("1")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.atomic_dir(root / "out") as tmp:
            (tmp / "a.json").write_text("2")
            raise RuntimeError("boom")
    assert [p.read_text() for p in atomic.listed_files(root / "out")] == ["1"]
    assert len([k for k in keys_below(store, str(root / "out")) if k != "_SUCCESS"]) == 1

    # An attempt the marker does not name (a killed writer's) goes with the next write.
    stale = root / "out" / ".attempt-0123456789ab" / "a.json"
    stale.write_text("half")
    with atomic.atomic_dir(root / "out") as tmp:
        (tmp / "a.json").write_text("3")
    assert [p.read_text() for p in atomic.listed_files(root / "out")] == ["3"]
    assert not fs.exists(str(stale).split("://", 1)[1])

    # Anything else inside a directory output is the user's: refused, left alone.
    (root / "out" / "notes.txt").write_text("mine")
    with pytest.raises(atomic.NotOurs, match="notes.txt"):
        with atomic.atomic_dir(root / "out"):
            pass
    assert (root / "out" / "notes.txt").read_text() == "mine"

    # Scratch space is removed afterwards, and an old one left by a killed step is swept.
    with atomic.scratch_dir(root / "model.joblib") as scratch:
        (scratch / "piece").write_text("x")
        assert (scratch / "piece").is_file()
    assert not scratch.exists()
    old = root / ".model.joblib.deadbeef.tmp.scratch" / "piece"
    old.write_text("left behind")
    assert atomic.sweep_stale(root / "model.joblib") == []  # younger than the grace period
    original = atomic.STALE_AFTER_SECONDS
    try:
        atomic.STALE_AFTER_SECONDS = 0.0
        assert [p.name for p in atomic.sweep_stale(root / "model.joblib")] == [
            ".model.joblib.deadbeef.tmp.scratch"]
    finally:
        atomic.STALE_AFTER_SECONDS = original
    assert not old.exists()


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    return errors[0]


def test_an_unusable_store_is_named_in_one_line(object_store, tmp_path):
    from benchmarks.object_store import _free_ports

    store = object_store
    args = ["run", "--source", "synthetic:200", "--data-root"]
    missing = run_cli(*args, f"s3://no-such-bucket-{os.getpid()}/root", env=store.env())
    assert "bucket 'no-such-bucket" in one_line_error(missing)
    assert "does not exist" in one_line_error(missing)

    refused = run_cli(*args, f"s3://{store.bucket}/root",
                      env={**store.env(), "AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    assert "refused the credentials" in one_line_error(refused)

    [port] = _free_ports(1)
    nobody = run_cli(*args, f"s3://{store.bucket}/root",
                     env={**store.env(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    message = one_line_error(nobody)
    assert "cannot reach the object store" in message and str(port) in message

    # A step on its own says the same as run does.
    step = run_cli("train", "--dataset-dir", f"s3://{store.bucket}/nothing",
                   "--out-model", f"s3://{store.bucket}/nothing/model.joblib",
                   env={**store.env(), "AWS_ACCESS_KEY_ID": "nobody"})
    assert "refused the credentials" in one_line_error(step)
