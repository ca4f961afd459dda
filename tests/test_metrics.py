"""The metric sums: partitions scored apart and added up give the metrics of the whole."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from pipeline.metrics import add_sums, error_sums, metrics_from_sums, regression_metrics

KEYS = {"n", "mae", "rmse", "r2", "within_2", "within_3"}


def points(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    actual = rng.integers(80, 101, n).astype("float64")
    return actual, actual + rng.normal(0, 2.5, n)


def test_the_sums_of_a_few_rows_by_hand():
    sums = error_sums(np.array([90.0, 85.0, 88.0]), np.array([91.0, 82.0, 88.0]))
    # Errors +1, -3, 0.
    assert sums == {"n": 3.0, "abs": 4.0, "sq": 10.0, "y": 263.0, "y2": 8100 + 7225 + 7744,
                    "within_2": 2.0, "within_3": 3.0}
    assert all(isinstance(v, float) for v in sums.values())


def test_an_error_of_exactly_two_or_three_points_counts_as_within():
    sums = error_sums(np.array([90.0, 90.0, 90.0]), np.array([92.0, 87.0, 93.5]))
    assert (sums["within_2"], sums["within_3"]) == (1.0, 2.0)


def test_metrics_match_scikit_learn():
    actual, predicted = points(500, seed=0)
    got = regression_metrics(actual, predicted)
    assert set(got) == KEYS and got["n"] == 500 and isinstance(got["n"], int)
    assert got["mae"] == pytest.approx(mean_absolute_error(actual, predicted), rel=1e-12)
    assert got["rmse"] == pytest.approx(math.sqrt(mean_squared_error(actual, predicted)),
                                        rel=1e-12)
    assert got["r2"] == pytest.approx(r2_score(actual, predicted), rel=1e-9)
    error = np.abs(predicted - actual)
    assert got["within_2"] == np.mean(error <= 2) and got["within_3"] == np.mean(error <= 3)


@pytest.mark.parametrize("cuts", [[250], [1, 2, 499], [100, 100, 300], [0, 500]],
                         ids=["halves", "tiny-parts", "an-empty-part", "empty-ends"])
def test_partition_sums_add_up_to_the_metrics_of_the_whole(cuts):
    actual, predicted = points(500, seed=1)
    parts = [error_sums(a, p) for a, p in zip(np.split(actual, cuts), np.split(predicted, cuts),
                                              strict=True)]
    whole = regression_metrics(actual, predicted)
    added = metrics_from_sums(add_sums(parts))
    assert added["n"] == whole["n"]
    for key in KEYS - {"n"}:
        assert added[key] == pytest.approx(whole[key], rel=1e-12), key
    # And therefore scikit-learn's numbers of the whole, though no part saw all rows.
    assert added["r2"] == pytest.approx(r2_score(actual, predicted), rel=1e-9)
    assert added["mae"] == pytest.approx(mean_absolute_error(actual, predicted), rel=1e-12)


def test_adding_sums_keeps_every_key_and_nothing_else():
    parts = [error_sums(*points(7, seed)) for seed in range(3)]
    total = add_sums(parts)
    assert set(total) == set(parts[0])
    assert total["n"] == 21.0
    assert total["abs"] == pytest.approx(sum(p["abs"] for p in parts))
    assert add_sums([]) == dict.fromkeys(parts[0], 0.0)


def test_no_rows_give_missing_metrics_not_an_error():
    empty = metrics_from_sums(add_sums([error_sums(np.array([]), np.array([]))]))
    assert empty["n"] == 0
    assert all(math.isnan(empty[k]) for k in KEYS - {"n"})


def test_r2_is_missing_when_the_points_do_not_vary():
    # scikit-learn calls this 0.0 (or 1.0 when perfect); with nothing to explain we say NaN.
    got = regression_metrics(np.full(4, 88.0), np.array([87.0, 88.0, 89.0, 90.0]))
    assert math.isnan(got["r2"])
    assert got["mae"] == 1.0 and got["within_2"] == 1.0
