"""The few dense features LightGBM sees, built partition by partition.

The text is summarised by the linear model's prediction (``text_score``), fed
out-of-fold on the training split so the GBM never sees a score fitted on the
row it is learning from.  Categories become stable integer codes by hashing
(CRC32), so nothing is learned and unseen values are fine.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from pipeline.features import numeric_frame

#: Categories given to LightGBM as categorical features.
GBM_CATEGORIES: tuple[str, ...] = ("country", "province", "variety", "taster_name", "region_1")

#: Hash buckets per category; large enough that collisions are rare at the source's scale.
CATEGORY_BUCKETS = 4096

#: Dense feature names, in frame order.
GBM_FEATURES: tuple[str, ...] = (
    "text_score",
    "log_price",
    "price_missing",
    "vintage",
    "log_description_words",
    "description_chars",
    *GBM_CATEGORIES,
)


def category_code(values: pd.Series) -> np.ndarray:
    """A stable integer code per value (NaN when missing).

    Parameters
    ----------
    values : pandas.Series of str

    Returns
    -------
    numpy.ndarray of float32
    """
    codes, uniques = pd.factorize(values.astype("object"))
    table = [zlib.crc32(v.encode("utf-8", "surrogatepass")) % CATEGORY_BUCKETS
             if isinstance(v, str) else np.nan for v in np.asarray(uniques, dtype=object).tolist()]
    return np.array([*table, np.nan], dtype=np.float32)[codes]


def gbm_frame(df: pd.DataFrame, text_score: np.ndarray) -> pd.DataFrame:
    """Dense features of cleaned rows for LightGBM.

    Parameters
    ----------
    df : pandas.DataFrame
        Cleaned rows.
    text_score : numpy.ndarray
        The linear model's prediction for each row (out-of-fold on train).

    Returns
    -------
    pandas.DataFrame
        float32 columns named as :data:`GBM_FEATURES`.
    """
    numeric = numeric_frame(df)
    frame = pd.DataFrame(
        {
            "text_score": np.asarray(text_score, dtype=np.float32),
            "log_price": numeric["log_price"].to_numpy(np.float32),
            "price_missing": numeric["price_missing"].to_numpy(np.float32),
            "vintage": numeric["vintage"].to_numpy(np.float32),
            "log_description_words": numeric["log_description_words"].to_numpy(np.float32),
            "description_chars": df["description"].fillna("").str.len().to_numpy(np.float32),
        },
        index=df.index,
    )
    for col in GBM_CATEGORIES:
        frame[col] = category_code(df[col]) if col in df.columns else np.float32(np.nan)
    return frame
