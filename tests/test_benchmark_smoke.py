"""A smoke run of the benchmark harness on a few thousand rows: the fields are there and sane.

No timing is asserted: only that every stage ran, every process was measured,
and the pipeline and the reference agree on the data and roughly on accuracy.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.probe import core_speed
from conftest import ROOT

ROWS = 3000

HEADLINE = ("rows", "workers", "pipeline_seconds", "reference_seconds", "ratio",
            "pipeline_peak_rss_mb", "reference_peak_rss_mb", "pipeline_mae", "reference_mae")


@pytest.mark.slow  # the benchmark harness on its own LocalCluster, in a subprocess
def test_benchmark_smoke(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--rows", str(ROWS), "--workers", "1",
         "--name", "smoke", "--work-dir", str(tmp_path / "work"),
         "--results-dir", str(tmp_path / "results"), "--dashboard", ":0",
         "--worker-memory", "2GB", "--repeats", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "results" / "smoke.json").read_text())
    assert (tmp_path / "results" / "smoke.md").read_text().count("| 3,000 | 1 |") == 2
    for rep in (0, 1):
        assert (tmp_path / "results" / "smoke" / f"memory-{ROWS}-w1-auto-r{rep}.csv").is_file()
    assert len(results) == 1
    r = results[0]
    for field in HEADLINE:
        assert r[field] is not None, field
    assert (r["rows"], r["workers"], r["status"]) == (ROWS, 1, "ok")
    # The default model kind, as `wine-pipeline train` runs it; and predict, timed apart.
    assert r["model"] == "auto" and r["model_kept"] in ("sgd", "lightgbm")
    assert r["predict_rows"] == ROWS and r["predict_seconds"] > 0
    assert r["predict_rows_per_second"] > 0 and r["predict_peak_rss_mb"] > 0

    # Two paired runs, in both orders; the headline is one of them, the median by ratio.
    runs = r["runs"]
    assert [run["order"] for run in runs] == ["reference first", "pipeline first"]
    assert all(run["status"] == "ok" and run["ratio"] > 0 for run in runs)
    ratios = sorted(run["ratio"] for run in runs)
    assert r["ratio"] == ratios[1] and r["repeat"] in (0, 1)
    assert r["ratio_range"] == ratios
    assert math.isclose(r["ratio_median"], sum(ratios) / 2, abs_tol=1e-3)

    # Every stage timed and adding up; the report rendering known apart from scoring.
    stages = [r[f"{s}_seconds"] for s in ("make_dataset", "train", "evaluate")]
    assert all(s > 0 for s in stages)
    assert math.isclose(r["pipeline_seconds"], sum(stages), rel_tol=1e-6)
    assert 0 < r["evaluate_report_seconds"] < r["evaluate_seconds"]
    assert math.isclose(r["ratio"], r["pipeline_seconds"] / r["reference_seconds"], rel_tol=1e-3)
    assert r["pipeline_rows_per_second"] > 0 and r["reference_rows_per_second"] > 0

    # Every process of the cluster and the reference was measured, at plausible sizes.
    peaks = r["peak_rss_mb_by_process"]
    assert {"scheduler", "client", "worker-0", "worker-0-nanny"} <= set(peaks)
    assert all(10 < mb < 4000 for mb in peaks.values()), peaks
    assert r["pipeline_peak_rss_mb"] == max(peaks.values())
    assert 50 < r["reference_peak_rss_mb"] < 4000
    for stage in ("make_dataset", "train", "evaluate"):
        assert "worker-0" in r["stages"][stage]["peak_rss_mb"]
    assert r["worker_restarts"] == 0

    # Same rows, same split, comparable accuracy (SGD on 2,400 synthetic rows).
    assert r["counts"]["input"] == ROWS
    assert r["same_test_rows"] is True
    assert 0.3 < r["pipeline_mae"] < 3 and 0.3 < r["reference_mae"] < 3
    assert abs(r["pipeline_mae"] - r["reference_mae"]) < 0.5
    assert r["reference"]["epochs"] == r["stages"]["train"]["fit"]["epochs"]

    machine = r["machine"]
    assert machine["cores_logical"] >= 1 and machine["ram_gb"] > 0 and machine["cpu_model"]
    # The busy-core probe ran before and after both sides of the run.
    for speed in (r["core_speed"], r["reference"]["core_speed"]):
        for when in ("before", "after"):
            probe = speed[when]
            assert probe["alone_cpu_s"] > 0 and probe["together_cpu_s"] > 0
            assert probe["slowdown"] == pytest.approx(
                probe["together_cpu_s"] / probe["alone_cpu_s"], rel=0.02)
    assert "busy-core slowdown" in (tmp_path / "results" / "smoke.md").read_text()
    assert all(run["core_slowdown"][side][when] > 0 for run in runs
               for side in ("pipeline", "reference") for when in ("before", "after"))


@pytest.mark.slow  # two pipeline runs and a SeaweedFS server, in a subprocess
def test_benchmark_smoke_object_store_beside_local(tmp_path):
    pytest.importorskip("s3fs")
    work, out = tmp_path / "work", tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--rows", str(ROWS), "--workers", "1",
         "--model", "sgd", "--skip-reference-above", "0", "--data-root-kinds", "s3", "local",
         "--name", "smoke-s3", "--work-dir", str(work), "--results-dir", str(out),
         "--dashboard", ":0", "--worker-memory", "2GB"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = (out / "smoke-s3.json").read_text()
    results = json.loads(text)
    # One result per data root, local first whatever the order asked, beside one reference.
    assert [r["data_root"] for r in results] == ["local", "s3"]
    local, s3 = results
    for r in results:
        assert (r["rows"], r["workers"], r["status"], r["model"]) == (ROWS, 1, "ok", "sgd")
        assert r["reference"]["status"] == "skipped"
        stages = [r[f"{s}_seconds"] for s in ("make_dataset", "train", "evaluate")]
        assert all(s > 0 for s in stages)
        assert math.isclose(r["pipeline_seconds"], sum(stages), rel_tol=1e-6)
        assert r["predict_rows"] == ROWS and r["predict_seconds"] > 0
        assert {"scheduler", "client", "worker-0"} <= set(r["peak_rss_mb_by_process"])
        assert "object-store" not in r["peak_rss_mb_by_process"]
        assert r["object_store_peak_rss_mb"] > 0 and r["object_store_cpu_seconds"] >= 0
        assert (out / "smoke-s3" / f"memory-{ROWS}-w1-sgd"
                f"{'' if r['data_root'] == 'local' else '-s3'}.csv").is_file()
    # The same data and model wherever the data root is.
    assert s3["counts"] == local["counts"] and s3["counts"]["input"] == ROWS
    assert math.isclose(s3["pipeline_mae"], local["pipeline_mae"], abs_tol=1e-9)
    assert s3["data_root_input"].startswith("s3://wine/smoke-s3/data/synthetic-")
    assert s3["data_root_outputs"] == "s3://wine/smoke-s3/rows-3000/workers-1-sgd-s3/outputs"
    assert s3["upload"]["url"] == s3["data_root_input"] and s3["upload_seconds"] > 0
    assert "upload" not in local and "object_store_vs_local" not in local

    # The ratio of the two totals, with its stages; the store's version and s3fs's.
    assert s3["object_store_vs_local"] == pytest.approx(
        s3["pipeline_seconds"] / local["pipeline_seconds"], abs=1e-3)
    [pair] = s3["object_store_vs_local_runs"]
    assert pair["ratio"] == s3["object_store_vs_local"]
    assert set(s3["object_store_vs_local_by_stage"]) == {"make_dataset", "train", "evaluate",
                                                         "predict"}
    assert s3["object_store_within_target"] == (s3["object_store_vs_local"] <= 1.3)
    assert [run["data_root"] for run in s3["runs"]] == ["s3"]
    machine = s3["machine"]
    assert machine["object_store"]["weed_version"].startswith("version ")
    assert machine["versions"]["s3fs"] not in ("", "absent")
    md = (out / "smoke-s3.md").read_text()
    assert "## Object store against local disk" in md
    assert f"| {s3['object_store_vs_local']:.2f} |" in md
    # No path of this machine in the results; the store's data is gone with the run.
    assert str(tmp_path) not in text and str(tmp_path) not in md
    assert machine["object_store"]["directory"] == "<object-store>"
    assert not (work / "object-store" / "smoke-s3").exists()


def test_core_speed_probe_measures_the_same_work_alone_and_together():
    speed = core_speed(processes=2, rounds=5_000)
    assert set(speed) == {"alone_cpu_s", "together_cpu_s", "slowdown"}
    assert speed["alone_cpu_s"] > 0 and speed["together_cpu_s"] > 0
    # Two copies of the same work need about the same CPU time each as one alone
    # (a loose bound: only a machine starved of cores would stray this far).
    assert 0.2 < speed["slowdown"] < 5
    assert speed["slowdown"] == pytest.approx(speed["together_cpu_s"] / speed["alone_cpu_s"],
                                              rel=0.02)


def test_results_name_paths_of_the_checkout_relative_to_it():
    from benchmarks.run import portable

    record = {"csv": str(ROOT / "benchmarks" / "work" / "data" / "x.csv"),
              "runs": [{"code": ROOT / "benchmarks" / "work" / "code"}, "/elsewhere/y.csv"],
              "rows": 3000, "name": f"{ROOT}-not-inside",
              "java": f"-Djava.io.tmpdir={ROOT / 'benchmarks' / 'work' / 'tmp'}",
              "stdlib": str(Path(sys.base_prefix) / "lib" / "pathlib.py")}
    assert portable(record) == {"csv": "benchmarks/work/data/x.csv",
                                "runs": [{"code": "benchmarks/work/code"}, "/elsewhere/y.csv"],
                                "rows": 3000, "name": f"{ROOT}-not-inside",
                                "java": "-Djava.io.tmpdir=benchmarks/work/tmp",
                                "stdlib": "<python>/lib/pathlib.py"}


def test_results_name_the_work_dir_and_the_store_by_placeholders():
    from benchmarks.run import portable

    store, work = Path("/srv/work/object-store/run"), Path("/srv/work")
    places = [(store, "<object-store>"), (work, "<work-dir>")]
    record = {"dir": str(store), "log": f"{store}/weed.log", "arg": f"-dir={store} -x",
              "csv": f"{work}/data/x.csv", "other": f"{store}-2", "work": str(work)}
    assert portable(record, places=places) == {
        "dir": "<object-store>", "log": "<object-store>/weed.log",
        "arg": "-dir=<object-store> -x", "csv": "<work-dir>/data/x.csv",
        "other": "<work-dir>/object-store/run-2", "work": "<work-dir>"}
