"""The buyer's sheet: one self-contained HTML page per scored inventory.

``predict`` writes it beside the predictions CSV, from the merged
:class:`pipeline.sheet_summary.SheetSummary` of the inventory's partitions: how many
wines were scored and set aside (and why), the distribution of the predicted points,
and three rankings of fifteen wines each (most likely to rate 90+, best predicted
points per dollar, widest range).  It is built for a buyer, not a statistician.

Like the evaluation report it is offline: the report's stylesheet, figures drawn
with the report's seaborn look (:func:`pipeline.report.plots.report_style`) and
inlined as base64 PNG, and no reference outside the file.  Every text that comes
from the inventory (titles, wineries, ids, reasons) is HTML-escaped.

The figure and HTML functions are pure (a summary in, a figure or a string out);
:func:`render_sheet` draws, assembles and writes the page atomically.
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
from pipeline.report import text as t
from pipeline.report.render import STYLESHEET, ReportError, markup_references
from pipeline.sheet_summary import (
    GOOD_SCORE,
    POINTS_EDGES,
    VALUE,
    VALUE_BASE,
    WIDTH,
    SheetSummary,
)
from pipeline.storage import as_path

#: Extra rules for the sheet's wine tables, on top of the report's stylesheet.
_SHEET_CSS = """
table.wines td.num, table.wines th.num { text-align: right; white-space: nowrap; }
table.wines td.rank { color: #8a8185; text-align: right; }
table.wines td.wine { min-width: 16em; }
table.overview { width: auto; }
"""

#: How each ranking is introduced, keyed like :data:`pipeline.sheet_summary.RANKINGS`:
#: HTML id of its table, heading, what it means for the buyer.
RANKING_TEXT: dict[str, tuple[str, str, str]] = {
    "likely_90": (
        "likely-90", "Most likely to rate 90 or more",
        "Ranked by the low end of each wine's range: the higher even the cautious end of the"
        " prediction, the surer the wine reaches the 90 points critics call excellent."),
    "value": (
        "best-value", "Best value: predicted points per dollar",
        f"Value is the predicted points above {VALUE_BASE:.0f} (the bottom of the scale) per"
        " dollar of the bottle's price: (predicted points \u2212"
        f" {VALUE_BASE:.0f}) \u00f7 price. A $10 wine predicted at 88 scores 0.80, a $40 wine"
        " predicted at 92 scores 0.30. Only wines with a price are ranked."),
    "widest": (
        "widest-range", "Where a tasting is worth it: the widest ranges",
        "The wines the model is least sure about, ranked by the width of their range (upper"
        " minus lower end): their rating could land anywhere in it, so tasting them before"
        " buying tells you most."),
}


def _label(value: Any) -> str:
    """A text for a figure: ``$`` escaped, or matplotlib would read it as mathematics."""
    return str(value).replace("$", r"\$")


def _present(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def points_histogram(summary: SheetSummary) -> Figure:
    """Histogram of the predicted points of the scored wines.

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
    if not counts.sum():
        plots._empty(ax, "No wine could be scored")
        return fig
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
        A ranking of the summary (``title``, ``predicted_points``, ``lower``, ``upper``).
    title : str

    Returns
    -------
    matplotlib.figure.Figure
        One row per wine, best on top, with the 90-point line.
    """
    fig, ax = plots._figure((8.0, 0.36 * max(len(top), 4) + 1.8))
    # Over the whole figure: the wines' names take the left part of it.
    fig.suptitle(title, fontweight="bold", fontsize=13)
    if top.empty:
        plots._empty(ax, "No wine to show")
        return fig
    names = [_label(f"{i}. " + t.shorten(v if _present(v) else "(no name)", 48))
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

    Parameters
    ----------
    summary : SheetSummary

    Returns
    -------
    dict
        Name to figure function and arguments; empty when no wine was scored
        (there is nothing to draw).
    """
    if not summary.scored:
        return {}
    return {
        "points": (points_histogram, summary),
        "likely_90": (ranges_chart, summary.top["likely_90"],
                      "Ranges of the wines most likely to rate 90 or more"),
    }


def _figure_html(png: bytes | None, alt: str, caption: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{t.escape(alt)}"/>'
            f"<figcaption>{t.escape(caption)}</figcaption></figure>")


def overview_html(summary: SheetSummary) -> str:
    """HTML table of the inventory's counts.

    Parameters
    ----------
    summary : SheetSummary

    Returns
    -------
    str
        Wines read, scored, set aside, predicted 90+, whole range 90+, priced,
        average prediction and range width.
    """
    def share(n: int) -> str:
        if not summary.rows:
            return ""
        part = n / summary.rows
        # Never "100%" or "0%" for a part that is neither all nor none.
        shown = f"{100 * part:.1f}%" if 0.995 <= part < 1 else t.percent(part)
        return f' <span class="note">({shown})</span>'

    counts = [("rows", "Wines in the inventory", summary.rows, ""),
              ("scored", "Scored", summary.scored, share(summary.scored)),
              ("set_aside", "Set aside (no prediction)", summary.set_aside,
               share(summary.set_aside))]
    if summary.scored:
        counts += [("good", f"Predicted {GOOD_SCORE:.0f} points or more", summary.good, ""),
                   ("sure_good", f"Whole range at {GOOD_SCORE:.0f} or more", summary.sure_good,
                    ""),
                   ("priced", "Scored wines with a price", summary.priced, "")]
    # data-count: the number itself, for a program reading the sheet.
    rows = [f'<tr data-key="{key}"><td>{label}</td><td data-count="{n}">{t.count(n)}{note}</td>'
            "</tr>" for key, label, n, note in counts]
    if summary.scored:
        rows += [f"<tr><td>Average predicted points</td><td>{summary.mean_predicted:.1f}"
                 "</td></tr>",
                 f"<tr><td>Average width of the range</td><td>{summary.mean_width:.1f}"
                 " points</td></tr>"]
    return ('<table class="overview" id="counts"><thead><tr><th></th><th>Wines</th></tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table>")


def reasons_html(summary: SheetSummary) -> str:
    """Why wines were set aside: an HTML table of each kind of reason, most frequent first.

    Parameters
    ----------
    summary : SheetSummary

    Returns
    -------
    str
        A paragraph, and a table when any wine was set aside.
    """
    if not summary.set_aside:
        return "<p>None: every wine could be scored.</p>"
    reasons = sorted(summary.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    intro = ("<p>These wines keep their row in the predictions file, with an empty prediction"
             " and the reason in <code>reject_reason</code>.</p>")
    rows = "".join(f'<tr><td>{t.escape(r)}</td><td data-count="{n}">{t.count(n)}</td></tr>'
                   for r, n in reasons)
    return (intro + '<table class="compact" id="reasons"><thead><tr><th>Reason</th>'
            f"<th>Wines</th></tr></thead><tbody>{rows}</tbody></table>")


def _points(value: Any, digits: int = 1) -> str:
    number = t.as_number(value)
    return "n/a" if number is None else f"{number:.{digits}f}"


def ranking_html(summary: SheetSummary, ranking: str) -> str:
    """One ranking as an HTML table, with its heading and explanation.

    Parameters
    ----------
    summary : SheetSummary
    ranking : str
        A key of :data:`RANKING_TEXT`.

    Returns
    -------
    str
        ``<h2>``, a paragraph and a ``<table class="wines" id=...>`` (or a paragraph
        saying why there is nothing to rank).
    """
    anchor, heading, explanation = RANKING_TEXT[ranking]
    top = summary.top[ranking]
    out = f'<h2 id="{anchor}-heading">{t.escape(heading)}</h2>\n<p>{t.escape(explanation)}</p>'
    if not summary.scored:
        return out + "<p>No wine could be scored, so there is nothing to rank.</p>"
    if ranking == "value" and top.empty:
        return out + "<p>None of the scored wines has a price, so none can be ranked here.</p>"
    widths = top[WIDTH]
    if ranking == "widest" and len(top) > 1 and widths.max() - widths.min() < 0.05:
        out += ("<p class=\"note\">These wines' ranges are all about as wide"
                f" ({widths.max():.1f} points), so among them the list goes by the highest"
                " prediction.</p>")
    extra = {"value": ("Points per $", VALUE, 2), "widest": ("Range width", WIDTH, 1)}
    header = ["#", "ID", "Wine", "Variety", "Country", "Price", "Predicted", "Range"]
    numeric = {"#", "Price", "Predicted", "Range"}
    if ranking in extra:
        header.append(extra[ranking][0])
        numeric.add(extra[ranking][0])
    rows = []
    for i, wine in enumerate(top.to_dict("records"), start=1):
        name = t.escape(wine["title"]) if _present(wine["title"]) else "(no name)"
        cell = f"<strong>{name}</strong>"
        winery = wine["winery"]
        if _present(winery) and not (_present(wine["title"]) and winery in wine["title"]):
            cell += f'<br><span class="note">{t.escape(winery)}</span>'
        place = t.escape(wine["country"]) if _present(wine["country"]) else "n/a"
        if _present(wine["province"]):
            place += f'<br><span class="note">{t.escape(wine["province"])}</span>'
        row = [str(i), t.escape(wine["id"]) if wine["id"] is not None else "",
               cell, t.escape(wine["variety"]) if _present(wine["variety"]) else "n/a", place,
               t.money(wine["price"]), _points(wine["predicted_points"]),
               f"{_points(wine['lower'])}\u2013{_points(wine['upper'])}"]
        if ranking in extra:
            _, column, digits = extra[ranking]
            row.append(_points(wine[column], digits))
        rows.append(row)
    cls = ["rank" if h == "#" else "num" if h in numeric else h.lower() for h in header]
    head = "".join(f'<th class="{c}">{t.escape(h)}</th>' for h, c in zip(header, cls,
                                                                        strict=True))
    body = "".join("<tr>" + "".join(f'<td class="{c}">{v}</td>' for v, c in zip(row, cls,
                                                                              strict=True))
                   + "</tr>" for row in rows)
    shown = (f'<p class="note">All {len(top)} wines that can be ranked here are shown.</p>'
             if len(top) < summary.k else "")
    return (out + f'<table class="wines" id="{anchor}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>" + shown)


def lead_html(summary: SheetSummary, about: Mapping[str, Any]) -> str:
    """The sheet's opening: what was scored and how to read a prediction.

    Parameters
    ----------
    summary : SheetSummary
    about : mapping
        ``coverage`` (share of wines the range holds, default 0.8), ``kind`` (the
        model's kind, optional), ``trained_at`` (optional).

    Returns
    -------
    str
        Two paragraphs of HTML.
    """
    lead = (f"{summary.rows:,} wine{'s' if summary.rows != 1 else ''} in the inventory:"
            f" {summary.scored:,} scored, {summary.set_aside:,} set aside.")
    if summary.scored:
        lead += (f" {summary.good:,} {'is' if summary.good == 1 else 'are'} predicted at"
                 f" {GOOD_SCORE:.0f} points or more, and for {summary.sure_good:,} even the"
                 " low end of the range reaches it.")
    coverage = t.as_number(about.get("coverage")) or 0.8
    how = ("Each prediction is the rating (80 to 100 points) a critic would probably give the"
           " wine, read from its tasting note, price, origin and grape. Its range should hold"
           f" the critic's score for {t.in_ten(coverage) or t.percent(coverage)}.")
    kind = t.MODEL_SHORT_NAMES.get(str(about.get("kind")), "")
    if kind:
        how += f" Model: {kind}"
        trained = str(about.get("trained_at") or "")[:10]  # the day of an ISO time
        how += f", trained {trained}." if trained else "."
    return f'<p class="lead">{t.escape(lead)}</p>\n<p>{t.escape(how)}</p>'


def sheet_html(summary: SheetSummary, about: Mapping[str, Any],
               figures: Mapping[str, bytes]) -> str:
    """The whole sheet as one HTML document.

    Parameters
    ----------
    summary : SheetSummary
        The merged summary of the inventory.
    about : mapping
        ``inventory`` (its file name), ``model`` (the model file's name),
        ``version`` and the keys :func:`lead_html` reads.
    figures : mapping of str to bytes
        PNG of each figure of :func:`sheet_figures`; a missing one is left out.

    Returns
    -------
    str
        A complete, self-contained HTML document.
    """
    name = str(about.get("inventory") or "inventory")
    parts = [
        f"<h1>Buyer's sheet: {t.escape(name)}</h1>",
        lead_html(summary, about),
        "<h2>The inventory</h2>", overview_html(summary),
        "<h3>Why wines were set aside</h3>", reasons_html(summary),
    ]
    if summary.scored:
        parts += ["<h2>Predicted points</h2>",
                  _figure_html(figures.get("points"), "Histogram of the predicted points",
                               "How many wines are predicted at each score (half-point bins);"
                               f" the green line marks {GOOD_SCORE:.0f} points.")]
    parts.append(ranking_html(summary, "likely_90"))
    if summary.scored:
        parts.append(_figure_html(figures.get("likely_90"), "Ranges of the top wines",
                                  "The dot is the predicted points, the bar the range that"
                                  " should hold the critic's score."))
    parts += [ranking_html(summary, "value"), ranking_html(summary, "widest")]
    footer = (f"Generated by wine-pipeline {about.get('version', '')} from {name}"
              + (f" with the model {about['model']}" if about.get("model") else "")
              + ". The predictions file beside it has every wine. This file is"
              " self-contained: it needs no network connection.")
    body = "\n".join(p for p in parts if p)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>Buyer's sheet: {t.escape(name)}</title>\n"
            f"<style>{STYLESHEET}{_SHEET_CSS}</style>\n</head>\n<body>\n<div class=\"page\">\n"
            f"{body}\n<div class=\"footer\">{t.escape(footer)}</div>\n</div>\n</body>\n</html>\n")


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
    with plots.report_style():
        figures = {name: plots.figure_png(*spec) for name, spec in sheet_figures(summary).items()}
    document = sheet_html(summary, about, figures)
    leftovers = markup_references(document)
    if leftovers:
        raise ReportError(f"the buyer's sheet would refer to external resources: {leftovers}")
    out = as_path(out_html)
    with atomic_file(out) as tmp:
        tmp.write_text(document, encoding="utf-8")
    return out
