"""docker-compose.yml, read as Compose reads it: service names, addresses, references."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEDULER = "tcp://scheduler:8786"


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_services_are_named_as_in_dasks_compose_file():
    # So that the brief's `docker compose up --scale worker=N` works.
    services = compose()["services"]
    assert set(services) == {"scheduler", "worker", "luigid", "orchestrator"}
    assert SCHEDULER in services["worker"]["command"]
    assert set(services["worker"]["depends_on"]) == {"scheduler"}
    orchestrator = services["orchestrator"]
    assert set(orchestrator["depends_on"]) == {"scheduler", "worker", "luigid"}
    assert orchestrator["environment"]["DASK_SCHEDULER_ADDRESS"] == SCHEDULER
    assert f"--scheduler {SCHEDULER}" in " ".join(orchestrator["command"])
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
