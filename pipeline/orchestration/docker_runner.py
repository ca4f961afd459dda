"""Run each step as a container through the Docker Engine API (the ``docker`` runner).

One step is one container of the image ``wine-pipeline/<step>:<tag>``, started with
``wine-pipeline <step> <args>`` on the Compose network, with the data root mounted
where the orchestrator sees it (``/usr/share/data``), as a non-root user.

The container is named after luigi's task id, so it is found again: when the
orchestrator restarts while a step still runs, the next attempt of that task waits
on the running container instead of starting a second one.  A container that
already exited (a previous attempt, kept or left behind by a crash) is removed and
the step starts afresh.  Its log is streamed line by line into this module's logger
(so into luigi's log) and into luigi's status message; a non-zero exit raises
:class:`~pipeline.orchestration.runners.StepFailed` with the last lines.

Every container carries labels (``wine-pipeline.*``): project, task id, step,
attempt and retry, image tag and network, which ``docker-clean.sh`` and the tests
use to find them.

An object-store data root (``s3://BUCKET/PREFIX``, ``WINE_DATA_ROOT_URL``) is mounted
nowhere: the step containers get no mount of it and the S3 settings (``AWS_*``)
instead.  With Dask's TLS on (``WINE_TLS``), the certificates' folder is mounted
read-only into every step and Dask's ``DASK_DISTRIBUTED__COMM__*`` settings are handed
on, so the steps connect to a ``tls://`` scheduler.
"""

from __future__ import annotations

import codecs
import collections
import hashlib
import logging
import os
import re
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import Mount

from pipeline.orchestration.runners import LineRelay, StatusCallback, StepFailed, StepRunner
from pipeline.storage import is_url

log = logging.getLogger(__name__)

PROJECT = "wine-pipeline"
#: Label keys put on every container this runner starts.
LABEL_PROJECT = "wine-pipeline.project"
LABEL_TASK = "wine-pipeline.task-id"
LABEL_STEP = "wine-pipeline.step"
LABEL_ATTEMPT = "wine-pipeline.attempt"
LABEL_RETRY = "wine-pipeline.retry"
LABEL_TAG = "wine-pipeline.image-tag"
LABEL_NETWORK = "wine-pipeline.network"
LABEL_DEBUG = "wine-pipeline.debug"

DEFAULT_TAG = "0.1"
DEFAULT_REPOSITORY = "wine-pipeline"
DEFAULT_DATA_MOUNT = "/usr/share/data"
DEFAULT_TLS_MOUNT = "/etc/wine-pipeline/tls"

#: The standard S3 settings (endpoint, keys, region) a step needs for an object-store
#: data root; handed on when set.
S3_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
          "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN")
#: Dask's communication settings (TLS files, require-encryption) as environment variables.
DASK_COMM_ENV_PREFIX = "DASK_DISTRIBUTED__COMM__"

#: Container states in which a container is (about to be) doing the step's work.
_ALIVE = {"running", "restarting", "paused"}
_NAME_OK = re.compile(r"[^a-zA-Z0-9_.-]+")

# Attempts started by this process, per task id (a fresh orchestrator starts at the
# attempt label of a container left behind, if any).
_attempts: dict[str, int] = collections.defaultdict(int)
_attempts_lock = threading.Lock()


def container_name(task_id: str, prefix: str = "wine-", scope: str = "") -> str:
    """Derive a valid, deterministic Docker container name from a luigi task id.

    Parameters
    ----------
    task_id : str
        luigi's task id, e.g. ``Train__usr_share_data_3f2a9c41d2``.
    prefix : str, default "wine-"
        Put in front, so the project's containers sort together.
    scope : str, default ""
        Set-up the task belongs to (the runner passes its network): the same task
        id of two Compose projects on one engine (paths inside the containers are
        alike) must not share, or reattach to, one container.

    Returns
    -------
    str
        ``prefix`` + the task id with characters Docker refuses replaced, cut to a
        readable length, + a short hash of scope and full task id, so that two task
        ids that sanitise alike still get different names.
    """
    readable = _NAME_OK.sub("-", task_id).strip("-._")[:80] or "task"
    key = f"{scope}\0{task_id}" if scope else task_id
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    name = f"{prefix}{readable}-{digest}"
    if not name[0].isalnum():
        name = "w" + name
    return name


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


class _LineRelay(LineRelay):
    """A :class:`LineRelay` fed the raw bytes of a container's log."""

    def __init__(self, prefix: str, set_status: StatusCallback | None, interval: float) -> None:
        super().__init__(prefix, set_status, interval, logger=log)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""

    def feed(self, chunk: bytes) -> None:
        self._buffer += self._decoder.decode(chunk)
        *lines, self._buffer = re.split(r"\r?\n|\r", self._buffer)
        for line in lines:
            self.line(line)

    def close(self) -> None:
        self._buffer += self._decoder.decode(b"", final=True)
        if self._buffer:
            self.line(self._buffer)
            self._buffer = ""
        self.flush()


class DockerRunner(StepRunner):
    """Start each step as a sibling container through the Docker Engine API.

    Parameters
    ----------
    tag : str, default "0.1"
        Image tag; the image of step ``s`` is ``{repository}/{s}:{tag}``.
    repository : str, default "wine-pipeline"
        Image name prefix, as ``build-task-images.sh`` tags them.
    network : str, optional
        Docker network the step joins (the Compose network, where
        ``scheduler`` resolves).  Default: the orchestrator container's own
        network when it has exactly one, else Docker's default bridge.
    host_data_root : str, optional
        Host path (or named volume) mounted at ``data_mount`` in every step
        container.  Default: whatever is mounted at ``data_mount`` in the
        container this runner itself runs in.
    data_mount : str, default "/usr/share/data"
        Where the data root is seen inside the containers; the paths in a step's
        arguments are below it, so they are passed on unchanged.
    env : mapping, optional
        Environment of every step, e.g. ``DASK_SCHEDULER_ADDRESS`` or
        ``WINE_LOG_LEVEL`` (the step's ``--log-level``).
    keep_containers : bool, default False
        Keep finished containers (for ``docker logs``/``docker inspect``) instead
        of removing them.  The next attempt of the same task still removes them.
    user : str, optional
        ``uid:gid`` the step runs as.  Default: the image's non-root user.
    mem_limit : str, optional
        Memory limit of each step container, e.g. ``"4g"``.
    name_prefix : str, default "wine-"
        Prefix of container names.
    status_interval : float, default 1.0
        Least seconds between two status messages sent to luigi.
    client : docker.DockerClient, optional
        Engine client; default ``docker.from_env()`` (``DOCKER_HOST``, or the socket).
    data_root_url : str, optional
        The data root as a URL (``s3://BUCKET/PREFIX``): nothing is mounted at
        ``data_mount``, no host folder is looked for, and the ``AWS_*`` settings in
        ``env`` reach the steps (:meth:`from_env` gathers them).
    tls : bool, default False
        Dask's TLS is on: mount the certificates' folder read-only at ``tls_mount``
        in every step (the ``DASK_DISTRIBUTED__COMM__*`` settings in ``env`` say
        which files to use; :meth:`from_env` gathers them).
    host_tls_dir : str, optional
        Host path (or named volume) of the certificates' folder.  Default: whatever
        is mounted at ``tls_mount`` in the container this runner runs in.
    tls_mount : str, default "/etc/wine-pipeline/tls"
        Where the certificates are seen inside the containers.
    """

    name = "docker"

    def __init__(
        self,
        tag: str = DEFAULT_TAG,
        repository: str = DEFAULT_REPOSITORY,
        network: str | None = None,
        host_data_root: str | None = None,
        data_mount: str = DEFAULT_DATA_MOUNT,
        env: Mapping[str, str] | None = None,
        keep_containers: bool = False,
        user: str | None = None,
        mem_limit: str | None = None,
        name_prefix: str = "wine-",
        status_interval: float = 1.0,
        client: docker.DockerClient | None = None,
        data_root_url: str | None = None,
        tls: bool = False,
        host_tls_dir: str | None = None,
        tls_mount: str = DEFAULT_TLS_MOUNT,
    ) -> None:
        self.tag = tag
        self.repository = repository.rstrip("/")
        self.network = network or None
        self.host_data_root = host_data_root or None
        self.data_mount = data_mount
        self.env = dict(env or {})
        if data_root_url and not is_url(data_root_url):
            raise ValueError(f"data_root_url is not an object-store URL: {data_root_url!r}")
        self.data_root_url = data_root_url or None
        self.tls = bool(tls)
        self.host_tls_dir = host_tls_dir or None
        self.tls_mount = tls_mount
        self.keep_containers = keep_containers
        self.user = user or None
        self.mem_limit = mem_limit or None
        self.name_prefix = name_prefix
        self.status_interval = status_interval
        self._client = client
        self._client_pid = os.getpid() if client is not None else None
        self._discovered = False

    # ------------------------------------------------------------------ set-up
    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> DockerRunner:
        """Build a runner from the orchestrator's environment (what Compose sets).

        Parameters
        ----------
        environ : mapping, optional
            Defaults to ``os.environ``.  Read: ``WINE_IMAGE_TAG``,
            ``WINE_IMAGE_REPOSITORY``, ``WINE_DOCKER_NETWORK``,
            ``WINE_HOST_DATA_ROOT``, ``WINE_DATA_MOUNT``, ``WINE_KEEP_CONTAINERS``,
            ``WINE_STEP_USER``, ``WINE_STEP_MEMORY``, ``WINE_DATA_ROOT_URL``,
            ``WINE_TLS``, ``WINE_HOST_TLS_DIR``, ``WINE_TLS_MOUNT``;
            ``DASK_SCHEDULER_ADDRESS`` and ``WINE_LOG_LEVEL`` are handed to every
            step, and so are the variables ``WINE_PASS_ENV`` names
            (comma-separated), the ``AWS_*`` S3 settings when the data root is a
            URL and the ``DASK_DISTRIBUTED__COMM__*`` settings when TLS is on.
        **overrides
            Constructor arguments that win over the environment.  ``env`` is
            merged into the environment gathered here rather than replacing it.

        Returns
        -------
        DockerRunner
        """
        environ = os.environ if environ is None else environ
        step_env: dict[str, str] = {}
        passed = ["DASK_SCHEDULER_ADDRESS", "WINE_LOG_LEVEL"]
        passed += [n.strip() for n in environ.get("WINE_PASS_ENV", "").split(",") if n.strip()]
        data_root_url = environ.get("WINE_DATA_ROOT_URL") or None
        if data_root_url:
            passed += S3_ENV
        tls = _truthy(environ.get("WINE_TLS"))
        if tls:
            passed += sorted(n for n in environ if n.startswith(DASK_COMM_ENV_PREFIX))
        for name in passed:
            if environ.get(name):
                step_env[name] = environ[name]
        step_env.update(overrides.pop("env", None) or {})

        user = environ.get("WINE_STEP_USER") or None
        if user is None and environ is os.environ and hasattr(os, "getuid") and os.getuid() != 0:
            # Steps write the same data root as this process: same owner.
            user = f"{os.getuid()}:{os.getgid()}"

        options: dict[str, Any] = {
            "tag": environ.get("WINE_IMAGE_TAG") or environ.get("WINE_VERSION") or DEFAULT_TAG,
            "repository": environ.get("WINE_IMAGE_REPOSITORY") or DEFAULT_REPOSITORY,
            "network": environ.get("WINE_DOCKER_NETWORK") or None,
            "host_data_root": environ.get("WINE_HOST_DATA_ROOT") or None,
            "data_mount": environ.get("WINE_DATA_MOUNT") or DEFAULT_DATA_MOUNT,
            "keep_containers": _truthy(environ.get("WINE_KEEP_CONTAINERS")),
            "user": user,
            "mem_limit": environ.get("WINE_STEP_MEMORY") or None,
            "env": step_env,
            "data_root_url": data_root_url,
            "tls": tls,
            "host_tls_dir": environ.get("WINE_HOST_TLS_DIR") or None,
            "tls_mount": environ.get("WINE_TLS_MOUNT") or DEFAULT_TLS_MOUNT,
        }
        options.update(overrides)
        return cls(**options)

    @property
    def client(self) -> docker.DockerClient:
        """Engine client, made on first use and anew in a forked luigi worker process."""
        if self._client is None or self._client_pid != os.getpid():
            self._client = docker.from_env()
            self._client_pid = os.getpid()
        return self._client

    def image_for(self, step: str) -> str:
        """Return the image that runs ``step``.

        Parameters
        ----------
        step : str
            Subcommand of ``wine-pipeline``.

        Returns
        -------
        str
            ``{repository}/{step}:{tag}``.
        """
        return f"{self.repository}/{step}:{self.tag}"

    def container_name(self, task_id: str) -> str:
        """Return the container name of a task (see :func:`container_name`).

        Parameters
        ----------
        task_id : str
            luigi's task id.

        Returns
        -------
        str
        """
        self._discover()
        return container_name(task_id, self.name_prefix, self.network or "")

    def _own_container(self) -> Container | None:
        """The container this process runs in, if any (its hostname is its id)."""
        if not (os.path.exists("/.dockerenv") or os.environ.get("WINE_IN_CONTAINER")):
            return None
        try:
            return self.client.containers.get(socket.gethostname())
        except docker.errors.NotFound:
            return None

    def _needs(self) -> tuple[bool, bool, bool]:
        """What is still to be found: the data root's folder, the certificates', the network."""
        return (not self.data_root_url and not self.host_data_root,
                self.tls and not self.host_tls_dir,
                not self.network)

    def _discover(self) -> None:
        """Fill in the data root, certificates and network from the orchestrator's container.

        A data root given as a URL is mounted nowhere, so no folder is looked for.
        """
        need_data, need_tls, need_network = self._needs()
        if self._discovered or not (need_data or need_tls or need_network):
            self._discovered = True
            return
        own = self._own_container()
        if own is not None:
            for mount in own.attrs.get("Mounts", []):
                source = mount.get("Name") or mount.get("Source")
                if need_data and mount.get("Destination") == self.data_mount:
                    self.host_data_root = source
                    log.info("data root: %s (mounted at %s here)",
                             self.host_data_root, self.data_mount)
                if need_tls and mount.get("Destination") == self.tls_mount:
                    self.host_tls_dir = source
                    log.info("TLS certificates: %s (mounted at %s here)",
                             self.host_tls_dir, self.tls_mount)
            if need_network:
                networks = list(own.attrs["NetworkSettings"].get("Networks", {}))
                if len(networks) == 1:
                    self.network = networks[0]
        self._discovered = True
        if not self.data_root_url and not self.host_data_root:
            raise RuntimeError(
                f"the docker runner does not know which host folder to mount at "
                f"{self.data_mount}: set WINE_HOST_DATA_ROOT to the host path of the data "
                f"root, or run the orchestrator in a container that mounts it there"
            )
        if self.tls and not self.host_tls_dir:
            raise RuntimeError(
                f"TLS is on (WINE_TLS) but the docker runner does not know which host "
                f"folder of certificates to mount at {self.tls_mount}: set "
                f"WINE_HOST_TLS_DIR, or run the orchestrator in a container that mounts "
                f"it there"
            )

    def _mounts(self) -> list[Mount]:
        """The step's mounts: the data root unless it is a URL, the certificates with TLS."""
        self._discover()
        mounts = []
        if not self.data_root_url:
            source = self.host_data_root
            assert source is not None
            kind = "bind" if source.startswith("/") else "volume"
            mounts.append(Mount(target=self.data_mount, source=source, type=kind))
        if self.tls:
            source = self.host_tls_dir
            assert source is not None
            kind = "bind" if source.startswith("/") else "volume"
            mounts.append(Mount(target=self.tls_mount, source=source, type=kind,
                                read_only=True))
        return mounts

    # ---------------------------------------------------------- containers
    def find(self, task_id: str) -> Container | None:
        """Return the container of a task, running or not, if one exists.

        Parameters
        ----------
        task_id : str
            luigi's task id.

        Returns
        -------
        docker.models.containers.Container or None
        """
        self._discover()
        try:
            return self.client.containers.get(self.container_name(task_id))
        except docker.errors.NotFound:
            pass
        labels = [f"{LABEL_TASK}={task_id}", f"{LABEL_NETWORK}={self.network or ''}"]
        found = self.client.containers.list(all=True, filters={"label": labels})
        return found[0] if found else None

    def labels(self, step: str, task_id: str, attempt: int = 1) -> dict[str, str]:
        """Return the labels of a step's container.

        Parameters
        ----------
        step : str
            Subcommand of ``wine-pipeline``.
        task_id : str
            luigi's task id.
        attempt : int, default 1
            How many times this task has been started, this one included.

        Returns
        -------
        dict of str to str
        """
        return {
            LABEL_PROJECT: PROJECT,
            LABEL_TASK: task_id,
            LABEL_STEP: step,
            LABEL_ATTEMPT: str(attempt),
            LABEL_RETRY: str(attempt - 1),
            LABEL_TAG: self.tag,
            LABEL_NETWORK: self.network or "",
        }

    def create(
        self,
        step: str,
        command: Sequence[str],
        name: str,
        labels: Mapping[str, str],
        entrypoint: Sequence[str] | None = None,
    ) -> Container:
        """Create (not start) a container of the step's image, configured like a step.

        Parameters
        ----------
        step : str
            Selects the image.
        command : sequence of str
            Arguments after the entrypoint.
        name : str
            Container name.
        labels : mapping
            Container labels.
        entrypoint : sequence of str, optional
            Default ``["wine-pipeline", step]``.

        Returns
        -------
        docker.models.containers.Container

        Raises
        ------
        StepFailed
            When the image is not there (nothing is pulled: build it).
        """
        mounts = self._mounts()
        image = self.image_for(step)
        try:
            return self.client.containers.create(
                image,
                command=list(command),
                entrypoint=list(entrypoint or ["wine-pipeline", step]),
                name=name,
                labels=dict(labels),
                environment=dict(self.env),
                mounts=mounts,
                network=self.network,
                user=self.user,
                mem_limit=self.mem_limit,
                init=True,
                detach=True,
            )
        except docker.errors.ImageNotFound as exc:
            raise StepFailed(
                f"image {image} not found: build it with ./build-task-images.sh {self.tag}"
            ) from exc

    def _next_attempt(self, task_id: str, previous: Container | None) -> int:
        before = 0
        if previous is not None:
            try:
                before = int(previous.labels.get(LABEL_ATTEMPT, "0"))
            except ValueError:
                before = 0
        with _attempts_lock:
            _attempts[task_id] = max(_attempts[task_id], before) + 1
            return _attempts[task_id]

    def start(self, step: str, args: Sequence[str], task_id: str) -> tuple[Container, bool]:
        """Start the task's container, or find it still running from before.

        Parameters
        ----------
        step : str
            Subcommand of ``wine-pipeline``.
        args : sequence of str
            Its arguments, paths as seen inside the container.
        task_id : str
            luigi's task id.

        Returns
        -------
        container : docker.models.containers.Container
            The running (or just finished) container.
        reattached : bool
            True when it had been started before, by an earlier orchestrator.
        """
        name = self.container_name(task_id)
        for _ in range(3):
            existing = self.find(task_id)
            if existing is not None and existing.status in _ALIVE:
                log.info("reattaching to %s (%s), still %s from attempt %s", existing.name,
                         existing.short_id, existing.status,
                         existing.labels.get(LABEL_ATTEMPT, "?"))
                return existing, True
            attempt = self._next_attempt(task_id, existing)
            if existing is not None:
                log.info("removing %s left %s by attempt %s", existing.name, existing.status,
                         existing.labels.get(LABEL_ATTEMPT, "?"))
                try:
                    existing.remove(force=True)
                except docker.errors.NotFound:
                    pass
            try:
                container = self.create(step, args, name, self.labels(step, task_id, attempt))
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # the name was taken meanwhile: look again
                    continue
                raise
            container.start()
            container.reload()
            log.info("started %s (%s) from %s, attempt %d: wine-pipeline %s %s", name,
                     container.short_id, self.image_for(step), attempt, step, " ".join(args))
            return container, False
        raise StepFailed(f"could not start a container named {name} for {task_id}")

    def _follow(self, container: Container, relay: _LineRelay) -> None:
        try:
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                relay.feed(chunk)
        except docker.errors.APIError as exc:  # e.g. a log driver that cannot be read
            log.warning("cannot follow the log of %s: %s", container.name, exc)
        finally:
            relay.close()

    def run(  # noqa: D102 - documented on the base
        self,
        step: str,
        args: Sequence[str],
        task_id: str,
        set_status: StatusCallback | None = None,
    ) -> None:
        container, _ = self.start(step, args, task_id)
        relay = _LineRelay(step, set_status, self.status_interval)
        self._follow(container, relay)
        result = container.wait()
        code = int(result.get("StatusCode", -1))
        container.reload()
        state = container.attrs.get("State", {})
        if not self.keep_containers:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        if code != 0:
            why = " (killed: out of memory)" if state.get("OOMKilled") else ""
            if result.get("Error"):
                why += f" ({result['Error']})"
            raise StepFailed(
                f"step {step!r} ({task_id}) exited with {code}{why} in container "
                f"{container.name}; last lines:\n" + "\n".join(relay.tail)
            )
        log.info("%s finished (%s)", task_id, container.name)

    # --------------------------------------------------------------- debug
    def start_debug(self, step: str, seconds: int = 86400,
                    name: str | None = None) -> Container:
        """Start the step's image doing nothing but ``sleep``, to ``docker exec`` into.

        Same network, data mount, environment and user as a real step, so what
        works in its shell works in the step.  Reuses a running one of that name.

        Parameters
        ----------
        step : str
            Selects the image.
        seconds : int, default 86400
            How long it stays up.
        name : str, optional
            Default ``{name_prefix}debug-{step}``.

        Returns
        -------
        docker.models.containers.Container
        """
        name = name or f"{self.name_prefix}debug-{step}"
        try:
            existing = self.client.containers.get(name)
        except docker.errors.NotFound:
            existing = None
        if existing is not None:
            if existing.status == "running":
                return existing
            existing.remove(force=True)
        labels = {**self.labels(step, f"Debug-{step}"), LABEL_DEBUG: "1"}
        container = self.create(step, [str(seconds)], name, labels, entrypoint=["sleep"])
        container.start()
        container.reload()
        return container


def project_containers(client: docker.DockerClient, extra_labels: Iterable[str] = (),
                       include_stopped: bool = True) -> list[Container]:
    """List the containers this runner started (label ``wine-pipeline.task-id``).

    Parameters
    ----------
    client : docker.DockerClient
        Engine client.
    extra_labels : iterable of str
        Further ``key`` or ``key=value`` label filters.
    include_stopped : bool, default True
        Also list exited containers.

    Returns
    -------
    list of docker.models.containers.Container
    """
    labels = [f"{LABEL_PROJECT}={PROJECT}", LABEL_TASK, *extra_labels]
    return client.containers.list(all=include_stopped, filters={"label": labels})


__all__: list[str] = [
    "DockerRunner",
    "LABEL_ATTEMPT",
    "LABEL_DEBUG",
    "LABEL_NETWORK",
    "LABEL_PROJECT",
    "LABEL_RETRY",
    "LABEL_STEP",
    "LABEL_TAG",
    "LABEL_TASK",
    "container_name",
    "project_containers",
]
