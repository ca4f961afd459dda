from __future__ import annotations

import pytest

from conftest import run_cli

STEPS = ["download", "generate", "make-dataset", "train", "evaluate", "predict", "run"]


def test_every_step_is_a_documented_subcommand():
    result = run_cli("--help")
    assert result.returncode == 0
    for step in STEPS:
        assert step in result.stdout


@pytest.mark.parametrize("step", STEPS)
def test_step_help_documents_its_options(step):
    result = run_cli(step, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: wine-pipeline " + step in result.stdout
    # Every Dask step takes --scheduler; download and generate need no cluster.
    if step not in ("download", "generate"):
        assert "--scheduler" in result.stdout
    assert len(result.stdout.splitlines()) > 5


def test_unknown_runner_is_refused():
    result = run_cli("run", "--runner", "kubernetes")
    assert result.returncode != 0
    assert "kubernetes" in result.stderr
