"""The report's figures: a mark per wine, band or word, a message when there is nothing to
show, the report's look, and the same PNGs when drawn in two processes (a failing helper
changes nothing)."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from test_evaluation import toy

from pipeline import evaluation as ev
from pipeline.report import drawing, plots

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
        "errors": (plots.mae_by_points_band,
                   ev.error_bands(pred, "points", ev.POINTS_BAND_EDGES, integer=True)),
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


@pytest.mark.slow  # a helper process draws the figures
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


@pytest.mark.slow  # a helper process draws the figures
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


@pytest.mark.slow  # a helper process draws the figures
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


@pytest.mark.slow  # a helper process draws the figures
def test_no_helper_when_none_can_be_started(tmp_path):
    # A real failure to create the helper: too few file descriptors for its pipes.
    here = Path(__file__).resolve().parent
    proc = subprocess.run([sys.executable, "-c", _NO_FILES_LEFT], cwd=tmp_path, text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": f"{here.parent}:{here}",
                               "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "drawn without a helper" in proc.stdout


def test_figures_are_drawn_in_the_report_style_and_it_is_restored():
    dpi = matplotlib.rcParams["figure.dpi"]
    with drawing.report_style():
        png = drawing.figure_png(plots.points_distribution, toy())
        assert matplotlib.rcParams["axes.titleweight"] == "bold"
    assert matplotlib.rcParams["figure.dpi"] == dpi  # the caller's settings are back
    assert png.startswith(PNG_MAGIC)
    width, height = struct.unpack(">II", png[16:24])  # the PNG header's size
    assert (width, height) == (880, 495)  # 8 x 4.5 inches at 110 dpi


def test_figures_with_nothing_to_show_say_so_and_draw_nothing():
    no_price = toy().assign(price=np.nan)
    figures = [plots.price_distribution(no_price),
               plots.word_weights_chart(pd.DataFrame({"term": [], "weight": []})),
               plots.error_by_group_chart([], "x", 1.0), plots.importance_chart([])]
    for fig in figures:
        (ax,) = fig.axes
        # One line of text says what is missing, where the data would be; nothing is drawn.
        (message,) = [t.get_text() for t in ax.texts]
        assert re.match(r"(No|Too few) ", message), message
        assert not ax.axison
        assert not ax.patches and not ax.lines and not ax.collections, message
    assert "7 of 7 wines have no price" in figures[0].axes[0].get_title()


def _marks(ax) -> list:
    """The bars of a bar chart or histogram, in drawing order."""
    return [bar for container in ax.containers for bar in container]


def test_figures_draw_one_mark_per_wine_band_or_word():
    wines = toy()
    # A bar per score, as high as the wines with that score (84 to 95: zero-height between).
    ax = plots.points_distribution(pd.concat([wines, wines.head(2)])).axes[0]
    heights = {round(b.get_x() + b.get_width() / 2): b.get_height() for b in _marks(ax)}
    assert {x: h for x, h in heights.items() if h} == {85: 2, 90: 2, 92: 1, 88: 1, 84: 1,
                                                       95: 1, 86: 1}
    assert sum(b.get_height() for b in _marks(plots.residuals_histogram(wines).axes[0])) == 7
    # Countries and critics: a bar each, as long as their number of wines.
    ax = plots.top_countries(wines).axes[0]
    assert dict(zip([t.get_text() for t in ax.get_yticklabels()],
                    [b.get_width() for b in _marks(ax)], strict=True)) == {
        "France": 3, "unknown": 2, "Italy": 2}
    ax = plots.tasters_chart(wines, n=2).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Ann", "Bo"]
    assert [b.get_width() for b in _marks(ax)] == [4, 2]
    # A box per price band, wines without a price in their own.
    ax = plots.points_by_price(wines).axes[0]
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == [
        "under 15", "15-25", "25-40", "100+", "no price"]
    # A dot per wine, or per sampled wine, at its predicted score.
    (dots,) = plots.predicted_vs_actual(wines).axes[0].collections[1:]
    assert sorted(dots.get_offsets()[:, 1]) == sorted(wines["predicted_points"])
    fig = plots.predicted_vs_actual(wines, max_points=3)
    assert len(fig.axes[0].collections[1].get_offsets()) == 3
    assert "random 3 of 7 wines" in fig.axes[0].get_title()
    # The bars per score band are each predictor's error there.
    bands = ev.error_bands(wines, "points", ev.POINTS_BAND_EDGES, integer=True)
    ax = plots.mae_by_points_band(bands).axes[0]
    assert len(ax.containers) == 3  # the model and both baselines
    for container, predictor in zip(ax.containers, ("model", "mean", "price_only"),
                                    strict=True):
        assert [b.get_height() for b in container] == pytest.approx(
            [getattr(row, predictor) for row in bands.rows])
    # Words: the n strongest each way, as long as their weights.
    weights = pd.DataFrame({"term": ["rich", "fresh", "dull", "thin", "flat", "none"],
                            "weight": [0.9, 0.2, -0.5, -0.8, -0.1, 0.0]})
    ax = plots.word_weights_chart(weights, n=2).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["rich", "fresh", "dull", "thin"]
    assert [b.get_width() for b in ax.patches] == [0.9, 0.2, -0.5, -0.8]
    # Ranges: a bar per wine shown; a cross for each score outside its range.
    ax = plots.interval_examples(wines, n=5).axes[0]
    ranges, predictions, inside, outside = ax.collections
    assert len(ranges.get_segments()) == len(predictions.get_offsets()) == 5
    assert len(inside.get_offsets()) + len(outside.get_offsets()) == 5
    assert f"{len(inside.get_offsets())} of 5 hold the critic's score" in ax.get_title()
    # Groups: the model's bar and the price-only rule's, per group.
    groups = ev.error_by_group(wines, "country", ev.UNKNOWN, min_wines=1).rows
    ax = plots.error_by_group_chart(groups, "By country", 2.1).axes[0]
    assert [b.get_width() for b in ax.containers[0]] == pytest.approx([g.mae for g in groups])
    assert [b.get_width() for b in ax.containers[1]] == pytest.approx(
        [g.mae_price_only for g in groups])
    # A waterfall: a floating bar per contribution, each starting where the last ended.
    wine = ev.ExplainedWine(id="1", title="Big", points=95.0, predicted_points=93.0,
                            start=88.0, end=93.0,
                            steps=[ev.Step("a", "note", 4.0), ev.Step("b", "price", 2.0),
                                   ev.Step("other", "other", -1.0)])
    bars = plots.contribution_waterfall(wine).axes[0].patches
    assert [(b.get_x(), b.get_width()) for b in bars] == [(88.0, 4.0), (92.0, 2.0),
                                                         (94.0, -1.0)]
    # Importances and costs: a bar per feature shown, two per price band.
    importance = ev.importance_table(pd.DataFrame({
        "feature": ["description", "log_price", "country", "vintage"],
        "mean_abs_contribution": [2.0, 0.8, 0.3, 0.1]}), "sgd")
    assert len(plots.importance_chart(importance, n=3).axes[0].patches) == 3
    cost = ev.cost_by_price_band(wines)
    ax = plots.cost_by_price_chart(cost).axes[0]
    assert [len(c) for c in ax.containers] == [len(cost), len(cost)]
    assert [b.get_height() for b in ax.containers[0]] == pytest.approx(
        [band.over_share for band in cost])
