"""The two naive rules the model is compared with: the average score, and a line on price.

The price line is least squares of points on ``log1p(price)`` over the
training rows with a price, from sums that add up over partitions, so it is
fitted file by file on the cluster; wines without a price get the average.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline.schema import TARGET


def log_price(df: pd.DataFrame) -> np.ndarray:
    """``log1p`` of each row's price (NaN when not listed)."""
    return np.log1p(pd.to_numeric(df["price"], errors="coerce").to_numpy(dtype="float64")
                    .clip(0))


def price_sums(df: pd.DataFrame) -> np.ndarray:
    """Rows with a price and the sums of x, y, x² and xy (x the log price, y the points)."""
    x = log_price(df)
    y = df[TARGET].to_numpy(dtype="float64")
    has = ~np.isnan(x)
    x, y = x[has], y[has]
    return np.array([len(x), x.sum(), y.sum(), (x * x).sum(), (x * y).sum()])


def price_line(sums: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of the least-squares line from :func:`price_sums` (added up).

    Returns
    -------
    intercept, slope : float
        A flat line at the mean when the prices do not vary.
    """
    n, sx, sy, sxx, sxy = (float(v) for v in sums)
    if n < 2 or n * sxx - sx * sx <= 0:
        return (sy / n if n else math.nan), 0.0
    slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    return (sy - slope * sx) / n, slope


def baseline_predictions(df: pd.DataFrame, mean: float,
                         line: tuple[float, float]) -> dict[str, np.ndarray]:
    """Both rules' predictions for ``df``.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with ``price``.
    mean : float
        Average points of the training rows.
    line : tuple of float
        Output of :func:`price_line`.

    Returns
    -------
    dict
        ``mean`` and ``price_only``, arrays of points.
    """
    x = log_price(df)
    by_price = np.where(np.isnan(x), mean, line[0] + line[1] * np.nan_to_num(x))
    return {"mean": np.full(len(df), float(mean)), "price_only": by_price}
