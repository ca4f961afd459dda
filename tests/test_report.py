"""The evaluation report: its words (Jinja) on a few wines, and the report of the real
sample rendered for real with Pweave."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import html
import json
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import markupsafe
import numpy as np
import pandas as pd
import pweave  # noqa: F401  (a missing report extra must fail, not skip)
import pytest
import sklearn
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from test_evaluation import metrics as toy_metrics
from test_evaluation import toy

from pipeline.evaluation import (
    Baselines,
    Estimate,
    IntervalRecord,
    Metrics,
    ModelScores,
    PriceLine,
    Rows,
    Scores,
    report_numbers,
)
from pipeline.intervals import segment_labels
from pipeline.report import filters
from pipeline.report.context import from_json, load_context, to_json
from pipeline.report.filters import environment
from pipeline.report.render import ReportError, prepare_context, render_report
from pipeline.schema import SchemaError

SAMPLE = Path(__file__).resolve().parents[2] / "shared/data/wine_reviews_sample.csv"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------
# A context directory as the evaluate step writes it, from an honest quick model
# ---------------------------------------------------------------------------


def _scores(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    error = np.abs(predicted - actual)
    return {
        "n": len(actual),
        "mae": float(mean_absolute_error(actual, predicted)),
        "rmse": float(np.sqrt(mean_squared_error(actual, predicted))),
        "r2": float(r2_score(actual, predicted)),
        "within_2": float(np.mean(error <= 2)),
        "within_3": float(np.mean(error <= 3)),
    }


def _coverage(frame: pd.DataFrame) -> dict:
    """A :func:`pipeline.intervals.coverage_table` of the predictions, as evaluate records it."""
    inside = frame["points"].between(frame["lower"], frame["upper"])
    width = frame["upper"] - frame["lower"]
    segments = segment_labels(frame["price"], frame["taster_name"])

    def cell(rows):
        return {"n": int(rows.sum()), "coverage": float(inside[rows].mean()),
                "mean_width": float(width[rows].mean())}

    table = {"all": cell(pd.Series(True, index=frame.index))}
    for kind, labels in segments.items():
        labels = pd.Series(labels, index=frame.index)
        table[kind] = {label: cell(labels == label) for label in sorted(labels.unique())
                       if (labels == label).sum() >= 30}
    return table


def build_context(dest: Path) -> dict:
    """Ridge on description words + log price; train/valid/test split by a content hash.

    Writes the report's context into ``dest`` as evaluate does, and the test wines'
    predictions beside it (``dest.parent / "predictions.parquet"``); returns the metrics.
    """
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
        **{c: test[c].astype("string") for c in ("country", "province", "variety", "winery",
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
    valid_mae = float(np.mean(np.abs(valid["points"].to_numpy() - valid_pred)))
    metrics = Metrics(
        model=ModelScores(name="ridge", **_scores(actual, predictions["predicted_points"]),
                          interval_coverage=float(inside.mean())),
        baselines=Baselines(mean=Scores(**_scores(actual, predictions["baseline_mean"])),
                            price_only=Scores(**_scores(actual, predictions["baseline_price"]))),
        rows=Rows(input=len(df) + rejected, train=len(train), valid=len(valid), test=len(test),
                  rejected=rejected),
        price_baseline=PriceLine(intercept=float(price_model.intercept_),
                                 slope_per_log_price=float(price_model.coef_[0])),
        interval=IntervalRecord(kind="constant", reason=None, target=0.8,
                                test=_coverage(predictions), other=None),
        candidates_valid_mae={"ridge": valid_mae},
        model_info={
            "trained_at": dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC).isoformat(),
            "versions": {"scikit-learn": sklearn.__version__, "pandas": pd.__version__},
            "valid_metrics": _scores(valid["points"].to_numpy(), valid_pred),
            "params": {"alpha": 3.0, "ngram_range": [1, 2]},
            "candidates_valid_mae": {"ridge": valid_mae},
            "interval": {"coverage": 0.8, "residual_quantiles": [float(low), float(high)]},
            "data_fingerprint": hashlib.sha256(SAMPLE.read_bytes()).hexdigest(),
        },
    )
    dest.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(dest.parent / "predictions.parquet")
    prepare_context(dest, predictions, metrics, weights, importance, explained)
    return dataclasses.asdict(metrics)


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


def escape(text: str) -> str:
    """As the report escapes a text."""
    return str(markupsafe.escape(text))


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


def shared_full_report(tmp_path_factory) -> tuple[Path, dict, float]:
    """The full report of the sample, rendered once per pytest session.

    tests/test_report_browser.py uses it too.
    """
    root = tmp_path_factory.getbasetemp() / "report-shared"
    out, saved = root / "out" / "report.html", root / "metrics-and-time.json"
    if out.is_file() and saved.is_file():
        done = json.loads(saved.read_text())
        return out, done["metrics"], done["seconds"]
    metrics = build_context(root / "context")
    started = time.perf_counter()
    render_report(root / "context", out)
    seconds = time.perf_counter() - started
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
    context = out.parent.parent / "context"
    figures = sorted((context / "figures").iterdir())
    assert images == [f.read_bytes() for f in _in_report_order(figures)]  # every one, once
    assert len(set(images)) == len(images) == 17
    # Rendering laid the context out and wrote nothing beside it.
    assert sorted(p.name for p in context.iterdir()) == ["figures", "metrics.json",
                                                         "report.json"]
    assert seconds < 30


def _in_report_order(figures: list[Path]) -> list[Path]:
    order = ["points", "prices", "points_by_price", "countries", "tasters",
             "predicted_vs_actual", "residuals", "intervals", "error_by_points",
             "error_by_price", "error_by_country", "error_by_critic", "importance", "wine_0",
             "wine_1", "words", "cost"]
    return sorted(figures, key=lambda f: order.index(f.stem))


def test_report_shows_the_metrics_and_sections(full_report):
    out, metrics, _ = full_report
    document = out.read_text(encoding="utf-8")
    model, base = metrics["model"], metrics["baselines"]
    for value in (model["mae"], model["rmse"], model["r2"], base["mean"]["mae"],
                  base["price_only"]["rmse"]):
        assert f"{value:.2f}" in document
    assert f"{100 * model['within_2']:.0f}%" in document
    assert f"{metrics['rows']['train']:,}" in document
    assert filters.in_ten(model["within_2"]) in document  # the plain-words sentence
    for heading in ("The data", "How accurate is it?", "Which words matter", "About the model"):
        assert heading in document
    assert metrics["model_info"]["data_fingerprint"] in document
    assert sklearn.__version__ in document


def test_report_answers_the_buyers_questions(full_report):
    out, metrics, _ = full_report
    document = out.read_text(encoding="utf-8")
    pred = pd.read_parquet(out.parent.parent / "predictions.parquet")
    numbers = load_context(out.parent.parent / "context").numbers
    model = metrics["model"]
    for heading in ("In short", "How sure is each prediction?", "Where it errs",
                    "The largest misses", "What drives a prediction", "Two wines explained",
                    "What the errors would cost", "Should it go to production?"):
        assert f">{heading}</h" in document, heading
    # How good, in plain words, and the interval.
    assert f"For {filters.in_ten(model['within_2'])}" in document
    assert (f"the true score fell inside the stated range for"
            f" {100 * model['interval_coverage']:.0f}% of wines") in document
    # Where it errs: the largest miss with its name and the start of its note.
    error = (pred["predicted_points"] - pred["points"]).abs()
    worst = pred.loc[error.idxmax()]
    assert escape(worst["title"]) in document
    assert escape(" ".join(worst["description"].split())[:40]) in document
    # What drives it: both explained wines, by name.
    assert len(numbers.wines) == 2
    for wine in numbers.wines:
        assert escape(wine.title) in document
    # What it would cost: the count of wines over-rated by 3 points or more.
    over = int(((pred["predicted_points"] - pred["points"]) >= 3).sum())
    assert f"{over} ({filters.percent(over / len(pred))}" in document
    assert "under $15" in document and "$100+" in document  # the price bands, with currency
    # The recommendation quotes the measured numbers it depends on.
    price = metrics["baselines"]["price_only"]["mae"]
    assert f"against {price:.2f} for guessing from the price alone" in document
    assert "Monitor drift" in document and "Retrain on a schedule" in document
    assert "more reviews" in document
    # How the range held, overall and per critic, beside the number of wines.
    cells = metrics["interval"]["test"]
    assert f"Critic: Roger Voss</td><td>{cells['critic']['Roger Voss']['n']}" in document


def test_report_hides_code_and_template_syntax(full_report):
    out, _, _ = full_report
    document = out.read_text(encoding="utf-8")
    for leak in ("show(", "page.", "figure(", "Traceback", "Warning:", "<pre", "{{", "{%"):
        assert leak not in document, leak
    # No value reached the reader unformatted.
    assert not re.search(r"\b(None|nan|NaN|inf)\b", _text(document))


def test_small_data_with_missing_values(tmp_path, full_report):
    out_full, metrics, _ = full_report
    small = pd.read_parquet(out_full.parent.parent / "predictions.parquet").head(30).copy()
    small.loc[small.index[::3], "price"] = np.nan
    small.loc[small.index[::2], "taster_name"] = None
    small.loc[small.index[:4], "country"] = None
    small.loc[small.index[::4], "description"] = None
    m = load_context(out_full.parent.parent / "context").metrics
    m = dataclasses.replace(m, rows=Rows(input=26, train=20, valid=5, test=30, rejected=1),
                            model=dataclasses.replace(m.model, r2=float("nan")),
                            model_info={})
    weights = pd.DataFrame({"term": ["fresh", "bland"], "weight": [0.5, -0.4]})
    explained = pd.DataFrame({"id": [7] * 3, "title": ["A wine"] * 3, "points": [88.0] * 3,
                              "predicted_points": [87.0] * 3,
                              "feature": ["baseline", "log_price", "description"],
                              "contribution": [88.4, -0.9, -0.5]})
    importance = pd.DataFrame({"feature": ["description", "log_price"],
                               "mean_abs_contribution": [1.5, 0.6]})
    (tmp_path / "small").mkdir()
    prepare_context(tmp_path / "small", small, m, weights, importance, explained)

    out = tmp_path / "small.html"
    render_report(tmp_path / "small", out)
    document = out.read_text(encoding="utf-8")
    assert len(assert_self_contained(document)) == 16  # one wine explained
    assert "n/a" in document  # R² is unknown
    assert "No model information was recorded." in document
    assert "Traceback" not in document
    assert "A wine: the critic gave it 88 points, the model predicted 87.0" in document


def test_a_model_without_words_importances_or_explanations(tmp_path, full_report):
    out_full, _, _ = full_report
    pred = pd.read_parquet(out_full.parent.parent / "predictions.parquet").head(12)
    m = load_context(out_full.parent.parent / "context").metrics
    empty = pd.DataFrame()
    (tmp_path / "ctx").mkdir()
    prepare_context(tmp_path / "ctx", pred, m, pd.DataFrame({"term": [], "weight": []}),
                    empty, empty)
    out = tmp_path / "plain.html"
    render_report(tmp_path / "ctx", out)
    document = out.read_text(encoding="utf-8")
    assert "No explanation of single wines is available" in document
    assert "Two wines explained" not in document
    assert len(assert_self_contained(document)) == 15


def test_a_context_of_another_version_is_refused(tmp_path, full_report):
    out_full, _, _ = full_report
    context = tmp_path / "ctx"
    shutil.copytree(out_full.parent.parent / "context", context)
    data = json.loads((context / "report.json").read_text())
    (context / "report.json").write_text(json.dumps({**data, "version": 2}))
    with pytest.raises(SchemaError, match="version 2, and this wine-pipeline reads version 1"):
        render_report(context, tmp_path / "r.html")
    del data["cost"]
    (context / "report.json").write_text(json.dumps(data))
    with pytest.raises(SchemaError, match=r"report.json lacks cost"):
        load_context(context)
    assert not (tmp_path / "r.html").exists()


def test_missing_context_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        render_report(tmp_path, tmp_path / "r.html")
    with pytest.raises(FileNotFoundError, match="not found"):
        render_report(tmp_path / "nowhere", tmp_path / "r.html")


def test_failing_template_chunk_raises_and_writes_nothing(tmp_path, full_report):
    out_full, _, _ = full_report
    context = tmp_path / "ctx"
    shutil.copytree(out_full.parent.parent / "context", context)
    (context / "figures" / "points.png").unlink()  # the first figure cannot be shown
    with pytest.raises(ReportError, match=r"(?s)chunk \d+ .*FileNotFoundError") as failed:
        render_report(context, tmp_path / "out" / "r.html")
    assert "prices.png" not in str(failed.value)  # stopped at the first failure
    assert not (tmp_path / "out" / "r.html").exists()


def test_unknown_values_are_null_in_the_json_and_none_when_read():
    record = Estimate(value=float("nan"), half_width=float("inf"))
    text = to_json(record)
    assert json.loads(text) == {"version": 1, "value": None, "half_width": None}
    assert from_json(text, Estimate, "x.json") == Estimate(None, None)


def test_filters():
    assert filters.percent(0.034) == "3.4%" and filters.percent(0.81) == "81%"
    assert filters.percent(None) == filters.money(None) == filters.fixed(float("nan")) == "n/a"
    assert filters.one_in(0.034) == "about 1 wine in 29" and filters.one_in(0.7) == ""
    assert filters.money(1200) == "$1,200" and filters.count(4869.0) == "4,869"
    assert filters.signed(-0.04) == "0.0" and filters.signed(1.26) == "+1.3"
    assert filters.signed(-4.4) == "\u22124.4"
    assert filters.metric(-0.001, "ratio") == "0.00" and filters.metric(0.816, "share") == "82%"
    assert filters.in_ten(0.81) == "8 wines in 10"
    assert filters.in_ten(0.97) == "nearly every wine"
    assert filters.in_ten(0.02) == "fewer than 1 wine in 10"
    assert filters.shorten("a b c " * 50, 20).endswith("\u2026")
    assert len(filters.shorten("a b c " * 50, 20)) <= 20
    assert filters.shorten(None) == "" and filters.shorten(np.nan) == ""
    assert filters.price_band("15-25") == "$15\u201325"
    assert filters.price_band("under 15") == "under $15"
    assert filters.price_band("no price") == "no price"
    assert filters.part_of(5999, 6000) == "100.0%" and filters.part_of(1, 2) == "50%"
    assert filters.info_value([1.23456, "x", None]) == "1.235, x, n/a"


def _page(wines: pd.DataFrame | None = None, **metrics):
    """The report's fragments for a few wines, their numbers computed as evaluate does."""
    m = toy_metrics(**metrics)
    wines = toy() if wines is None else wines
    numbers = report_numbers(wines, m, pd.DataFrame(), pd.DataFrame())
    return environment().get_template("report.html.j2").make_module({"m": m, "r": numbers})


def _text(fragment) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html.unescape(str(fragment))).split())


def test_the_words_follow_the_numbers():
    page = _page()
    summary = _text(page.summary())
    assert ("For 8 wines in 10 (80%) the predicted score is within 2 points of the critic's"
            " score, and for 9 wines in 10 within 3 points.") in summary
    assert "On average the prediction is 1.3 points off." in summary
    assert "The model's errors are 35% smaller than the better of these simple rules" in summary
    assert "The true score fell inside the stated range for 81% of the wines" in summary
    assert "Where does it err?" not in summary  # no two score bands of 5 wines
    cost = _text(page.cost())
    assert cost.startswith("Of the 7 test wines, 2 (29%, about 1 wine in 4) were over-rated by"
                           " 3 points or more")
    assert "They cost $12 to $14 a bottle, $13 at the median" in cost
    assert "under $15 2 2 (100%) 0 (0%) $13" in cost
    assert "no price 1 0 (0%) 1 (100%) \u2013" in cost
    misses = str(page.misses())
    assert "x x x" in misses and "\u2026" in misses  # the long note, shortened
    assert "\u22124.0" in misses and "+3.5" in misses
    assert "Of the 7 largest misses, 3 under-rate and 3 over-rate the wine." in _text(misses)
    assert "(no name)" not in misses and "(France, Ann)" in _text(misses)


def test_the_recommendation_follows_the_numbers():
    page = _page()
    advice = _text(page.recommendation())
    assert advice.startswith("Recommended: put the model into production")
    assert "against 1.96 for guessing from the price alone: 35% smaller (and 49% smaller" in advice
    assert "This model learned from 7 reviews." in advice
    assert "(here, on validation: linear model on the words 1.25)" in advice
    assert "held for 81% of the test wines, as promised." in advice
    assert ("The advantage is real, not luck of the test wines: wine by wine the model's errors"
            " are 0.93 ± 0.84 points smaller") in advice
    assert "verdict-go-fix-range" in str(_page(coverage=0.7).recommendation())
    assert "outside the 77%\u201383% we accept" in _text(_page(coverage=0.7).recommendation())
    assert _text(_page(mae=1.8).recommendation()).startswith("A trial only")
    assert _text(_page(mae=1.95).recommendation()).startswith("Not recommended yet")


def _wines(points: list[float], predicted: list[float], **columns) -> pd.DataFrame:
    """Wines as evaluate's sample holds them: a range of ±2 and plain baselines."""
    n = len(points)
    text = {c: pd.array(columns.pop(c, [None] * n), dtype="string")
            for c in ("country", "taster_name", "title", "description")}
    return pd.DataFrame({"points": points, "predicted_points": predicted,
                         "lower": np.array(predicted) - 2, "upper": np.array(predicted) + 2,
                         "baseline_mean": 88.0, "baseline_price": 88.0,
                         "price": columns.pop("price", [np.nan] * n), **text})


def test_band_group_and_bias_sentences_name_best_and_worst():
    wide = _wines([85.0] * 6 + [92.0] * 6, [86.0] * 6 + [89.0] * 6,
                  price=[np.nan] * 6 + [30.0] * 6, country=["Chile"] * 6 + ["Spain"] * 6)
    page = _page(wide)
    assert _text(page.price_bands()) == (
        "The model is most accurate for wines without a price (off by 1.0 points on average)"
        " and least accurate for wines priced 25-40 (3.0 points).")
    assert _text(page.points_bands()) == (
        "The model is most accurate for wines scored 85-87 (off by 1.0 points on average) and"
        " least accurate for wines scored 91-93 (3.0 points). Like most rating models it pulls"
        " scores toward the middle: wines the critics scored 91-93 were predicted 3.0 points"
        " too low on average, and wines scored 85-87 1.0 points too high. So a prediction at"
        " the top of the scale probably understates a great wine, and one at the bottom"
        " overstates a poor one.")
    assert _text(page.countries()) == ""  # groups of 6: fewer than 10 wines
    many = _page(pd.concat([wide] * 2, ignore_index=True))
    assert _text(many.countries()) == (
        "Among countries with at least 10 test wines, the model is most accurate for Chile"
        " (1.0 points off on average, 12 wines) and least for Spain (3.0 points, 12 wines)."
        " It under-rates Spain by 3.0 points on average.")
    assert _text(many.critics()) == ""  # only wines without a critic
    level = _page(_wines([84.0] * 5 + [95.0] * 5, [84.2] * 5 + [95.5] * 5))
    assert _text(level.points_bands()).endswith(
        "The model does not lean much either way at the ends of the scale: on average it is"
        " +0.2 points off for wines scored 80-84 and +0.5 for wines scored 94-100.")


def test_text_from_the_data_is_escaped():
    wines = toy()
    wines.loc[5, "title"] = "<script>alert('x')</script> & Sons"
    misses = str(_page(wines).misses())
    assert "<script>" not in misses
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Sons" in misses
