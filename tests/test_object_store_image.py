"""The object-store image: builds, serves S3 with its keys enforced, keeps its data.

Builds ``images/object-store/Dockerfile`` (tag WINE_VERSION, default 0.1, as the
compose file uses it), starts it with a named volume and a private port, puts and gets
objects with s3fs through that port, refuses other keys, and reads the objects again
after the container is replaced by a new one on the same volume.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import engine_or_skip

pytestmark = [pytest.mark.docker, pytest.mark.slow]

docker = pytest.importorskip("docker", reason="the docker SDK is not installed")
s3fs = pytest.importorskip("s3fs", reason="s3fs is not installed")

REPO = Path(__file__).resolve().parents[1]
VERSION = os.environ.get("WINE_VERSION", "0.1")
KEY, SECRET = "test-key", "test-secret-" + uuid.uuid4().hex[:8]


def build_object_store(tag: str) -> str:
    """Build the object-store image as build-task-images.sh does; return its name."""
    image = f"wine-pipeline/object-store:{tag}"
    subprocess.run(["docker", "build", "--file", "images/object-store/Dockerfile",
                    "--tag", image, "."], cwd=REPO, check=True, timeout=900,
                   stdout=subprocess.DEVNULL)
    return image


def wait_healthy(container, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        health = container.attrs["State"].get("Health", {}).get("Status")
        if health == "healthy":
            return
        assert container.status in {"created", "running"}, container.logs()[-2000:]
        time.sleep(1)
    raise AssertionError(f"not healthy after {timeout}s: {container.logs()[-2000:]!r}")


def store(port: int, key: str = KEY, secret: str = SECRET):
    return s3fs.S3FileSystem(key=key, secret=secret, skip_instance_cache=True,
                             client_kwargs={"endpoint_url": f"http://127.0.0.1:{port}",
                                            "region_name": "us-east-1"})


def start(client, image: str, volume: str):
    container = client.containers.run(
        image, detach=True, name=f"wine-test-store-{uuid.uuid4().hex[:8]}",
        environment={"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
                     "WINE_S3_BUCKET": "wine"},
        mounts=[docker.types.Mount(target="/data", source=volume, type="volume")],
        ports={"8333/tcp": ("127.0.0.1", None)})
    wait_healthy(container)
    container.reload()
    port = int(container.attrs["NetworkSettings"]["Ports"]["8333/tcp"][0]["HostPort"])
    return container, port


def test_the_object_store_serves_s3_with_its_keys_and_keeps_the_data():
    client = engine_or_skip(timeout=60)
    image = build_object_store(VERSION)
    volume = client.volumes.create(f"wine-test-store-{uuid.uuid4().hex[:8]}")
    containers = []
    try:
        first, port = start(client, image, volume.name)
        containers.append(first)
        assert first.attrs["Config"]["User"] == "store"
        code, out = first.exec_run(["id", "-u"])
        assert code == 0 and out.strip() != b"0"

        fs = store(port)
        assert "wine" in [p.rstrip("/") for p in fs.ls("")]  # created on start
        payload = os.urandom(3 * 2**20)  # several chunks of the filer (4 MB max each: one)
        fs.pipe("wine/pipeline/model/m.joblib", payload)
        fs.pipe("wine/pipeline/report/report.html", b"<html></html>")
        assert fs.cat("wine/pipeline/model/m.joblib") == payload

        # Wrong keys, and no keys, are refused: reading and writing alike.
        for wrong in (store(port, KEY, "wrong"), store(port, "nobody", SECRET)):
            with pytest.raises(PermissionError):
                wrong.cat("wine/pipeline/report/report.html")
            with pytest.raises(PermissionError):
                wrong.pipe("wine/intruder.txt", b"x")
        anonymous = s3fs.S3FileSystem(anon=True, skip_instance_cache=True, client_kwargs={
            "endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"})
        with pytest.raises(PermissionError):
            anonymous.cat("wine/pipeline/report/report.html")
        assert not fs.exists("wine/intruder.txt")

        # A new container on the same named volume serves the same objects.
        first.stop(timeout=10)
        first.remove()
        containers.remove(first)
        second, port = start(client, image, volume.name)
        containers.append(second)
        fs = store(port)
        assert fs.cat("wine/pipeline/model/m.joblib") == payload
        assert fs.cat("wine/pipeline/report/report.html") == b"<html></html>"
    finally:
        for container in containers:
            print(container.logs(tail=50).decode(errors="replace"))
            container.remove(force=True)
        volume.remove(force=True)
        client.close()


def test_the_object_store_refuses_to_start_without_keys():
    client = engine_or_skip(timeout=60)
    image = f"wine-pipeline/object-store:{VERSION}"
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        image = build_object_store(VERSION)
    out = client.containers.run(image, remove=False, detach=True)
    try:
        assert out.wait(timeout=60)["StatusCode"] == 64
        assert b"set AWS_ACCESS_KEY_ID" in out.logs()
    finally:
        out.remove(force=True, v=True)  # and the anonymous volume of its /data
        client.close()
