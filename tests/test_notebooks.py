"""The executed notebooks: committed with their outputs, and still running cleanly."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))

#: Seconds one cell may take, and the whole notebook, on a busy two-core machine.
CELL_TIMEOUT = 180
TOTAL_TIMEOUT = 300

#: Stdout lines that legitimately change between runs.
VOLATILE = ("notebook executed in",)


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def errors(nb) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}"
            for c in code_cells(nb) for o in c.outputs if o.output_type == "error"]


def stdout_lines(nb) -> list[str]:
    return [line for c in code_cells(nb) for o in c.outputs
            if o.output_type == "stream" and o.name == "stdout"
            for line in o.text.splitlines()
            if not line.startswith(VOLATILE)]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_committed_notebook_has_outputs_and_no_errors(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    cells = code_cells(nb)
    assert cells, f"{path.name} has no code cells"
    empty = [i for i, c in enumerate(cells) if not c.outputs or c.execution_count is None]
    assert not empty, f"{path.name}: code cells {empty} were not executed or have no output"
    assert not errors(nb), f"{path.name} was saved with errors: {errors(nb)}"
    stderr = [o.text for c in cells for o in c.outputs
              if o.output_type == "stream" and o.name == "stderr"]
    assert not any("Traceback" in t or "Warning" in t for t in stderr), stderr
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name} was not run top to bottom"
    figures = [o for c in cells for o in c.outputs if "image/png" in o.get("data", {})]
    assert figures, f"{path.name} has no inline PNG figure"


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_notebook_reexecutes_cleanly(path, sample_csv, tmp_path):
    committed = nbformat.read(path, as_version=4)
    nb = nbformat.read(path, as_version=4)
    for cell in code_cells(nb):
        cell.outputs, cell.execution_count = [], None
    # Run with notebooks/ as the working directory, where the notebook finds the sample at
    # ../../shared/data; the executed copy is written to the temporary directory.
    client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT,
                            record_timing=False,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    nbformat.write(nb, tmp_path / path.name)

    assert elapsed < TOTAL_TIMEOUT, f"{path.name} took {elapsed:.0f} s"
    assert not errors(nb), errors(nb)
    assert all(c.outputs for c in code_cells(nb))
    # The committed outputs (and the commentary written from them) are current.
    assert stdout_lines(nb) == stdout_lines(committed), (
        f"{path.name} prints other numbers than its committed outputs: re-execute and commit it"
    )


def test_exploratory_notebook_reports_the_sample():
    nb = nbformat.read(NOTEBOOKS / "01-exploratory-analysis.ipynb", as_version=4)
    printed = "\n".join(stdout_lines(nb))
    assert "6,042 rows x 13 columns" in printed
    assert "hash split 0" in printed
