"""End to end, the Docker way: build the images, bring the Compose set-up up with two
workers, let the orchestrator run the whole DAG on the real sample and score an
inventory, check the model, the report and the predictions, that both workers executed
tasks and that no step container is left.

Run on its own with ``make e2e`` (or ``pytest -m "docker and slow"``).  Skips only
when no engine answers; WINE_REQUIRE_DOCKER=1 turns that into a failure.  Settings:
WINE_VERSION (image tag, default 0.1), WINE_SAMPLE_CSV (the sample),
WINE_E2E_TIMEOUT (seconds for the whole DAG, default 1500).  The Compose project,
network, data root and ports are private to the test, so it does not touch a set-up
that runs on the same machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from conftest import engine_or_skip

pytestmark = [pytest.mark.docker, pytest.mark.slow]

docker = pytest.importorskip("docker", reason="the docker SDK is not installed")

REPO = Path(__file__).resolve().parents[1]
VERSION = os.environ.get("WINE_VERSION", "0.1")
BUILD_TIMEOUT = int(os.environ.get("WINE_E2E_BUILD_TIMEOUT", "1800"))
RUN_TIMEOUT = int(os.environ.get("WINE_E2E_TIMEOUT", "1500"))
SAMPLE_NAME = "wine_reviews_sample.csv"

# Run inside the scheduler's container: how many tasks each worker has executed.
WORKER_COUNTS = """
import json
from distributed import Client
with Client("tcp://127.0.0.1:8786", timeout=30) as client:
    counts = client.run(lambda dask_worker: dask_worker.state.executed_count)
    names = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
print(json.dumps({"counts": counts, "task_names": names}))
"""

#: Task names the dashboard shows for the steps' work (see the steps' ``dask_key_name``).
TASK_NAMES = {"scan-csv-block", "clean-split-write", "hash-train-block", "hash-valid-block",
              "sgd-pass", "oof-score", "score-test-block", "score-inventory-block"}
INVENTORY_NAME = "inventory.csv"


def luigid_tasks(port: str, status: str) -> dict:
    """luigid's tasks of one status, as its web UI lists them."""
    import urllib.parse
    import urllib.request

    query = urllib.parse.quote(json.dumps({"status": status, "upstream_status": "",
                                           "search": ""}))
    url = f"http://127.0.0.1:{port}/api/task_list?data={query}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["response"]


def sample_csv() -> Path:
    candidates = [os.environ.get("WINE_SAMPLE_CSV"), REPO.parent / "shared" / "data" / SAMPLE_NAME]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail(f"the sample {SAMPLE_NAME} is not in ../shared/data; set WINE_SAMPLE_CSV")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sh(args: list[str], env: dict[str, str], timeout: float,
       check: bool = True) -> subprocess.CompletedProcess:
    """Run a command in the repository, its output echoed (shown by pytest on failure)."""
    print("$", " ".join(args), flush=True)
    started = time.monotonic()
    proc = subprocess.run(args, cwd=REPO, env=env, timeout=timeout, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, errors="replace")
    print(proc.stdout[-20000:], f"[exit {proc.returncode} after "
          f"{time.monotonic() - started:.0f}s]", sep="\n", flush=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited with {proc.returncode}")
    return proc


def chown_tree(root: Path, uid: int, gid: int) -> None:
    for path in [root, *root.rglob("*")]:
        os.chown(path, uid, gid)


def step_containers(client, project: str) -> list:
    """The step containers of the test's project (they carry its network's name as a label)."""
    return client.containers.list(all=True, filters={"label": [
        f"wine-pipeline.network={project}", "wine-pipeline.task-id"]})


def tear_down(compose: list[str], env: dict[str, str], client, project: str, ok: bool) -> None:
    """Show what went wrong when the run failed; remove its step containers and services."""
    if not ok:
        sh([*compose, "ps", "--all"], env, 60, check=False)
        sh([*compose, "logs", "--no-color", "--timestamps", "--tail", "400"], env, 120,
           check=False)
        for c in step_containers(client, project):
            print(f"--- step container {c.name} ({c.status}) ---")
            print(c.logs(tail=200).decode(errors="replace"))
            c.remove(force=True)
    sh([*compose, "down", "--volumes", "--remove-orphans", "--timeout", "10"], env, 300,
       check=False)
    client.close()


def test_compose_runs_the_whole_dag_on_two_workers(tmp_path):
    client = engine_or_skip(timeout=60)
    sample = sample_csv()
    project = f"wine-e2e-{uuid.uuid4().hex[:8]}"

    data_root = tmp_path / "data_root"
    data_root.mkdir()
    shutil.copy(sample, data_root / SAMPLE_NAME)
    # The wines to score: the sample without its points.
    pd.read_csv(sample, index_col=0).drop(columns="points").to_csv(data_root / INVENTORY_NAME)
    # Workers and steps write as WINE_UID; as root here, that is the images' user 1000.
    uid, gid = (os.getuid(), os.getgid()) if os.getuid() != 0 else (1000, 1000)
    chown_tree(data_root, uid, gid)

    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": project,
        "WINE_NETWORK": project,
        "WINE_VERSION": VERSION,
        "WINE_DATA_ROOT": str(data_root),
        "WINE_SOURCE": f"/usr/share/data/{SAMPLE_NAME}",
        "WINE_INVENTORY": f"/usr/share/data/{INVENTORY_NAME}",
        "WINE_UID": str(uid),
        "WINE_GID": str(gid),
        "WINE_WORKERS": "2",
        "WINE_BIND": "127.0.0.1",
        "WINE_DASHBOARD_PORT": str(free_port()),
        "WINE_SCHEDULER_PORT": str(free_port()),
        "WINE_LUIGI_PORT": str(free_port()),
        "WINE_KEEP_CONTAINERS": "0",
        # Reaches every step container: each says so in a DEBUG line of its own.
        "WINE_LOG_LEVEL": "DEBUG",
    }
    compose = ["docker", "compose", "--file", str(REPO / "docker-compose.yml")]
    ok = False
    try:
        sh(["./build-task-images.sh", VERSION], env, BUILD_TIMEOUT)

        # The brief's words: `docker compose up --scale worker=N`.
        sh([*compose, "up", "--detach", "--wait", "--scale", "worker=2",
            "scheduler", "worker", "luigid"], env, 300)
        workers = sh([*compose, "ps", "--quiet", "worker"], env, 60).stdout.split()
        assert len(workers) == 2, workers

        # What the README says: `docker compose up orchestrator`.
        sh([*compose, "up", "--scale", "worker=2", "orchestrator"], env, RUN_TIMEOUT)
        (orchestrator,) = sh([*compose, "ps", "--all", "--quiet", "orchestrator"], env,
                             60).stdout.split()
        state = client.containers.get(orchestrator).attrs["State"]
        assert state["ExitCode"] == 0, f"the orchestrator exited with {state['ExitCode']}"

        # Every step ran at the level given to compose (its lines relayed as "[step] ...").
        logs = sh([*compose, "logs", "--no-color", "orchestrator"], env, 120).stdout
        for step in ("download", "make-dataset", "train", "evaluate", "predict"):
            assert re.search(rf"\[{step}\] \S+ \S+ DEBUG pipeline: wine-pipeline .*log level "
                             rf"DEBUG\): {step} ", logs), f"no DEBUG line from {step}"

        # The model and the report, where the DAG puts them (<stage>/<run key>/...).
        models = [p for p in (data_root / "model").rglob("*") if p.is_file()]
        reports = list((data_root / "report").rglob("*.html"))
        assert models and all(p.stat().st_size > 0 for p in models), models
        assert reports and reports[0].stat().st_size > 1000, reports
        assert list((data_root / "dataset").rglob("_SUCCESS"))
        # One prediction per wine of the inventory, named after it.
        (predictions,) = (data_root / "predictions").rglob(f"{INVENTORY_NAME[:-4]}-*.csv")
        scored = pd.read_csv(predictions)
        assert scored.columns.tolist() == ["id", "predicted_points", "lower", "upper",
                                           "reject_reason"]
        assert len(scored) == 6042
        scored = scored[scored["reject_reason"].isna()]
        assert len(scored) > 6000
        assert (scored["lower"] <= scored["predicted_points"]).all()
        assert (scored["predicted_points"] <= scored["upper"]).all()
        # The buyer's sheet beside them: every wine counted, its figures inline.
        sheet = predictions.with_suffix(".html").read_text(encoding="utf-8")
        assert '<td data-count="6042">' in sheet
        assert sheet.count("<img ") == 2 and "data:image/png;base64," in sheet
        assert "Most likely to rate 90 or more" in sheet

        # Both workers executed tasks: ask them through the scheduler.
        out = sh([*compose, "exec", "-T", "scheduler", "python", "-c", WORKER_COUNTS],
                 env, 120).stdout
        found = json.loads(out.strip().splitlines()[-1])
        counts = found["counts"]
        print("tasks executed per worker:", counts)
        assert len(counts) == 2, counts
        assert all(n > 0 for n in counts.values()), f"a worker executed nothing: {counts}"
        # The dashboard names the work by what it is.
        assert TASK_NAMES <= set(found["task_names"]), found["task_names"]

        # luigid (its UI at :8082) shows where each step got to, and its progress bar.
        done = {t["name"]: t for t in luigid_tasks(env["WINE_LUIGI_PORT"], "DONE").values()}
        for family, step in (("MakeDataset", "make-dataset"), ("Train", "train"),
                             ("Evaluate", "evaluate"), ("Predict", "predict")):
            assert done[family]["status_message"].startswith(f"progress: {step}: "), done
            assert done[family]["progress_percentage"] == 100, done[family]

        # No step container left behind.
        left = step_containers(client, project)
        assert left == [], [c.name for c in left]
        ok = True
    finally:
        tear_down(compose, env, client, project, ok)
