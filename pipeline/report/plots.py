"""Figures of the evaluation report, drawn by evaluate into the report's context.

Every helper is a pure function of evaluate's sample of test predictions or of a
table of :mod:`pipeline.evaluation`: it never touches ``matplotlib.pyplot`` state
and returns a new :class:`matplotlib.figure.Figure` (so figures are not kept alive
by pyplot).  A table that can be empty (no prices, too few wines per group, a
model without word weights) gives a figure that says so.  :func:`report_figures`
lists the report's figures in order; :mod:`pipeline.report.drawing` draws them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from pipeline import evaluation as ev
from pipeline.evaluation import (
    PREDICTORS,
    BandCost,
    Bands,
    ExplainedWine,
    GroupError,
    Importance,
    ReportNumbers,
)
from pipeline.report.filters import signed

#: Colour of the model in every figure.
MODEL_COLOUR = "#7b1e3a"
#: Colours of the baselines, in the order of :data:`PREDICTORS` after the model.
BASELINE_COLOURS = ("#b8b0a8", "#6f7c85")
#: Colours of positive and negative word weights (and contributions).
UP_COLOUR, DOWN_COLOUR = "#2e7d4f", "#b23a48"
#: Colour of neutral elements (counts, the starting point of a waterfall).
NEUTRAL_COLOUR = "#6f7c85"

#: At most this many points are drawn in the scatter plot (a random, seeded sample).
SCATTER_MAX_POINTS = 5000

def _figure(figsize: tuple[float, float] = (8.0, 4.5)) -> tuple[Figure, Axes]:
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _empty(ax: Axes, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="0.4",
            transform=ax.transAxes)


def points_distribution(predictions: pd.DataFrame) -> Figure:
    """Histogram of the critics' scores.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The sample of test predictions.

    Returns
    -------
    matplotlib.figure.Figure
        One bar per score.
    """
    fig, ax = _figure()
    points = predictions["points"]
    ax.set_title("How the critics scored the wines")
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
        The sample of test predictions; missing prices are counted in the title.

    Returns
    -------
    matplotlib.figure.Figure
        Histogram with log-spaced bins.
    """
    fig, ax = _figure()
    price = predictions["price"]
    known = price[price > 0]
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
        The sample of test predictions; missing countries count as "unknown".
    n : int, default 10
        Number of countries shown.

    Returns
    -------
    matplotlib.figure.Figure
        Countries by number of wines, largest on top.
    """
    counts = ev.labels(predictions["country"], ev.UNKNOWN).value_counts().head(n)
    fig, ax = _figure((8.0, 0.45 * max(len(counts), 3) + 1.2))
    ax.set_title(f"Top {len(counts)} countries")
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
        The sample of test predictions.
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
    data = pd.DataFrame({"actual": predictions["points"],
                         "predicted": predictions["predicted_points"]})
    title = "Predicted against actual score"
    if len(data) > max_points:
        title += f"\n(random {max_points:,} of {len(data):,} wines)"
        data = data.sample(max_points, random_state=seed)
    ax.set_title(title)
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
        The sample of test predictions.

    Returns
    -------
    matplotlib.figure.Figure
        Histogram with the ±2-point band marked.
    """
    fig, ax = _figure()
    error = ev.errors(predictions)
    ax.set_title("How far off the predictions are")
    bound = max(4.0, float(np.ceil(error.abs().max())))
    bins = np.arange(-bound, bound + 0.5, 0.5)
    sns.histplot(x=error, bins=bins, color=MODEL_COLOUR, alpha=0.85, ax=ax)
    ax.axvspan(-2, 2, color=MODEL_COLOUR, alpha=0.08, zorder=0, label="within 2 points")
    ax.axvline(0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlabel("Predicted minus critic's score (points; below 0 = predicted too low)")
    ax.set_ylabel("Number of wines")
    ax.legend(loc="upper right")
    return fig


def _mae_bars(bands: Bands, title: str, xlabel: str) -> Figure:
    fig, ax = _figure((8.5, 4.8))
    ax.set_title(title)
    wide = pd.DataFrame([dataclasses.asdict(row) for row in bands.rows])
    names = list(PREDICTORS.values())
    table = wide.rename(columns=dict(zip(("model", "mean", "price_only"), names,
                                         strict=True))).melt(
        id_vars=["band", "n"], value_vars=names, var_name="predictor", value_name="mae")
    palette = dict(zip(names, (MODEL_COLOUR, *BASELINE_COLOURS), strict=True))
    sns.barplot(data=table, x="band", y="mae", hue="predictor", hue_order=names,
                palette=palette, ax=ax)
    ax.bar_label(ax.containers[0], fmt="{:.1f}", padding=2, fontsize=8)
    ax.set_xticks(range(len(wide)),
                  [f"{band}\n({n:,} wines)" for band, n in zip(wide["band"], wide["n"],
                                                             strict=True)], fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Average error (points)")
    ax.legend(title=None, fontsize=9, loc="upper left")
    ax.margins(y=0.15)
    return fig


def mae_by_points_band(bands: Bands) -> Figure:
    """Bar chart of the average error per band of critic's score.

    Parameters
    ----------
    bands : pipeline.evaluation.Bands
        :attr:`pipeline.evaluation.ReportNumbers.by_points`.

    Returns
    -------
    matplotlib.figure.Figure
        Grouped bars: the model beside each baseline, per score band.
    """
    return _mae_bars(bands, "Average error by critic's score", "Critic's score (points)")


def mae_by_price_band(bands: Bands) -> Figure:
    """Bar chart of the average error per price band (wines without a price last).

    Parameters
    ----------
    bands : pipeline.evaluation.Bands
        :attr:`pipeline.evaluation.ReportNumbers.by_price`.

    Returns
    -------
    matplotlib.figure.Figure
        Grouped bars: the model beside each baseline, per price band.
    """
    return _mae_bars(bands, "Average error by bottle price", "Price per bottle")


def word_weights_chart(weights: pd.DataFrame, n: int = 15) -> Figure:
    """Bar chart of the words that push a predicted score up and down.

    Parameters
    ----------
    weights : pandas.DataFrame
        :func:`pipeline.steps.evaluate.word_weights`: ``term`` and ``weight`` (the
        model's scale; the sign is what matters); empty for a model without them.
    n : int, default 15
        Show at most ``n`` words each way.

    Returns
    -------
    matplotlib.figure.Figure
        Horizontal bars, strongest upward words on top, downward at the bottom.
    """
    data = weights[weights["weight"] != 0]
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


def tasters_chart(predictions: pd.DataFrame, n: int = 12) -> Figure:
    """Horizontal bar chart of the critics with the most wines, with their average score.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The sample of test predictions; reviews without a critic form the group
        "no critic named".
    n : int, default 12
        Number of critics shown.

    Returns
    -------
    matplotlib.figure.Figure
        Critics by number of wines, largest on top, each bar labelled with the
        number of wines and the critic's average score.
    """
    frame = pd.DataFrame({"critic": ev.labels(predictions["taster_name"], ev.NO_CRITIC),
                          "points": predictions["points"]})
    table = (frame.groupby("critic")["points"].agg(n="size", mean="mean")
             .sort_values("n", ascending=False, kind="stable").head(n))
    fig, ax = _figure((8.0, 0.42 * max(len(table), 3) + 1.3))
    ax.set_title(f"Who reviewed the wines (top {len(table)} critics)")
    sns.barplot(x=table["n"].to_numpy(), y=table.index.astype(str), color=NEUTRAL_COLOUR, ax=ax)
    ax.bar_label(ax.containers[0], padding=3, fontsize=9,
                 labels=[f"{k:,}  (avg {m:.1f} pts)"
                         for k, m in zip(table["n"], table["mean"], strict=True)])
    ax.set_xlabel("Number of wines (average score the critic gave in brackets)")
    ax.set_ylabel("")
    ax.margins(x=0.3)
    return fig


def points_by_price(predictions: pd.DataFrame) -> Figure:
    """Box plot of the critics' scores per price band.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The sample of test predictions; wines without a price form their own band.

    Returns
    -------
    matplotlib.figure.Figure
        One box per non-empty price band (middle half of the scores, the line
        at the median), labelled with its number of wines.
    """
    frame = pd.DataFrame({"band": ev.price_bands(predictions), "points": predictions["points"]})
    fig, ax = _figure((8.5, 4.6))
    ax.set_title("Critic's score by bottle price")
    frame["band"] = frame["band"].cat.remove_unused_categories()
    counts = frame.groupby("band", observed=True).size()
    sns.boxplot(data=frame, x="band", y="points", color="#d9c3ca", linecolor=MODEL_COLOUR,
                fliersize=2, width=0.6, ax=ax)
    ax.set_xticks(range(len(counts)),
                  [f"{band}\n({k:,} wines)" for band, k in counts.items()], fontsize=9)
    ax.set_xlabel(f"Price per bottle ({ev.CURRENCY})")
    ax.set_ylabel("Critic's score (points)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def interval_examples(predictions: pd.DataFrame, n: int = 40) -> Figure:
    """The prediction ranges of a few wines, with the critic's score inside or outside.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The sample of test predictions.
    n : int, default 40
        Number of wines shown, taken evenly across the wines sorted by
        predicted score (so the choice is reproducible).

    Returns
    -------
    matplotlib.figure.Figure
        One vertical bar per wine (its range), a dash at the prediction and a
        dot at the critic's score: filled when inside the range, a red cross
        when outside.
    """
    data = predictions[["points", "predicted_points", "lower", "upper"]]
    fig, ax = _figure((9.0, 4.8))
    data = data.sort_values(["predicted_points", "points"], kind="stable").reset_index(drop=True)
    if len(data) > n:
        data = data.iloc[np.linspace(0, len(data) - 1, n).round().astype(int)]
    data = data.reset_index(drop=True)
    inside = (data["points"] >= data["lower"]) & (data["points"] <= data["upper"])
    x = np.arange(len(data))
    ax.set_title(f"Prediction ranges of {len(data)} test wines: "
                 f"{int(inside.sum())} of {len(data)} hold the critic's score")
    ax.vlines(x, data["lower"], data["upper"], color=MODEL_COLOUR, alpha=0.35, linewidth=6,
              label="80% range")
    ax.scatter(x, data["predicted_points"], marker="_", s=120, color=MODEL_COLOUR,
               linewidths=2, label="prediction", zorder=3)
    ax.scatter(x[inside], data.loc[inside, "points"], s=28, color="0.15",
               label="critic's score, inside the range", zorder=4)
    ax.scatter(x[~inside], data.loc[~inside, "points"], s=50, marker="X", color=DOWN_COLOUR,
               label="critic's score, outside the range", zorder=4)
    ax.set_xticks([])
    ax.set_xlabel("Test wines, sorted from lowest to highest predicted score")
    ax.set_ylabel("Points")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left", fontsize=9, frameon=True)
    return fig


def error_by_group_chart(groups: list[GroupError], title: str, overall: float) -> Figure:
    """Horizontal bars of the model's average error per group (country, critic ...).

    Parameters
    ----------
    groups : list of pipeline.evaluation.GroupError
        The ``rows`` of :func:`pipeline.evaluation.error_by_group`, largest first.
    title : str
        Title of the figure.
    overall : float
        The model's average error over all wines, drawn as a dashed line.

    Returns
    -------
    matplotlib.figure.Figure
        One bar per group, labelled with its number of wines, and a grey bar beside
        it with the price-only rule's error.
    """
    fig, ax = _figure((8.0, 0.62 * max(len(groups), 3) + 1.5))
    ax.set_title(title)
    if not groups:
        _empty(ax, "Too few wines per group to show")
        return fig
    y = np.arange(len(groups))
    height, shift = 0.38, 0.19
    ax.barh(y - shift, [g.mae for g in groups], color=MODEL_COLOUR, height=height,
            label="Model")
    ax.bar_label(ax.containers[0], fmt="{:.1f}", padding=3, fontsize=8)
    ax.barh(y + shift, [g.mae_price_only for g in groups], color=BASELINE_COLOURS[1],
            height=height, label="Price only (baseline)")
    ax.bar_label(ax.containers[1], fmt="{:.1f}", padding=3, fontsize=8)
    ax.axvline(overall, color="0.3", linestyle="--", linewidth=1,
               label=f"Model, all wines ({overall:.2f})")
    ax.set_yticks(y, [f"{g.group}  ({g.n:,} wines)" for g in groups], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("Average error (points)")
    ax.set_ylabel("")
    ax.grid(axis="y", visible=False)
    ax.margins(x=0.12)
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return fig


def importance_chart(table: list[Importance], n: int = 12) -> Figure:
    """Horizontal bars of how much each feature moves predictions, on average.

    Parameters
    ----------
    table : list of pipeline.evaluation.Importance
        Largest first; may be empty.
    n : int, default 12
        Show at most ``n`` features.

    Returns
    -------
    matplotlib.figure.Figure
        The largest on top, each bar labelled with its value in points.
    """
    shown = table[:n]
    fig, ax = _figure((8.0, 0.42 * max(len(shown), 3) + 1.4))
    ax.set_title("What the model looks at most")
    if not shown:
        _empty(ax, "No feature importances available for this model")
        return fig
    y = np.arange(len(shown))
    ax.barh(y, [f.points for f in shown], color=MODEL_COLOUR, height=0.6)
    ax.bar_label(ax.containers[0], fmt="{:.2f}", padding=3, fontsize=9)
    ax.set_yticks(y, [f.label for f in shown], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("Average change of a prediction due to this feature (points, either way)")
    ax.set_ylabel("")
    ax.grid(axis="y", visible=False)
    ax.margins(x=0.15)
    return fig


def contribution_waterfall(wine: ExplainedWine) -> Figure:
    """Waterfall of one wine's prediction: from the average wine to its predicted score.

    Parameters
    ----------
    wine : pipeline.evaluation.ExplainedWine

    Returns
    -------
    matplotlib.figure.Figure
        Rows from top to bottom: the starting point, one floating bar per
        contribution (green raises the score, red lowers it), the prediction
        and the critic's score (also a dashed line).
    """
    fig, ax = _figure((8.5, 0.45 * (len(wine.steps) + 3) + 1.6))
    ax.set_title(_wrap(wine.title, 70), fontsize=12)
    start, end, points = wine.start, wine.end, wine.points
    values = np.array([step.contribution for step in wine.steps])
    lefts = start + np.concatenate([[0.0], np.cumsum(values)[:-1]])
    labels = ["Average wine (starting point)", *(step.label for step in wine.steps),
              "Predicted score", "Critic's score"]
    y = np.arange(len(labels))
    rows = y[1:1 + len(values)]
    ax.barh(rows, values, left=lefts, height=0.6,
            color=[UP_COLOUR if v >= 0 else DOWN_COLOUR for v in values])
    for yi, left, value in zip(rows, lefts, values, strict=True):
        ax.annotate(signed(value), (max(left, left + value), yi), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=9)
    marks = [(0, start, "o", NEUTRAL_COLOUR, "normal"),
             (len(values) + 1, end, "D", MODEL_COLOUR, "bold"),
             (len(values) + 2, points, "o", "0.1", "bold")]
    ax.axvline(points, color="0.2", linestyle="--", linewidth=1, zorder=1)
    for yi, x, marker, colour, weight in marks:
        ax.scatter([x], [yi], s=70, marker=marker, color=colour, zorder=3)
        ax.annotate(f"{x:.1f}", (x, yi), xytext=(8, 0),
                    textcoords="offset points", va="center", fontsize=9, fontweight=weight)
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("Points")
    ax.grid(axis="y", visible=False)
    ax.use_sticky_edges = False
    ax.margins(x=0.08, y=0.04)
    return fig


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:2]) or text


def cost_by_price_chart(bands: list[BandCost], threshold: float = ev.COSTLY_ERROR) -> Figure:
    """Bars of the share of wines over- and under-rated by ``threshold`` points, per price band.

    Parameters
    ----------
    bands : list of pipeline.evaluation.BandCost
    threshold : float, default COSTLY_ERROR
        The threshold the table was computed with (for the labels).

    Returns
    -------
    matplotlib.figure.Figure
        Two bars per price band (over-rated red, under-rated green), each
        labelled with its number of wines.
    """
    fig, ax = _figure((8.5, 4.8))
    ax.set_title(f"Wines the model gets wrong by {threshold:.0f} points or more, by price")
    table = pd.DataFrame([dataclasses.asdict(band) for band in bands])
    long = pd.concat([
        pd.DataFrame({"band": table["band"].astype(str), "share": table["over_share"],
                      "count": table["over"], "kind": "over-rated (disappointing buy)"}),
        pd.DataFrame({"band": table["band"].astype(str), "share": table["under_share"],
                      "count": table["under"], "kind": "under-rated (missed bargain)"}),
    ], ignore_index=True)
    order = table["band"].astype(str).tolist()
    sns.barplot(data=long, x="band", y="share", hue="kind", order=order,
                palette=[DOWN_COLOUR, UP_COLOUR], ax=ax)
    for container, kind in zip(ax.containers, long["kind"].unique(), strict=False):
        counts = long.loc[long["kind"] == kind, "count"].astype(int).tolist()
        ax.bar_label(container, labels=[f"{c:,}" for c in counts], padding=2, fontsize=8)
    ax.set_xticks(range(len(order)),
                  [f"{band}\n({k:,} wines)" for band, k in zip(order, table["n"], strict=True)],
                  fontsize=9)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(f"Price per bottle ({ev.CURRENCY}); numbers on the bars count wines")
    ax.set_ylabel("Share of the wines in the band")
    ax.legend(title=None, fontsize=9, loc="upper left")
    ax.margins(y=0.2)
    return fig


def report_figures(predictions: pd.DataFrame, numbers: ReportNumbers, weights: pd.DataFrame,
                   mae: float) -> dict[str, tuple]:
    """Every figure of the report, in the order shown, as ``(function, *args)``.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The sample of test predictions.
    numbers : pipeline.evaluation.ReportNumbers
    weights : pandas.DataFrame
        :func:`pipeline.steps.evaluate.word_weights`.
    mae : float
        The model's average error over the whole test split.

    Returns
    -------
    dict
        Name (the template's) to figure function and arguments; one waterfall per
        explained wine.
    """
    return {
        "points": (points_distribution, predictions),
        "prices": (price_distribution, predictions),
        "points_by_price": (points_by_price, predictions),
        "countries": (top_countries, predictions),
        "tasters": (tasters_chart, predictions),
        "predicted_vs_actual": (predicted_vs_actual, predictions),
        "residuals": (residuals_histogram, predictions),
        "intervals": (interval_examples, predictions),
        "error_by_points": (mae_by_points_band, numbers.by_points),
        "error_by_price": (mae_by_price_band, numbers.by_price),
        "error_by_country": (error_by_group_chart, numbers.by_country.rows,
                             "Average error by country", mae),
        "error_by_critic": (error_by_group_chart, numbers.by_critic.rows,
                            "Average error by critic", mae),
        "importance": (importance_chart, numbers.importance),
        **{f"wine_{i}": (contribution_waterfall, wine) for i, wine in enumerate(numbers.wines)},
        "words": (word_weights_chart, weights),
        "cost": (cost_by_price_chart, numbers.cost_bands),
    }
