"""The numbers of the evaluation report: plain functions of evaluate's scored test rows.

:func:`report_numbers` takes the sample of test predictions evaluate gathers (the
columns of :data:`pipeline.steps.evaluate.REPORT_COLUMNS`: every row has ``points``,
``predicted_points``, ``lower``, ``upper`` and both baselines; ``price`` and the text
columns may be missing) with the test :class:`Metrics`, and returns every number the
report shows as dataclasses.  evaluate writes both into the report's context and the
report only lays them out.

An *error* is always ``predicted - points``: positive means the model *over-rated*
the wine.  A value that cannot be known (a price band without wines) is None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.intervals import NO_PRICE
from pipeline.params import PRICE_BAND_EDGES

#: The columns predicted and the name shown for each: the model, then the baselines.
PREDICTORS: dict[str, str] = {
    "predicted_points": "Model",
    "baseline_mean": "Average score (baseline)",
    "baseline_price": "Price only (baseline)",
}
#: Edges of the score bands (right-exclusive upper edge, so 80-84 means 80 <= points < 85).
POINTS_BAND_EDGES: tuple[float, ...] = (80, 85, 88, 91, 94, 101)
#: Group of the wines without a country; :data:`NO_CRITIC`, of those without a critic.
UNKNOWN, NO_CRITIC = "unknown", "no critic named"
#: Currency sign of the prices (WineEnthusiast lists US dollars).
CURRENCY = "$"
#: A wine counts as over- or under-rated when the prediction is this many points off.
COSTLY_ERROR = 3.0
#: Score from which a wine counts as a good buy (90+ is "excellent").
GOOD_SCORE = 90.0
#: Bands and groups with fewer wines are not named best or worst.
MIN_BAND_WINES, MIN_GROUP_WINES = 5, 10
#: A group's average signed error from which the model is said to lean on it.
LEANING = 0.75
#: The prediction range is trusted when its coverage is within this of its target.
COVERAGE_TOLERANCE = 0.03
#: The model is recommended from this gain over the price-only rule (1 - its MAE ratio) ...
GAIN_FOR_PRODUCTION = 0.15
#: ... and worth a trial from this one.
GAIN_FOR_PILOT = 0.05

#: Readable names of the feature groups of the importances and explanations.
FEATURE_NAMES: dict[str, str] = {
    "baseline": "Starting point (average wine)",
    "text_score": "What the tasting note says",
    "description": "Words of the tasting note",
    "title": "Wine name (words of the title)",
    "category": "Origin, grape, winery and critic",
    "bins": "Price and note-length bands, per critic",
    "log_price": "Price",
    "log_price_sq": "Price (curve)",
    "price_missing": "Price not listed",
    "vintage": "Vintage year",
    "vintage_missing": "Vintage not stated",
    "log_description_words": "Length of the tasting note (words)",
    "country": "Country",
    "province": "Province or state",
    "region_1": "Appellation",
    "region_2": "Sub-region",
    "variety": "Grape variety",
    "winery": "Winery",
    "designation": "Vineyard or cuvée",
    "taster_name": "Critic",
}
#: Names that depend on the model: ``description_chars`` is the note's length for
#: LightGBM but its character 4-grams for the linear model.
MODEL_FEATURE_NAMES: dict[str, dict[str, str]] = {
    "lightgbm": {"description_chars": "Length of the tasting note (characters)"},
    "sgd": {"description_chars": "Word fragments of the tasting note"},
}


# ---------------------------------------------------------------------------
# The test metrics (metrics.json)
# ---------------------------------------------------------------------------


@dataclasses.dataclass(kw_only=True)
class Scores:
    """A predictor's errors over the whole test split (:func:`pipeline.metrics.metrics_from_sums`).

    ``r2`` is None when the critics' scores do not vary.
    """

    n: int
    mae: float
    rmse: float
    r2: float | None
    within_2: float
    within_3: float


@dataclasses.dataclass(kw_only=True)
class ModelScores(Scores):
    """The model's :class:`Scores`, its kind and the share of wines inside their range."""

    name: str
    interval_coverage: float


@dataclasses.dataclass(kw_only=True)
class Baselines:
    """The two rules that need no model: always the average score, and a line on log price."""

    mean: Scores
    price_only: Scores


@dataclasses.dataclass(kw_only=True)
class Rows:
    """Reviews read and in each part of the data set."""

    input: int
    train: int
    valid: int
    test: int
    rejected: int


@dataclasses.dataclass(kw_only=True)
class PriceLine:
    """The price-only baseline: ``intercept + slope * log(price)``."""

    intercept: float
    slope_per_log_price: float


@dataclasses.dataclass(kw_only=True)
class OtherInterval:
    """The range the model was not given, checked on the test split as well."""

    kind: str
    test: dict[str, Any]


@dataclasses.dataclass(kw_only=True)
class IntervalRecord:
    """How the model's range held on the test split.

    Attributes
    ----------
    kind : str
        ``adaptive`` or ``constant``.
    reason : str or None
        Why the adaptive range was not kept.
    target : float
        The share of wines the range should hold.
    test : dict
        :func:`pipeline.intervals.coverage_table` overall, per price band and per critic.
    other : OtherInterval or None
    """

    kind: str
    reason: str | None
    target: float
    test: dict[str, Any]
    other: OtherInterval | None


@dataclasses.dataclass(kw_only=True)
class Metrics:
    """What evaluate measured on every test row, and what it knows of the model.

    ``candidates_valid_mae`` is each kind of model tried with its error on the
    validation wines; ``model_info`` the model file's free-form metadata.
    """

    model: ModelScores
    baselines: Baselines
    rows: Rows
    price_baseline: PriceLine
    interval: IntervalRecord
    candidates_valid_mae: dict[str, float]
    model_info: dict[str, Any]


# ---------------------------------------------------------------------------
# The report's numbers (report.json)
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Share:
    """A name and its share of the wines."""

    name: str
    share: float


@dataclasses.dataclass(kw_only=True)
class DataSummary:
    """What the test wines are: scores, prices, countries and critics."""

    n: int
    points_mean: float
    points_min: float
    points_max: float
    points_q1: float
    points_q3: float
    price_median: float | None
    price_min: float | None
    price_max: float | None
    price_missing: float
    countries: int
    top_countries: list[Share]
    tasters: int
    top_tasters: list[Share]
    no_taster: float


@dataclasses.dataclass(kw_only=True)
class IntervalSummary:
    """How the range did: coverage against its target, and its typical size in points.

    ``calibration`` is ``held`` (within :data:`COVERAGE_TOLERANCE` of the target),
    ``narrow`` or ``wide``; ``accepted_low``/``accepted_high`` the coverage accepted.
    """

    coverage: float
    target: float
    calibration: str
    accepted_low: float
    accepted_high: float
    width: float
    half_below: float
    half_above: float


@dataclasses.dataclass
class Estimate:
    """A mean and the half-width of its 95% confidence interval (None with under 2 wines)."""

    value: float | None
    half_width: float | None


@dataclasses.dataclass(kw_only=True)
class BandError:
    """Average error of each predictor in one band of wines."""

    band: str
    n: int
    model: float
    mean: float
    price_only: float


@dataclasses.dataclass(kw_only=True)
class Bands:
    """Errors per band, and the model's best and worst band of :data:`MIN_BAND_WINES` wines.

    ``best`` and ``worst`` are None with fewer than two such bands.
    """

    rows: list[BandError]
    best: BandError | None
    worst: BandError | None


@dataclasses.dataclass(kw_only=True)
class BandBias:
    """Average signed error in one band of critic's score."""

    band: str
    n: int
    bias: float


@dataclasses.dataclass(kw_only=True)
class Bias:
    """The signed error at the two ends of the scale; ``to_middle`` when it pulls inward."""

    low: BandBias
    high: BandBias
    to_middle: bool


@dataclasses.dataclass(kw_only=True)
class GroupError:
    """The model's (and the price-only rule's) error for one country, critic ..."""

    group: str
    n: int
    mae: float
    bias: float
    mae_price_only: float


@dataclasses.dataclass(kw_only=True)
class Groups:
    """The largest groups, and the best, the worst and the most leaned-on named one.

    ``best``/``worst`` are among the groups of :data:`MIN_GROUP_WINES` wines (None
    with fewer than two); ``leaning`` the one of those with the largest average
    signed error, if it reaches :data:`LEANING`.
    """

    rows: list[GroupError]
    best: GroupError | None
    worst: GroupError | None
    leaning: GroupError | None


@dataclasses.dataclass(kw_only=True)
class Miss:
    """A wine the model got badly wrong."""

    title: str | None
    description: str | None
    price: float | None
    country: str | None
    taster_name: str | None
    points: float
    predicted_points: float
    lower: float
    upper: float
    error: float


@dataclasses.dataclass(kw_only=True)
class Misses:
    """The largest misses, and how many of them under- and over-rate."""

    wines: list[Miss]
    under: int
    over: int


@dataclasses.dataclass(kw_only=True)
class Cost:
    """Wines over- and under-rated by :data:`COSTLY_ERROR` points or more, and their prices.

    ``over_spend_share`` is the over-rated wines' share of one bottle of every priced
    wine; ``baseline_over`` the count for the price-only rule.
    """

    threshold: float
    n: int
    over: int
    under: int
    over_share: float
    under_share: float
    over_price_median: float | None
    over_price_min: float | None
    over_price_max: float | None
    over_spend_share: float | None
    baseline_over: int
    baseline_over_share: float


@dataclasses.dataclass(kw_only=True)
class BandCost:
    """Over- and under-rated wines in one price band."""

    band: str
    n: int
    over: int
    over_share: float
    under: int
    under_share: float
    over_mean_price: float | None


@dataclasses.dataclass(kw_only=True)
class BuyList:
    """Buying every wine predicted at ``good`` points or more.

    ``really_good`` of those reached it; ``disappointing`` scored ``disappointing_at``
    or less; ``all_good`` wines the critics scored at ``good`` or more, of which
    ``found_share`` were bought.
    """

    good: float
    bought: int
    really_good: int
    really_good_share: float | None
    disappointing: int
    disappointing_at: float
    all_good: int
    found_share: float | None


@dataclasses.dataclass
class Importance:
    """How much a feature group moves predictions, on average, in points either way."""

    feature: str
    label: str
    points: float


@dataclasses.dataclass
class Step:
    """One feature group's contribution to a wine's prediction."""

    feature: str
    label: str
    contribution: float


@dataclasses.dataclass(kw_only=True)
class ExplainedWine:
    """A wine's prediction step by step, from ``start`` (the average wine) to ``end``."""

    id: str
    title: str
    points: float
    predicted_points: float
    start: float
    end: float
    steps: list[Step]


@dataclasses.dataclass(kw_only=True)
class Verdict:
    """The recommendation on going to production and the gains it rests on.

    ``level`` is ``go``, ``go-fix-range``, ``pilot`` or ``no``; ``gain`` is ``1 -`` the
    model's MAE over the price-only rule's, ``gain_over_mean`` over the average
    score's, ``gain_over_best`` over the better rule's (None when not beaten);
    ``advantage_real`` whether the wine-by-wine gain's 95% interval is above 0 (None
    with too few wines to tell).
    """

    level: str
    gain: float
    gain_over_mean: float
    gain_over_best: float | None
    advantage_real: bool | None


@dataclasses.dataclass(kw_only=True)
class ReportNumbers:
    """Every number the report shows beside :class:`Metrics`, from the sample of wines."""

    shown: int
    data: DataSummary
    interval: IntervalSummary
    mae: Estimate
    gain: Estimate
    bias: Bias | None
    by_points: Bands
    by_price: Bands
    by_country: Groups
    by_critic: Groups
    misses: Misses
    cost: Cost
    cost_bands: list[BandCost]
    buy: BuyList
    importance: list[Importance]
    wines: list[ExplainedWine]
    verdict: Verdict


# ---------------------------------------------------------------------------
# The functions
# ---------------------------------------------------------------------------


def errors(pred: pd.DataFrame, column: str = "predicted_points") -> pd.Series:
    """Signed error of a predictor column: prediction minus the critic's score."""
    return pred[column] - pred["points"]


def labels(values: pd.Series, missing: str) -> pd.Series:
    """A text column with missing and blank values replaced by ``missing``."""
    text = values.str.strip()
    return text.mask(text.isna() | (text == ""), missing)


def band_labels(edges: Sequence[float], integer: bool) -> list[str]:
    """Labels of the bands between consecutive edges: ``under 15``, ``15-25``, ``100+``.

    With ``integer``, whole-number bands: ``85-87`` for 85 <= value < 88.
    """
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if np.isinf(hi):
            out.append(f"{lo:,.0f}+")
        elif lo <= 0 and not integer:
            out.append(f"under {hi:,.0f}")
        elif integer:
            out.append(f"{lo:.0f}-{hi - 1:.0f}")
        else:
            out.append(f"{lo:,.0f}-{hi:,.0f}")
    return out


def bands(values: pd.Series, edges: Sequence[float], integer: bool = False,
          missing_label: str | None = None) -> pd.Series:
    """Values cut into the ordered, labelled bands ``lo <= value < hi``.

    Missing values (and values outside the edges) go to ``missing_label``, the
    last band, or stay missing when it is None.
    """
    names = band_labels(edges, integer)
    cut = pd.cut(values, bins=list(edges), right=False, labels=names).astype(object)
    categories = list(names)
    if missing_label is not None:
        cut = cut.where(cut.notna(), missing_label)
        categories.append(missing_label)
    return pd.Series(pd.Categorical(cut, categories=categories, ordered=True), index=values.index)


def price_bands(pred: pd.DataFrame) -> pd.Series:
    """The price band of each wine (:data:`PRICE_BAND_EDGES`), :data:`NO_PRICE` without one."""
    return bands(pred["price"], PRICE_BAND_EDGES, missing_label=NO_PRICE)


def _records(frame: pd.DataFrame, cls: type) -> list:
    """The rows of ``frame`` as ``cls`` (missing values as None)."""
    fields = [f.name for f in dataclasses.fields(cls)]
    plain = frame[fields].astype(object)
    return [cls(**row) for row in plain.where(plain.notna(), None).to_dict("records")]


def _known(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def data_summary(pred: pd.DataFrame) -> DataSummary:
    """Scores, prices, countries and critics of the wines, for the opening of the report."""
    n = len(pred)
    points, price = pred["points"], pred["price"]

    def top(column: str) -> tuple[int, list[Share]]:
        named = labels(pred[column], "")
        counts = named[named != ""].value_counts()
        return len(counts), [Share(str(k), float(v / n)) for k, v in counts.head(3).items()]

    countries, top_countries = top("country")
    tasters, top_tasters = top("taster_name")
    return DataSummary(
        n=n, points_mean=float(points.mean()), points_min=float(points.min()),
        points_max=float(points.max()), points_q1=float(points.quantile(0.25)),
        points_q3=float(points.quantile(0.75)), price_median=_known(price.median()),
        price_min=_known(price.min()), price_max=_known(price.max()),
        price_missing=float(price.isna().mean()), countries=countries,
        top_countries=top_countries, tasters=tasters, top_tasters=top_tasters,
        no_taster=float((labels(pred["taster_name"], "") == "").mean()))


def interval_summary(pred: pd.DataFrame, metrics: Metrics) -> IntervalSummary:
    """The range's coverage (whole test split) against its target, and its size (sample)."""
    coverage, target = metrics.model.interval_coverage, metrics.interval.target
    if abs(coverage - target) <= COVERAGE_TOLERANCE:
        calibration = "held"
    else:
        calibration = "narrow" if coverage < target else "wide"
    lower, upper, predicted = pred["lower"], pred["upper"], pred["predicted_points"]
    return IntervalSummary(
        coverage=coverage, target=target, calibration=calibration,
        accepted_low=target - COVERAGE_TOLERANCE, accepted_high=target + COVERAGE_TOLERANCE,
        width=float((upper - lower).median()), half_below=float((predicted - lower).median()),
        half_above=float((upper - predicted).median()))


def estimate(values: pd.Series, z: float = 1.96) -> Estimate:
    """The mean of ``values`` with the half-width of its confidence interval (z: 95%)."""
    if len(values) < 2:
        return Estimate(None, None)
    return Estimate(float(values.mean()), float(z * values.std(ddof=1) / np.sqrt(len(values))))


def error_bands(pred: pd.DataFrame, column: str, edges: Sequence[float], integer: bool = False,
                missing_label: str | None = None) -> Bands:
    """Average error of the model and the baselines per band of ``column``.

    Rows whose ``column`` falls in no band are left out unless ``missing_label``
    names a band for them; empty bands are dropped.
    """
    table = pd.DataFrame({"band": bands(pred[column], edges, integer, missing_label),
                          **{name: errors(pred, col).abs()
                             for col, name in zip(PREDICTORS, ("model", "mean", "price_only"),
                                                  strict=True)}})
    grouped = table.groupby("band", observed=True).agg(
        n=("model", "size"), model=("model", "mean"), mean=("mean", "mean"),
        price_only=("price_only", "mean")).reset_index()
    rows = _records(grouped.astype({"band": str}), BandError)
    named = [row for row in rows if row.n >= MIN_BAND_WINES]
    if len(named) < 2:
        return Bands(rows=rows, best=None, worst=None)
    return Bands(rows=rows, best=min(named, key=lambda r: r.model),
                 worst=max(named, key=lambda r: r.model))


def bias_at_the_ends(pred: pd.DataFrame) -> Bias | None:
    """The signed error in the lowest and highest score band of :data:`MIN_BAND_WINES` wines.

    None with fewer than two such bands.
    """
    frame = pd.DataFrame({"band": bands(pred["points"], POINTS_BAND_EDGES, integer=True),
                          "error": errors(pred)}).dropna()
    table = frame.groupby("band", observed=True)["error"].agg(n="size", bias="mean")
    table = table[table["n"] >= MIN_BAND_WINES].reset_index().astype({"band": str})
    if len(table) < 2:
        return None
    low, high = _records(table.iloc[[0, -1]], BandBias)
    return Bias(low=low, high=high, to_middle=low.bias > 0.5 and high.bias < -0.5)


def error_by_group(pred: pd.DataFrame, column: str, missing: str, top: int = 10,
                   min_wines: int = 5) -> Groups:
    """Average error for the ``top`` largest groups of a text column (``min_wines`` or more).

    The wines without a value form the group ``missing``, which is never named best,
    worst or leaned on.
    """
    error = errors(pred)
    frame = pd.DataFrame({"group": labels(pred[column], missing), "error": error,
                          "abs": error.abs(), "price": errors(pred, "baseline_price").abs()})
    table = frame.groupby("group").agg(n=("error", "size"), mae=("abs", "mean"),
                                       bias=("error", "mean"), mae_price_only=("price", "mean"))
    table = table[table["n"] >= min_wines]
    table = table.sort_values(["n", "mae"], ascending=[False, True], kind="stable").head(top)
    rows = _records(table.reset_index(), GroupError)
    named = [row for row in rows if row.n >= MIN_GROUP_WINES and row.group != missing]
    if len(named) < 2:
        return Groups(rows=rows, best=None, worst=None, leaning=None)
    lean = max(named, key=lambda r: abs(r.bias))
    return Groups(rows=rows, best=min(named, key=lambda r: r.mae),
                  worst=max(named, key=lambda r: r.mae),
                  leaning=lean if abs(lean.bias) >= LEANING else None)


def largest_misses(pred: pd.DataFrame, n: int = 8) -> Misses:
    """The ``n`` wines with the largest absolute error, largest first."""
    frame = pred.assign(error=errors(pred))
    order = frame["error"].abs().sort_values(ascending=False, kind="stable").index[:n]
    wines = _records(frame.loc[order], Miss)
    return Misses(wines=wines, under=sum(w.error < 0 for w in wines),
                  over=sum(w.error > 0 for w in wines))


def cost_summary(pred: pd.DataFrame, threshold: float = COSTLY_ERROR) -> Cost:
    """Wines the model (and the price-only rule) over- and under-rates by ``threshold``."""
    error, price, n = errors(pred), pred["price"], len(pred)
    over, under = error >= threshold, error <= -threshold
    over_prices = price[over].dropna()
    total_spend = float(price.sum())
    base_over = int((errors(pred, "baseline_price") >= threshold).sum())
    return Cost(
        threshold=threshold, n=n, over=int(over.sum()), under=int(under.sum()),
        over_share=float(over.mean()), under_share=float(under.mean()),
        over_price_median=_known(over_prices.median()), over_price_min=_known(over_prices.min()),
        over_price_max=_known(over_prices.max()),
        over_spend_share=float(over_prices.sum() / total_spend) if total_spend > 0 else None,
        baseline_over=base_over, baseline_over_share=base_over / n)


def cost_by_price_band(pred: pd.DataFrame, threshold: float = COSTLY_ERROR) -> list[BandCost]:
    """Over- and under-rated wines per non-empty price band, wines without a price last."""
    error = errors(pred)
    frame = pd.DataFrame({"band": price_bands(pred), "over": error >= threshold,
                          "under": error <= -threshold,
                          "over_price": pred["price"].where(error >= threshold)})
    table = frame.groupby("band", observed=True).agg(
        n=("over", "size"), over=("over", "sum"), under=("under", "sum"),
        over_mean_price=("over_price", "mean"))
    table["over_share"] = table["over"] / table["n"]
    table["under_share"] = table["under"] / table["n"]
    return _records(table.reset_index().astype({"band": str}), BandCost)


def buy_list(pred: pd.DataFrame, good: float = GOOD_SCORE,
             threshold: float = COSTLY_ERROR) -> BuyList:
    """What buying every wine predicted at ``good`` points or more would have given.

    A bought wine *disappoints* when the critic scored it ``threshold`` points or
    more below the bar.
    """
    actual, bought = pred["points"], pred["predicted_points"] >= good
    n_bought, really = int(bought.sum()), int((bought & (actual >= good)).sum())
    all_good = int((actual >= good).sum())
    return BuyList(good=good, bought=n_bought, really_good=really,
                   really_good_share=really / n_bought if n_bought else None,
                   disappointing=int((bought & (actual <= good - threshold)).sum()),
                   disappointing_at=good - threshold, all_good=all_good,
                   found_share=really / all_good if all_good else None)


def feature_label(name: str, model_name: str) -> str:
    """Readable name of a feature group: ``Price`` for ``log_price``, else made readable."""
    special = MODEL_FEATURE_NAMES.get(model_name, {})
    if name in special:
        return special[name]
    if name in FEATURE_NAMES:
        return FEATURE_NAMES[name]
    if name == "description_chars":
        return "Characters of the tasting note"
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else "(unnamed)"


def importance_table(importance: pd.DataFrame, model_name: str) -> list[Importance]:
    """Global importances (``feature``, ``mean_abs_contribution``) named, largest first.

    The ``baseline`` is no feature and is left out.
    """
    if importance.empty:
        return []
    table = importance[importance["feature"] != "baseline"].sort_values(
        "mean_abs_contribution", ascending=False, kind="stable")
    return [Importance(f, feature_label(f, model_name), float(p))
            for f, p in zip(table["feature"], table["mean_abs_contribution"], strict=True)]


def explained_wines(explained: pd.DataFrame, model_name: str, top: int = 6,
                    smallest: float = 0.05) -> list[ExplainedWine]:
    """The long table of :func:`pipeline.steps.evaluate.explanations`, one record per wine.

    Each wine keeps its ``top`` largest contributions of at least ``smallest`` points
    either way; the rest add up to one "all other features" step.
    """
    out = []
    for key, wine in explained.groupby(explained["id"].astype(str), sort=False):
        is_base = wine["feature"] == "baseline"
        start = float(wine.loc[is_base, "contribution"].sum())
        parts = wine[~is_base]
        parts = parts.loc[parts["contribution"].abs().sort_values(ascending=False,
                                                                  kind="stable").index]
        shown = parts[parts["contribution"].abs() >= smallest].head(top)
        rest = parts.drop(index=shown.index)
        steps = [Step(f, feature_label(f, model_name), float(c))
                 for f, c in zip(shown["feature"], shown["contribution"], strict=True)]
        if len(rest):
            steps.append(Step("other", f"All {len(rest)} other features",
                              float(rest["contribution"].sum())))
        first = wine.iloc[0]
        title = first["title"]
        out.append(ExplainedWine(
            id=key, title=title if isinstance(title, str) and title.strip() else f"wine {key}",
            points=float(first["points"]), predicted_points=float(first["predicted_points"]),
            start=start, end=start + float(parts["contribution"].sum()), steps=steps))
    return out


def verdict(metrics: Metrics, interval: IntervalSummary, gain: Estimate) -> Verdict:
    """The recommendation, from the model's gain over the price-only rule and its range.

    The model must beat the rule (what a buyer does without a model) by
    :data:`GAIN_FOR_PRODUCTION` of its error to be recommended and by
    :data:`GAIN_FOR_PILOT` for a trial; the range must hold its target.
    """
    mae = metrics.model.mae
    mean, price = metrics.baselines.mean.mae, metrics.baselines.price_only.mae
    ratio = 1 - mae / price
    if ratio < GAIN_FOR_PILOT:
        level = "no"
    elif ratio < GAIN_FOR_PRODUCTION:
        level = "pilot"
    else:
        level = "go" if interval.calibration == "held" else "go-fix-range"
    best = min(mean, price)
    real = None if gain.value is None else gain.value - gain.half_width > 0
    return Verdict(level=level, gain=ratio, gain_over_mean=1 - mae / mean,
                   gain_over_best=1 - mae / best if mae < best else None, advantage_real=real)


def report_numbers(pred: pd.DataFrame, metrics: Metrics, importance: pd.DataFrame,
                   explained: pd.DataFrame) -> ReportNumbers:
    """Every number of the report.

    Parameters
    ----------
    pred : pandas.DataFrame
        The sample of scored test rows (at least one).
    metrics : Metrics
        The test metrics.
    importance, explained : pandas.DataFrame
        :func:`pipeline.steps.evaluate.explanations` (may be empty).

    Returns
    -------
    ReportNumbers
    """
    kind = metrics.model.name
    interval = interval_summary(pred, metrics)
    gain = estimate(errors(pred, "baseline_price").abs() - errors(pred).abs())
    return ReportNumbers(
        shown=len(pred), data=data_summary(pred), interval=interval,
        mae=estimate(errors(pred).abs()), gain=gain,
        bias=bias_at_the_ends(pred),
        by_points=error_bands(pred, "points", POINTS_BAND_EDGES, integer=True),
        by_price=error_bands(pred, "price", PRICE_BAND_EDGES, missing_label=NO_PRICE),
        by_country=error_by_group(pred, "country", UNKNOWN),
        by_critic=error_by_group(pred, "taster_name", NO_CRITIC),
        misses=largest_misses(pred), cost=cost_summary(pred), cost_bands=cost_by_price_band(pred),
        buy=buy_list(pred), importance=importance_table(importance, kind),
        wines=explained_wines(explained, kind) if not explained.empty else [],
        verdict=verdict(metrics, interval, gain))
