r"""``Debug``: start a step's image doing nothing but sleep, to get a shell inside it.

The container is configured like the real step (network, data root at
``/usr/share/data``, environment, non-root user), so what works in its shell works
in the step::

    # inside the Compose set-up (the data root and network are found by itself)
    docker compose run --rm orchestrator \
        luigi --module pipeline.orchestration.debug Debug --step train --local-scheduler
    docker exec -it wine-debug-train bash

    # or from the host, with the package installed
    luigi --module pipeline.orchestration.debug Debug --step train \
        --data-root ./data_root --local-scheduler

It stays up ``--seconds`` (a day by default); ``docker rm -f wine-debug-train`` or
``./docker-clean.sh --debug`` removes it earlier.
"""

from __future__ import annotations

import logging
import os

import luigi

from pipeline.orchestration.docker_runner import DockerRunner

log = logging.getLogger(__name__)


class Debug(luigi.Task):
    """Start ``wine-pipeline/<step>:<tag>`` with a long ``sleep`` for ``docker exec``.

    Complete while that container runs, so asking again does nothing.
    """

    step = luigi.Parameter(default="train", description="Step whose image is started")
    tag = luigi.Parameter(
        default=os.environ.get("WINE_IMAGE_TAG") or os.environ.get("WINE_VERSION") or "0.1",
        description="Image tag (build-task-images.sh VERSION)",
    )
    repository = luigi.Parameter(default="wine-pipeline", description="Image name prefix")
    seconds = luigi.IntParameter(default=86400, description="How long the container sleeps")
    data_root = luigi.OptionalParameter(
        default=None,
        description="Host folder mounted at /usr/share/data (default: WINE_HOST_DATA_ROOT, "
        "else the orchestrator container's own mount, else ./data_root)",
    )

    def _runner(self) -> DockerRunner:
        if self.data_root:
            host_root: str | None = os.path.abspath(self.data_root)
        elif os.environ.get("WINE_HOST_DATA_ROOT"):
            host_root = os.environ["WINE_HOST_DATA_ROOT"]
        elif not os.path.exists("/.dockerenv"):
            host_root = os.path.abspath("data_root")
        else:
            host_root = None  # in the orchestrator container: its own mount
        return DockerRunner.from_env(tag=self.tag, repository=self.repository,
                                     host_data_root=host_root)

    @property
    def container_name(self) -> str:
        """Name of the debug container (``wine-debug-<step>``)."""
        return f"wine-debug-{self.step}"

    def complete(self) -> bool:
        """Return whether the debug container is running."""
        import docker
        import docker.errors

        try:
            container = docker.from_env().containers.get(self.container_name)
        except docker.errors.NotFound:
            return False
        return container.status == "running"

    def run(self) -> None:
        """Start the container and say how to get a shell in it."""
        container = self._runner().start_debug(self.step, self.seconds, self.container_name)
        message = (f"{container.name} is up for {self.seconds}s: "
                   f"docker exec -it {container.name} bash")
        log.info(message)
        print(message, flush=True)
        self.set_status_message(message)
