"""The buyer's sheet: one self-contained HTML page per scored inventory.

``predict`` writes it beside the predictions CSV, from the merged
:class:`pipeline.sheet_summary.SheetSummary` of the inventory's partitions: how many
wines were scored and set aside (and why), the distribution of the predicted points,
and three rankings of fifteen wines each (most likely to rate 90+, best predicted
points per dollar, widest range).  It is built for a buyer, not a statistician.

Like the evaluation report it is offline: the report's stylesheet, figures drawn
with the report's look (:func:`pipeline.report.plots.report_style`) and inlined as
base64 PNG, and no reference outside the file.  The words are
``templates/sheet.html.j2``, which escapes every text from the inventory (titles,
wineries, ids, reasons).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pipeline.atomic import atomic_file
from pipeline.report import plots
from pipeline.report.drawing import figure_png, report_style
from pipeline.report.filters import environment, present, shorten
from pipeline.report.render import ReportError, markup_references
from pipeline.sheet_summary import GOOD_SCORE, POINTS_EDGES, VALUE_BASE, WIDTH, SheetSummary
from pipeline.storage import as_path


def _label(value: Any) -> str:
    """A text for a figure: ``$`` escaped, or matplotlib would read it as mathematics."""
    return str(value).replace("$", r"\$")


def points_histogram(summary: SheetSummary) -> Figure:
    """Histogram of the predicted points of the scored wines (at least one).

    Parameters
    ----------
    summary : SheetSummary

    Returns
    -------
    matplotlib.figure.Figure
        Half-point bars from 80 to 100, the 90-point bar and the average marked.
    """
    fig, ax = plots._figure()
    counts = np.asarray(summary.histogram)
    ax.set_title(f"Predicted points of the {summary.scored:,} scored wines")
    centres = (POINTS_EDGES[:-1] + POINTS_EDGES[1:]) / 2
    shown = counts > 0
    low = math.floor(POINTS_EDGES[:-1][shown].min())
    high = math.ceil(POINTS_EDGES[1:][shown].max())
    bars = pd.DataFrame({"points": centres, "wines": counts})
    sns.histplot(data=bars, x="points", weights="wines", bins=POINTS_EDGES.tolist(),
                 color=plots.MODEL_COLOUR, alpha=0.85, ax=ax)
    ax.axvline(GOOD_SCORE, color=plots.UP_COLOUR, linewidth=1.2)
    ax.annotate(f"{GOOD_SCORE:.0f}: excellent", (GOOD_SCORE, 1),
                xycoords=("data", "axes fraction"), xytext=(4, -14), textcoords="offset points",
                fontsize=9, color=plots.UP_COLOUR)
    mean = summary.mean_predicted
    ax.axvline(mean, color="0.2", linestyle="--", linewidth=1)
    ax.annotate(f"average {mean:.1f}", (mean, 1), xycoords=("data", "axes fraction"),
                xytext=(4, -28), textcoords="offset points", fontsize=9, color="0.2")
    ax.set_xlim(min(low, GOOD_SCORE - 1) - 0.5, max(high, GOOD_SCORE + 1) + 0.5)
    ax.set_xlabel("Predicted points")
    ax.set_ylabel("Number of wines")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def ranges_chart(top: pd.DataFrame, title: str) -> Figure:
    """Each ranked wine's range as a bar, its predicted points as a dot.

    Parameters
    ----------
    top : pandas.DataFrame
        A ranking of the summary (``title``, ``predicted_points``, ``lower``, ``upper``),
        at least one wine.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
        One row per wine, best on top, with the 90-point line.
    """
    fig, ax = plots._figure((8.0, 0.36 * max(len(top), 4) + 1.8))
    # Over the whole figure: the wines' names take the left part of it.
    fig.suptitle(title, fontweight="bold", fontsize=13)
    names = [_label(f"{i}. " + shorten(v if present(v) else "(no name)", 48))
             for i, v in enumerate(top["title"], start=1)]
    y = np.arange(len(top))
    ax.hlines(y, top["lower"], top["upper"], color=plots.MODEL_COLOUR, alpha=0.35, linewidth=6,
              label="80% range")
    ax.scatter(top["predicted_points"], y, color=plots.MODEL_COLOUR, s=28, zorder=3,
               label="predicted points")
    ax.axvline(GOOD_SCORE, color=plots.UP_COLOUR, linewidth=1.2)
    ax.set_yticks(y, names, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("Points")
    ax.grid(axis="y", visible=False)
    fig.legend(loc="outside lower center", ncols=2, fontsize=9, frameon=False)
    return fig


def sheet_figures(summary: SheetSummary) -> dict[str, tuple[Callable[..., Figure], ...]]:
    """The figures of the sheet, in order, as ``(function, *args)``.

    Empty when no wine was scored: there is nothing to draw.
    """
    if not summary.scored:
        return {}
    return {
        "points": (points_histogram, summary),
        "likely_90": (ranges_chart, summary.top["likely_90"],
                      "Ranges of the wines most likely to rate 90 or more"),
    }


def sheet_html(summary: SheetSummary, about: Mapping[str, Any],
               figures: Mapping[str, bytes]) -> str:
    """The whole sheet as one HTML document (``templates/sheet.html.j2``).

    Parameters
    ----------
    summary : SheetSummary
        The merged summary of the inventory.
    about : mapping
        ``coverage`` (the share of wines the range holds), and optionally
        ``inventory`` (its file name), ``model`` (the model file's name), ``version``,
        ``kind`` (the model's) and ``trained_at`` (an ISO time).
    figures : mapping of str to bytes
        PNG of each figure of :func:`sheet_figures`; a missing one is left out.

    Returns
    -------
    str
        A complete, self-contained HTML document.
    """
    widths = summary.top["widest"][WIDTH]
    same_width = (widths.max() if len(widths) > 1 and widths.max() - widths.min() < 0.05
                  else None)
    return environment().get_template("sheet.html.j2").render(
        s=summary, about=about, good_score=GOOD_SCORE, value_base=VALUE_BASE,
        rankings={name: top.to_dict("records") for name, top in summary.top.items()},
        figures={name: base64.b64encode(png).decode("ascii") for name, png in figures.items()},
        same_width=same_width)


def render_sheet(summary: SheetSummary, out_html: str | Path, about: Mapping[str, Any]) -> Path:
    """Draw the figures, assemble the sheet and write it atomically.

    Parameters
    ----------
    summary : SheetSummary
        The merged summary of the inventory.
    out_html : str or pathlib.Path
        Where the sheet goes; replaces only an earlier output of wine-pipeline
        (:func:`pipeline.atomic.atomic_file`).
    about : mapping
        See :func:`sheet_html`.

    Returns
    -------
    pathlib.Path
        ``out_html``.

    Raises
    ------
    ReportError
        If the page would load anything from outside itself or run a script.
    """
    with report_style():
        figures = {name: figure_png(*spec) for name, spec in sheet_figures(summary).items()}
    document = sheet_html(summary, about, figures)
    leftovers = markup_references(document)
    if leftovers:
        raise ReportError(f"the buyer's sheet would refer to external resources: {leftovers}")
    out = as_path(out_html)
    with atomic_file(out) as tmp:
        tmp.write_text(document, encoding="utf-8")
    return out
