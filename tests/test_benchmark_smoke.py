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
