"""The evaluation report, rendered for real with Pweave from the real sample."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
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

from pipeline.report import plots  # noqa: E402
from pipeline.report.render import (  # noqa: E402
    ReportError,
    accuracy_sentence,
    band_sentence,
    baseline_sentence,
    data_overview_html,
    external_references,
    in_ten,
    make_self_contained,
    metrics_table_html,
    model_info_html,
    render_report,
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

    actual = predictions["points"].to_numpy()
    metrics = {
        "model": {"name": "ridge", **_metrics(actual, predictions["predicted_points"].to_numpy())},
        "baselines": {
            "mean": _metrics(actual, predictions["baseline_mean"].to_numpy()),
            "price_only": _metrics(actual, predictions["baseline_price"].to_numpy()),
        },
        "rows": {"train": len(train), "valid": len(valid), "test": len(test),
                 "rejected": rejected},
        "model_info": {
            "trained_at": dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC).isoformat(),
            "versions": {"scikit-learn": sklearn.__version__, "pandas": pd.__version__},
            "valid_metrics": _metrics(valid["points"].to_numpy(),
                                      model.predict(features(valid))),
            "params": {"alpha": 3.0, "ngram_range": [1, 2]},
            "data_fingerprint": hashlib.sha256(SAMPLE.read_bytes()).hexdigest(),
        },
    }
    write_context(dest, predictions, metrics, weights)
    return metrics


def write_context(dest: Path, predictions: pd.DataFrame, metrics: dict,
                  weights: pd.DataFrame | None) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(dest / "predictions.parquet", index=False)
    (dest / "metrics.json").write_text(json.dumps(metrics, indent=1))
    if weights is not None:
        weights.to_csv(dest / "word_weights.csv", index=False)


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


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[Path, dict, float]:
    root = tmp_path_factory.mktemp("report")
    metrics = build_context(root / "context")
    out = root / "out" / "report.html"
    started = time.perf_counter()
    render_report(root / "context", out)
    return out, metrics, time.perf_counter() - started


def test_report_is_one_self_contained_file(full_report):
    out, _, seconds = full_report
    assert out.is_file()
    # Nothing but the report in the output directory: scratch work happens elsewhere.
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]
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


def test_report_hides_code_warnings_and_errors(full_report):
    out, _, _ = full_report
    document = out.read_text(encoding="utf-8")
    for leak in ("import ", "show_figure(", "Traceback", "Warning", "<pre"):
        assert leak not in document, leak


def test_report_ran_in_this_interpreter(full_report):
    out, _, _ = full_report
    document = out.read_text(encoding="utf-8")
    assert f"<!-- kernel interpreter: {sys.executable} -->" in document


def test_small_data_with_missing_values(tmp_path):
    full = tmp_path / "full"
    metrics = build_context(full)
    small = pd.read_parquet(full / "predictions.parquet").head(30).copy()
    small.loc[small.index[::3], "price"] = np.nan
    small.loc[small.index[::2], "taster_name"] = None
    small.loc[small.index[:4], "country"] = None
    metrics["rows"] = {"train": 20, "valid": 5, "test": 30, "rejected": 1}
    metrics["model"]["r2"] = None  # a metric that could not be computed
    metrics["model_info"] = {}
    weights = pd.DataFrame({"term": ["fresh", "bland"], "weight": [0.5, -0.4]})
    write_context(tmp_path / "small", small, metrics, weights)

    out = tmp_path / "small.html"
    render_report(tmp_path / "small", out)
    document = out.read_text(encoding="utf-8")
    assert len(assert_self_contained(document)) >= 6
    assert "n/a" in document
    assert "Traceback" not in document


def test_only_the_required_columns_and_no_word_weights(tmp_path):
    predictions = pd.DataFrame({"points": [85.0, 88, 90, 92, 87],
                                "predicted_points": [86.0, 87.5, 89, 90, 88]})
    metrics = {"model": {"name": "tiny", "mae": 0.9}}
    write_context(tmp_path / "ctx", predictions, metrics, weights=None)
    out = tmp_path / "tiny.html"
    render_report(tmp_path / "ctx", out)
    document = out.read_text(encoding="utf-8")
    assert "n/a" in document  # the baselines' metrics are unknown
    assert len(assert_self_contained(document)) >= 6
    assert "0.90" in document


def test_missing_column_is_a_clear_error(tmp_path):
    write_context(tmp_path, pd.DataFrame({"points": [85.0]}), {"model": {}}, None)
    with pytest.raises(SchemaError, match="predicted_points"):
        render_report(tmp_path, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_missing_context_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="predictions.parquet"):
        render_report(tmp_path, tmp_path / "r.html")


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
    by_price = plots.mae_by_band(df, "price", plots.PRICE_BAND_EDGES, missing_label="no price")
    sentence = band_sentence(by_price, "wines priced", {"no price": "wines without a price"})
    assert sentence == ("The model is most accurate for wines without a price (off by 1.0 points"
                        " on average) and least accurate for wines priced 25-40 (3.0 points).")
    assert band_sentence(by_price.head(1), "wines priced") == ""


def test_renders_from_a_subprocess_elsewhere(tmp_path, full_report):
    out, _, _ = full_report
    context = out.parent.parent / "context"
    target = tmp_path / "sub.html"
    code = ("import sys; from pathlib import Path; from pipeline.report import render_report; "
            "render_report(Path(sys.argv[1]), Path(sys.argv[2]))")
    done = subprocess.run([sys.executable, "-c", code, str(context), str(target)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(assert_self_contained(target.read_text(encoding="utf-8"))) >= 6


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


def test_plot_helpers_tolerate_empty_data():
    empty = pd.DataFrame(columns=["points", "predicted_points", "price", "country"])
    figures = [plots.points_distribution(empty), plots.price_distribution(empty),
               plots.top_countries(empty), plots.predicted_vs_actual(empty),
               plots.residuals_histogram(empty), plots.mae_by_points_band(empty),
               plots.mae_by_price_band(empty), plots.word_weights_chart(empty)]
    for fig in figures:
        assert fig.axes[0].get_title()


def test_mae_by_band_counts_every_wine():
    df = pd.DataFrame({"points": [82.0, 86, 86, 95], "predicted_points": [84.0, 86, 87, 91],
                       "price": [10.0, np.nan, 30, 200]})
    table = plots.mae_by_band(df, "price", plots.PRICE_BAND_EDGES, missing_label="no price")
    model = table[table["predictor"] == "Model"]
    assert model["n"].sum() == 4
    assert model.set_index("band")["mae"].to_dict()["no price"] == 0.0
    by_points = plots.mae_by_band(df, "points", plots.POINTS_BAND_EDGES, integer=True)
    assert set(by_points["band"].astype(str)) == {"80-84", "85-87", "94-100"}
