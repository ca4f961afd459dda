"""The evaluation report, rendered for real with Pweave from the real sample."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pweave  # noqa: F401  (a missing report extra must fail, not skip)
import pytest
import sklearn
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from pipeline.report import advice, analysis, plots, text  # noqa: E402
from pipeline.report.context import load_context, read_optional_table  # noqa: E402
from pipeline.report.render import (  # noqa: E402
    ReportError,
    external_references,
    make_self_contained,
    render_report,
)
from pipeline.report.text import (  # noqa: E402
    accuracy_sentence,
    band_sentence,
    baseline_sentence,
    data_overview_html,
    in_ten,
    metrics_table_html,
    model_info_html,
)
from pipeline.schema import SchemaError  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "shared/data/wine_reviews_sample.csv"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------
# A context directory as the evaluate step writes it, from an honest quick model
# ---------------------------------------------------------------------------


def _metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    error = np.abs(predicted - actual)
    return {
        "mae": float(mean_absolute_error(actual, predicted)),
        "rmse": float(np.sqrt(mean_squared_error(actual, predicted))),
        "r2": float(r2_score(actual, predicted)),
        "within_2": float(np.mean(error <= 2)),
        "within_3": float(np.mean(error <= 3)),
    }


def build_context(dest: Path) -> dict:
    """Ridge on description words + log price; train/valid/test split by a content hash."""
    if not SAMPLE.exists():
        pytest.fail(f"sample data not found: {SAMPLE}")
    df = pd.read_csv(SAMPLE).rename(columns={"Unnamed: 0": "id"})
    usable = df["description"].notna() & df["points"].notna()
    rejected = int((~usable).sum())
    df = df[usable].reset_index(drop=True)
    bucket = df["description"].map(lambda s: int(hashlib.sha1(s.encode()).hexdigest()[:8], 16))
    bucket = bucket % 100
    train, valid, test = df[bucket < 70], df[(bucket >= 70) & (bucket < 85)], df[bucket >= 85]

    vec = CountVectorizer(ngram_range=(1, 2), min_df=3, stop_words="english", binary=True)
    x_train_text = vec.fit_transform(train["description"])
    median_log_price = float(np.log(train["price"]).median())

    def features(frame: pd.DataFrame):
        from scipy import sparse

        log_price = np.log(frame["price"]).fillna(median_log_price).to_numpy()[:, None]
        missing = frame["price"].isna().to_numpy(dtype=float)[:, None]
        text = x_train_text if frame is train else vec.transform(frame["description"])
        return sparse.hstack([text, log_price, missing]).tocsr()

    model = Ridge(alpha=3.0).fit(features(train), train["points"])
    mean_points = float(train["points"].mean())
    priced = train["price"].notna()
    price_model = LinearRegression().fit(np.log(train.loc[priced, ["price"]]),
                                         train.loc[priced, "points"])

    def baseline_price(frame: pd.DataFrame) -> np.ndarray:
        out = np.full(len(frame), mean_points)
        has = frame["price"].notna().to_numpy()
        if has.any():
            out[has] = price_model.predict(np.log(frame.loc[has, ["price"]]))
        return out

    predictions = pd.DataFrame({
        "id": test["id"].astype(int),
        "points": test["points"].astype(float),
        "predicted_points": model.predict(features(test)),
        "baseline_mean": mean_points,
        "baseline_price": baseline_price(test),
        "price": test["price"].astype(float),
        **{c: test[c].astype(object) for c in ("country", "province", "variety", "winery",
                                               "taster_name", "title", "description")},
    }).reset_index(drop=True)

    n_text = len(vec.vocabulary_)
    coef = pd.Series(model.coef_[:n_text], index=vec.get_feature_names_out())
    words = pd.concat([coef.nlargest(20), coef.nsmallest(20)])
    weights = pd.DataFrame({"term": words.index, "weight": words.to_numpy()})

    # An 80% interval from the validation residuals (split conformal), as the pipeline does.
    valid_pred = model.predict(features(valid))
    low, high = np.quantile(valid["points"].to_numpy() - valid_pred, [0.1, 0.9])
    predictions["lower"] = predictions["predicted_points"] + low
    predictions["upper"] = predictions["predicted_points"] + high
    inside = predictions["points"].between(predictions["lower"], predictions["upper"])

    # Contributions of each feature group, centred on the training mean, plus the baseline.
    groups = {"description": slice(0, n_text), "log_price": slice(n_text, n_text + 1),
              "price_missing": slice(n_text + 1, n_text + 2)}
    x_train, x_test = features(train), features(test)
    centre = np.asarray(x_train.mean(axis=0)).ravel()
    contrib = pd.DataFrame({
        name: np.asarray(x_test[:, cols] @ model.coef_[cols]).ravel()
        - float(centre[cols] @ model.coef_[cols])
        for name, cols in groups.items()
    })
    contrib["baseline"] = float(model.intercept_ + centre @ model.coef_)
    importance = (contrib.drop(columns="baseline").abs().mean()
                  .rename("mean_abs_contribution").rename_axis("feature")
                  .sort_values(ascending=False).reset_index())
    first = predictions.head(200)
    picked = [int(first["predicted_points"].idxmax()), int(first["predicted_points"].idxmin())]
    explained = (contrib.loc[picked]
                 .assign(id=predictions.loc[picked, "id"], title=predictions.loc[picked, "title"],
                         points=predictions.loc[picked, "points"],
                         predicted_points=predictions.loc[picked, "predicted_points"])
                 .melt(id_vars=["id", "title", "points", "predicted_points"], var_name="feature",
                       value_name="contribution"))

    actual = predictions["points"].to_numpy()
    metrics = {
        "model": {"name": "ridge", **_metrics(actual, predictions["predicted_points"].to_numpy()),
                  "interval_coverage": float(inside.mean())},
        "baselines": {
            "mean": _metrics(actual, predictions["baseline_mean"].to_numpy()),
            "price_only": _metrics(actual, predictions["baseline_price"].to_numpy()),
        },
        "rows": {"train": len(train), "valid": len(valid), "test": len(test),
                 "rejected": rejected},
        "model_info": {
            "trained_at": dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC).isoformat(),
            "versions": {"scikit-learn": sklearn.__version__, "pandas": pd.__version__},
            "valid_metrics": _metrics(valid["points"].to_numpy(), valid_pred),
            "params": {"alpha": 3.0, "ngram_range": [1, 2]},
            "candidates_valid_mae": {"ridge": float(np.mean(np.abs(
                valid["points"].to_numpy() - valid_pred)))},
            "interval": {"coverage": 0.8, "residual_quantiles": [float(low), float(high)]},
            "data_fingerprint": hashlib.sha256(SAMPLE.read_bytes()).hexdigest(),
        },
    }
    write_context(dest, predictions, metrics, weights, importance, explained)
    return metrics


def write_context(dest: Path, predictions: pd.DataFrame, metrics: dict,
                  weights: pd.DataFrame | None, importance: pd.DataFrame | None = None,
                  explained: pd.DataFrame | None = None) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(dest / "predictions.parquet", index=False)
    (dest / "metrics.json").write_text(json.dumps(metrics, indent=1))
    for name, table in (("word_weights", weights), ("importance", importance),
                        ("explained", explained)):
        if table is not None:
            table.to_csv(dest / f"{name}.csv", index=False)


# ---------------------------------------------------------------------------
# Checking the HTML
# ---------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(document: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(document)
    return parser.tags


def assert_self_contained(document: str) -> list[bytes]:
    """Check the document needs nothing outside itself; return the decoded images."""
    tags = _tags(document)
    for tag, attrs in tags:
        if tag in ("script", "link", "img", "iframe", "source", "a"):
            for attr in ("src", "href"):
                value = (attrs.get(attr) or "").strip().lower()
                assert "http://" not in value and "https://" not in value, (tag, value[:80])
                assert not value.startswith("//"), (tag, value[:80])
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", document, re.I)
    assert "@import" not in document
    assert "mathjax" not in document.lower()
    images = []
    for tag, attrs in tags:
        if tag != "img":
            continue
        src = attrs.get("src") or ""
        assert src.startswith("data:image/png;base64,"), src[:60]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_MAGIC)
        images.append(data)
    return images


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


RENDER_IN_SUBPROCESS = (
    "import sys; from pathlib import Path; from pipeline.report import render_report; "
    "render_report(Path(sys.argv[1]), Path(sys.argv[2]))"
)


def shared_full_report(tmp_path_factory) -> tuple[Path, dict, float]:
    """The full report of the sample, rendered once per pytest session.

    Rendered the way the evaluate step runs: from a separate process whose
    working directory is elsewhere.  tests/test_report_browser.py uses it too.
    """
    root = tmp_path_factory.getbasetemp() / "report-shared"
    out, saved = root / "out" / "report.html", root / "metrics-and-time.json"
    if out.is_file() and saved.is_file():
        done = json.loads(saved.read_text())
        return out, done["metrics"], done["seconds"]
    metrics = build_context(root / "context")
    elsewhere = root / "cwd"
    elsewhere.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RENDER_IN_SUBPROCESS, str(root / "context"),
                           str(out)], cwd=elsewhere, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    saved.write_text(json.dumps({"metrics": metrics, "seconds": seconds}))
    return out, metrics, seconds


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[Path, dict, float]:
    return shared_full_report(tmp_path_factory)


def test_report_is_one_self_contained_file(full_report):
    out, _, seconds = full_report
    assert out.is_file()
    # Nothing but the report in the output directory: scratch work happens elsewhere.
    assert sorted(p.name for p in out.parent.iterdir()) == [".report.html.wine-pipeline",
                                                           "report.html"]
    document = out.read_text(encoding="utf-8")
    images = assert_self_contained(document)
    assert len(images) >= 6
    assert len(set(images)) == len(images)  # every figure is a different one
    assert seconds < 120


def test_report_shows_the_metrics_and_sections(full_report):
    out, metrics, _ = full_report
    document = out.read_text(encoding="utf-8")
    model, base = metrics["model"], metrics["baselines"]
    for value in (model["mae"], model["rmse"], model["r2"], base["mean"]["mae"],
                  base["price_only"]["rmse"]):
        assert f"{value:.2f}" in document
    assert f"{100 * model['within_2']:.0f}%" in document
    assert f"{metrics['rows']['train']:,}" in document
    assert in_ten(model["within_2"]) in document  # the plain-words sentence
    for heading in ("The data", "How accurate is it?", "Which words matter", "About the model"):
        assert heading in document
    assert metrics["model_info"]["data_fingerprint"] in document
    assert sklearn.__version__ in document


def test_report_answers_the_buyers_questions(full_report):
    out, metrics, _ = full_report
    document = out.read_text(encoding="utf-8")
    context = load_context(out.parent.parent / "context")
    pred, model = context.predictions, metrics["model"]
    for heading in ("In short", "How sure is each prediction?", "Where it errs",
                    "The largest misses", "What drives a prediction", "Two wines explained",
                    "What the errors would cost", "Should it go to production?"):
        assert f">{heading}</h" in document, heading
    # How good, in plain words, and the interval.
    assert f"For {in_ten(model['within_2'])}" in document
    assert (f"the true score fell inside the stated range for"
            f" {100 * model['interval_coverage']:.0f}% of wines") in document
    # Where it errs: the largest miss with its name and the start of its note.
    error = (pred["predicted_points"] - pred["points"]).abs()
    worst = pred.loc[error.idxmax()]
    assert html.escape(worst["title"]) in document
    assert html.escape(" ".join(worst["description"].split())[:40]) in document
    # What drives it: both explained wines, by name.
    for title in context.explained["title"].unique():
        assert html.escape(str(title)) in document
    # What it would cost: the count of wines over-rated by 3 points or more.
    over = int(((pred["predicted_points"] - pred["points"]) >= 3).sum())
    assert f"{over} ({text.percent(over / len(pred))}" in document
    assert "under $15" in document and "$100+" in document  # the price bands, with currency
    # The recommendation quotes the measured numbers it depends on.
    price = metrics["baselines"]["price_only"]["mae"]
    assert f"against {price:.2f} for guessing from the price alone" in document
    assert "Monitor drift" in document and "Retrain on a schedule" in document
    assert "more reviews" in document
    # Every figure is titled for a reader: 17 figures, each different.
    assert len(assert_self_contained(document)) == 17


def test_report_hides_code_warnings_and_errors(full_report):
    out, _, _ = full_report
    document = out.read_text(encoding="utf-8")
    leaks = ("import pandas", "from pipeline", "show_figure(", "Traceback", "Warning:", "<pre")
    for leak in leaks:
        assert leak not in document, leak


def test_report_ran_in_this_interpreter(full_report):
    out, _, _ = full_report
    document = out.read_text(encoding="utf-8")
    assert f"<!-- kernel interpreter: {sys.executable} -->" in document


def test_small_data_with_missing_values(tmp_path, full_report):
    out_full, metrics, _ = full_report
    full = out_full.parent.parent / "context"
    small = pd.read_parquet(full / "predictions.parquet").head(30).copy()
    small.loc[small.index[::3], "price"] = np.nan
    small.loc[small.index[::2], "taster_name"] = None
    small.loc[small.index[:4], "country"] = None
    small.loc[small.index[::5], ["lower", "upper"]] = np.nan
    small.loc[small.index[::4], "description"] = None
    metrics = json.loads(json.dumps(metrics))
    metrics["rows"] = {"train": 20, "valid": 5, "test": 30, "rejected": 1}
    metrics["model"]["r2"] = None  # a metric that could not be computed
    metrics["model_info"] = {}
    weights = pd.DataFrame({"term": ["fresh", "bland"], "weight": [0.5, -0.4]})
    explained = pd.read_csv(full / "explained.csv").head(4)  # one wine, partly explained
    write_context(tmp_path / "small", small, metrics, weights,
                  pd.read_csv(full / "importance.csv"), explained)

    out = tmp_path / "small.html"
    render_report(tmp_path / "small", out)
    document = out.read_text(encoding="utf-8")
    assert len(assert_self_contained(document)) >= 15
    assert "n/a" in document
    assert "Traceback" not in document
    assert html.escape(str(explained["title"].iloc[0])) in document


@pytest.mark.slow  # Pweave renders in a Jupyter kernel
def test_only_the_required_columns_and_no_optional_tables(tmp_path):
    predictions = pd.DataFrame({"points": [85.0, 88, 90, 92, 87],
                                "predicted_points": [86.0, 87.5, 89, 90, 88]})
    metrics = {"model": {"name": "tiny", "mae": 0.9}}
    write_context(tmp_path / "ctx", predictions, metrics, weights=None)
    (tmp_path / "ctx" / "importance.csv").write_bytes(b"")  # evaluate may write an empty file
    (tmp_path / "ctx" / "explained.csv").write_text("id,title,points,predicted_points,feature,"
                                                    "contribution\n")  # or a header only
    out = tmp_path / "tiny.html"
    render_report(tmp_path / "ctx", out)
    document = out.read_text(encoding="utf-8")
    assert "n/a" in document  # the baselines' metrics are unknown
    assert len(assert_self_contained(document)) >= 6
    assert "0.90" in document
    assert "No explanation of single wines is available" in document
    assert "The model gave no prediction range" in document
    assert "No recommendation can be made" in document


def test_missing_column_is_a_clear_error(tmp_path):
    write_context(tmp_path, pd.DataFrame({"points": [85.0]}), {"model": {}}, None)
    with pytest.raises(SchemaError, match="predicted_points"):
        render_report(tmp_path, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_missing_context_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="predictions.parquet"):
        render_report(tmp_path, tmp_path / "r.html")


@pytest.mark.slow  # Pweave renders in a Jupyter kernel
def test_failing_template_chunk_raises_and_writes_nothing(tmp_path):
    # Passes the cheap checks, but the word weights cannot be read inside the template.
    predictions = pd.DataFrame({"points": [85.0, 90.0], "predicted_points": [86.0, 89.0]})
    write_context(tmp_path / "ctx", predictions, {"model": {"name": "x"}}, None)
    (tmp_path / "ctx" / "word_weights.csv").write_bytes(b"term,weight\n\xff\xfe\x00,1\n")
    with pytest.raises(ReportError, match=r"(?s)chunk 1 .*UnicodeDecodeError") as failed:
        render_report(tmp_path / "ctx", tmp_path / "out" / "r.html")
    assert "chunk 2" not in str(failed.value)  # stopped at the first failure
    assert not (tmp_path / "out" / "r.html").exists()


def test_odd_metrics_sections_are_tolerated():
    odd = {"model": {"name": "m", "mae": float("nan")}, "baselines": "missing", "rows": None,
           "model_info": "trained yesterday"}
    assert "n/a" in metrics_table_html(odd)
    assert "n/a" in data_overview_html(odd)
    assert "trained yesterday" in model_info_html(odd["model_info"])
    assert baseline_sentence(odd) == ""


def test_band_sentence_names_best_and_worst():
    df = pd.DataFrame({"points": [85.0] * 6 + [92.0] * 6,
                       "predicted_points": [86.0] * 6 + [89.0] * 6,
                       "price": [np.nan] * 6 + [30.0] * 6})
    by_price = analysis.mae_by_band(df, "price", analysis.PRICE_BAND_EDGES,
                                    missing_label="no price")
    sentence = band_sentence(by_price, "wines priced", {"no price": "wines without a price"})
    assert sentence == ("The model is most accurate for wines without a price (off by 1.0 points"
                        " on average) and least accurate for wines priced 25-40 (3.0 points).")
    assert band_sentence(by_price.head(1), "wines priced") == ""


def test_renders_from_a_subprocess_elsewhere(full_report):
    # The shared report is rendered by `python -c ...` from a directory of its own.
    out, _, _ = full_report
    assert len(assert_self_contained(out.read_text(encoding="utf-8"))) >= 6
    assert not any((out.parent.parent / "cwd").iterdir())  # nothing left in its cwd


def test_pweave_default_header_would_not_be_self_contained():
    from pweave.formatters.templates import htmltemplate

    default = htmltemplate["header"] % {"pygments_css": "", "theme_css": ""}
    assert external_references(default)  # MathJax from a CDN
    cleaned = make_self_contained(default + '<link rel="stylesheet" href="https://x.y/a.css">'
                                  '<style>@import url("https://f.g/c.css");</style>')
    assert external_references(cleaned) == []
    assert "mathjax.js" not in cleaned.lower()


def test_plain_words():
    assert in_ten(0.81) == "8 wines in 10"
    assert in_ten(0.97) == "nearly every wine"
    assert in_ten(0.02) == "fewer than 1 wine in 10"
    assert in_ten(None) is None
    sentence = accuracy_sentence({"model": {"within_2": 0.8, "within_3": 0.9, "mae": 1.4}})
    assert sentence.startswith("For 8 wines in 10 (80%) the predicted score is within 2 points")
    assert accuracy_sentence({}) == "No accuracy figures are available."


def test_figures_of_no_data_say_so_and_draw_nothing():
    empty = pd.DataFrame(columns=["points", "predicted_points", "price", "country", "lower",
                                  "upper", "taster_name"])
    no_importance = analysis.importance_table(pd.DataFrame(), "lightgbm")
    figures = [plots.points_distribution(empty), plots.price_distribution(empty),
               plots.top_countries(empty), plots.predicted_vs_actual(empty),
               plots.residuals_histogram(empty), plots.mae_by_points_band(empty),
               plots.mae_by_price_band(empty), plots.word_weights_chart(empty),
               plots.tasters_chart(empty), plots.points_by_price(empty),
               plots.interval_examples(empty),
               plots.error_by_group_chart(analysis.error_by_group(empty, "country"), "x"),
               plots.importance_chart(no_importance),
               plots.contribution_waterfall({"title": "x", "steps": pd.DataFrame()}),
               plots.cost_by_price_chart(analysis.cost_by_price_band(empty))]
    for fig in figures:
        (ax,) = fig.axes
        assert ax.get_title()
        # One line of text says what is missing, where the data would be; nothing is drawn.
        (message,) = [t.get_text() for t in ax.texts]
        assert re.match(r"(No|The model gave no|Too few) ", message), message
        assert not ax.axison
        assert not ax.patches and not ax.lines and not ax.collections, message


def _marks(ax) -> list:
    """The bars of a bar chart or histogram, in drawing order."""
    return [bar for container in ax.containers for bar in container]


def test_figures_draw_one_mark_per_wine_band_or_word():
    toy = _toy().assign(taster_name=["Ann", "Ann", None, "Bo", "Ann", "Bo", "Ann"],
                        baseline_mean=88.0)
    # A bar per score, as high as the wines with that score (84 to 95: zero-height between).
    ax = plots.points_distribution(pd.concat([toy, toy.head(2)])).axes[0]
    heights = {round(b.get_x() + b.get_width() / 2): b.get_height() for b in _marks(ax)}
    assert {x: h for x, h in heights.items() if h} == {85: 2, 90: 2, 92: 1, 88: 1, 84: 1,
                                                       95: 1, 86: 1}
    assert sum(b.get_height() for b in _marks(plots.residuals_histogram(toy).axes[0])) == 7
    # Countries and critics: a bar each, as long as their number of wines.
    ax = plots.top_countries(toy).axes[0]
    assert dict(zip([t.get_text() for t in ax.get_yticklabels()],
                    [b.get_width() for b in _marks(ax)], strict=True)) == {
        "France": 3, "unknown": 2, "Italy": 2}
    ax = plots.tasters_chart(toy, n=2).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Ann", "Bo"]
    assert [b.get_width() for b in _marks(ax)] == [4, 2]
    # A dot per wine, or per sampled wine, at its predicted score.
    (dots,) = plots.predicted_vs_actual(toy).axes[0].collections[1:]
    assert sorted(dots.get_offsets()[:, 1]) == sorted(toy["predicted_points"])
    fig = plots.predicted_vs_actual(toy, max_points=3)
    assert len(fig.axes[0].collections[1].get_offsets()) == 3
    assert "random 3 of 7 wines" in fig.axes[0].get_title()
    # The model's bar per score band is its error there; every predictor has its bars.
    table = analysis.mae_by_band(toy, "points", analysis.POINTS_BAND_EDGES, integer=True)
    ax = plots.mae_by_points_band(toy).axes[0]
    assert len(ax.containers) == 3  # the model and both baselines
    model = table[table["predictor"] == "Model"].sort_values("band")
    assert [b.get_height() for b in ax.containers[0]] == pytest.approx(model["mae"].tolist())
    # Words: the n strongest each way, as long as their weights.
    weights = pd.DataFrame({"term": ["rich", "fresh", "dull", "thin", "flat", "none"],
                            "weight": [0.9, 0.2, -0.5, -0.8, -0.1, 0.0]})
    ax = plots.word_weights_chart(weights, n=2).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["rich", "fresh", "dull", "thin"]
    assert [b.get_width() for b in ax.patches] == [0.9, 0.2, -0.5, -0.8]
    # Ranges: a bar per wine shown; a cross for each score outside its range.
    ax = plots.interval_examples(toy, n=5).axes[0]
    ranges, predictions, inside, outside = ax.collections
    assert len(ranges.get_segments()) == len(predictions.get_offsets()) == 5
    assert len(inside.get_offsets()) + len(outside.get_offsets()) == 5
    assert f"{len(inside.get_offsets())} of 5 hold the critic's score" in ax.get_title()
    # A waterfall: a floating bar per contribution, each starting where the last ended.
    wine = {"title": "Big", "points": 95.0, "start": 88.0, "end": 93.0,
            "steps": pd.DataFrame({"label": ["note", "price", "other"],
                                   "contribution": [4.0, 2.0, -1.0]})}
    bars = plots.contribution_waterfall(wine).axes[0].patches
    assert [(b.get_x(), b.get_width()) for b in bars] == [(88.0, 4.0), (92.0, 2.0),
                                                         (94.0, -1.0)]
    # Importances and costs: a bar per feature shown, two per price band.
    importance = analysis.importance_table(pd.DataFrame({
        "feature": ["description", "log_price", "country", "vintage"],
        "mean_abs_contribution": [2.0, 0.8, 0.3, 0.1]}), "sgd")
    assert len(plots.importance_chart(importance, n=3).axes[0].patches) == 3
    cost = analysis.cost_by_price_band(toy)
    ax = plots.cost_by_price_chart(cost).axes[0]
    assert [len(c) for c in ax.containers] == [len(cost), len(cost)]


def _toy() -> pd.DataFrame:
    return pd.DataFrame({
        "points": [85.0, 90, 92, 88, 84, 95, 86],
        "predicted_points": [88.5, 89, 88.5, 88, 87.0, 91, 86.5],
        "lower": [86.5, 87, 86.5, 86, 85, 89, 84.5],
        "upper": [90.5, 91, 90.5, 90, 89, 93, 88.5],
        "baseline_price": [88.0, 88, 88, 88, 88, 88, 88],
        "price": [12.0, 30, np.nan, 20, 14, 150, 22],
        "country": ["France", "France", None, "Italy", "Italy", "France", " "],
        "title": ["A", "B", "C", "D", "E", "F", "G"],
        "description": ["x " * 200, "y", None, "z", "w", "v", "u"],
    })


def test_cost_of_errors():
    toy = _toy()
    cost = analysis.cost_summary(toy)
    # Over-rated by 3+: A (+3.5) and E (+3.0); under-rated by 3+: C (-3.5) and F (-4.0).
    assert (cost["n"], cost["over"], cost["under"]) == (7, 2, 2)
    assert cost["over_price_min"] == 12 and cost["over_price_max"] == 14
    assert cost["over_spend_share"] == pytest.approx(26 / 248)
    assert cost["baseline_over"] == 2  # A (+3) and E (+4) with the price-only rule
    table = analysis.cost_by_price_band(toy).set_index("band")
    assert table.loc["under 15", ["n", "over", "under"]].tolist() == [2, 2, 0]
    assert table.loc["no price", ["n", "under"]].tolist() == [1, 1]
    assert table["n"].sum() == 7
    sentence = advice.cost_sentence(cost)
    assert sentence.startswith("Of the 7 test wines, 2 (29%, about 1 wine in 4) were over-rated")
    assert "$12 to $14 a bottle" in sentence
    assert "under $15" in advice.cost_table_html(analysis.cost_by_price_band(toy))
    buy = analysis.buy_list(toy, good=88.5)
    # Bought (predicted 88.5+): A, B, C, F; B, C, F really are; A (85) disappoints.
    assert (buy["bought"], buy["really_good"], buy["disappointing"]) == (4, 3, 1)


def test_interval_and_misses():
    toy = _toy()
    summary = analysis.interval_summary(toy)
    # Inside: B, D, G; below: A, E; above: C, F.
    assert summary["coverage"] == pytest.approx(3 / 7)
    assert summary["below"] == pytest.approx(2 / 7) and summary["above"] == pytest.approx(2 / 7)
    assert summary["width"] == 4.0
    reported = analysis.interval_summary(toy, {"model": {"interval_coverage": 0.81}})
    assert reported["coverage"] == 0.81
    assert "fell inside the stated range for 81% of wines" in text.interval_sentence(reported)
    assert "no prediction range" in text.interval_sentence(
        analysis.interval_summary(toy.drop(columns=["lower", "upper"])))
    misses = analysis.largest_misses(toy, n=3)
    assert misses["title"].tolist() == ["F", "A", "C"]
    table = text.misses_html(misses, limit=50)
    assert "x x x" in table and "\u2026" in table  # the long note, shortened
    assert "\u22124.0" in table and "+3.5" in table


def test_errors_by_group_and_bias():
    toy = _toy()
    table = analysis.error_by_group(toy, "country", min_wines=1)
    assert table["group"].tolist() == ["France", "Italy", "unknown"]  # most wines first
    assert table.set_index("group").loc["unknown", "n"] == 2  # None and a blank
    assert table.set_index("group").loc["France", "mae"] == pytest.approx((3.5 + 1 + 4) / 3)
    lean = pd.DataFrame({"points": [82.0] * 6 + [95.0] * 6,
                         "predicted_points": [85.0] * 6 + [92.0] * 6})
    assert "pulls scores toward the middle" in text.bias_sentence(
        analysis.bias_by_points_band(lean))


def test_explanations():
    explained = pd.DataFrame({
        "id": [1] * 5 + [2] * 5, "title": ["Big"] * 5 + [None] * 5,
        "points": [95.0] * 5 + [81.0] * 5, "predicted_points": [94.0] * 5 + [82.0] * 5,
        "feature": ["text_score", "log_price", "vintage", "country", "baseline"] * 2,
        "contribution": [4.0, 1.5, 0.01, -0.01, 88.5, -5.0, -1.0, 0.2, -0.7, 88.5],
    })
    wines = analysis.explained_wines(explained, "lightgbm")
    assert [w["title"] for w in wines] == ["Big", "wine 2"]
    big = wines[0]
    assert big["start"] == 88.5 and big["end"] == pytest.approx(94.0)
    assert big["steps"]["label"].tolist() == ["What the tasting note says", "Price",
                                              "All 2 other features"]
    assert big["start"] + big["steps"]["contribution"].sum() == pytest.approx(big["end"])
    assert "what the tasting note says added 4.0" in text.explained_sentence(big)
    names = analysis.importance_table(pd.DataFrame({
        "feature": ["description_chars", "baseline", "mystery_feature"],
        "mean_abs_contribution": [0.2, 88.0, 0.1]}), "sgd")
    assert names["label"].tolist() == ["Word fragments of the tasting note", "Mystery feature"]
    assert analysis.feature_label("description_chars", "lightgbm").startswith("Length")


def test_optional_tables(tmp_path):
    columns = {"feature": "str", "mean_abs_contribution": "float"}
    assert read_optional_table(tmp_path / "absent.csv", columns).empty
    (tmp_path / "empty.csv").write_bytes(b"")
    assert read_optional_table(tmp_path / "empty.csv", columns).empty
    (tmp_path / "header.csv").write_text("feature,mean_abs_contribution\n")
    assert list(read_optional_table(tmp_path / "header.csv", columns).columns) == list(columns)
    (tmp_path / "bad.csv").write_text("feature,size\nprice,1\n")
    with pytest.raises(SchemaError, match="mean_abs_contribution"):
        read_optional_table(tmp_path / "bad.csv", columns)
    write_context(tmp_path / "ctx", pd.DataFrame({"points": [85.0], "predicted_points": [86.0]}),
                  {"model": {}}, None, explained=pd.DataFrame({"id": [1], "value": [2]}))
    with pytest.raises(SchemaError, match="explained.csv lacks"):
        render_report(tmp_path / "ctx", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_recommendation_follows_the_numbers():
    def metrics(mae, price_mae, coverage):
        return {"model": {"mae": mae, "interval_coverage": coverage, "within_2": 0.8},
                "baselines": {"mean": {"mae": 2.5}, "price_only": {"mae": price_mae}},
                "rows": {"train": 4869},
                "model_info": {"interval": {"coverage": 0.8},
                               "candidates_valid_mae": {"sgd": 1.25, "lightgbm": 1.23}}}

    assert advice.verdict(metrics(1.27, 1.96, 0.81))[0] == "go"
    assert advice.verdict(metrics(1.27, 1.96, 0.70))[0] == "go-fix-range"
    assert advice.verdict(metrics(1.27, 1.96, None))[0] == "go-fix-range"
    assert advice.verdict(metrics(1.80, 1.96, 0.81))[0] == "pilot"
    assert advice.verdict(metrics(1.95, 1.96, 0.81))[0] == "no"
    assert advice.verdict({"model": {}})[0] == "unknown"
    page = advice.recommendation_html(metrics(1.27, 1.96, 0.81), {"over_share": 0.03},
                                      (0.69, 0.11))
    assert "verdict-go" in page and "35% smaller" in page
    assert "0.69 \u00b1 0.11 points smaller" in page
    assert "4,869 reviews" in page and "1.23" in page  # the data and the candidates
    assert "held for 81% of the test wines, as promised" in page
    assert "within what chance alone" in advice.recommendation_html(
        metrics(1.27, 1.96, 0.81), {}, (0.05, 0.11))


def test_small_formatters():
    assert text.percent(0.034) == "3.4%" and text.percent(0.81) == "81%"
    assert text.one_in(0.034) == "about 1 wine in 29"
    assert text.money(1200) == "$1,200" and text.money(None) == "n/a"
    assert text.signed(-0.04) == "0.0" and text.signed(1.26) == "+1.3"
    assert text.shorten("a b c " * 50, 20).endswith("\u2026")
    assert len(text.shorten("a b c " * 50, 20)) <= 20
    assert text.shorten(None) == "" and text.shorten(np.nan) == ""
    assert advice.price_band_label("15-25") == "$15\u201325"
    assert advice.price_band_label("no price") == "no price"


def test_mae_by_band_counts_every_wine():
    df = pd.DataFrame({"points": [82.0, 86, 86, 95], "predicted_points": [84.0, 86, 87, 91],
                       "price": [10.0, np.nan, 30, 200]})
    table = analysis.mae_by_band(df, "price", analysis.PRICE_BAND_EDGES, missing_label="no price")
    model = table[table["predictor"] == "Model"]
    assert model["n"].sum() == 4
    assert model.set_index("band")["mae"].to_dict()["no price"] == 0.0
    by_points = analysis.mae_by_band(df, "points", analysis.POINTS_BAND_EDGES, integer=True)
    assert set(by_points["band"].astype(str)) == {"80-84", "85-87", "94-100"}
