"""The 80% range: adaptive when the spread of the errors can be learnt, constant otherwise.

Fast tests on arrays (no cluster).  Rows are built the way train sees them:
dense features of :func:`pipeline.gbm_features.gbm_frame`, a prediction, and
a residual whose spread either depends on the wine (price missing, note
length) or does not.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from pipeline import intervals as iv
from pipeline.gbm_features import GBM_FEATURES


def rows(n: int, seed: int, hetero: bool) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Dense features, residuals and segments of ``n`` synthetic validation rows."""
    rng = np.random.default_rng(seed)
    price = np.exp(rng.normal(3.2, 0.6, n))
    missing = rng.random(n) < 0.1
    words = rng.integers(10, 80, n)
    critic = rng.integers(0, 6, n).astype("float32")
    frame = pd.DataFrame({name: np.zeros(n, dtype=np.float32) for name in GBM_FEATURES})
    frame["log_price"] = np.where(missing, np.nan, np.log1p(price)).astype(np.float32)
    frame["price_missing"] = missing.astype(np.float32)
    frame["log_description_words"] = np.log1p(words).astype(np.float32)
    frame["taster_name"] = critic
    predicted = 88 + rng.normal(0, 2, n)
    # Short notes and wines without a price are hard: three times the spread.
    scale = np.where(missing | (words < 25), 3.0, 1.0) if hetero else np.full(n, 1.6)
    residuals = rng.normal(0, 1, n) * scale
    segments = iv.segment_labels(pd.Series(np.where(missing, np.nan, price)), pd.Series(critic))
    return iv.spread_features(frame, predicted), residuals, segments


def test_constant_interval_is_the_residual_percentiles():
    residuals = np.arange(-50, 51, dtype=float)
    interval = iv.ConstantInterval().fit(None, residuals)
    assert (interval.low_, interval.high_) == (-40.0, 40.0)
    low, high = interval.offsets(pd.DataFrame(index=range(3)))
    np.testing.assert_array_equal(low, [-40.0] * 3)
    np.testing.assert_array_equal(high, [40.0] * 3)


def test_adaptive_interval_is_kept_when_the_constant_one_fails_the_hard_wines():
    features, residuals, segments = rows(6000, 0, hetero=True)
    chosen, other, info = iv.choose_interval(features, residuals, segments)
    assert info["kind"] == "adaptive" and isinstance(chosen, iv.AdaptiveInterval)
    assert isinstance(other, iv.ConstantInterval)
    assert iv.segments_within(info["valid_constant"]) != []
    # On new rows of the same kind: the promise holds overall and in every segment, the
    # range wide where the wine is hard and narrow where it is easy.
    new_features, new_residuals, new_segments = rows(6000, 1, hetero=True)
    low, high = chosen.offsets(new_features)
    table = iv.coverage_table(iv.coverage_sums(new_residuals, low, high, new_segments))
    assert 0.77 <= table["all"]["coverage"] <= 0.83
    assert iv.segments_within(table) == []
    c_low, c_high = other.offsets(new_features)
    constant = iv.coverage_table(iv.coverage_sums(new_residuals, c_low, c_high, new_segments))
    assert iv.segments_within(constant) != []
    hard = new_features["price_missing"].to_numpy() > 0
    assert (high - low)[hard].mean() > 1.5 * (high - low)[~hard].mean()


@pytest.mark.slow  # fits the adaptive ranges on 6,000 rows
def test_an_adaptive_interval_kept_beside_a_sound_constant_one_is_hardly_wider():
    features, residuals, segments = rows(6000, 2, hetero=False)
    chosen, other, info = iv.choose_interval(features, residuals, segments)
    assert iv.segments_within(info["valid_constant"]) == []
    if info["kind"] == "adaptive":
        width = info["valid_chosen"]["all"]["mean_width"]
        assert width <= (1 + iv.WIDTH_TOLERANCE) * info["valid_constant"]["all"]["mean_width"]
        assert iv.segments_within(info["valid_chosen"]) == []
    else:
        assert isinstance(chosen, iv.ConstantInterval)


@pytest.mark.slow  # fits every adaptive range on 3,000 rows
def test_constant_interval_is_kept_when_adaptive_ones_cost_too_much_width(monkeypatch):
    monkeypatch.setattr(iv, "WIDTH_TOLERANCE", -0.5)
    features, residuals, segments = rows(3000, 2, hetero=False)
    chosen, other, info = iv.choose_interval(features, residuals, segments)
    assert isinstance(chosen, iv.ConstantInterval) and isinstance(other, iv.AdaptiveInterval)
    assert info["kind"] == "constant" and "wider on average" in info["reason"]
    assert set(info["valid_adaptive"]) == {f"{p:g}" for p in iv.POWERS}


def test_too_few_rows_keep_the_constant_interval_without_trying():
    features, residuals, segments = rows(100, 3, hetero=True)
    chosen, other, info = iv.choose_interval(features, residuals, segments)
    assert isinstance(chosen, iv.ConstantInterval) and other is None
    assert "fewer than" in info["reason"]


def test_the_model_file_does_not_carry_the_out_of_fold_spreads():
    features, residuals, _ = rows(1000, 4, hetero=True)
    interval = iv.AdaptiveInterval().fit(features, residuals)
    assert interval.oof_spread_ is not None
    restored = pickle.loads(pickle.dumps(interval))
    assert restored.oof_spread_ is None
    np.testing.assert_array_equal(restored.spread(features), interval.spread(features))


def test_coverage_sums_add_up_over_partitions():
    features, residuals, segments = rows(900, 5, hetero=True)
    lower, upper = residuals * 0 - 1.5, residuals * 0 + 1.5
    whole = iv.coverage_sums(residuals, lower, upper, segments)
    parts = [iv.coverage_sums(residuals[s], lower[s], upper[s],
                              {k: v[s] for k, v in segments.items()})
             for s in (slice(0, 300), slice(300, 650), slice(650, None))]
    added = iv.add_coverage_sums(parts)
    assert added["all"] == pytest.approx(whole["all"])
    for kind in ("price band", "critic"):
        assert set(added[kind]) == set(whole[kind])
        for label in whole[kind]:
            assert added[kind][label] == pytest.approx(whole[kind][label])
    table = iv.coverage_table(added, min_rows=30)
    assert table["all"]["n"] == 900
    assert table["all"]["coverage"] == pytest.approx(np.mean(np.abs(residuals) <= 1.5))
    assert all(cell["n"] >= 30 for cell in table["critic"].values())


def test_segment_labels_name_price_bands_and_missing_values():
    labels = iv.segment_labels(pd.Series([5.0, 15.0, 24.99, 150.0, np.nan]),
                               pd.Series(["Roger Voss", None, "A", "A", "B"]))
    assert list(labels["price band"]) == ["0-15", "15-25", "15-25", "100+", iv.NO_PRICE]
    assert list(labels["critic"]) == ["Roger Voss", iv.NO_CRITIC, "A", "A", "B"]


def test_segments_outside_the_bounds_are_named():
    table = {"all": {"n": 100, "coverage": 0.8, "mean_width": 4.0},
             "critic": {"A": {"n": 40, "coverage": 0.65, "mean_width": 4.0},
                        "B": {"n": 40, "coverage": 0.85, "mean_width": 4.0}}}
    assert iv.segments_within(table) == ["critic A (65%)"]
