"""Stateless hashed features, computed one partition at a time.

Text and categories are hashed, so there is no vocabulary to fit and unseen
categories in new data are fine.  The only learned state is the scaling of
the few numeric columns, which :func:`numeric_stats` computes on the
training split and :class:`FeatureSpec` carries inside the model file.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipeline import hashing
from pipeline.schema import CATEGORY_COLUMNS, TARGET

#: Numeric columns derived by :func:`numeric_frame`, in matrix order.
NUMERIC_FEATURES: tuple[str, ...] = (
    "log_price",
    "log_price_sq",
    "price_missing",
    "vintage",
    "vintage_missing",
    "log_description_words",
)

_WORD = re.compile(r"\S+")


def description_words(df: pd.DataFrame) -> np.ndarray:
    """Number of whitespace-separated words in each description (0 when missing).

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with ``description``.

    Returns
    -------
    numpy.ndarray of float
    """
    texts = df["description"].fillna("").tolist()
    if all(type(t) is str for t in texts):
        return hashing.count_words(texts)
    return df["description"].fillna("").str.count(_WORD.pattern).to_numpy(dtype="float64")


def numeric_frame(df: pd.DataFrame, words: np.ndarray | None = None) -> pd.DataFrame:
    """Derive the raw (unscaled) numeric features of a cleaned partition.

    Missing values stay NaN here; :meth:`FeatureSpec.transform` fills them with the
    training mean, and the ``*_missing`` flags carry the fact that they were missing.

    Parameters
    ----------
    df : pandas.DataFrame
        Cleaned rows with ``price``, ``vintage`` and ``description``.
    words : numpy.ndarray, optional
        :func:`description_words` of ``df``, when the caller has it already.

    Returns
    -------
    pandas.DataFrame
        One float column per name in :data:`NUMERIC_FEATURES`.
    """
    price = pd.to_numeric(df["price"], errors="coerce").astype("float64")
    log_price = np.log1p(price.clip(lower=0))
    vintage = pd.to_numeric(df["vintage"], errors="coerce").astype("float64")
    if words is None:
        words = description_words(df)
    return pd.DataFrame(
        {
            "log_price": log_price,
            "log_price_sq": log_price**2,
            "price_missing": price.isna().astype("float64"),
            "vintage": vintage,
            "vintage_missing": vintage.isna().astype("float64"),
            "log_description_words": np.log1p(words),
        },
        index=df.index,
    )


def numeric_stats(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Partial sums of the numeric features, to be added across partitions.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`numeric_frame` for one partition.

    Returns
    -------
    dict
        ``count``, ``sum`` and ``sumsq`` over non-missing values, per column.
    """
    values = frame[list(NUMERIC_FEATURES)].to_numpy(dtype="float64")
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    return {
        "count": present.sum(axis=0).astype("float64"),
        "sum": filled.sum(axis=0),
        "sumsq": (filled**2).sum(axis=0),
    }


def partition_stats(df: pd.DataFrame) -> dict:
    """What the training needs to know of a partition before it hashes it.

    Parameters
    ----------
    df : pandas.DataFrame
        Cleaned training rows with ``points``.

    Returns
    -------
    dict
        ``rows``, ``y_sum`` (sum of the points) and ``numeric`` (see :func:`numeric_stats`).
    """
    y = df[TARGET].to_numpy(dtype="float64")
    return {"rows": len(df), "numeric": numeric_stats(numeric_frame(df)),
            "y_sum": float(y.sum())}


def stats_to_json(stats: dict) -> dict:
    """:func:`partition_stats` output as plain JSON types (lists for arrays).

    Parameters
    ----------
    stats : dict

    Returns
    -------
    dict
        With ``features`` naming the numeric columns in order, so statistics computed
        for other numeric features can be told apart.
    """
    return {"rows": int(stats["rows"]), "y_sum": float(stats["y_sum"]),
            "features": list(NUMERIC_FEATURES),
            "numeric": {k: [float(x) for x in v] for k, v in stats["numeric"].items()}}


def stats_from_json(record: dict) -> dict | None:
    """Inverse of :func:`stats_to_json`; None when the numeric columns differ from ours.

    Parameters
    ----------
    record : dict

    Returns
    -------
    dict or None
    """
    if record.get("features") != list(NUMERIC_FEATURES):
        return None
    return {"rows": int(record["rows"]), "y_sum": float(record["y_sum"]),
            "numeric": {k: np.asarray(v, dtype="float64")
                        for k, v in record["numeric"].items()}}


def combine_stats(parts: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Turn per-partition sums into the mean and standard deviation of each feature.

    Parameters
    ----------
    parts : list of dict
        Outputs of :func:`numeric_stats`.

    Returns
    -------
    mean, std : numpy.ndarray
        Per feature; a constant or empty feature gets std 1 so scaling is a no-op.
    """
    count = sum(p["count"] for p in parts)
    total = sum(p["sum"] for p in parts)
    sumsq = sum(p["sumsq"] for p in parts)
    safe = np.maximum(count, 1.0)
    mean = total / safe
    var = np.maximum(sumsq / safe - mean**2, 0.0)
    std = np.sqrt(var)
    std[std < 1e-12] = 1.0
    return mean, std


@dataclasses.dataclass
class FeatureSpec:
    """How a cleaned row becomes a sparse feature vector.

    Parameters
    ----------
    text_features : int
        Hash space of the description's words and bigrams.
    char_features : int
        Hash space of the description's character 4-grams (within words), which catch
        word stems and spelling variants that whole words miss on small data.  4-grams
        alone validate as well as 3- to 5-grams together, with far fewer tokens to hash.
    title_features : int
        Hash space of the title's words and bigrams.
    category_features : int
        Hash space of the ``column=value`` category tokens.
    bin_features : int
        Hash space of the binned tokens (price band, length band, taster by price band)
        that let a linear model bend with price.
    char_weight, title_weight, category_weight, bin_weight, numeric_weight : float
        Block weights, so one regularisation strength suits every block.
    numeric_mean, numeric_std : list of float
        Scaling of :data:`NUMERIC_FEATURES`, learned on the training split.
    """

    text_features: int = 2**20
    char_features: int = 2**20
    title_features: int = 2**18
    category_features: int = 2**18
    bin_features: int = 2**16
    char_weight: float = 1.0
    title_weight: float = 0.3
    category_weight: float = 0.3
    bin_weight: float = 0.2
    numeric_weight: float = 1.0
    numeric_mean: list[float] = dataclasses.field(
        default_factory=lambda: [0.0] * len(NUMERIC_FEATURES)
    )
    numeric_std: list[float] = dataclasses.field(
        default_factory=lambda: [1.0] * len(NUMERIC_FEATURES)
    )

    @property
    def n_features(self) -> int:
        """Width of the feature matrix."""
        return (
            self.text_features
            + self.char_features
            + self.title_features
            + self.category_features
            + self.bin_features
            + len(NUMERIC_FEATURES)
        )

    def transform(self, df: pd.DataFrame) -> sp.csr_matrix:
        """Build the sparse feature matrix of a cleaned partition.

        The hashing is compiled (:mod:`pipeline.hashing`) and equals scikit-learn's
        ``HashingVectorizer``/``FeatureHasher`` bit for bit: description words and
        bigrams, character 4-grams within words (``char_wb``), title words and
        bigrams, each l2-normalised; ``column=value`` category tokens; band tokens
        (price band, length band, taster within price band); scaled numbers.

        Parameters
        ----------
        df : pandas.DataFrame
            Cleaned rows (output of make-dataset, or of the cleaning used by predict).

        Returns
        -------
        scipy.sparse.csr_matrix
            Shape ``(len(df), n_features)``, float32.

        Raises
        ------
        ValueError
            When ``df`` has no rows.
        """
        if len(df) == 0:
            raise ValueError("Cannot vectorize empty sequence.")
        text, chars, words = hashing.hash_description(
            df["description"].fillna("").to_numpy(), self.text_features, self.char_features)
        if words is None:  # bytes or str subclasses: pandas counts their words
            words = description_words(df)
        title = hashing.hash_words(df["title"].fillna("").to_numpy(), self.title_features)
        categories = hashing.hash_categories(df, self.category_features)
        bins = hashing.hash_bins(df, words, self.bin_features)
        numeric = numeric_frame(df, words)[list(NUMERIC_FEATURES)].to_numpy(dtype="float64")
        mean = np.asarray(self.numeric_mean)
        numeric = np.where(np.isnan(numeric), mean, numeric)
        numeric = (numeric - mean) / np.asarray(self.numeric_std) * self.numeric_weight
        return sp.hstack(
            [
                text,
                chars * self.char_weight,
                title * self.title_weight,
                categories * self.category_weight,
                bins * self.bin_weight,
                sp.csr_matrix(numeric.astype(np.float32)),
            ],
            format="csr",
            dtype=np.float32,
        )

    def blocks(self) -> dict[str, tuple[int, int]]:
        """Column range ``[start, stop)`` of each feature group in the matrix.

        Returns
        -------
        dict
            Group name (``description``, ``description_chars``, ``title``, ``category``,
            ``bins``, then each numeric feature) to its column range.
        """
        sizes = {
            "description": self.text_features,
            "description_chars": self.char_features,
            "title": self.title_features,
            "category": self.category_features,
            "bins": self.bin_features,
            **{name: 1 for name in NUMERIC_FEATURES},
        }
        stops = np.cumsum(list(sizes.values()))
        return {name: (int(stop - size), int(stop))
                for (name, size), stop in zip(sizes.items(), stops, strict=True)}

    def text_term_index(self, terms: list[str]) -> np.ndarray:
        """Column of each description term (word or bigram) in the feature matrix.

        Parameters
        ----------
        terms : list of str
            Lower-case words or space-separated bigrams.

        Returns
        -------
        numpy.ndarray
            Column index per term.
        """
        # A term's column is the hash of its text alone, as the words+bigrams hashing
        # gives it (both hash with FeatureHasher's rule).
        return hashing.hash_tokens(list(terms), self.text_features).astype(np.int64)


def category_tokens(df: pd.DataFrame) -> list[list[str]]:
    """``column=value`` tokens of a partition's categories; missing values give no token.

    What :func:`pipeline.hashing.hash_categories` hashes (each distinct value once).

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with the columns of :data:`pipeline.schema.CATEGORY_COLUMNS` (absent ones
        skipped).

    Returns
    -------
    list of list of str
        One token list per row.
    """
    columns = [c for c in CATEGORY_COLUMNS if c in df.columns]
    values = df[columns].astype("object").to_numpy()
    return [
        [f"{col}={val}" for col, val in zip(columns, row, strict=True)
         if isinstance(val, str) and val]
        for row in values
    ]


def bin_tokens(df: pd.DataFrame, words: np.ndarray | None = None) -> list[list[str]]:
    """Band tokens: price band, description-length band, and taster within price band.

    What :func:`pipeline.hashing.hash_bins` hashes (each distinct token once).

    Fixed bands on a log scale, so nothing is learned and the tokens of a row do
    not depend on the rest of the data.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with ``price``, ``description`` and ``taster_name``.
    words : numpy.ndarray, optional
        :func:`pipeline.features.description_words` of ``df``.

    Returns
    -------
    list of list of str
        One token list per row.
    """
    if words is None:
        words = description_words(df)
    price_band, length_band = hashing.bands(df, words)
    tasters = df["taster_name"].astype("object").where(df["taster_name"].notna(), "none")
    return [
        [f"price_band={p}", f"length_band={n}", f"taster_price={t}|{p}"]
        for p, n, t in zip(price_band, length_band, tasters.to_numpy(), strict=True)
    ]
