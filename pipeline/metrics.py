"""Regression metrics from sums, so partitions can be scored apart and added up."""

from __future__ import annotations

import math

import numpy as np

_KEYS = ("n", "abs", "sq", "y", "y2", "within_2", "within_3")


def error_sums(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Additive sums of one partition's errors.

    Parameters
    ----------
    y_true, y_pred : numpy.ndarray
        Actual and predicted points of the same rows.

    Returns
    -------
    dict
        Sums that :func:`add_sums` adds and :func:`metrics_from_sums` finishes.
    """
    y_true = np.asarray(y_true, dtype="float64")
    err = np.asarray(y_pred, dtype="float64") - y_true
    return {
        "n": float(len(y_true)),
        "abs": float(np.abs(err).sum()),
        "sq": float((err**2).sum()),
        "y": float(y_true.sum()),
        "y2": float((y_true**2).sum()),
        "within_2": float((np.abs(err) <= 2).sum()),
        "within_3": float((np.abs(err) <= 3).sum()),
    }


def add_sums(parts: list[dict[str, float]]) -> dict[str, float]:
    """Add the sums of several partitions.

    Parameters
    ----------
    parts : list of dict
        Outputs of :func:`error_sums`.

    Returns
    -------
    dict
    """
    return {k: float(sum(p[k] for p in parts)) for k in _KEYS}


def metrics_from_sums(s: dict[str, float]) -> dict[str, float]:
    """MAE, RMSE, R² and the shares within ±2 and ±3 points.

    Parameters
    ----------
    s : dict
        Output of :func:`add_sums` (or :func:`error_sums`).

    Returns
    -------
    dict
        ``n``, ``mae``, ``rmse``, ``r2``, ``within_2``, ``within_3``; NaN when empty.
    """
    n = s["n"]
    if n == 0:
        return {"n": 0, "mae": math.nan, "rmse": math.nan, "r2": math.nan,
                "within_2": math.nan, "within_3": math.nan}
    total_var = s["y2"] - s["y"] ** 2 / n
    return {
        "n": int(n),
        "mae": s["abs"] / n,
        "rmse": math.sqrt(s["sq"] / n),
        "r2": 1.0 - s["sq"] / total_var if total_var > 0 else math.nan,
        "within_2": s["within_2"] / n,
        "within_3": s["within_3"] / n,
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Metrics of one in-memory set of predictions.

    Parameters
    ----------
    y_true, y_pred : numpy.ndarray

    Returns
    -------
    dict
        As :func:`metrics_from_sums`.
    """
    return metrics_from_sums(error_sums(y_true, y_pred))
