"""Figures of the evaluation report.

Every helper is a pure function: it takes a DataFrame, never touches
``matplotlib.pyplot`` state, and returns a new :class:`matplotlib.figure.Figure`
(so figures are not kept alive by pyplot and nothing is shown twice).  Each
copes with small data and missing values: an empty input gives a figure that
says so instead of an error.

The report template (``template.pmd``) calls these; they are also usable from
a notebook (``display(fig)``) or a script (``fig.savefig(...)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

#: Colour of the model in every figure.
MODEL_COLOUR = "#7b1e3a"
#: Colours of the baselines, in the order of :data:`BASELINE_COLUMNS`.
BASELINE_COLOURS = ("#b8b0a8", "#6f7c85")
#: Prediction columns of the report data and the name shown for each.
PREDICTION_COLUMNS: dict[str, str] = {
    "predicted_points": "Model",
    "baseline_mean": "Average score (baseline)",
    "baseline_price": "Price only (baseline)",
}
#: Colours of positive and negative word weights.
UP_COLOUR, DOWN_COLOUR = "#2e7d4f", "#b23a48"

#: Edges of the score bands (right-inclusive upper edge, so 80-84 means 80 <= points < 85).
POINTS_BAND_EDGES: tuple[float, ...] = (80, 85, 88, 91, 94, 101)
#: Edges of the price bands, in the data's currency.
PRICE_BAND_EDGES: tuple[float, ...] = (0, 15, 25, 40, 60, 100, np.inf)

#: At most this many points are drawn in the scatter plot (a random, seeded sample).
SCATTER_MAX_POINTS = 5000


def _figure(figsize: tuple[float, float] = (8.0, 4.5)) -> tuple[Figure, Axes]:
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _empty(ax: Axes, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="0.4",
            transform=ax.transAxes)


def _numeric(df: pd.DataFrame, column: str) -> pd.Series:
    if column not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[column], errors="coerce").astype(float)


def points_distribution(predictions: pd.DataFrame) -> Figure:
    """Histogram of the critics' scores.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with a ``points`` column (80-100, missing values ignored).

    Returns
    -------
    matplotlib.figure.Figure
        One bar per score.
    """
    fig, ax = _figure()
    points = _numeric(predictions, "points").dropna()
    ax.set_title("How the critics scored the wines")
    if points.empty:
        _empty(ax, "No scores to show")
        return fig
    sns.histplot(x=points, discrete=True, color=MODEL_COLOUR, alpha=0.85, ax=ax)
    ax.axvline(points.mean(), color="0.2", linestyle="--", linewidth=1)
    ax.annotate(f"average {points.mean():.1f}", (points.mean(), 1),
                xycoords=("data", "axes fraction"), xytext=(4, -14), textcoords="offset points",
                fontsize=9, color="0.2")
    ax.set_xlabel("Critic's score (points)")
    ax.set_ylabel("Number of wines")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def price_distribution(predictions: pd.DataFrame) -> Figure:
    """Histogram of bottle prices on a logarithmic axis.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with a ``price`` column; missing prices are counted in
        the title, not drawn.

    Returns
    -------
    matplotlib.figure.Figure
        Histogram with log-spaced bins.
    """
    fig, ax = _figure()
    price = _numeric(predictions, "price")
    known = price[price > 0].dropna()
    missing = int(price.isna().sum())
    title = "Bottle prices"
    if missing:
        title += f" ({missing:,} of {len(price):,} wines have no price)"
    ax.set_title(title)
    if known.empty:
        _empty(ax, "No prices to show")
        return fig
    sns.histplot(x=known, log_scale=True, bins=min(40, max(5, known.nunique())),
                 color=MODEL_COLOUR, alpha=0.85, ax=ax)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("Price per bottle (log scale)")
    ax.set_ylabel("Number of wines")
    return fig


def top_countries(predictions: pd.DataFrame, n: int = 10) -> Figure:
    """Horizontal bar chart of the countries with the most wines.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with a ``country`` column; missing countries count as
        "unknown".
    n : int, default 10
        Number of countries shown.

    Returns
    -------
    matplotlib.figure.Figure
        Countries by number of wines, largest on top.
    """
    if "country" in predictions.columns:
        country = predictions["country"].astype("string").fillna("unknown")
        country = country.str.strip().replace("", "unknown")
    else:
        country = pd.Series([], dtype="string")
    counts = country.value_counts().head(n)
    fig, ax = _figure((8.0, 0.45 * max(len(counts), 3) + 1.2))
    ax.set_title(f"Top {len(counts)} countries" if len(counts) else "Countries")
    if counts.empty:
        _empty(ax, "No countries to show")
        return fig
    sns.barplot(x=counts.to_numpy(), y=counts.index.astype(str), color=MODEL_COLOUR, ax=ax)
    ax.bar_label(ax.containers[0], fmt="{:,.0f}", padding=3, fontsize=9)
    ax.set_xlabel("Number of wines")
    ax.set_ylabel("")
    ax.margins(x=0.1)
    return fig


def predicted_vs_actual(predictions: pd.DataFrame, max_points: int = SCATTER_MAX_POINTS,
                        seed: int = 0) -> Figure:
    """Scatter plot of predicted against actual scores.

    Scores are whole numbers, so the actual score is jittered a little to
    show how many wines sit on each.  The diagonal is a perfect prediction and
    the shaded band is within 2 points of it.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points`` and ``predicted_points`` columns.
    max_points : int, default SCATTER_MAX_POINTS
        Draw at most this many wines, a random sample of them.
    seed : int, default 0
        Seed of the sample and the jitter, so the figure is reproducible.

    Returns
    -------
    matplotlib.figure.Figure
        The scatter plot.
    """
    fig, ax = _figure((7.0, 6.0))
    data = pd.DataFrame({
        "actual": _numeric(predictions, "points"),
        "predicted": _numeric(predictions, "predicted_points"),
    }).dropna()
    title = "Predicted against actual score"
    if len(data) > max_points:
        title += f"\n(random {max_points:,} of {len(data):,} wines)"
        data = data.sample(max_points, random_state=seed)
    ax.set_title(title)
    if data.empty:
        _empty(ax, "No predictions to show")
        return fig
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(-0.3, 0.3, len(data))
    low = float(np.floor(min(data["actual"].min(), data["predicted"].min()))) - 1
    high = float(np.ceil(max(data["actual"].max(), data["predicted"].max()))) + 1
    line = np.array([low, high])
    ax.fill_between(line, line - 2, line + 2, color=MODEL_COLOUR, alpha=0.08,
                    label="within 2 points")
    ax.plot(line, line, color="0.3", linestyle="--", linewidth=1, label="perfect prediction")
    alpha = float(np.clip(30 / np.sqrt(len(data)), 0.15, 0.8))
    ax.scatter(data["actual"] + jitter, data["predicted"], s=12, alpha=alpha, color=MODEL_COLOUR,
               edgecolors="none", label="a wine")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel("Critic's score (points)")
    ax.set_ylabel("Predicted score (points)")
    ax.legend(loc="upper left", frameon=True)
    return fig


def residuals_histogram(predictions: pd.DataFrame) -> Figure:
    """Histogram of prediction errors (predicted minus actual score).

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points`` and ``predicted_points`` columns.

    Returns
    -------
    matplotlib.figure.Figure
        Histogram with the ±2-point band marked.
    """
    fig, ax = _figure()
    error = (_numeric(predictions, "predicted_points") - _numeric(predictions, "points")).dropna()
    ax.set_title("How far off the predictions are")
    if error.empty:
        _empty(ax, "No predictions to show")
        return fig
    bound = max(4.0, float(np.ceil(error.abs().max())))
    bins = np.arange(-bound, bound + 0.5, 0.5)
    sns.histplot(x=error, bins=bins, color=MODEL_COLOUR, alpha=0.85, ax=ax)
    ax.axvspan(-2, 2, color=MODEL_COLOUR, alpha=0.08, zorder=0, label="within 2 points")
    ax.axvline(0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlabel("Predicted minus critic's score (points; below 0 = predicted too low)")
    ax.set_ylabel("Number of wines")
    ax.legend(loc="upper right")
    return fig


def _band_labels(edges: Sequence[float], integer: bool) -> list[str]:
    labels = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if np.isinf(hi):
            labels.append(f"{lo:,.0f}+")
        elif lo <= 0 and not integer:
            labels.append(f"under {hi:,.0f}")
        elif integer:
            labels.append(f"{lo:.0f}-{hi - 1:.0f}")
        else:
            labels.append(f"{lo:,.0f}-{hi:,.0f}")
    return labels


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
    labels = _band_labels(edges, integer)
    values = _numeric(predictions, column)
    band = pd.cut(values, bins=list(edges), right=False, labels=labels).astype("string")
    categories = list(labels)
    if missing_label is not None:
        band = band.fillna(missing_label)
        categories.append(missing_label)
    actual = _numeric(predictions, "points")
    rows = []
    for col, name in PREDICTION_COLUMNS.items():
        if col not in predictions.columns:
            continue
        error = (_numeric(predictions, col) - actual).abs()
        frame = pd.DataFrame({"band": band, "error": error}).dropna()
        grouped = frame.groupby("band", sort=False)["error"].agg(["mean", "size"])
        for label, (mae, n) in grouped.iterrows():
            rows.append({"band": label, "predictor": name, "mae": float(mae), "n": int(n)})
    out = pd.DataFrame(rows, columns=["band", "predictor", "mae", "n"])
    out["band"] = pd.Categorical(out["band"], categories=categories, ordered=True)
    return out.sort_values(["band", "predictor"], kind="stable").reset_index(drop=True)


def _mae_bars(table: pd.DataFrame, title: str, xlabel: str) -> Figure:
    fig, ax = _figure((8.5, 4.8))
    ax.set_title(title)
    if table.empty:
        _empty(ax, "No predictions to show")
        return fig
    table = table.copy()
    table["band"] = table["band"].cat.remove_unused_categories()
    counts = table.groupby("band", observed=True)["n"].max()
    names = [n for n in PREDICTION_COLUMNS.values() if n in set(table["predictor"])]
    palette = dict(zip(PREDICTION_COLUMNS.values(), (MODEL_COLOUR, *BASELINE_COLOURS),
                       strict=True))
    sns.barplot(data=table, x="band", y="mae", hue="predictor", hue_order=names,
                palette=palette, ax=ax)
    model = ax.containers[names.index("Model")] if "Model" in names else None
    if model is not None:
        ax.bar_label(model, fmt="{:.1f}", padding=2, fontsize=8)
    ax.set_xticks(range(len(counts)),
                  [f"{band}\n({n:,} wines)" for band, n in counts.items()], fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Average error (points)")
    ax.legend(title=None, fontsize=9, loc="upper left")
    ax.margins(y=0.15)
    return fig


def mae_by_points_band(predictions: pd.DataFrame) -> Figure:
    """Bar chart of the average error per band of critic's score.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points`` and the prediction columns.

    Returns
    -------
    matplotlib.figure.Figure
        Grouped bars: the model beside each baseline, per score band.
    """
    table = mae_by_band(predictions, "points", POINTS_BAND_EDGES, integer=True)
    return _mae_bars(table, "Average error by critic's score", "Critic's score (points)")


def mae_by_price_band(predictions: pd.DataFrame) -> Figure:
    """Bar chart of the average error per price band.

    Wines without a price form their own band.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Report data with ``points``, ``price`` and the prediction columns.

    Returns
    -------
    matplotlib.figure.Figure
        Grouped bars: the model beside each baseline, per price band.
    """
    table = mae_by_band(predictions, "price", PRICE_BAND_EDGES, missing_label="no price")
    return _mae_bars(table, "Average error by bottle price", "Price per bottle")


def word_weights_chart(weights: pd.DataFrame, n: int = 15) -> Figure:
    """Bar chart of the words that push a predicted score up and down.

    Parameters
    ----------
    weights : pandas.DataFrame
        Columns ``term`` (str) and ``weight`` (float, points per occurrence or
        any model-specific scale; the sign is what matters).
    n : int, default 15
        Show at most ``n`` words each way.

    Returns
    -------
    matplotlib.figure.Figure
        Horizontal bars, strongest upward words on top, downward at the bottom.
    """
    data = pd.DataFrame({
        "term": weights["term"].astype("string") if "term" in weights.columns else [],
        "weight": _numeric(weights, "weight") if "weight" in weights.columns else [],
    }).dropna()
    data = data[data["weight"] != 0]
    up = data[data["weight"] > 0].nlargest(n, "weight")
    down = data[data["weight"] < 0].nsmallest(n, "weight")
    shown = pd.concat([up, down.iloc[::-1]]).reset_index(drop=True)
    fig, ax = _figure((8.0, 0.32 * max(len(shown), 4) + 1.4))
    ax.set_title("Words in the tasting note that move the prediction")
    if shown.empty:
        _empty(ax, "No word weights available for this model")
        return fig
    colours = [UP_COLOUR if w > 0 else DOWN_COLOUR for w in shown["weight"]]
    ax.barh(np.arange(len(shown)), shown["weight"], color=colours)
    ax.set_yticks(np.arange(len(shown)), shown["term"].astype(str), fontsize=9)
    ax.invert_yaxis()
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.set_xlabel("Effect on the predicted score (left: lowers it, right: raises it)")
    ax.set_ylabel("")
    ax.grid(axis="y", visible=False)
    return fig
