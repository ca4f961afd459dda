""".env.example lists every WINE_* setting that is read, with the defaults Compose uses."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"\bWINE_[A-Z0-9_]*[A-Z0-9]\b")
#: ``NAME=default`` or, for what the code reads, ``# NAME=default``.
SETTING = re.compile(r"^(?:# )?(WINE_[A-Z0-9_]+)=(.*)$", re.MULTILINE)
#: Compose's interpolation: ``${NAME}``, ``${NAME:-default}``, ...
INTERPOLATION = re.compile(r"(?<!\$)\$\{(WINE_[A-Z0-9_]+)(:?[-?+]?)([^}]*)\}")


def example() -> dict[str, str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    found = SETTING.findall(text)
    names = [name for name, _ in found]
    assert len(names) == len(set(names)), "a setting is listed twice"
    return dict(found)


def read_by_the_project() -> dict[str, set[str]]:
    """Each WINE_* name that the compose file, the code, the images, scripts and tests read."""
    files = [*ROOT.glob("docker-compose*.yml"), ROOT / "Makefile", ROOT / ".ci" / "run",
             *ROOT.glob("*.sh"), *(ROOT / "scripts").glob("*"), *(ROOT / "images").rglob("*"),
             *(ROOT / "pipeline").rglob("*.py"), *(ROOT / "tests").glob("*.py")]
    where: dict[str, set[str]] = {}
    for path in files:
        if path.is_file() and path != Path(__file__).resolve():
            for name in NAME.findall(path.read_text(encoding="utf-8")):
                where.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return where


def test_every_wine_variable_is_in_env_example():
    listed = example()
    where = read_by_the_project()
    assert {"WINE_LOG_LEVEL", "WINE_INVENTORY", "WINE_IMAGE_TAG"} <= set(where)
    missing = {name: sorted(files) for name, files in where.items() if name not in listed}
    assert not missing, f"add to .env.example: {missing}"
    unused = set(listed) - set(where)
    assert not unused, f"listed in .env.example but read nowhere: {sorted(unused)}"


#: What only docker-compose.worker.yml needs, and cannot guess: the first host's scheduler
#: and this host's address (``${NAME:?message}``, listed empty in .env.example).
REQUIRED_ON_ANOTHER_HOST = {"WINE_SCHEDULER_ADDRESS", "WINE_WORKER_HOST"}


def test_compose_needs_no_env_file_and_env_example_has_its_defaults():
    listed = example()
    found = []
    for file in ("docker-compose.yml", "docker-compose.tls.yml", "docker-compose.worker.yml"):
        text = (ROOT / file).read_text(encoding="utf-8")
        assert INTERPOLATION.findall(text), file
        found += INTERPOLATION.findall(text)
        for name, operator, default in INTERPOLATION.findall(text):
            if operator == ":?":
                # Required, with the message saying so: no default to list.
                assert file == "docker-compose.worker.yml" and name in REQUIRED_ON_ANOTHER_HOST
                assert listed.get(name) == "", f"{name}: list it in .env.example, empty"
                continue
            # Every setting has a default, so `docker compose up` works without a .env.
            assert operator == ":-", f"${{{name}}} in {file} has no default"
            assert listed.get(name) == default, (
                f"{name}: {file} defaults to {default!r}, .env.example says "
                f"{listed.get(name)!r}")
    # What Compose interpolates is set there, not commented out as a code-only setting.
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name, _, _ in found:
        assert re.search(rf"^{name}=", text, re.MULTILINE), f"{name} is commented out"

