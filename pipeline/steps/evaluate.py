"""evaluate: score the test split on the workers, compare with naive baselines, render the report.

Metrics are computed from additive sums over all test rows; the figures use
a capped, evenly spread sample of the predictions, so the client never holds
the whole test split.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer

from pipeline.atomic import check_not_input, check_replaceable
from pipeline.baselines import baseline_predictions, price_line, price_sums
from pipeline.dataset import Dataset, read_part
from pipeline.distributed.cluster import (
    Client,
    broadcast,
    current_client,
    gather_tracked,
    map_files,
    submit_per_file,
)
from pipeline.evaluation import (
    Baselines,
    IntervalRecord,
    Metrics,
    ModelScores,
    OtherInterval,
    PriceLine,
    Rows,
    Scores,
)
from pipeline.explain import importance
from pipeline.intervals import (
    add_coverage_sums,
    coverage_sums,
    coverage_table,
    segment_labels,
)
from pipeline.metrics import add_sums, error_sums, metrics_from_sums
from pipeline.model import WineModel, clip_points
from pipeline.model_file import load_model
from pipeline.params import INTERVAL_COVERAGE, REPORT_SAMPLE_ROWS
from pipeline.progress import StepProgress
from pipeline.schema import ID_COLUMN, TARGET

log = logging.getLogger(__name__)

#: Columns of the report's predictions table.
REPORT_COLUMNS = (ID_COLUMN, TARGET, "predicted_points", "lower", "upper", "baseline_mean",
                  "baseline_price",
                  "price", "country", "province", "variety", "winery", "taster_name",
                  "title", "description")

#: Words shown as pushing a prediction up and down, each way.
TOP_TERMS = 20

#: Test rows the global importances are averaged over (read by the client).
EXPLAIN_ROWS = 2000

#: Descriptions the candidate terms of :func:`word_weights` are drawn from: the terms
#: frequent enough to be shown (in 0.3% of descriptions) are found well within this
#: many, and counting more only costs time.
TERM_SOURCE_ROWS = 5_000


def _price_sums_of_file(path: str) -> np.ndarray:
    return price_sums(read_part(path, [TARGET, "price"]))


def fit_price_baseline(client: Client, dataset: Dataset) -> tuple[float, float]:
    """The price-only baseline's line, fitted file by file over the training split.

    Parameters
    ----------
    client : distributed.Client
    dataset : Dataset

    Returns
    -------
    intercept, slope : float
    """
    sums = map_files(client, _price_sums_of_file, dataset.files("train"),
                     name="price-line-block")
    return price_line(np.sum(sums, axis=0) if sums else np.zeros(5))


@dataclasses.dataclass
class ScoredTestRows:
    """What one test file adds to the report: sums that add up, and a sample of rows.

    Attributes
    ----------
    model, mean, price_only : dict
        :func:`pipeline.metrics.error_sums` of the model (with ``inside``, the rows
        inside their interval) and of the two baselines.
    sample : pandas.DataFrame
        Every n-th row with its predictions, :data:`REPORT_COLUMNS`.
    ranges : dict
        :func:`pipeline.intervals.coverage_sums` of the interval given (``used``) and,
        when the model has one, of the other (``other``).
    """

    model: dict
    mean: dict
    price_only: dict
    sample: pd.DataFrame
    ranges: dict


def _score_test_file(path: str, model: WineModel, line: tuple[float, float],
                     step: int) -> ScoredTestRows:
    return score_test_rows(read_part(path), model, line, step)


def score_test_rows(df: pd.DataFrame, model: WineModel, line: tuple[float, float],
                    step: int) -> ScoredTestRows:
    """Score test rows with the model and the baselines.

    Parameters
    ----------
    df : pandas.DataFrame
        Cleaned test rows.
    model : WineModel
    line : tuple of float
        The price baseline (see :func:`pipeline.baselines.price_line`).
    step : int
        Keep every ``step``-th row in the sample.

    Returns
    -------
    ScoredTestRows
    """
    y = df[TARGET].to_numpy(dtype="float64")
    interval = model.predict_interval(df, other=True)
    pred = interval["predicted_points"].to_numpy()
    inside = float(((y >= interval["lower"]) & (y <= interval["upper"])).sum())
    segments = segment_labels(df["price"], df["taster_name"])
    ranges = {"used": coverage_sums(y, interval["lower"].to_numpy(),
                                    interval["upper"].to_numpy(), segments)}
    if model.other_interval_ is not None:
        ranges["other"] = coverage_sums(y, interval["other_lower"].to_numpy(),
                                        interval["other_upper"].to_numpy(), segments)
    baselines = baseline_predictions(df, model.target_mean_, line)
    mean_pred, price_pred = baselines["mean"], baselines["price_only"]
    sample = df.assign(predicted_points=pred, lower=interval["lower"], upper=interval["upper"],
                       baseline_mean=mean_pred, baseline_price=price_pred).iloc[::step]
    return ScoredTestRows(model={**error_sums(y, pred), "inside": inside},
                          mean=error_sums(y, mean_pred), price_only=error_sums(y, price_pred),
                          sample=sample[list(REPORT_COLUMNS)], ranges=ranges)


def word_weights(model: WineModel, descriptions: pd.Series, top: int = TOP_TERMS) -> pd.DataFrame:
    """The description words and bigrams with the largest positive and negative weights.

    Hashing keeps no vocabulary, so the terms are those found in ``descriptions``,
    mapped to their hashed columns.

    Parameters
    ----------
    model : WineModel
        A linear model, or a stacked model whose text score is one.
    descriptions : pandas.Series of str
        Texts to take candidate terms from (the first :data:`TERM_SOURCE_ROWS`).
    top : int
        Terms each way.

    Returns
    -------
    pandas.DataFrame
        Columns ``term`` and ``weight``, largest first; empty when the model is not linear.
    """
    linear = model.linear_model
    coef = getattr(linear.estimator_, "coef_", None)
    texts = descriptions.dropna().astype(str).iloc[:TERM_SOURCE_ROWS]
    if coef is None or len(texts) < 5:
        return pd.DataFrame({"term": [], "weight": []})
    # Frequent terms only: a rare word's weight says little about wines in general.
    min_df = max(3, int(0.003 * len(texts)))
    vocab = CountVectorizer(ngram_range=(1, 2), min_df=min_df).fit(texts).get_feature_names_out()
    if len(vocab) == 0:
        return pd.DataFrame({"term": [], "weight": []})
    weights = coef[linear.spec.text_term_index(list(vocab))]
    table = pd.DataFrame({"term": vocab, "weight": weights}).sort_values("weight")
    picked = pd.concat([table.tail(top), table.head(top)]).drop_duplicates("term")
    return picked.sort_values("weight", ascending=False).reset_index(drop=True)


def explanations(model: WineModel, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Global importances, and the contributions behind two wines' predictions.

    Parameters
    ----------
    model : WineModel
    rows : pandas.DataFrame
        Test rows (:data:`EXPLAIN_ROWS` of them are plenty).

    Returns
    -------
    importance : pandas.DataFrame
        ``feature``, ``mean_abs_contribution``.
    explained : pandas.DataFrame
        Long table of the highest- and lowest-predicted wines: ``id``, ``title``,
        ``points``, ``predicted_points``, ``feature``, ``contribution``.
    """
    if rows.empty:
        return pd.DataFrame(), pd.DataFrame()
    # Hashed once: the contributions add up to the unclipped prediction, and the
    # global importance is their mean size.
    contrib = model.contributions(rows)
    pred = clip_points(contrib.sum(axis=1).to_numpy())
    picked = [int(np.argmax(pred)), int(np.argmin(pred))]
    wines = pd.DataFrame({ID_COLUMN: rows[ID_COLUMN].iloc[picked].to_numpy(),
                          "title": rows["title"].iloc[picked].to_numpy(),
                          TARGET: rows[TARGET].iloc[picked].to_numpy(),
                          "predicted_points": pred[picked]})
    # Melted before the wine's own columns join it: a feature group may share a
    # column's name ("title"), and must not be overwritten by it.
    long = contrib.iloc[picked].reset_index(drop=True).melt(
        var_name="feature", value_name="contribution", ignore_index=False)
    explained = pd.concat([wines.loc[long.index].reset_index(drop=True),
                           long.reset_index(drop=True)], axis=1)
    return importance(contrib), explained


def evaluate(
    dataset_dir: str | Path, model_path: str | Path, out_report: str | Path
) -> dict:
    """Score the test split, compare with baselines and render the HTML report.

    Needs a connected Dask client (see :func:`pipeline.distributed.cluster.dask_client`).

    Parameters
    ----------
    dataset_dir : str or pathlib.Path
        Output of make-dataset.
    model_path : str or pathlib.Path
        Output of train.
    out_report : str or pathlib.Path
        HTML report, written atomically.

    Returns
    -------
    dict
        The test metrics (:class:`pipeline.evaluation.Metrics`), as the report's
        ``metrics.json`` holds them.
    """
    from pipeline.report.render import write_report

    dataset = Dataset(dataset_dir)
    check_not_input(out_report, dataset.path, model_path)
    check_replaceable(out_report, directory=False)
    model = load_model(model_path)
    counts = dataset.counts()
    step = dataset.step("test", REPORT_SAMPLE_ROWS)

    client = current_client()
    line = fit_price_baseline(client, dataset)
    # One task per file, so the report's sample is every step-th row of each file.
    scoring = submit_per_file(client, _score_test_file, dataset.files("test"),
                              broadcast(client, model), line, step, name="score-test-block")
    progress = StepProgress("evaluate", {"scoring": 0.7, "report": 0.3})
    # While the workers score, the client explains a few test rows.
    head = dataset.first_rows("test", max(EXPLAIN_ROWS, TERM_SOURCE_ROWS))
    weights = (word_weights(model, head["description"]) if not head.empty
               else pd.DataFrame({"term": [], "weight": []}))
    imp, explained = explanations(model, head.head(EXPLAIN_ROWS))
    results = gather_tracked(client, scoring, progress, "scoring", "test blocks")
    metrics = _test_metrics(results, model, counts, line, dataset.path)
    progress.update("report", 0, 1, "rendering the report", force=True)
    sample = pd.concat([r.sample for r in results], ignore_index=True)
    write_report(out_report, sample, metrics, weights, imp, explained)
    progress.update("report", 1, 1, "rendered")
    return dataclasses.asdict(metrics)


def interval_record(results: list, model: WineModel) -> IntervalRecord:
    """How the model's interval, and the one it was chosen over, held on the test split."""
    info = model.metadata.get("interval", {})
    other = None
    if model.other_interval_ is not None:
        other = OtherInterval(kind=model.other_interval_.kind, test=coverage_table(
            add_coverage_sums([r.ranges["other"] for r in results])))
    return IntervalRecord(
        kind=model.interval_kind, reason=info.get("reason"),
        target=info.get("coverage", INTERVAL_COVERAGE),
        test=coverage_table(add_coverage_sums([r.ranges["used"] for r in results])), other=other)


def _test_metrics(results: list, model: WineModel, counts: dict,
                  line: tuple[float, float], dataset: Path) -> Metrics:
    """The test metrics from the files' additive sums (see :class:`ScoredTestRows`)."""
    if not results or sum(r.model["n"] for r in results) == 0:
        raise ValueError(f"{dataset / 'test'}: the test split is empty; nothing to evaluate")
    n_test = sum(r.model["n"] for r in results)

    def scores(part: str) -> dict:
        return metrics_from_sums(add_sums([getattr(r, part) for r in results]))

    metrics = Metrics(
        model=ModelScores(name=model.kind, **scores("model"),
                          interval_coverage=sum(r.model["inside"] for r in results) / n_test),
        baselines=Baselines(mean=Scores(**scores("mean")),
                            price_only=Scores(**scores("price_only"))),
        rows=Rows(**{k: counts.get(k, 0) for k in ("input", "train", "valid", "test",
                                                   "rejected")}),
        price_baseline=PriceLine(intercept=line[0], slope_per_log_price=line[1]),
        interval=interval_record(results, model),
        candidates_valid_mae=model.metadata.get("candidates_valid_mae", {}),
        model_info=model.metadata)
    log.info("test metrics: %s", metrics.model)
    return metrics
