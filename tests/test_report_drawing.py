"""The report's figures: a mark per wine, band or word, a message when there is nothing to
show, and the report's look."""

from __future__ import annotations

import re
import struct

import matplotlib
import numpy as np
import pandas as pd
import pytest
from test_evaluation import toy

from pipeline import evaluation as ev
from pipeline.report import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_figures_are_drawn_in_the_report_style_and_it_is_restored():
    dpi = matplotlib.rcParams["figure.dpi"]
    with plots.report_style():
        png = plots.figure_png(plots.points_distribution, toy())
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
