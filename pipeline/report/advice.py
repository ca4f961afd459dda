"""What the errors would cost, and the recommendation on going to production.

Pure functions like those of :mod:`pipeline.report.text`: numbers in (from
``metrics.json`` and :mod:`pipeline.report.analysis`), plain text or
escaped HTML out.  Every recommendation is stated conditionally on the
measured numbers, with the thresholds below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from pipeline import evaluation as an
from pipeline.report.text import (
    COVERAGE_TOLERANCE,
    MODEL_SHORT_NAMES,
    as_number,
    escape,
    format_metric,
    html_table,
    in_ten,
    join_words,
    money,
    one_in,
    percent,
    section,
)

#: The model counts as clearly better than the price-only rule from this relative gain on.
GAIN_FOR_PRODUCTION = 0.15
#: Below this relative gain over the price-only rule the model is not worth running.
GAIN_FOR_PILOT = 0.05

# ---------------------------------------------------------------------------
# What the errors would cost
# ---------------------------------------------------------------------------


def cost_sentence(summary: Mapping[str, float]) -> str:
    """How many wines are over- and under-rated, and at what prices.

    Parameters
    ----------
    summary : mapping
        Output of :func:`pipeline.report.analysis.cost_summary`.

    Returns
    -------
    str
        Plain text; empty without predictions.
    """
    n = as_number(summary.get("n"))
    if not n:
        return ""
    threshold = as_number(summary.get("threshold")) or an.COSTLY_ERROR
    over, share = as_number(summary.get("over")) or 0, summary.get("over_share")
    points = f"{threshold:.0f} points or more"
    if not over:
        parts = [f"None of the {n:,.0f} test wines was over-rated by {points}."]
    else:
        ratio = one_in(share)
        parts = [f"Of the {n:,.0f} test wines, {over:,.0f} ({percent(share)}"
                 f"{', ' + ratio if ratio else ''}) were over-rated by {points}: the model"
                 " promised a clearly better wine than the critic found."]
        if as_number(summary.get("over_price_median")) is not None:
            sentence = (f"They cost {money(summary.get('over_price_min'))} to"
                        f" {money(summary.get('over_price_max'))} a bottle,"
                        f" {money(summary.get('over_price_median'))} at the median")
            spend = as_number(summary.get("over_spend_share"))
            if spend is not None:
                sentence += (f", and make up {percent(spend)} of what one bottle of every priced"
                             " test wine would cost")
            parts.append(sentence + ".")
    under = as_number(summary.get("under"))
    if under:
        parts.append(f"Another {under:,.0f} ({percent(summary.get('under_share'))}) were"
                     f" under-rated by {points}: good wines the model would have let you pass by.")
    base = as_number(summary.get("baseline_over"))
    if base is not None:
        parts.append(f"For comparison, guessing from the price alone would have over-rated"
                     f" {base:,.0f} ({percent(summary.get('baseline_over_share'))}).")
    return " ".join(parts)


def cost_short(summary: Mapping[str, float]) -> str:
    """One sentence on the costly errors, for the summary.

    Parameters
    ----------
    summary : mapping
        Output of :func:`pipeline.report.analysis.cost_summary`.

    Returns
    -------
    str
        Plain text; empty without predictions.
    """
    if not as_number(summary.get("n")):
        return ""
    threshold = as_number(summary.get("threshold")) or an.COSTLY_ERROR
    return (f"{percent(summary.get('over_share'))} of the test wines were over-rated by"
            f" {threshold:.0f} points or more (a disappointing buy), and"
            f" {percent(summary.get('under_share'))} under-rated by as much (a missed bargain).")


def price_band_label(band: Any) -> str:
    """A price band of :func:`pipeline.report.analysis.price_bands` with its currency.

    Parameters
    ----------
    band : Any
        E.g. ``"under 15"``, ``"15-25"``, ``"100+"`` or ``"no price"``.

    Returns
    -------
    str
        E.g. ``"under $15"``, ``"$15\u201325"``, ``"$100+"``, ``"no price"``.
    """
    label = str(band)
    if label.startswith("under "):
        return f"under {an.CURRENCY}{label[len('under '):]}"
    if label == an.NO_PRICE or not label[:1].isdigit():
        return label
    return an.CURRENCY + label.replace("-", "\u2013")


def cost_table_html(table: pd.DataFrame) -> str:
    """HTML table of over- and under-rated wines per price band.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`pipeline.report.analysis.cost_by_price_band`.

    Returns
    -------
    str
        A ``<table>``; a short paragraph when empty.
    """
    if table.empty:
        return "<p>No predictions to show.</p>"
    rows = []
    for _, band in table.iterrows():
        rows.append([escape(price_band_label(band["band"])), f"{band['n']:,}",
                     f"{band['over']:,} ({percent(band['over_share'])})",
                     f"{band['under']:,} ({percent(band['under_share'])})",
                     money(band["over_mean_price"]) if as_number(band["over_mean_price"])
                     else "\u2013"])
    header = ["Price per bottle", "Wines", "Over-rated by 3+ points",
              "Under-rated by 3+ points", "Average price of the over-rated"]
    return html_table(header, rows, css="numbers")


def buy_sentence(buy: Mapping[str, float]) -> str:
    """What buying every wine predicted at 90+ would have given.

    Parameters
    ----------
    buy : mapping
        Output of :func:`pipeline.report.analysis.buy_list`.

    Returns
    -------
    str
        Plain text; empty when nothing would have been bought.
    """
    bought = as_number(buy.get("bought"))
    good = as_number(buy.get("good")) or an.GOOD_SCORE
    if not bought:
        return ""
    really = as_number(buy.get("really_good")) or 0
    bad = as_number(buy.get("disappointing")) or 0
    sentence = (f"If you had bought every test wine the model predicts at {good:.0f} points or"
                f" more ({bought:,.0f} wines), {really:,.0f} of them ({percent(really / bought)})"
                f" really scored {good:.0f} or more, and {bad:,.0f} scored"
                f" {good - an.COSTLY_ERROR:.0f} or less.")
    found, all_good = as_number(buy.get("found")), as_number(buy.get("all_good"))
    if found is not None and all_good:
        sentence += (f" Of the {all_good:,.0f} wines the critics scored {good:.0f} or more, this"
                     f" list would have found {found:,.0f} ({percent(found / all_good)}).")
    return sentence


# ---------------------------------------------------------------------------
# The recommendation
# ---------------------------------------------------------------------------


def verdict(metrics: Mapping[str, Any], coverage: float | None = None) -> tuple[str, str]:
    """The recommendation on going to production, from the measured numbers.

    The model must beat the price-only rule (what a buyer does without a
    model) by :data:`GAIN_FOR_PRODUCTION` of its error to be recommended,
    and by :data:`GAIN_FOR_PILOT` for a trial; the prediction range must hold
    its target share within :data:`COVERAGE_TOLERANCE`.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``.
    coverage : float, optional
        Share of test wines inside their range (defaults to
        ``model.interval_coverage``).

    Returns
    -------
    level, headline : str
        ``level`` is one of ``"go"``, ``"go-fix-range"``, ``"pilot"``,
        ``"no"``, ``"unknown"``; ``headline`` is one plain sentence.
    """
    mae = as_number(section(metrics, "model").get("mae"))
    price = as_number(section(section(metrics, "baselines"), "price_only").get("mae"))
    coverage = as_number(coverage)
    if coverage is None:
        coverage = as_number(section(metrics, "model").get("interval_coverage"))
    target = as_number(section(section(metrics, "model_info"), "interval").get("coverage")) or 0.8
    if mae is None or price is None or price <= 0:
        return "unknown", ("No recommendation can be made: the model's error or the price-only"
                           " rule's is missing.")
    gain = 1 - mae / price
    if gain < GAIN_FOR_PILOT:
        return "no", ("Not recommended yet: the model is hardly better than guessing from the"
                      " price, which needs no model at all.")
    if gain < GAIN_FOR_PRODUCTION:
        return "pilot", ("A trial only: the model beats the price-only rule, but by too little to"
                         " justify running it in production before it is retrained on more data.")
    if coverage is None:
        return "go-fix-range", ("Recommended for its predicted scores, but give each prediction a"
                                " checked range before anyone relies on single wines.")
    if abs(coverage - target) > COVERAGE_TOLERANCE:
        return "go-fix-range", ("Recommended for its predicted scores, but recalibrate the"
                                " prediction range on the full data before anyone relies on it.")
    return "go", ("Recommended: put the model into production as a screening aid for buyers,"
                  " retrained on the full on-premise data.")


def recommendation_html(metrics: Mapping[str, Any], cost: Mapping[str, float],
                        gain: tuple[float, float] = (float("nan"), float("nan")),
                        coverage: float | None = None) -> str:
    """The recommendation, its reasons, and what the bigger data should change.

    Every statement is conditional on the numbers measured on the test wines.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``.
    cost : mapping
        Output of :func:`pipeline.report.analysis.cost_summary`.
    gain : tuple of float, optional
        Output of :func:`pipeline.report.analysis.paired_gain`: how many
        points smaller the model's errors are than the price-only rule's, and
        the half-width of its 95% interval.
    coverage : float, optional
        Share of test wines inside their range (defaults to
        ``model.interval_coverage``).

    Returns
    -------
    str
        HTML: a highlighted verdict, the reasons, and two lists.
    """
    model = section(metrics, "model")
    baselines = section(metrics, "baselines")
    info = section(metrics, "model_info")
    mae = as_number(model.get("mae"))
    price = as_number(section(baselines, "price_only").get("mae"))
    mean = as_number(section(baselines, "mean").get("mae"))
    coverage = as_number(coverage)
    if coverage is None:
        coverage = as_number(model.get("interval_coverage"))
    target = as_number(section(info, "interval").get("coverage")) or 0.8
    accepted = (f"{percent(target - COVERAGE_TOLERANCE)}"
                f"\u2013{percent(target + COVERAGE_TOLERANCE)}")
    level, headline = verdict(metrics, coverage)
    out = [f'<p class="verdict verdict-{level}"><strong>{escape(headline)}</strong></p>']

    reasons = []
    if mae is not None and price is not None and price > 0:
        reasons.append(f"Its average error is {mae:.2f} points, against {price:.2f} for guessing"
                       f" from the price alone: {percent(1 - mae / price)} smaller"
                       + (f" (and {percent(1 - mae / mean)} smaller than always guessing the"
                          f" average score)." if mean else ".")
                       + f" We recommend production when the model's error is at least"
                       f" {100 * GAIN_FOR_PRODUCTION:.0f}% smaller than the price-only rule's,"
                       f" and a trial from {100 * GAIN_FOR_PILOT:.0f}%.")
    diff, half = (as_number(g) for g in gain)
    if diff is not None and half is not None:
        if diff - half > 0:
            reasons.append(f"The advantage is real, not luck of the test wines: wine by wine the"
                           f" model's errors are {diff:.2f} \u00b1 {half:.2f} points smaller"
                           " (95% confidence).")
        else:
            reasons.append(f"The advantage ({diff:.2f} \u00b1 {half:.2f} points, 95% confidence)"
                           " is within what chance alone could give on this many test wines.")
    within2 = as_number(model.get("within_2"))
    if within2 is not None:
        reasons.append(f"For {in_ten(within2)} the prediction is within 2 points of the critic's"
                       " score, so it separates a good everyday wine from a great one, but not"
                       " an 89 from a 90.")
    if coverage is not None:
        reasons.append(f"Its {percent(target)} range held for {percent(coverage)} of the test"
                       " wines" + (", as promised." if abs(coverage - target) <= COVERAGE_TOLERANCE
                                   else f", outside the {accepted} we accept."))
    over = as_number(cost.get("over_share"))
    if over is not None:
        reasons.append(f"{percent(over)} of the wines were over-rated by 3 points or more; use"
                       " the lower end of the range, not the prediction, when a purchase is"
                       " expensive.")
    out.append("<p>Why:</p><ul>" + "".join(f"<li>{escape(r)}</li>" for r in reasons) + "</ul>")

    rows = section(metrics, "rows")
    train = as_number(rows.get("train"))
    train_text = f"{train:,.0f} reviews" if train else "the sample"
    candidates = section(info, "candidates_valid_mae")
    tried = join_words([f"{MODEL_SHORT_NAMES.get(str(k), str(k)).split(' (')[0].lower()}"
                        f" {format_metric(v, 'points')}" for k, v in candidates.items()
                        if as_number(v) is not None])
    bigger = [
        f"Retrain on all of it. This model learned from {train_text}. Models that read text"
        " usually keep improving with more reviews: they learn rarer words and see more critics,"
        " regions and grapes often enough to learn their habits. Re-run this report on the"
        " retrained model and go ahead only if its average error is still at least"
        f" {100 * GAIN_FOR_PRODUCTION:.0f}% below the price-only rule's (here"
        f" {percent(1 - mae / price) if mae is not None and price else 'n/a'}) and its range"
        f" holds {accepted} of the test wines; if the advantage falls below"
        f" {100 * GAIN_FOR_PILOT:.0f}%, stop.",
        "Choose the model again: the pipeline fits both kinds and keeps the better on validation"
        + (f" (here, on validation: {tried})" if tried else "")
        + ". With far more data the trees may gain more; let the numbers decide.",
        "Recompute the prediction range from the new validation wines (the pipeline does this"
        " when it retrains), and check that it still holds about 8 wines in 10 overall and for"
        " each price band, country and critic.",
        "Keep the test wines apart: the split follows the review's content, so the same wines"
        " stay in the test set as the data grows and new reports stay comparable.",
    ]
    watch = [
        "Retrain on a schedule, for example every quarter, and sooner when about a tenth of the"
        " reviews are new, or when a new critic, region or vintage appears in numbers.",
        "Monitor drift every month: the mix of countries, critics, grapes and prices of the wines"
        " scored, against the training data; the average predicted score; and, as critics'"
        " scores for newly reviewed wines arrive, the average error, the share over-rated by 3+"
        " points and how often the range holds. Retrain when the average error rises more than"
        f" about 0.2 points above the {format_metric(mae, 'points')} measured here, or the range"
        " holds for fewer than 3 wines in 4.",
        "Wines from a critic the model has never seen, or without a tasting note written in the"
        " same style, will be less accurate; flag them rather than trust the number.",
    ]
    out.append("<p>What the bigger data on your servers should change:</p><ul>"
               + "".join(f"<li>{escape(b)}</li>" for b in bigger) + "</ul>")
    out.append("<p>How to run it in production:</p><ul>"
               + "".join(f"<li>{escape(w)}</li>" for w in watch) + "</ul>")
    return "\n".join(out)


def summary_html(items: Sequence[tuple[str, str]]) -> str:
    """The "in short" box: one line per question the report answers.

    Parameters
    ----------
    items : sequence of (str, str)
        Question (e.g. "How good?") and its plain-text answer; empty answers
        are left out.

    Returns
    -------
    str
        An HTML ``<div class="summary">`` with a definition list.
    """
    rows = "".join(f"<dt>{escape(q)}</dt><dd>{escape(a)}</dd>" for q, a in items if a)
    return f'<div class="summary"><dl>{rows}</dl></div>' if rows else ""

