"""End to end, the object-store way with TLS: no container mounts a data root.

Makes certificates (scripts/make-certs.sh), brings up the `object-store` profile with
docker-compose.tls.yml on top (object-store, scheduler, two store-workers, luigid),
uploads the sample and an inventory into the bucket through the published S3 port,
lets store-orchestrator run the whole DAG with WINE_SOURCE and WINE_INVENTORY as
s3:// URLs, then checks that both workers executed tasks (asked over TLS), that the
project's containers mount nothing but the Docker socket and the certificates, and that
the model, the data set's stats.json, the report and the predictions are in the
bucket.

Needs the s3:// data root of the package core.  Run on its own, like ``make e2e``:
``pytest -m "docker and slow" -s tests/test_e2e_object_store.py``.  Shares its
helpers and settings with tests/test_e2e_docker.py; the Compose project, network,
volume and ports are private to the test.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import uuid

import pandas as pd
import pytest
import test_e2e_docker as e2e

from conftest import engine_or_skip

pytestmark = [pytest.mark.docker, pytest.mark.slow]

docker = pytest.importorskip("docker", reason="the docker SDK is not installed")
s3fs = pytest.importorskip("s3fs", reason="s3fs is not installed")

TLS_MOUNT = "/etc/wine-pipeline/tls"
BUCKET = "wine"

# Run inside the scheduler's container, over TLS with the mounted certificates.
WORKER_COUNTS_TLS = e2e.WORKER_COUNTS.replace(
    'from distributed import Client\n',
    'from distributed import Client\n'
    'from distributed.security import Security\n'
    f'security = Security(tls_ca_file="{TLS_MOUNT}/ca.pem", '
    f'tls_client_cert="{TLS_MOUNT}/tls.pem", tls_client_key="{TLS_MOUNT}/tls.key", '
    'require_encryption=True)\n',
).replace('Client("tcp://127.0.0.1:8786", timeout=30)',
          'Client("tls://127.0.0.1:8786", security=security, timeout=30)')


def test_object_store_profile_runs_the_dag_over_tls_without_a_data_root(tmp_path):
    assert "tls://127.0.0.1:8786" in WORKER_COUNTS_TLS and "security=security" in WORKER_COUNTS_TLS
    client = engine_or_skip(timeout=60)
    sample = e2e.sample_csv()
    project = f"wine-e2e-s3-{uuid.uuid4().hex[:8]}"
    certs = tmp_path / "certs"
    uid, gid = (os.getuid(), os.getgid()) if os.getuid() != 0 else (1000, 1000)
    subprocess.run([str(e2e.REPO / "scripts" / "make-certs.sh"), str(certs)], check=True,
                   env={**os.environ, "WINE_UID": str(uid), "WINE_GID": str(gid)})

    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    s3_port = e2e.free_port()
    key, secret = "e2e-key", f"e2e-secret-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": project,
        "WINE_NETWORK": project,
        "WINE_VERSION": e2e.VERSION,
        "WINE_TLS_DIR": str(certs),
        "WINE_DATA_ROOT_URL": f"s3://{BUCKET}/{prefix}/data",
        "WINE_SOURCE": f"s3://{BUCKET}/{prefix}/{e2e.SAMPLE_NAME}",
        "WINE_INVENTORY": f"s3://{BUCKET}/{prefix}/{e2e.INVENTORY_NAME}",
        "WINE_S3_ACCESS_KEY": key,
        "WINE_S3_SECRET_KEY": secret,
        "WINE_S3_BUCKET": BUCKET,
        "WINE_S3_PORT": str(s3_port),
        "WINE_UID": str(uid),
        "WINE_GID": str(gid),
        "WINE_WORKERS": "2",
        "WINE_BIND": "127.0.0.1",
        "WINE_CLUSTER_BIND": "127.0.0.1",
        "WINE_DASHBOARD_PORT": str(e2e.free_port()),
        "WINE_SCHEDULER_PORT": str(e2e.free_port()),
        "WINE_LUIGI_PORT": str(e2e.free_port()),
        "WINE_KEEP_CONTAINERS": "0",
        "WINE_LOG_LEVEL": "DEBUG",
    }
    env.pop("COMPOSE_FILE", None)
    compose = ["docker", "compose", "--file", str(e2e.REPO / "docker-compose.yml"),
               "--file", str(e2e.REPO / "docker-compose.tls.yml"), "--profile", "object-store"]
    fs = s3fs.S3FileSystem(key=key, secret=secret, skip_instance_cache=True, client_kwargs={
        "endpoint_url": f"http://127.0.0.1:{s3_port}", "region_name": "us-east-1"})
    root = f"{BUCKET}/{prefix}"
    ok = False
    try:
        e2e.sh(["./build-task-images.sh", e2e.VERSION], env, e2e.BUILD_TIMEOUT)
        e2e.sh([*compose, "up", "--detach", "--wait", "--scale", "store-worker=2",
                "object-store", "scheduler", "store-worker", "luigid"], env, 300)
        workers = e2e.sh([*compose, "ps", "--quiet", "store-worker"], env, 60).stdout.split()
        assert len(workers) == 2, workers

        # The inputs go into the bucket first, through the published S3 port.
        fs.put(str(sample), f"{root}/{e2e.SAMPLE_NAME}")
        inventory = pd.read_csv(sample, index_col=0).drop(columns="points")
        fs.pipe(f"{root}/{e2e.INVENTORY_NAME}", inventory.to_csv().encode())

        e2e.sh([*compose, "up", "--scale", "store-worker=2", "store-orchestrator"], env,
               e2e.RUN_TIMEOUT)
        (orchestrator,) = e2e.sh([*compose, "ps", "--all", "--quiet", "store-orchestrator"],
                                 env, 60).stdout.split()
        state = client.containers.get(orchestrator).attrs["State"]
        assert state["ExitCode"] == 0, f"store-orchestrator exited with {state['ExitCode']}"

        # Everything the DAG writes is in the bucket, under the data root's prefix.
        data = f"{root}/data"
        models = [p for p in fs.find(f"{data}/model") if p.endswith(".joblib")]
        assert models and all(fs.size(p) > 0 for p in models), models
        reports = [p for p in fs.find(f"{data}/report") if p.endswith("report.html")]
        assert reports and fs.size(reports[0]) > 1000, reports
        # The data set's statistics (evaluate's metrics.json lives only in the report's
        # temporary context; the report shows them).
        stats = [p for p in fs.find(f"{data}/dataset") if p.endswith("/stats.json")]
        assert stats, fs.find(data)
        assert json.loads(fs.cat(stats[0]))
        (predictions,) = [p for p in fs.find(f"{data}/predictions")
                          if p.rsplit("/", 1)[-1].startswith(e2e.INVENTORY_NAME[:-4] + "-")
                          and p.endswith(".csv")]
        scored = pd.read_csv(io.BytesIO(fs.cat(predictions)))
        assert scored.columns.tolist() == ["id", "predicted_points", "lower", "upper",
                                           "reject_reason"]
        assert len(scored) == 6042
        assert fs.exists(predictions[:-4] + ".html")

        # Both workers executed tasks: asked through the scheduler, over TLS.
        out = e2e.sh([*compose, "exec", "-T", "scheduler", "python", "-c", WORKER_COUNTS_TLS],
                     env, 120).stdout
        found = json.loads(out.strip().splitlines()[-1])
        counts = found["counts"]
        print("tasks executed per worker:", counts)
        assert len(counts) == 2, counts
        assert all(address.startswith("tls://") for address in counts), counts
        assert all(n > 0 for n in counts.values()), f"a worker executed nothing: {counts}"
        assert e2e.TASK_NAMES <= set(found["task_names"]), found["task_names"]

        # Plain tcp is refused by the scheduler.
        refused = e2e.sh([*compose, "exec", "-T", "scheduler", "python", "-c",
                          "from distributed import Client\n"
                          "Client('tcp://127.0.0.1:8786', timeout=5)"], env, 120, check=False)
        assert refused.returncode != 0

        # No container of the project mounts a data root: the orchestrator the socket and
        # the certificates, the Dask containers the certificates, the store its volume.
        ids = e2e.sh([*compose, "ps", "--all", "--quiet"], env, 60).stdout.split()
        seen = set()
        for container in (client.containers.get(i) for i in ids):
            service = container.labels["com.docker.compose.service"]
            seen.add(service)
            mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
            expected = {"object-store": {"/data"},
                        "store-orchestrator": {"/var/run/docker.sock", TLS_MOUNT},
                        "luigid": set()}.get(service, {TLS_MOUNT})
            assert set(mounts) == expected, (service, mounts)
            if TLS_MOUNT in mounts:
                assert mounts[TLS_MOUNT]["RW"] is False, service
        assert seen == {"object-store", "scheduler", "store-worker", "luigid",
                        "store-orchestrator"}, seen

        # luigid shows every step done, with its progress.
        done = {t["name"]: t for t in e2e.luigid_tasks(env["WINE_LUIGI_PORT"], "DONE").values()}
        assert {"Download", "MakeDataset", "Train", "Evaluate", "Predict"} <= set(done), done

        # No step container left behind.
        left = e2e.step_containers(client, project)
        assert left == [], [c.name for c in left]
        ok = True
    finally:
        e2e.tear_down(compose, env, client, project, ok)
