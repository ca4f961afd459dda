"""The report's numbers (pipeline.evaluation) on frames of a few wines, checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import evaluation as ev


def toy() -> pd.DataFrame:
    """Seven wines as evaluate's sample holds them (errors +3.5, -1, -3.5, 0, +3, -4, +0.5)."""
    return pd.DataFrame({
        "id": [1, 2, 3, 4, 5, 6, 7],
        "points": [85.0, 90, 92, 88, 84, 95, 86],
        "predicted_points": [88.5, 89, 88.5, 88, 87.0, 91, 86.5],
        "lower": [86.5, 87, 86.5, 86, 85, 89, 84.5],
        "upper": [90.5, 91, 90.5, 90, 89, 93, 88.5],
        "baseline_mean": 88.0,
        "baseline_price": [88.0, 88, 88, 88, 88, 88, 88],
        "price": [12.0, 30, np.nan, 20, 14, 150, 22],
        "country": pd.array(["France", "France", None, "Italy", "Italy", "France", " "],
                            dtype="string"),
        "taster_name": pd.array(["Ann", "Ann", None, "Bo", "Ann", "Bo", "Ann"], dtype="string"),
        "title": pd.array(["A", "B", "C", "D", "E", "F", "G"], dtype="string"),
        "description": pd.array(["x " * 200, "y", None, "z", "w", "v", "u"], dtype="string"),
    })


def metrics(mae: float = 1.27, price_mae: float = 1.96, coverage: float = 0.81) -> ev.Metrics:
    scores = {"n": 7, "rmse": 2.0, "r2": 0.5, "within_2": 0.8, "within_3": 0.9}
    return ev.Metrics(
        model=ev.ModelScores(name="sgd", mae=mae, interval_coverage=coverage, **scores),
        baselines=ev.Baselines(mean=ev.Scores(mae=2.5, **scores),
                               price_only=ev.Scores(mae=price_mae, **scores)),
        rows=ev.Rows(input=10, train=7, valid=2, test=1, rejected=0),
        price_baseline=ev.PriceLine(intercept=70.0, slope_per_log_price=5.0),
        interval=ev.IntervalRecord(kind="constant", reason=None, target=0.8,
                                   test={"all": {"n": 7, "coverage": coverage,
                                                 "mean_width": 4.0}}, other=None),
        candidates_valid_mae={"sgd": 1.25}, model_info={})


def test_data_summary():
    data = ev.data_summary(toy())
    assert (data.n, data.points_min, data.points_max) == (7, 84, 95)
    assert data.points_mean == pytest.approx(620 / 7)
    assert (data.price_min, data.price_median, data.price_max) == (12, 21, 150)
    assert data.price_missing == pytest.approx(1 / 7)
    # A blank country is no country; the critics' shares are of all wines.
    assert data.countries == 2 and data.top_countries[0] == ev.Share("France", 3 / 7)
    assert (data.tasters, data.no_taster) == (2, pytest.approx(1 / 7))
    assert [s.name for s in data.top_tasters] == ["Ann", "Bo"]
    assert ev.data_summary(toy().assign(price=np.nan)).price_median is None


def test_interval_and_estimates():
    interval = ev.interval_summary(toy(), metrics(coverage=0.81))
    assert (interval.coverage, interval.calibration) == (0.81, "held")
    assert (interval.width, interval.half_below, interval.half_above) == (4.0, 2.0, 2.0)
    assert ev.interval_summary(toy(), metrics(coverage=0.7)).calibration == "narrow"
    assert ev.interval_summary(toy(), metrics(coverage=0.9)).calibration == "wide"
    error = np.abs([3.5, -1, -3.5, 0, 3, -4, 0.5])
    mae = ev.estimate(ev.errors(toy()).abs())
    assert mae.value == pytest.approx(error.mean())
    assert mae.half_width == pytest.approx(1.96 * error.std(ddof=1) / np.sqrt(7))
    assert ev.estimate(pd.Series([1.0])) == ev.Estimate(None, None)


def test_error_bands_and_bias():
    df = pd.DataFrame({"points": [82.0, 86, 86, 95], "predicted_points": [84.0, 86, 87, 91],
                       "baseline_mean": 88.0, "baseline_price": 88.0,
                       "price": [10.0, np.nan, 30, 200]})
    by_price = ev.error_bands(df, "price", ev.PRICE_BAND_EDGES, missing_label=ev.NO_PRICE)
    assert [(r.band, r.n, r.model) for r in by_price.rows] == [
        ("under 15", 1, 2.0), ("25-40", 1, 1.0), ("100+", 1, 4.0), ("no price", 1, 0.0)]
    assert by_price.rows[0].mean == 6.0 and by_price.best is None  # no band of 5 wines
    by_points = ev.error_bands(df, "points", ev.POINTS_BAND_EDGES, integer=True)
    assert [r.band for r in by_points.rows] == ["80-84", "85-87", "94-100"]
    assert sum(r.n for r in by_points.rows) == 4
    wide = pd.DataFrame({"points": [85.0] * 6 + [92.0] * 6,
                         "predicted_points": [86.0] * 6 + [89.0] * 6,
                         "baseline_mean": 88.0, "baseline_price": 88.0,
                         "price": [np.nan] * 6 + [30.0] * 6})
    bands = ev.error_bands(wide, "price", ev.PRICE_BAND_EDGES, missing_label=ev.NO_PRICE)
    assert (bands.best.band, bands.worst.band) == ("no price", "25-40")
    lean = pd.DataFrame({"points": [82.0] * 6 + [95.0] * 6,
                         "predicted_points": [85.0] * 6 + [92.0] * 6})
    bias = ev.bias_at_the_ends(lean)
    assert (bias.low.band, bias.low.bias, bias.high.band, bias.high.bias) == (
        "80-84", 3.0, "94-100", -3.0)
    assert bias.to_middle
    assert ev.bias_at_the_ends(lean.head(8)) is None  # 94-100 has only two wines


def test_errors_by_group():
    groups = ev.error_by_group(toy(), "country", ev.UNKNOWN, min_wines=1)
    assert [(g.group, g.n) for g in groups.rows] == [("France", 3), ("Italy", 2),
                                                     ("unknown", 2)]  # None and a blank
    assert groups.rows[0].mae == pytest.approx((3.5 + 1 + 4) / 3)
    assert groups.rows[0].mae_price_only == pytest.approx((3 + 2 + 7) / 3)
    assert groups.best is None  # no group of ten wines
    many = pd.concat([toy()] * 5, ignore_index=True)
    groups = ev.error_by_group(many, "country", ev.UNKNOWN)
    assert (groups.best.group, groups.worst.group) == ("Italy", "France")  # unknown: unnamed
    assert groups.leaning.group == "Italy" and groups.leaning.bias == 1.5
    critics = ev.error_by_group(many, "taster_name", ev.NO_CRITIC)
    assert "no critic named" not in {critics.best.group, critics.worst.group}
    assert critics.leaning.group == "Bo" and critics.leaning.bias == pytest.approx(-2.0)


def test_largest_misses():
    misses = ev.largest_misses(toy(), n=3)
    assert [w.title for w in misses.wines] == ["F", "A", "C"]
    assert (misses.under, misses.over) == (2, 1)
    assert misses.wines[2].price is None and misses.wines[2].description is None


def test_cost_of_errors_and_the_buy_list():
    cost = ev.cost_summary(toy())
    # Over-rated by 3+: A (+3.5) and E (+3.0); under-rated by 3+: C (-3.5) and F (-4.0).
    assert (cost.n, cost.over, cost.under) == (7, 2, 2)
    assert (cost.over_price_min, cost.over_price_max) == (12, 14)
    assert cost.over_spend_share == pytest.approx(26 / 248)
    assert cost.baseline_over == 2  # A (+3) and E (+4) with the price-only rule
    bands = {b.band: b for b in ev.cost_by_price_band(toy())}
    assert (bands["under 15"].n, bands["under 15"].over, bands["under 15"].under) == (2, 2, 0)
    assert bands["under 15"].over_mean_price == 13
    assert (bands["no price"].n, bands["no price"].under) == (1, 1)
    assert bands["no price"].over_mean_price is None
    assert list(bands)[-1] == "no price" and sum(b.n for b in bands.values()) == 7
    buy = ev.buy_list(toy(), good=88.5)
    # Bought (predicted 88.5+): A, B, C, F; B, C, F really are; A (85) disappoints.
    assert (buy.bought, buy.really_good, buy.disappointing) == (4, 3, 1)
    assert buy.found_share == 1.0 and buy.really_good_share == 0.75
    assert ev.buy_list(toy(), good=99).really_good_share is None


def test_importance_and_explanations():
    explained = pd.DataFrame({
        "id": [1] * 5 + [2] * 5, "title": ["Big"] * 5 + [None] * 5,
        "points": [95.0] * 5 + [81.0] * 5, "predicted_points": [94.0] * 5 + [82.0] * 5,
        "feature": ["text_score", "log_price", "vintage", "country", "baseline"] * 2,
        "contribution": [4.0, 1.5, 0.01, -0.01, 88.5, -5.0, -1.0, 0.2, -0.7, 88.5],
    })
    big, other = ev.explained_wines(explained, "lightgbm")
    assert (big.title, other.title) == ("Big", "wine 2")
    assert (big.start, big.end) == (88.5, pytest.approx(94.0))
    assert [s.label for s in big.steps] == ["What the tasting note says", "Price",
                                            "All 2 other features"]
    assert big.start + sum(s.contribution for s in big.steps) == pytest.approx(big.end)
    table = ev.importance_table(pd.DataFrame({
        "feature": ["mystery_feature", "baseline", "description_chars"],
        "mean_abs_contribution": [0.1, 88.0, 0.2]}), "sgd")
    assert [(i.label, i.points) for i in table] == [("Word fragments of the tasting note", 0.2),
                                                     ("Mystery feature", 0.1)]
    assert ev.feature_label("description_chars", "lightgbm").startswith("Length")


def test_the_verdict_follows_the_numbers():
    def verdict(mae, price_mae, coverage, gain=(0.69, 0.11)):
        m = metrics(mae, price_mae, coverage)
        return ev.verdict(m, ev.interval_summary(toy(), m), ev.Estimate(*gain))

    assert verdict(1.27, 1.96, 0.81).level == "go"
    assert verdict(1.27, 1.96, 0.70).level == "go-fix-range"
    assert verdict(1.80, 1.96, 0.81).level == "pilot"
    assert verdict(1.95, 1.96, 0.81).level == "no"
    good = verdict(1.27, 1.96, 0.81)
    assert good.gain == pytest.approx(1 - 1.27 / 1.96)
    assert good.gain_over_mean == pytest.approx(1 - 1.27 / 2.5)
    assert good.gain_over_best == good.gain  # the price-only rule is the better one
    assert good.advantage_real
    assert verdict(2.2, 1.96, 0.81).gain_over_best is None
    assert verdict(1.27, 1.96, 0.81, (0.05, 0.11)).advantage_real is False
    assert verdict(1.27, 1.96, 0.81, (None, None)).advantage_real is None


def test_report_numbers_of_one_wine():
    numbers = ev.report_numbers(toy().head(1), metrics(), pd.DataFrame(), pd.DataFrame())
    assert numbers.shown == 1 and numbers.mae == ev.Estimate(None, None)
    assert numbers.importance == [] and numbers.wines == [] and numbers.bias is None
    assert [w.title for w in numbers.misses.wines] == ["A"]
