"""The report's figures drawn in two processes: same PNGs, and a failing helper changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.report import drawing, plots

pytestmark = pytest.mark.slow  # helper processes draw the figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: The test process; a figure function can tell from it whether it runs in the helper.
PARENT = os.getpid()


def _predictions(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    points = rng.integers(80, 101, n).astype(float)
    predicted = np.clip(points + rng.normal(0, 1.5, n), 80, 100)
    return pd.DataFrame({
        "points": points, "predicted_points": predicted,
        "lower": predicted - 2, "upper": predicted + 2,
        "baseline_mean": np.full(n, 88.0), "baseline_price": np.full(n, 88.5),
        "price": rng.lognormal(3.3, 0.6, n), "country": rng.choice(["France", "Italy", "US"], n),
        "taster_name": rng.choice(["Anna", "Ben", None], n),
    })


def _figures(pred: pd.DataFrame) -> dict[str, tuple]:
    return {
        "points": (plots.points_distribution, pred),
        "prices": (plots.price_distribution, pred),
        "residuals": (plots.residuals_histogram, pred),
        "errors": (plots.mae_by_points_band, pred),
    }


def _stalls_in_helper(pred: pd.DataFrame):
    if os.getpid() != PARENT:
        time.sleep(30)
    return plots.points_distribution(pred)


def _fails_in_helper(pred: pd.DataFrame):
    if os.getpid() != PARENT:
        raise RuntimeError("helper broke")
    return plots.price_distribution(pred)


def _always_fails(pred: pd.DataFrame):
    raise ValueError("no such figure data")


def test_helper_draws_the_same_pngs_as_one_process():
    pred = _predictions()
    alone = drawing.FigureDrawer(_figures(pred), helper=False)
    expected = {name: alone.png(name) for name in _figures(pred)}
    shared = drawing.FigureDrawer(_figures(pred))
    assert shared._pool is not None, "the helper process was not started"
    assert set(shared._ahead) == {"residuals", "errors"}, "the later half goes to the helper"
    got = {name: shared.png(name) for name in _figures(pred)}
    assert got == expected
    assert all(png.startswith(PNG_MAGIC) for png in got.values())
    assert shared._pool is None, "the helper is stopped once its figures are collected"


def test_a_stalled_helper_is_given_up_and_the_figure_drawn_here(monkeypatch):
    monkeypatch.setattr(drawing, "HELPER_TIMEOUT", 1.0)
    pred = _predictions()
    figures = {"points": (plots.points_distribution, pred),
               "stalls": (_stalls_in_helper, pred), "prices": (plots.price_distribution, pred)}
    drawer = drawing.FigureDrawer(figures)
    assert set(drawer._ahead) == {"stalls", "prices"}
    started = time.perf_counter()
    png = drawer.png("stalls")
    assert time.perf_counter() - started < 20, "waited for the stalled helper"
    assert png == drawing.figure_png(plots.points_distribution, pred)
    assert drawer._pool is None and not drawer._ahead, "a stalled helper is not used again"
    assert drawer.png("prices") == drawing.figure_png(plots.price_distribution, pred)


def test_a_failing_helper_falls_back_and_real_errors_still_raise():
    pred = _predictions()
    drawer = drawing.FigureDrawer({"a": (plots.points_distribution, pred),
                                   "b": (_fails_in_helper, pred)})
    assert drawer.png("b") == drawing.figure_png(plots.price_distribution, pred)
    broken = drawing.FigureDrawer({"a": (plots.points_distribution, pred),
                                   "bad": (_always_fails, pred)})
    with pytest.raises(ValueError, match="no such figure data"):
        broken.png("bad")
    with pytest.raises(KeyError):
        broken.png("not a figure")


_NO_FILES_LEFT = """
import os, resource
from pipeline.report import drawing, plots
from test_report_drawing import _predictions
pred = _predictions()
expected = drawing.figure_png(plots.points_distribution, pred)  # fonts loaded while files are free
open_now = len(os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 1, open_now + 1))
drawer = drawing.FigureDrawer({"a": (plots.price_distribution, pred),
                               "b": (plots.points_distribution, pred)})
assert drawer._pool is None and not drawer._ahead, "a helper was started"
assert drawer.png("b") == expected
print("drawn without a helper")
"""


def test_no_helper_when_none_can_be_started(tmp_path):
    # A real failure to create the helper: too few file descriptors for its pipes.
    here = Path(__file__).resolve().parent
    proc = subprocess.run([sys.executable, "-c", _NO_FILES_LEFT], cwd=tmp_path, text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": f"{here.parent}:{here}",
                               "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "drawn without a helper" in proc.stdout
