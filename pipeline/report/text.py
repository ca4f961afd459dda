"""Words and HTML tables of the report, for a reader who is not a statistician.

Every function here is pure: it takes the metrics (``metrics.json``) or a
table from :mod:`pipeline.report.analysis` and returns plain text (not
HTML-escaped; the template escapes it) or an HTML snippet whose values are
escaped.  Missing numbers give ``"n/a"`` or leave a sentence out rather
than fail.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from pipeline import evaluation as an
from pipeline.intervals import SEGMENT_COVERAGE

#: Metrics of the metrics table: key in ``metrics.json``, label, plain-words meaning, kind.
METRIC_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("mae", "Average error (MAE)",
     "How many points the prediction is off, on average. Lower is better.", "points"),
    ("rmse", "Typical error, big misses weigh more (RMSE)",
     "Like the average error, but a few large misses count more. Lower is better.", "points"),
    ("r2", "Share of score differences explained (R²)",
     "1 is perfect; 0 is no better than always guessing the average score.", "ratio"),
    ("within_2", "Within ±2 points",
     "Share of wines whose prediction is at most 2 points off. Higher is better.", "share"),
    ("within_3", "Within ±3 points",
     "Share of wines whose prediction is at most 3 points off. Higher is better.", "share"),
)
_LOWER_IS_BETTER = {"mae", "rmse"}


def as_number(value: Any) -> float | None:
    """A value as a finite float, or None (not a number, NaN or infinite).

    Parameters
    ----------
    value : Any

    Returns
    -------
    float or None
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def section(mapping: Any, key: str) -> Mapping[str, Any]:
    """A sub-mapping of a mapping; an empty dict when it is absent or not a mapping.

    Parameters
    ----------
    mapping : Any
    key : str

    Returns
    -------
    mapping
    """
    value = mapping.get(key) if isinstance(mapping, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def format_metric(value: Any, kind: str) -> str:
    """Format one metric for a reader.

    Parameters
    ----------
    value : Any
        The metric; anything that is not a finite number gives ``"n/a"``.
    kind : {"points", "ratio", "share"}
        Points are shown with two decimals, a ratio with two, a share (0-1) as
        a whole percentage.

    Returns
    -------
    str
        E.g. ``"1.85"``, ``"0.47"`` or ``"78%"``.
    """
    number = as_number(value)
    if number is None:
        return "n/a"
    text = f"{100 * number:.0f}%" if kind == "share" else f"{number:.2f}"
    return text.replace("-0.00", "0.00").replace("-0%", "0%")


def in_ten(share: Any) -> str | None:
    """Say a share as "N wines in 10".

    Parameters
    ----------
    share : Any
        Share between 0 and 1.

    Returns
    -------
    str or None
        E.g. ``"8 wines in 10"``, ``"nearly every wine"`` (95% and more),
        ``"fewer than 1 wine in 10"``; None when ``share`` is not a number.
    """
    number = as_number(share)
    if number is None:
        return None
    if number >= 0.95:
        return "nearly every wine"
    tenths = round(10 * number)
    if tenths < 1:
        return "fewer than 1 wine in 10"
    return f"{tenths} wine{'s' if tenths > 1 else ''} in 10"


def accuracy_sentence(metrics: Mapping[str, Any]) -> str:
    """The headline in plain words, e.g. "For 8 wines in 10 the prediction is within 2 points".

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``.

    Returns
    -------
    str
        Plain text (not HTML-escaped).
    """
    model = section(metrics, "model")
    within2, within3 = in_ten(model.get("within_2")), in_ten(model.get("within_3"))
    mae = as_number(model.get("mae"))
    parts = []
    if within2:
        sentence = (f"For {within2} ({format_metric(model.get('within_2'), 'share')}) the "
                    "predicted score is within 2 points of the critic's score")
        if within3:
            sentence += f", and for {within3} within 3 points"
        parts.append(sentence + ".")
    if mae is not None:
        parts.append(f"On average the prediction is {mae:.1f} points off.")
    return " ".join(parts) or "No accuracy figures are available."


def baseline_sentence(metrics: Mapping[str, Any]) -> str:
    """Compare the model's average error with the naive baselines, in plain words.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``.

    Returns
    -------
    str
        Plain text (not HTML-escaped); empty when the numbers are missing.
    """
    model = as_number(section(metrics, "model").get("mae"))
    baselines = section(metrics, "baselines")
    mean = as_number(section(baselines, "mean").get("mae"))
    price = as_number(section(baselines, "price_only").get("mae"))
    if model is None or (mean is None and price is None):
        return ""
    guesses = []
    if mean is not None:
        guesses.append(f"always guessing the average score would be {mean:.1f} points off")
    if price is not None:
        guesses.append(f"guessing from the price alone {price:.1f} points off")
    sentence = "By comparison, " + " and ".join(guesses) + "."
    best = min(x for x in (mean, price) if x is not None)
    if best > 0 and model < best:
        sentence += (f" The model's errors are {100 * (1 - model / best):.0f}% smaller than the"
                     " better of these simple rules.")
    elif model >= best:
        sentence += " The model does not beat the simple rules on this data."
    return sentence


def html_table(header: list[str], rows: list[list[str]], css: str = "") -> str:
    """An HTML table of already escaped cells.

    Parameters
    ----------
    header : list of str
    rows : list of list of str
    css : str, optional
        Class of the table.

    Returns
    -------
    str
    """
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def metrics_table_html(metrics: Mapping[str, Any]) -> str:
    """HTML table of the model's metrics beside the two baselines.

    The best value of each row is in bold.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``.

    Returns
    -------
    str
        An HTML ``<table>``.
    """
    model = section(metrics, "model")
    baselines = section(metrics, "baselines")
    columns = [
        (f"Model ({html.escape(str(model.get('name', 'model')))})", model),
        ("Always the average score", section(baselines, "mean")),
        ("From the price only", section(baselines, "price_only")),
    ]
    rows = []
    for key, label, meaning, kind in METRIC_ROWS:
        values = [as_number(col.get(key)) for _, col in columns]
        known = [v for v in values if v is not None]
        best = (min(known) if key in _LOWER_IS_BETTER else max(known)) if known else None
        cells = []
        for value in values:
            text = format_metric(value, kind)
            cells.append(f"<strong>{text}</strong>" if value is not None and value == best
                         else text)
        note = f'<span class="note">{html.escape(meaning)}</span>'
        rows.append([html.escape(label), *cells, note])
    header = ["", *(name for name, _ in columns), "What it means"]
    return html_table(header, rows, css="metrics")


def data_overview_html(metrics: Mapping[str, Any]) -> str:
    """HTML table of the number of reviews in each part of the data.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``; its ``rows`` section gives the counts.

    Returns
    -------
    str
        An HTML ``<table>``.
    """
    counts = metrics.get("rows")
    counts = counts if isinstance(counts, Mapping) else {}
    parts = (
        ("train", "Training", "the model learned from these"),
        ("valid", "Validation", "used to choose the model's settings"),
        ("test", "Test", "kept aside until the end; every figure in this report is on these"),
        ("rejected", "Set aside", "unusable rows (e.g. no score or no tasting note), "
                                  "kept with their reason"),
    )
    rows = []
    for key, label, meaning in parts:
        number = as_number(counts.get(key))
        rows.append([label, "n/a" if number is None else f"{number:,.0f}",
                     f'<span class="note">{html.escape(meaning)}</span>'])
    return html_table(["Part", "Reviews", "Used for"], rows, css="overview")


def _flatten(info: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in info.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            items.extend(_flatten(value, f"{name} / "))
        else:
            items.append((name, value))
    return items


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "n/a"
    if isinstance(value, list | tuple):
        return ", ".join(_format_value(v) for v in value)
    if value is None:
        return "n/a"
    return str(value)


def _label(key: str) -> str:
    # "valid_metrics / within_2" -> "Valid metrics / within_2": only the section names are prose.
    head, *rest = key.split(" / ")
    head = head.replace("_", " ")
    return " / ".join([head[:1].upper() + head[1:], *rest])


def model_info_html(model_info: Mapping[str, Any] | None) -> str:
    """HTML table of the free-form model information (versions, training time, ...).

    Nested dictionaries are flattened to ``section / key`` rows.

    Parameters
    ----------
    model_info : mapping or None
        The ``model_info`` section of ``metrics.json``.

    Returns
    -------
    str
        An HTML ``<table>``, or a short paragraph when there is nothing to show.
    """
    if isinstance(model_info, Mapping):
        items = _flatten(model_info)
    else:
        items = [("model info", model_info)] if model_info else []
    if not items:
        return "<p>No model information was recorded.</p>"
    rows = [[html.escape(_label(k)), f"<code>{html.escape(_format_value(v))}</code>"]
            for k, v in items]
    return html_table(["Item", "Value"], rows, css="info")


def band_sentence(table: pd.DataFrame, what: str,
                  names: Mapping[str, str] | None = None) -> str:
    """Name the bands where the model is most and least accurate.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`pipeline.report.plots.mae_by_band`.
    what : str
        What the bands are, for the sentence (e.g. ``"wines scored"``, giving
        "wines scored 85-87").
    names : mapping, optional
        Whole phrases for particular bands, e.g.
        ``{"no price": "wines without a price"}``.

    Returns
    -------
    str
        Plain text (not HTML-escaped); empty with fewer than two bands of
        at least 5 wines.
    """
    names = names or {}
    model = table[(table["predictor"] == "Model") & (table["n"] >= 5)]
    if len(model) < 2:
        return ""
    best = model.loc[model["mae"].idxmin()]
    worst = model.loc[model["mae"].idxmax()]

    def phrase(band: object) -> str:
        return names.get(str(band), f"{what} {band}")

    return (f"The model is most accurate for {phrase(best['band'])} (off by"
            f" {best['mae']:.1f} points on average) and least accurate for"
            f" {phrase(worst['band'])} ({worst['mae']:.1f} points).")


# ---------------------------------------------------------------------------
# Small formatters
# ---------------------------------------------------------------------------

#: What each kind of model is, for a reader.
MODEL_DESCRIPTIONS: dict[str, str] = {
    "sgd": ("a linear model that weighs the words of the tasting note together with the price,"
            " origin, grape and critic (SGD)"),
    "lightgbm": ("gradient-boosted decision trees (LightGBM) that combine a score read from the"
                 " words of the tasting note with the price, vintage, origin, grape and critic,"
                 " averaged with the linear model's own prediction"),
}
#: Short names of the kinds of model.
MODEL_SHORT_NAMES: dict[str, str] = {
    "sgd": "Linear model on the words (SGD)",
    "lightgbm": "Decision trees on the words score, price, origin and critic (LightGBM)",
}

#: The prediction range is trusted when its coverage is within this of its target.
COVERAGE_TOLERANCE = 0.03


def escape(text: Any) -> str:
    """HTML-escape any value (``str()`` of it).

    Parameters
    ----------
    text : Any

    Returns
    -------
    str
    """
    return html.escape(str(text), quote=True)


def paragraph(text: str, css: str = "") -> str:
    """One HTML paragraph of plain text (escaped); empty text gives an empty string.

    Parameters
    ----------
    text : str
    css : str, optional
        Class of the paragraph.

    Returns
    -------
    str
    """
    if not text:
        return ""
    cls = f' class="{css}"' if css else ""
    return f"<p{cls}>{escape(text)}</p>"


def money(value: Any) -> str:
    """A price, e.g. ``"$25"`` or ``"$1,200"``; ``"n/a"`` when unknown.

    Parameters
    ----------
    value : Any

    Returns
    -------
    str
    """
    number = as_number(value)
    return "n/a" if number is None else f"{an.CURRENCY}{number:,.0f}"


def percent(share: Any) -> str:
    """A share (0-1) as a percentage: one decimal below 10%, whole above.

    Parameters
    ----------
    share : Any

    Returns
    -------
    str
        E.g. ``"3.4%"``, ``"81%"``, ``"n/a"``.
    """
    number = as_number(share)
    if number is None:
        return "n/a"
    if 0 < abs(number) < 0.1:
        return f"{100 * number:.1f}%"
    return f"{100 * number:.0f}%"


def one_in(share: Any) -> str:
    """A small share as "about 1 wine in N".

    Parameters
    ----------
    share : Any
        Share between 0 and 1.

    Returns
    -------
    str
        E.g. ``"about 1 wine in 30"``; empty for 0, unknown or shares above 1/2.
    """
    number = as_number(share)
    if number is None or number <= 0 or number > 0.5:
        return ""
    return f"about 1 wine in {round(1 / number):,}"


def count(value: Any) -> str:
    """A count with thousands separators (``"n/a"`` when unknown).

    Parameters
    ----------
    value : Any

    Returns
    -------
    str
    """
    number = as_number(value)
    return "n/a" if number is None else f"{number:,.0f}"


def signed(value: Any, digits: int = 1) -> str:
    """A number with its sign, e.g. ``"+1.3"`` or ``"−0.4"`` (a real minus sign).

    Parameters
    ----------
    value : Any
    digits : int, default 1

    Returns
    -------
    str
    """
    number = as_number(value)
    if number is None:
        return "n/a"
    text = f"{abs(number):.{digits}f}"
    if float(text) == 0:
        return text
    return ("+" if number > 0 else "\u2212") + text


def shorten(text: Any, limit: int = 180) -> str:
    """Cut a text to at most ``limit`` characters at a word boundary, adding "…".

    Parameters
    ----------
    text : Any
        Missing values give an empty string.
    limit : int, default 180

    Returns
    -------
    str
    """
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return ""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[:cut.rfind(" ")]
    return cut.rstrip(" ,;:.") + "\u2026"


def join_words(items: Sequence[str]) -> str:
    """Join phrases as "a, b and c", leaving out empty ones.

    Parameters
    ----------
    items : sequence of str

    Returns
    -------
    str
    """
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def model_name(metrics: Mapping[str, Any]) -> str:
    """The kind of model (``"sgd"``, ``"lightgbm"`` ...), lower-case; ``""`` when unknown.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``.

    Returns
    -------
    str
    """
    name = section(metrics, "model").get("name") or section(metrics, "model_info").get("model")
    return str(name).lower() if name else ""


def model_description(metrics: Mapping[str, Any]) -> str:
    """What the model is, in one phrase.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``.

    Returns
    -------
    str
        E.g. "gradient-boosted decision trees (LightGBM) that ..."; the bare
        name for a kind this module does not know.
    """
    name = model_name(metrics)
    return MODEL_DESCRIPTIONS.get(name, f"the model '{name}'" if name else "the model")


# ---------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------


def data_sentence(summary: Mapping[str, Any]) -> str:
    """What the test wines are, in a few sentences.

    Parameters
    ----------
    summary : mapping
        Output of :func:`pipeline.report.analysis.data_summary`.

    Returns
    -------
    str
        Plain text; empty when there are no wines.
    """
    n = int(summary.get("n") or 0)
    if not n:
        return ""
    parts = []
    lo, hi, mean = (as_number(summary.get(k)) for k in ("points_min", "points_max", "points_mean"))
    q1, q3 = as_number(summary.get("points_q1")), as_number(summary.get("points_q3"))
    if lo is not None and hi is not None and mean is not None:
        sentence = (f"The {n:,} test wines were scored {lo:.0f} to {hi:.0f} points by the critics"
                    f" (average {mean:.1f}")
        if q1 is not None and q3 is not None and q3 > q1:
            sentence += f"; half of them between {q1:.0f} and {q3:.0f}"
        parts.append(sentence + ").")
    median = as_number(summary.get("price_median"))
    if median is not None:
        sentence = (f"Bottle prices run from {money(summary.get('price_min'))} to"
                    f" {money(summary.get('price_max'))}, {money(median)} at the median")
        missing = as_number(summary.get("price_missing"))
        if missing:
            sentence += f"; {percent(missing)} of the wines have no listed price"
        parts.append(sentence + ".")
    countries = int(summary.get("countries") or 0)
    if countries:
        top = [f"{name} ({percent(share)})" for name, share in summary.get("top_countries", [])]
        parts.append(f"They come from {countries:,} countr{'ies' if countries > 1 else 'y'},"
                     f" most of all {join_words(top)}.")
    tasters = int(summary.get("tasters") or 0)
    if tasters:
        top = [f"{name} ({percent(share)})" for name, share in summary.get("top_tasters", [])]
        sentence = (f"{tasters:,} critic{'s' if tasters > 1 else ''} wrote the reviews,"
                    f" the busiest being {join_words(top)}")
        none = as_number(summary.get("no_taster"))
        if none:
            sentence += f"; {percent(none)} of the reviews name no critic"
        parts.append(sentence + ".")
    return " ".join(parts)


def test_wines(metrics: Mapping[str, Any], shown: int) -> int:
    """The number of test wines the metrics were computed on.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``.
    shown : int
        Wines in the report's predictions (the fallback).

    Returns
    -------
    int
        ``model.n``, else ``rows.test``, else ``shown``.
    """
    for value in (section(metrics, "model").get("n"), section(metrics, "rows").get("test")):
        number = as_number(value)
        if number:
            return int(number)
    return int(shown)


def sample_note(metrics: Mapping[str, Any], shown: int) -> str:
    """Say so when the figures use a sample of the test wines.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``.
    shown : int
        Wines in the report's predictions.

    Returns
    -------
    str
        Plain text; empty when every test wine is shown.
    """
    total = test_wines(metrics, shown)
    if total <= shown:
        return ""
    return (f"The test split holds {total:,} wines. The accuracy table uses all of them; the"
            f" figures and the other tables use an evenly spread sample of {shown:,}.")


# ---------------------------------------------------------------------------
# Accuracy and the interval
# ---------------------------------------------------------------------------


def mae_uncertainty_sentence(mae: float, half_width: float, n: int) -> str:
    """How precisely the test wines pin down the average error.

    Parameters
    ----------
    mae : float
        Mean absolute error on the report's wines.
    half_width : float
        Half-width of its 95% confidence interval.
    n : int
        Number of wines.

    Returns
    -------
    str
        Plain text; empty when unknown.
    """
    if as_number(mae) is None or as_number(half_width) is None or n < 2:
        return ""
    return (f"Measured on {n:,} test wines, the average error is known to within about"
            f" \u00b1{half_width:.2f} points (95% confidence: between {mae - half_width:.2f} and"
            f" {mae + half_width:.2f}).")


def interval_sentence(summary: Mapping[str, float]) -> str:
    """The prediction range in plain words, and whether it kept its promise.

    Parameters
    ----------
    summary : mapping
        Output of :func:`pipeline.report.analysis.interval_summary`.

    Returns
    -------
    str
        Plain text; says so when the model gave no range.
    """
    coverage = as_number(summary.get("coverage"))
    target = as_number(summary.get("target")) or 0.8
    if coverage is None:
        return "The model gave no prediction range, so its reliability per wine is unknown."
    parts = []
    below, above = as_number(summary.get("half_below")), as_number(summary.get("half_above"))
    width = as_number(summary.get("width"))
    promise = in_ten(target) or percent(target) + " of wines"
    if below is not None and above is not None and width is not None:
        parts.append(f"Each prediction comes with a range that should hold the critic's score for"
                     f" {promise}: typically from {below:.1f} points below the prediction to"
                     f" {above:.1f} points above it (for a wine predicted at 88, about"
                     f" {88 - below:.1f} to {88 + above:.1f}).")
    parts.append(f"On the test wines the true score fell inside the stated range for"
                 f" {percent(coverage)} of wines (the target is {percent(target)}).")
    if abs(coverage - target) <= COVERAGE_TOLERANCE:
        parts.append("The range can be taken at its word.")
    elif coverage < target:
        parts.append("The range is somewhat too narrow: treat it as a little over-confident.")
    else:
        parts.append("The range is somewhat wider than it needs to be: it is cautious.")
    return " ".join(parts)


def interval_short(summary: Mapping[str, float]) -> str:
    """One sentence on the prediction range, for the summary.

    Parameters
    ----------
    summary : mapping
        Output of :func:`pipeline.report.analysis.interval_summary`.

    Returns
    -------
    str
        Plain text; empty when the model gave no range.
    """
    coverage = as_number(summary.get("coverage"))
    if coverage is None:
        return ""
    return (f"The true score fell inside the stated range for {percent(coverage)} of the wines"
            f" (the target is {percent(as_number(summary.get('target')) or 0.8)}).")


#: What each kind of range is, in the report's words.
RANGE_KINDS = {
    "adaptive": "a range that adapts to each wine (wider where the model is likely to be"
                " further off, from the wine's price, critic, note length and origin)",
    "constant": "the same range around every prediction",
}

def interval_segments_html(metrics: Mapping[str, Any]) -> str:
    """HTML table of how the range held on the test wines, overall, per price band and critic.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``; reads ``interval`` (see
        :func:`pipeline.steps.evaluate.interval_record`).

    Returns
    -------
    str
        A paragraph naming the kind of range (and why, when the adaptive one was not
        kept) and a ``<table>`` with the other kind beside it when the model has both;
        empty when nothing was recorded.
    """
    record = section(metrics, "interval")
    used = section(record, "test")
    if not used:
        return ""
    other = section(record, "other")
    kind = str(record.get("kind", "constant"))
    intro = f"<p>The model gives {escape(RANGE_KINDS.get(kind, kind))}."
    if record.get("reason"):
        intro += (f" The adaptive range was tried and not kept: {escape(record['reason'])}"
                  " (on the validation wines).")
    low, high = SEGMENT_COVERAGE
    intro += (f" Below, how often the critic's score fell inside it on the test wines, for all"
              f" of them and for each price band and critic with enough wines; each should be"
              f" between {percent(low)} and {percent(high)}.</p>")

    def cells(table: Mapping[str, Any], kind_: str, label: str) -> list[str]:
        cell = section(section(table, kind_), label) if kind_ != "all" else section(table, "all")
        coverage = as_number(cell.get("coverage"))
        width = as_number(cell.get("mean_width"))
        if coverage is None:
            return ["", ""]
        shown = percent(coverage)
        if kind_ != "all" and not low <= coverage <= high:
            shown = f"<strong>{shown}</strong>"
        return [shown, f"{width:.1f}" if width is not None else ""]

    rows = [["All test wines", count(section(used, "all").get("n")),
             *cells(used, "all", ""), *(cells(section(other, "test"), "all", "") if other
                                        else [])]]
    for kind_, title in (("price band", "Price"), ("critic", "Critic")):
        for label, cell in section(used, kind_).items():
            name = (f"{title} {an.CURRENCY}{label}" if kind_ == "price band"
                    and label != an.NO_PRICE else f"{title}: {label}")
            rows.append([escape(name), count(cell.get("n")), *cells(used, kind_, label),
                         *(cells(section(other, "test"), kind_, label) if other else [])])
    used_name = "Range given" if other else "Range"
    header = ["Wines", "Number", f"{used_name}: held", f"{used_name}: width (points)"]
    if other:
        other_kind = str(other.get("kind", ""))
        header += [f"{other_kind.capitalize()} range: held",
                   f"{other_kind.capitalize()} range: width (points)"]
    return intro + html_table(header, rows, css="compact")


def models_compared_html(metrics: Mapping[str, Any]) -> str:
    """HTML table of the kinds of model tried, with their error on the validation wines.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``; reads ``model_info.candidates_valid_mae``.

    Returns
    -------
    str
        A short paragraph and a ``<table>``; empty when nothing was recorded.
    """
    candidates = section(section(metrics, "model_info"), "candidates_valid_mae")
    known = {str(k): as_number(v) for k, v in candidates.items() if as_number(v) is not None}
    if not known:
        return ""
    kept = model_name(metrics)
    rows = []
    for name, mae in sorted(known.items(), key=lambda kv: kv[1]):
        label = MODEL_SHORT_NAMES.get(name, name)
        mark = "<strong>kept</strong>" if name == kept else ""
        rows.append([escape(label), f"{mae:.2f}", mark])
    intro = ("<p>Kinds of model tried. Each was tuned on the validation wines and the one with"
             " the smaller average error there was kept; the test wines were used only once, for"
             " this report.</p>")
    header = ["Model", "Average error on the validation wines (points)", ""]
    return intro + html_table(header, rows, css="compact")


# ---------------------------------------------------------------------------
# Where it errs
# ---------------------------------------------------------------------------


def bias_sentence(table: pd.DataFrame) -> str:
    """Whether the model pulls scores toward the middle, from the bias per score band.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`pipeline.report.analysis.bias_by_points_band`.

    Returns
    -------
    str
        Plain text; empty with fewer than two bands of at least 5 wines.
    """
    bands = table[table["n"] >= 5] if len(table) else table
    if len(bands) < 2:
        return ""
    low, high = bands.iloc[0], bands.iloc[-1]
    if low["bias"] > 0.5 and high["bias"] < -0.5:
        return (f"Like most rating models it pulls scores toward the middle: wines the critics"
                f" scored {high['band']} were predicted {abs(high['bias']):.1f} points too low on"
                f" average, and wines scored {low['band']} {low['bias']:.1f} points too high. So a"
                " prediction at the top of the scale probably understates a great wine, and one"
                " at the bottom overstates a poor one.")
    return (f"The model does not lean much either way at the ends of the scale: on average it is"
            f" {signed(low['bias'])} points off for wines scored {low['band']} and"
            f" {signed(high['bias'])} for wines scored {high['band']}.")


def group_sentence(table: pd.DataFrame, what: str, min_wines: int = 10,
                   skip: Sequence[str] = (an.UNKNOWN,)) -> str:
    """Name the groups (countries, critics ...) where the model does best and worst.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`pipeline.report.analysis.error_by_group`.
    what : str
        What a group is, plural, for the sentence (``"countries"``).
    min_wines : int, default 10
        Only groups with at least this many wines are named.
    skip : sequence of str, default (UNKNOWN,)
        Groups never named (the wines without a value).

    Returns
    -------
    str
        Plain text; empty with fewer than two such groups.
    """
    groups = table[(table["n"] >= min_wines) & ~table["group"].isin(list(skip))]
    if len(groups) < 2:
        return ""
    best = groups.loc[groups["mae"].idxmin()]
    worst = groups.loc[groups["mae"].idxmax()]
    sentence = (f"Among {what} with at least {min_wines} test wines, the model is most accurate"
                f" for {best['group']} ({best['mae']:.1f} points off on average, {best['n']:,}"
                f" wines) and least for {worst['group']} ({worst['mae']:.1f} points,"
                f" {worst['n']:,} wines).")
    leaning = groups[groups["bias"].abs() >= 0.75]
    if len(leaning):
        lean = leaning.loc[leaning["bias"].abs().idxmax()]
        way = "over-rates" if lean["bias"] > 0 else "under-rates"
        sentence += (f" It {way} {lean['group']} by {abs(lean['bias']):.1f} points on average.")
    return sentence


def misses_html(misses: pd.DataFrame, limit: int = 200) -> str:
    """HTML table of the largest misses, with each wine's name and shortened tasting note.

    Parameters
    ----------
    misses : pandas.DataFrame
        Output of :func:`pipeline.report.analysis.largest_misses`.
    limit : int, default 200
        Longest tasting note shown, in characters.

    Returns
    -------
    str
        A ``<table>``; a short paragraph when there are no misses.
    """
    if misses.empty:
        return "<p>No predictions to show.</p>"
    rows = []
    for _, wine in misses.iterrows():
        title = wine.get("title")
        name = escape(title) if isinstance(title, str) and title.strip() else "(no name)"
        facts = [escape(v) for v in (wine.get("country"), wine.get("taster_name"))
                 if isinstance(v, str) and v.strip()]
        note = shorten(wine.get("description"), limit)
        cell = f"<strong>{name}</strong>"
        if facts:
            cell += f' <span class="note">({", ".join(facts)})</span>'
        if note:
            cell += f'<br><span class="quote">\u201c{escape(note)}\u201d</span>'
        lo, hi = as_number(wine.get("lower")), as_number(wine.get("upper"))
        points, pred = as_number(wine.get("points")), as_number(wine.get("predicted_points"))
        predicted = "n/a" if pred is None else f"{pred:.1f}"
        if lo is not None and hi is not None:
            predicted += f'<br><span class="note">range {lo:.0f}\u2013{hi:.0f}</span>'
        error = as_number(wine.get("error"))
        way = "" if error is None else ("over-rated" if error > 0 else "under-rated")
        rows.append([cell, money(wine.get("price")), "n/a" if points is None else f"{points:.0f}",
                     predicted, f'{signed(error)}<br><span class="note">{way}</span>'])
    header = ["Wine and the critic's note", "Price", "Critic", "Predicted", "Off by"]
    return html_table(header, rows, css="misses")


def misses_sentence(misses: pd.DataFrame) -> str:
    """What the largest misses have in common: over- or under-rated, high or low scores.

    Parameters
    ----------
    misses : pandas.DataFrame
        Output of :func:`pipeline.report.analysis.largest_misses`.

    Returns
    -------
    str
        Plain text; empty with fewer than three misses.
    """
    if len(misses) < 3:
        return ""
    error = misses["error"]
    under = int((error < 0).sum())
    over = int((error > 0).sum())
    sentence = (f"Of the {len(misses)} largest misses, {under} under-rate and {over} over-rate"
                " the wine.")
    return sentence + (" Their tasting notes are shown so you can judge whether a reader would"
                       " have been misled too.")


# ---------------------------------------------------------------------------
# What drives a prediction
# ---------------------------------------------------------------------------


def importance_sentence(table: pd.DataFrame) -> str:
    """Which features move predictions most, in plain words.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`pipeline.report.analysis.importance_table`.

    Returns
    -------
    str
        Plain text; empty when there are no importances.
    """
    if table.empty:
        return ""
    first = table.iloc[0]
    sentence = (f"{first['label']} matters most: on average it moves a prediction"
                f" {first['points']:.1f} points away from the average wine.")
    rest = [f"{row['label'].lower()} ({row['points']:.2f} points)"
            for _, row in table.iloc[1:3].iterrows()]
    if rest:
        sentence += f" Next come {join_words(rest)}."
    return sentence


def explained_sentence(wine: Mapping[str, Any]) -> str:
    """Why one wine got its prediction, from its largest contributions.

    Parameters
    ----------
    wine : mapping
        One record of :func:`pipeline.report.analysis.explained_wines`.

    Returns
    -------
    str
        Plain text.
    """
    points, predicted = as_number(wine.get("points")), as_number(wine.get("predicted_points"))
    steps = wine.get("steps")
    parts = []
    title = wine.get("title") or "This wine"
    if points is not None and predicted is not None:
        parts.append(f"{title}: the critic gave it {points:.0f} points, the model predicted"
                     f" {predicted:.1f}.")
    if isinstance(steps, pd.DataFrame) and len(steps):
        moves = []
        for _, step in steps[steps["feature"] != "other"].head(3).iterrows():
            way = "added" if step["contribution"] >= 0 else "took off"
            moves.append(f"{step['label'].lower()} {way} {abs(step['contribution']):.1f}")
        parts.append(f"Starting from the average wine ({wine.get('start', 0):.1f} points),"
                     f" {join_words(moves)} points.")
    return " ".join(parts)
