"""Shared fixtures: the real sample, a real Dask LocalCluster, a data set and a model.

Also the test tiers: `pytest -m "not slow"` runs the fast tier (the core on small
frames, in about a minute); plain `pytest` runs everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client, LocalCluster

ROOT = Path(__file__).resolve().parents[1]
#: The challenge sample lives beside the checkout, never inside it.
SAMPLE = ROOT.parent / "shared" / "data" / "wine_reviews_sample.csv"


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `wine-pipeline ARGS` as the runners do, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=cwd, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )


def engine_or_skip(timeout: float):
    """A client of a live Docker Engine; skip, or fail under WINE_REQUIRE_DOCKER=1, without one.

    Parameters
    ----------
    timeout : float
        Seconds the client waits for each API call.
    """
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure means: no engine here
        reason = f"no Docker Engine answers ({type(exc).__name__}: {exc})"
        if os.environ.get("WINE_REQUIRE_DOCKER") == "1":
            pytest.fail(f"{reason}, but WINE_REQUIRE_DOCKER=1 requires one")
        pytest.skip(reason)


#: Fixtures whose tests are slow: a Dask cluster, the sample through the pipeline, the
#: sample's report rendered in a subprocess, a luigid, a Spark session, an S3 server.
#: Fixtures that use them (``dataset_dir`` uses ``client``) count too: pytest lists every
#: fixture a test needs.
SLOW_FIXTURES = frozenset({"client", "dataset_dir", "model_path", "full_report", "luigid",
                           "spark", "object_store"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``slow`` each test that needs a slow fixture, calls :func:`run_cli` or Docker.

    What this cannot see is marked where it is defined: modules slow as a whole (luigi,
    a browser, the figure helper processes, Spark) with ``pytestmark``, single tests (a
    notebook kernel, a cluster or a subprocess of their own, long fits) with
    ``@pytest.mark.slow``.
    """
    for item in items:
        function = getattr(item, "function", None)
        calls_cli = function is not None and "run_cli" in function.__code__.co_names
        if (SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())) or calls_cli
                or item.get_closest_marker("docker")):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def sample_csv() -> Path:
    if not SAMPLE.is_file():
        pytest.fail(f"the challenge sample is missing at {SAMPLE}")
    return SAMPLE


@pytest.fixture(scope="session")
def object_store(tmp_path_factory):
    """A real S3 server (SeaweedFS ``weed mini``) on 127.0.0.1 for the whole session."""
    from benchmarks.object_store import local_object_store

    with local_object_store(tmp_path_factory.mktemp("weed")) as store:
        yield store


@pytest.fixture(scope="session")
def client():
    # Real worker processes, as in production; two, as many as the machine has cores.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory, client, sample_csv) -> Path:
    from pipeline.steps.make_dataset import make_dataset

    out = tmp_path_factory.mktemp("dataset") / "dataset"
    make_dataset(sample_csv, out, blocksize="1MB")
    return out


@pytest.fixture(scope="session")
def model_path(tmp_path_factory, client, dataset_dir) -> Path:
    from pipeline.steps.train import train

    out = tmp_path_factory.mktemp("model") / "model.joblib"
    # The linear model alone: quick, and what the other models build on.
    train(dataset_dir, out, model_kind="sgd")
    return out


def read_split(dataset: Path, split: str) -> pd.DataFrame:
    return pd.read_parquet(dataset / split)
