"""The whole DAG through real luigi, each step a subprocess on one real LocalCluster."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import read_split, run_cli
from pipeline.metrics import regression_metrics
from pipeline.model_file import load_model
from pipeline.orchestration.tasks import Predict, inventory_key, run_key

pytestmark = pytest.mark.slow  # luigi runs the whole DAG

#: Files of the user's in the data root (as the README's Docker way suggests for a CSV).
USERS = {"reviews-copy.csv": "mine", "model/notes.txt": "mine too"}


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, sample_csv):
    # A folder of wines to score: the sample, and its first hundred records.
    folder = tmp_path_factory.mktemp("inventory")
    shutil.copy(sample_csv, folder / "cellar.csv")
    pd.read_csv(sample_csv, index_col=0).head(100).to_csv(folder / "new_arrivals.csv")
    (folder / "notes.txt").write_text("not an inventory")
    return folder


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, sample_csv, inventory):
    root = tmp_path_factory.mktemp("data_root")
    for name, text in USERS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    result = run_cli("run", "--source", str(sample_csv), "--data-root", str(root),
                     "--inventory", str(inventory))
    return root, result


def outputs(root, source, inventory=None):
    key = run_key(str(source))
    paths = {
        "raw": root / "raw" / key / "reviews.csv",
        "dataset": root / "dataset" / key / "_SUCCESS",
        "model": root / "model" / key / "model.joblib",
        "report": root / "report" / key / "report.html",
    }
    for name in ("cellar.csv", "new_arrivals.csv") if inventory else ():
        paths[name] = root / "predictions" / key / inventory_key(inventory / name)
        paths[f"{name} sheet"] = paths[name].with_suffix(".html")  # the buyer's sheet
    return paths


def test_run_builds_every_output(first_run, sample_csv, inventory):
    root, result = first_run
    assert result.returncode == 0, result.stderr[-3000:]
    paths = outputs(root, sample_csv, inventory)
    for name, path in paths.items():
        assert path.is_file(), f"{name} missing at {path}"
    assert f"model:  {paths['model']}" in result.stdout
    assert f"report: {paths['report']}" in result.stdout
    # One prediction per inventory record, in order, named after the inventory.
    assert paths["cellar.csv"].name.startswith("cellar-")
    cellar = pd.read_csv(paths["cellar.csv"])
    assert cellar.columns.tolist() == ["id", "predicted_points", "lower", "upper",
                                       "reject_reason"]
    assert len(cellar) == 6042
    usable = cellar[cellar["reject_reason"].isna()]
    assert len(usable) > 6000
    assert usable["predicted_points"].between(80, 100).mean() > 0.99
    assert (usable["lower"] <= usable["predicted_points"]).all()
    assert (usable["predicted_points"] <= usable["upper"]).all()
    arrivals = pd.read_csv(paths["new_arrivals.csv"])
    assert arrivals["predicted_points"].tolist() == cellar["predicted_points"][:100].tolist()
    assert f"predictions: {paths['cellar.csv']} (of {inventory / 'cellar.csv'})" in result.stdout
    assert f"sheet:       {paths['cellar.csv sheet']}" in result.stdout
    assert len(list((root / "predictions").rglob("*.csv"))) == 2  # notes.txt is no inventory
    sheet = paths["cellar.csv sheet"].read_text(encoding="utf-8")
    assert '<td data-count="6042">' in sheet and sheet.count("<img ") == 2
    assert "<img" in paths["report"].read_text(encoding="utf-8")
    # The user's own files in the data root are left alone.
    assert {name: (root / name).read_text() for name in USERS} == USERS


def test_second_run_does_nothing(first_run, sample_csv, inventory):
    root, _ = first_run
    paths = outputs(root, sample_csv, inventory)
    before = {name: p.stat().st_mtime_ns for name, p in paths.items()}
    result = run_cli("run", "--source", str(sample_csv), "--data-root", str(root),
                     "--inventory", str(inventory))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "complete ones were encountered" in result.stderr
    assert "ran successfully" not in result.stderr
    assert {name: p.stat().st_mtime_ns for name, p in paths.items()} == before


def test_a_changed_inventory_is_scored_again(first_run, sample_csv, inventory, tmp_path):
    root, _ = first_run
    paths = outputs(root, sample_csv, inventory)
    model_before = paths["model"].stat().st_mtime_ns
    changed = tmp_path / "new_arrivals.csv"
    pd.read_csv(inventory / "new_arrivals.csv", index_col=0).head(10).to_csv(changed)
    result = run_cli("run", "--source", str(sample_csv), "--data-root", str(root),
                     "--inventory", str(changed))
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = root / "predictions" / run_key(str(sample_csv)) / inventory_key(changed)
    assert fresh != paths["new_arrivals.csv"]
    assert len(pd.read_csv(fresh)) == 10
    assert paths["new_arrivals.csv"].is_file()  # the earlier predictions stay
    assert paths["model"].stat().st_mtime_ns == model_before  # nothing retrained


def test_an_inventory_that_is_not_there_is_refused(tmp_path, sample_csv):
    result = run_cli("run", "--source", str(sample_csv), "--data-root", str(tmp_path),
                     "--inventory", str(tmp_path / "nowhere.csv"))
    assert result.returncode == 2
    assert "nowhere.csv: no such file or folder" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("run", "--source", str(sample_csv), "--data-root", str(tmp_path),
                     "--inventory", str(empty), "--runner", "docker")
    assert "a folder without any CSV" in result.stderr
    assert not (tmp_path / "raw").exists()


def test_model_from_the_sample_predicts_held_out_reviews(first_run, sample_csv):
    root, _ = first_run
    paths = outputs(root, sample_csv)
    model = load_model(paths["model"])
    test = read_split(paths["dataset"].parent, "test")
    ours = regression_metrics(test["points"], model.predict(test))
    mean = regression_metrics(test["points"], np.full(len(test), model.target_mean_))
    # The bar for unseen reviews is MAE < 1.35 (the mean scores about 2.45).
    assert ours["mae"] < 1.35, ours
    # The default keeps whichever model validated better.
    candidates = model.metadata["candidates_valid_mae"]
    assert set(candidates) == {"sgd", "lightgbm"}
    assert model.metadata["model"] == min(candidates, key=candidates.get)
    assert mean["mae"] > 2.0


def test_a_failing_step_fails_the_run(tmp_path):
    result = run_cli("run", "--source", str(tmp_path / "missing.csv"),
                     "--data-root", str(tmp_path / "root"))
    assert result.returncode != 0
    assert "does not exist" in result.stderr
    assert not (tmp_path / "root" / "model").exists()


def test_the_log_level_reaches_every_step(tmp_path):
    # A DAG whose first step fails at once: its DEBUG lines, relayed from its own
    # process ("[download] ..."), are there only when the run was asked for DEBUG.
    args = ("run", "--source", str(tmp_path / "missing.csv"), "--data-root", str(tmp_path))
    step_debug = re.compile(r"\[download\] \S+ \S+ DEBUG pipeline: wine-pipeline .* "
                            r"\(pid \d+, log level DEBUG\): download --source ")
    default = run_cli(*args, env={"WINE_LOG_LEVEL": ""})
    assert default.returncode != 0 and "[download]" in default.stderr
    assert " DEBUG " not in default.stderr
    asked = run_cli("--log-level", "DEBUG", *args, env={"WINE_LOG_LEVEL": "WARNING"})
    assert asked.returncode != 0
    assert step_debug.search(asked.stderr), asked.stderr[-3000:]
    assert re.search(r"\[download\] .* DEBUG pipeline: the step failed", asked.stderr)


def test_predictions_without_their_sheet_are_not_complete(tmp_path, sample_csv, inventory):
    # Predictions made before the sheet existed are made again, with their sheet.
    task = Predict(source=str(sample_csv), data_root=str(tmp_path),
                   inventory=str(inventory / "new_arrivals.csv"))
    csv = outputs(tmp_path, sample_csv, inventory)["new_arrivals.csv"]
    assert task.output().path == str(csv) and task.sheet == str(csv.with_suffix(".html"))
    assert "--sheet" in task.arguments()
    csv.parent.mkdir(parents=True)
    csv.write_text("id,predicted_points,lower,upper,reject_reason\n")
    assert not task.complete()
    csv.with_suffix(".html").write_text("<html></html>")
    assert task.complete()
