"""The numbers behind the report: pure functions from the report data to small tables.

Nothing here draws or formats: :mod:`pipeline.report.plots` turns these tables
into figures and :mod:`pipeline.report.text` into sentences and HTML tables.
Every function copes with missing values and absent optional columns, and
gives an empty table (or missing numbers) rather than an error when there
is nothing to compute.

An *error* is always ``predicted_points - points``: positive means the model
*over-rated* the wine (predicted it better than the critic found it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

# The price bands (in the data's currency) and the label of wines without a price: the
# same as the model's interval is checked on.
from pipeline.intervals import NO_PRICE
from pipeline.params import PRICE_BAND_EDGES

#: Prediction columns of the report data and the name shown for each.
PREDICTION_COLUMNS: dict[str, str] = {
    "predicted_points": "Model",
    "baseline_mean": "Average score (baseline)",
    "baseline_price": "Price only (baseline)",
}

#: Edges of the score bands (right-exclusive upper edge, so 80-84 means 80 <= points < 85).
POINTS_BAND_EDGES: tuple[float, ...] = (80, 85, 88, 91, 94, 101)
#: Label of the group of wines without a value (no country, no critic named ...).
UNKNOWN = "unknown"
#: Currency sign of the prices (WineEnthusiast lists US dollars).
CURRENCY = "$"
#: A wine counts as over- or under-rated when the prediction is this many points off.
COSTLY_ERROR = 3.0
#: Score from which a wine counts as a good buy in :func:`buy_list` (90+ is "excellent").
GOOD_SCORE = 90.0

#: Readable names of the feature groups in ``importance.csv``/``explained.csv``.
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


def finite(value: Any) -> float:
    """A value as a finite float, or NaN.

    Parameters
    ----------
    value : Any

    Returns
    -------
    float
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return number if np.isfinite(number) else float("nan")


def numeric(df: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats (NaN when absent or not a number).

    Parameters
    ----------
    df : pandas.DataFrame
    column : str

    Returns
    -------
    pandas.Series of float
    """
    if column not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[column], errors="coerce").astype(float)


def labels(df: pd.DataFrame, column: str, missing: str = UNKNOWN) -> pd.Series:
    """A text column with missing and blank values replaced by ``missing``.

    Parameters
    ----------
    df : pandas.DataFrame
    column : str
    missing : str, default UNKNOWN

    Returns
    -------
    pandas.Series of str (object dtype)
    """
    if column not in df.columns:
        return pd.Series(missing, index=df.index, dtype=object)
    text = df[column].astype("string").str.strip()
    return text.mask(text.isna() | (text == ""), missing).astype(object)


def errors(predictions: pd.DataFrame, column: str = "predicted_points") -> pd.Series:
    """Signed error of a predictor: prediction minus the critic's score.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points`` and ``column``.
    column : str, default "predicted_points"

    Returns
    -------
    pandas.Series of float
        Positive: over-rated; NaN where either value is missing.
    """
    return numeric(predictions, column) - numeric(predictions, "points")


def band_labels(edges: Sequence[float], integer: bool) -> list[str]:
    """Labels of the bands between consecutive edges.

    Parameters
    ----------
    edges : sequence of float
        Band edges; a band holds ``lo <= value < hi``.
    integer : bool
        Whole-number bands (``85-87`` for 85 <= value < 88).

    Returns
    -------
    list of str
        E.g. ``["under 15", "15-25", ..., "100+"]`` or ``["80-84", ...]``.
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
    """Cut values into labelled bands.

    Parameters
    ----------
    values : pandas.Series of float
    edges : sequence of float
        Band edges; a band holds ``lo <= value < hi``.
    integer : bool, default False
        See :func:`band_labels`.
    missing_label : str, optional
        Band of missing values (and values outside the edges); when None they
        stay missing.

    Returns
    -------
    pandas.Series
        Ordered categorical of the band labels (plus ``missing_label``).
    """
    names = band_labels(edges, integer)
    cut = pd.cut(values, bins=list(edges), right=False, labels=names).astype(object)
    categories = list(names)
    if missing_label is not None:
        cut = cut.where(cut.notna(), missing_label)
        categories.append(missing_label)
    return pd.Series(pd.Categorical(cut, categories=categories, ordered=True), index=values.index)


def price_bands(predictions: pd.DataFrame) -> pd.Series:
    """The price band of each wine, wines without a price in :data:`NO_PRICE`.

    Parameters
    ----------
    predictions : pandas.DataFrame

    Returns
    -------
    pandas.Series
        Ordered categorical.
    """
    return bands(numeric(predictions, "price"), PRICE_BAND_EDGES, missing_label=NO_PRICE)


def mae_by_band(predictions: pd.DataFrame, column: str, edges: Sequence[float],
                integer: bool = False, missing_label: str | None = None) -> pd.DataFrame:
    """Mean absolute error of the model and the baselines per band of a column.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points``, the prediction columns of
        :data:`PREDICTION_COLUMNS` that are present, and ``column``.
    column : str
        Column cut into bands, e.g. ``"points"`` or ``"price"``.
    edges : sequence of float
        Band edges; a band holds ``lo <= value < hi``.
    integer : bool, default False
        Label bands as whole numbers (``85-87`` rather than ``85-88``).
    missing_label : str, optional
        When given, rows whose ``column`` is missing form an extra band with
        this label; otherwise they are left out.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per band and predictor: ``band`` (ordered
        categorical), ``predictor`` (display name), ``mae`` and ``n`` (wines in
        the band).  Empty bands are dropped.
    """
    band = bands(numeric(predictions, column), edges, integer, missing_label)
    rows = []
    for col, name in PREDICTION_COLUMNS.items():
        if col not in predictions.columns:
            continue
        frame = pd.DataFrame({"band": band.astype(object),
                              "error": errors(predictions, col).abs()}).dropna()
        grouped = frame.groupby("band", sort=False)["error"].agg(["mean", "size"])
        for label, (mae, n) in grouped.iterrows():
            rows.append({"band": label, "predictor": name, "mae": float(mae), "n": int(n)})
    out = pd.DataFrame(rows, columns=["band", "predictor", "mae", "n"])
    out["band"] = pd.Categorical(out["band"], categories=list(band.cat.categories), ordered=True)
    return out.sort_values(["band", "predictor"], kind="stable").reset_index(drop=True)


def bias_by_points_band(predictions: pd.DataFrame) -> pd.DataFrame:
    """Average signed error per band of critic's score.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points`` and ``predicted_points``.

    Returns
    -------
    pandas.DataFrame
        ``band`` (ordered categorical), ``n`` and ``bias`` (mean of predicted
        minus actual; positive: over-rated), one row per non-empty band.
    """
    frame = pd.DataFrame({"band": bands(numeric(predictions, "points"), POINTS_BAND_EDGES,
                                        integer=True),
                          "error": errors(predictions)}).dropna()
    table = frame.groupby("band", observed=True)["error"].agg(n="size", bias="mean")
    return table.reset_index()


def error_by_group(predictions: pd.DataFrame, column: str, top: int = 10,
                   min_wines: int = 5, missing: str = UNKNOWN) -> pd.DataFrame:
    """Average error of the model for the largest groups of a text column.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points``, ``predicted_points`` and ``column``.
    column : str
        E.g. ``"country"`` or ``"taster_name"``.
    top : int, default 10
        Keep at most this many groups, the ones with the most wines.
    min_wines : int, default 5
        Leave out groups with fewer wines: their average says little.
    missing : str, default UNKNOWN
        Name of the group of wines without a value.

    Returns
    -------
    pandas.DataFrame
        ``group``, ``n``, ``mae``, ``bias`` (mean predicted minus actual) and
        ``mae_price_only`` (the price-only rule's, NaN without it), largest
        groups first.
    """
    frame = pd.DataFrame({
        "group": labels(predictions, column, missing),
        "error": errors(predictions),
        "price_error": errors(predictions, "baseline_price").abs(),
    })
    frame = frame[frame["error"].notna()]
    frame["abs"] = frame["error"].abs()
    table = frame.groupby("group").agg(n=("error", "size"), mae=("abs", "mean"),
                                       bias=("error", "mean"),
                                       mae_price_only=("price_error", "mean"))
    table = table[table["n"] >= min_wines]
    table = table.sort_values(["n", "mae"], ascending=[False, True], kind="stable").head(top)
    return table.reset_index()[["group", "n", "mae", "bias", "mae_price_only"]]


def mae_interval(predictions: pd.DataFrame, z: float = 1.96) -> tuple[float, float]:
    """The model's mean absolute error with the half-width of its confidence interval.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points`` and ``predicted_points``.
    z : float, default 1.96
        Normal quantile (1.96: 95% confidence).

    Returns
    -------
    mae, half_width : float
        NaN when fewer than two wines have a prediction.
    """
    error = errors(predictions).abs().dropna()
    if len(error) < 2:
        return float("nan"), float("nan")
    return float(error.mean()), float(z * error.std(ddof=1) / np.sqrt(len(error)))


def interval_summary(predictions: pd.DataFrame,
                     metrics: Mapping[str, Any] | None = None) -> dict[str, float]:
    """How the 80% prediction interval did.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points``, ``predicted_points``, ``lower`` and ``upper``.
    metrics : mapping, optional
        Content of ``metrics.json``; its ``model.interval_coverage`` (over the
        whole test split) is preferred to the coverage of ``predictions``
        (perhaps a sample).

    Returns
    -------
    dict
        ``coverage`` (share of wines inside their interval), ``target``
        (the promised share), ``n`` (wines with an interval), ``below`` and
        ``above`` (shares whose score fell below/above it), ``width`` (median
        width in points), ``half_below``/``half_above`` (median distance from
        the prediction to each end).  NaN where unknown.
    """
    actual, lower, upper = (numeric(predictions, c) for c in ("points", "lower", "upper"))
    pred = numeric(predictions, "predicted_points")
    has = actual.notna() & lower.notna() & upper.notna()
    n = int(has.sum())
    out = {"n": float(n), "coverage": np.nan, "below": np.nan, "above": np.nan,
           "width": np.nan, "half_below": np.nan, "half_above": np.nan, "target": 0.8}
    if n:
        a, lo, hi, p = actual[has], lower[has], upper[has], pred[has]
        out.update(coverage=float(((a >= lo) & (a <= hi)).mean()),
                   below=float((a < lo).mean()), above=float((a > hi).mean()),
                   width=float((hi - lo).median()), half_below=float((p - lo).median()),
                   half_above=float((hi - p).median()))
    model = metrics.get("model") if isinstance(metrics, Mapping) else None
    if isinstance(model, Mapping):
        reported = finite(model.get("interval_coverage"))
        if np.isfinite(reported):
            out["coverage"] = float(reported)
    info = metrics.get("model_info") if isinstance(metrics, Mapping) else None
    interval = info.get("interval") if isinstance(info, Mapping) else None
    if isinstance(interval, Mapping):
        target = finite(interval.get("coverage"))
        if np.isfinite(target) and 0 < target < 1:
            out["target"] = float(target)
    return out


def largest_misses(predictions: pd.DataFrame, n: int = 8) -> pd.DataFrame:
    """The wines the model got most wrong.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points`` and ``predicted_points``; ``title``,
        ``description``, ``price``, ``lower``, ``upper``, ``country`` and
        ``taster_name`` are carried along when present.
    n : int, default 8

    Returns
    -------
    pandas.DataFrame
        Up to ``n`` rows, largest absolute error first, with an ``error``
        column (predicted minus actual).
    """
    keep = [c for c in ("id", "title", "description", "price", "country", "taster_name",
                        "points", "predicted_points", "lower", "upper")
            if c in predictions.columns]
    frame = predictions[keep].assign(error=errors(predictions))
    frame = frame[frame["error"].notna()]
    order = frame["error"].abs().sort_values(ascending=False, kind="stable").index[:n]
    return frame.loc[order].reset_index(drop=True)


def cost_summary(predictions: pd.DataFrame, threshold: float = COSTLY_ERROR) -> dict[str, float]:
    """How many wines the model over- and under-rates by ``threshold`` points or more.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points``, ``predicted_points`` and (optionally)
        ``price`` and ``baseline_price``.
    threshold : float, default COSTLY_ERROR

    Returns
    -------
    dict
        ``n`` (wines with a prediction), ``over``/``under`` (counts),
        ``over_share``/``under_share``, ``over_price_median``,
        ``over_price_min``/``over_price_max`` (prices of the over-rated
        wines), ``over_spend_share`` (their share of the total bottle price
        of all priced wines) and ``baseline_over``/``baseline_over_share``
        (the same count for the price-only rule).  NaN where unknown.
    """
    error = errors(predictions)
    known = error.notna()
    n = int(known.sum())
    price = numeric(predictions, "price")
    over = known & (error >= threshold)
    under = known & (error <= -threshold)
    over_prices = price[over].dropna()
    total_spend = float(price[known].sum(skipna=True))
    base_error = errors(predictions, "baseline_price")
    base_known = base_error.notna()
    base_over = int((base_known & (base_error >= threshold)).sum())
    return {
        "threshold": float(threshold),
        "n": float(n),
        "over": float(over.sum()),
        "under": float(under.sum()),
        "over_share": float(over.sum() / n) if n else np.nan,
        "under_share": float(under.sum() / n) if n else np.nan,
        "over_price_median": float(over_prices.median()) if len(over_prices) else np.nan,
        "over_price_min": float(over_prices.min()) if len(over_prices) else np.nan,
        "over_price_max": float(over_prices.max()) if len(over_prices) else np.nan,
        "over_spend_share": (float(over_prices.sum() / total_spend) if total_spend > 0
                             else np.nan),
        "baseline_over": float(base_over) if base_known.any() else np.nan,
        "baseline_over_share": (float(base_over / base_known.sum()) if base_known.any()
                                else np.nan),
    }


def cost_by_price_band(predictions: pd.DataFrame,
                       threshold: float = COSTLY_ERROR) -> pd.DataFrame:
    """Over- and under-rated wines per price band.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points``, ``predicted_points`` and ``price``.
    threshold : float, default COSTLY_ERROR

    Returns
    -------
    pandas.DataFrame
        One row per non-empty price band (wines without a price last):
        ``band``, ``n``, ``over``, ``over_share``, ``under``, ``under_share``,
        ``mean_price`` and ``over_mean_price`` (mean price of the over-rated
        wines, NaN when none or unknown).
    """
    error = errors(predictions)
    frame = pd.DataFrame({"band": price_bands(predictions), "error": error,
                          "price": numeric(predictions, "price")})
    frame = frame[frame["error"].notna()]
    frame["over"] = frame["error"] >= threshold
    frame["under"] = frame["error"] <= -threshold
    frame["over_price"] = frame["price"].where(frame["over"])
    table = frame.groupby("band", observed=True).agg(
        n=("error", "size"), over=("over", "sum"), under=("under", "sum"),
        mean_price=("price", "mean"), over_mean_price=("over_price", "mean"))
    table["over_share"] = table["over"] / table["n"]
    table["under_share"] = table["under"] / table["n"]
    table = table.reset_index()
    return table[["band", "n", "over", "over_share", "under", "under_share", "mean_price",
                  "over_mean_price"]].astype({"n": int, "over": int, "under": int})


def buy_list(predictions: pd.DataFrame, good: float = GOOD_SCORE,
             threshold: float = COSTLY_ERROR) -> dict[str, float]:
    """What buying every wine the model predicts at ``good`` points or more would give.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points`` and ``predicted_points``.
    good : float, default GOOD_SCORE
        The bar: a wine is bought when its predicted score reaches it.
    threshold : float, default COSTLY_ERROR
        A bought wine *disappoints* when the critic scored it at least this
        many points below the bar.

    Returns
    -------
    dict
        ``good``, ``bought`` (wines predicted at the bar or above),
        ``really_good`` (of those, scored at the bar or above by the critic),
        ``disappointing`` (scored ``good - threshold`` or less), ``all_good``
        (wines the critic scored at the bar or above) and ``found`` (of
        those, bought).
    """
    actual, pred = numeric(predictions, "points"), numeric(predictions, "predicted_points")
    has = actual.notna() & pred.notna()
    actual, pred = actual[has], pred[has]
    bought = pred >= good
    return {
        "good": float(good),
        "bought": float(bought.sum()),
        "really_good": float((bought & (actual >= good)).sum()),
        "disappointing": float((bought & (actual <= good - threshold)).sum()),
        "all_good": float((actual >= good).sum()),
        "found": float((bought & (actual >= good)).sum()),
    }


def feature_label(name: str, model_name: str | None = None) -> str:
    """Readable name of a feature group.

    Parameters
    ----------
    name : str
        Name in ``importance.csv``/``explained.csv`` (e.g. ``"log_price"``).
    model_name : str, optional
        ``"sgd"`` or ``"lightgbm"``; some names mean different things in each.

    Returns
    -------
    str
        E.g. ``"Price"``; unknown names are made readable (``"new_thing"``
        gives ``"New thing"``).
    """
    name = str(name)
    special = MODEL_FEATURE_NAMES.get(str(model_name or "").lower(), {})
    if name in special:
        return special[name]
    if name in FEATURE_NAMES:
        return FEATURE_NAMES[name]
    if name == "description_chars":
        return "Characters of the tasting note"
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else "(unnamed)"


def importance_table(importance: pd.DataFrame, model_name: str | None = None) -> pd.DataFrame:
    """Global importances with readable names, largest first.

    Parameters
    ----------
    importance : pandas.DataFrame
        ``feature`` and ``mean_abs_contribution`` (any order; may be empty).
    model_name : str, optional
        See :func:`feature_label`.

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``label`` and ``points`` (mean absolute contribution);
        the ``baseline`` row and rows without a number are left out.
    """
    if importance.empty or not {"feature", "mean_abs_contribution"} <= set(importance.columns):
        return pd.DataFrame({"feature": pd.Series(dtype=object), "label": pd.Series(dtype=object),
                             "points": pd.Series(dtype=float)})
    table = pd.DataFrame({"feature": importance["feature"].astype(str),
                          "points": numeric(importance, "mean_abs_contribution")}).dropna()
    table = table[table["feature"] != "baseline"]
    table["label"] = [feature_label(f, model_name) for f in table["feature"]]
    table = table.sort_values("points", ascending=False, kind="stable")
    return table[["feature", "label", "points"]].reset_index(drop=True)


def explained_wines(explained: pd.DataFrame, model_name: str | None = None,
                    top: int = 6, smallest: float = 0.05) -> list[dict[str, Any]]:
    """Split the long table of explained wines into one record per wine.

    Parameters
    ----------
    explained : pandas.DataFrame
        ``id``, ``title``, ``points``, ``predicted_points``, ``feature``,
        ``contribution`` (may be empty).
    model_name : str, optional
        See :func:`feature_label`.
    top : int, default 6
        Keep this many contributions, the largest in size; the rest are added
        up into one "all other features" step.
    smallest : float, default 0.05
        Contributions smaller than this (in points, either way) also go into
        that step.

    Returns
    -------
    list of dict
        In order of first appearance: ``id``, ``title``, ``points``,
        ``predicted_points``, ``start`` (the baseline), ``end`` (start plus all
        contributions: the model's raw prediction) and ``steps``, a DataFrame
        of ``feature``, ``label`` and ``contribution``, largest first.
    """
    needed = {"id", "feature", "contribution"}
    if explained.empty or not needed <= set(explained.columns):
        return []
    frame = explained.assign(contribution=numeric(explained, "contribution"),
                             key=explained["id"].astype(str))
    out = []
    for key in pd.unique(frame["key"]):
        wine = frame[frame["key"] == key]
        is_base = wine["feature"].astype(str) == "baseline"
        start = float(wine.loc[is_base, "contribution"].sum()) if is_base.any() else 0.0
        parts = wine.loc[~is_base, ["feature", "contribution"]].dropna()
        parts = parts.assign(feature=parts["feature"].astype(str))
        order = parts["contribution"].abs().sort_values(ascending=False, kind="stable").index
        parts = parts.loc[order]
        big = parts["contribution"].abs() >= smallest
        shown = parts[big].head(top)
        rest = parts.drop(index=shown.index)
        steps = shown.assign(label=[feature_label(f, model_name) for f in shown["feature"]])
        if len(rest):
            steps = pd.concat([steps, pd.DataFrame({
                "feature": ["other"], "contribution": [float(rest["contribution"].sum())],
                "label": [f"All {len(rest)} other features"]})], ignore_index=True)
        first = wine.iloc[0]
        title = first.get("title")
        out.append({
            "id": key,
            "title": str(title) if isinstance(title, str) and title.strip() else f"wine {key}",
            "points": finite(first.get("points")),
            "predicted_points": finite(first.get("predicted_points")),
            "start": start,
            "end": start + float(parts["contribution"].sum()),
            "steps": steps[["feature", "label", "contribution"]].reset_index(drop=True),
        })
    return out


def data_summary(predictions: pd.DataFrame) -> dict[str, Any]:
    """A few facts about the wines of the report data.

    Parameters
    ----------
    predictions : pandas.DataFrame

    Returns
    -------
    dict
        ``n``; ``points_mean``, ``points_min``, ``points_max``, ``points_q1``,
        ``points_q3``; ``price_median``, ``price_min``, ``price_max``,
        ``price_missing`` (share); ``countries`` (number) and ``top_countries``
        (list of ``(name, share)``); ``tasters`` (number of named critics),
        ``top_tasters`` (list of ``(name, share)``) and ``no_taster`` (share of
        wines without a named critic).  NaN where unknown.
    """
    n = len(predictions)
    points = numeric(predictions, "points").dropna()
    price = numeric(predictions, "price")
    out: dict[str, Any] = {"n": n}
    for key, fn in (("mean", "mean"), ("min", "min"), ("max", "max")):
        out[f"points_{key}"] = float(getattr(points, fn)()) if len(points) else np.nan
    out["points_q1"] = float(points.quantile(0.25)) if len(points) else np.nan
    out["points_q3"] = float(points.quantile(0.75)) if len(points) else np.nan
    known = price.dropna()
    out["price_median"] = float(known.median()) if len(known) else np.nan
    out["price_min"] = float(known.min()) if len(known) else np.nan
    out["price_max"] = float(known.max()) if len(known) else np.nan
    out["price_missing"] = float(price.isna().mean()) if n else np.nan
    for column, key in (("country", "countries"), ("taster_name", "tasters")):
        values = labels(predictions, column, missing="")
        named = values[values != ""]
        counts = named.value_counts()
        out[key] = int(len(counts))
        out[f"top_{key}"] = [(str(k), float(v / n)) for k, v in counts.head(3).items()]
        if column == "taster_name":
            out["no_taster"] = float((values == "").mean()) if n else np.nan
    return out


def paired_gain(predictions: pd.DataFrame, baseline: str = "baseline_price",
                z: float = 1.96) -> tuple[float, float]:
    """How many points smaller the model's errors are than a baseline's, with its uncertainty.

    The difference of absolute errors is taken wine by wine, so the
    uncertainty is that of the comparison, not of each error separately.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points``, ``predicted_points`` and ``baseline``.
    baseline : str, default "baseline_price"
    z : float, default 1.96
        Normal quantile (1.96: 95% confidence).

    Returns
    -------
    gain, half_width : float
        Mean of ``|baseline error| - |model error|`` (positive: the model is
        better) and the half-width of its confidence interval; NaN with fewer
        than two wines.
    """
    diff = (errors(predictions, baseline).abs() - errors(predictions).abs()).dropna()
    if len(diff) < 2:
        return float("nan"), float("nan")
    return float(diff.mean()), float(z * diff.std(ddof=1) / np.sqrt(len(diff)))
