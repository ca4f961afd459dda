from __future__ import annotations

from pathlib import Path

import dask
import pytest
from distributed import Client

from pipeline.distributed.cluster import WORKER_CONFIG, local_cluster, worker_env

ROOT = Path(__file__).resolve().parents[1]


def _setting(key: str):
    return dask.config.get(key)


@pytest.mark.slow  # a LocalCluster
def test_local_workers_get_the_worker_config():
    with local_cluster(n_workers=1, memory_limit=None) as cluster, Client(cluster) as client:
        for key, value in WORKER_CONFIG.items():
            assert set(client.run(_setting, key).values()) == {value}


def test_the_cluster_image_sets_the_same_worker_config():
    dockerfile = (ROOT / "images" / "dask" / "Dockerfile").read_text()
    for name, value in worker_env().items():
        assert f"ENV {name}={value}" in dockerfile
    # Dask reads these variables back to the same settings.
    assert dask.config.collect_env(worker_env()) == {
        "distributed": {"worker": {"profile": {"enabled": False}}}}
