"""Stateless hashed features, computed one partition at a time.

Text and categories are hashed, so there is no vocabulary to fit and unseen
categories in new data are fine.  The only learned state is the scaling of
the few numeric columns, which :class:`FeatureSpec` learns on the training
split (from :class:`NumericStats` that add up over partitions) and carries
inside the model file.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

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


@dataclasses.dataclass(frozen=True, eq=False)
class NumericStats:
    """Count, sum and sum of squares of each numeric feature over its non-missing values.

    What :class:`FeatureSpec` learns its scaling from.  The sums of two partitions add
    up (``a + b``), so each partition can be summed where it lies and the sums merged.

    Attributes
    ----------
    count, sum, sumsq : numpy.ndarray
        One float per name in :data:`NUMERIC_FEATURES`.
    """

    count: np.ndarray
    sum: np.ndarray
    sumsq: np.ndarray

    @classmethod
    def zeros(cls) -> NumericStats:
        """The sums of no rows: what merging starts from."""
        n = len(NUMERIC_FEATURES)
        return cls(count=np.zeros(n), sum=np.zeros(n), sumsq=np.zeros(n))

    def __add__(self, other: NumericStats) -> NumericStats:
        return NumericStats(count=self.count + other.count, sum=self.sum + other.sum,
                            sumsq=self.sumsq + other.sumsq)

    def scaling(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each feature.

        Returns
        -------
        mean, std : numpy.ndarray
            A constant or empty feature gets std 1, so that scaling it is a no-op.
        """
        safe = np.maximum(self.count, 1.0)
        mean = self.sum / safe
        var = np.maximum(self.sumsq / safe - mean**2, 0.0)
        std = np.sqrt(var)
        std[std < 1e-12] = 1.0
        return mean, std


def numeric_stats(frame: pd.DataFrame) -> NumericStats:
    """Partial sums of the numeric features of one partition, to be added across partitions.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`numeric_frame` for one partition.

    Returns
    -------
    NumericStats
    """
    values = frame[list(NUMERIC_FEATURES)].to_numpy(dtype="float64")
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    return NumericStats(count=present.sum(axis=0).astype("float64"), sum=filled.sum(axis=0),
                        sumsq=(filled**2).sum(axis=0))


@dataclasses.dataclass(frozen=True, eq=False)
class PartitionStats:
    """What the training needs to know of its rows before it hashes them.

    Made for each training file by make-dataset (kept in the data set's
    ``train_stats.json``) or by train; the statistics of several files add up (``a + b``).

    Attributes
    ----------
    rows : int
    y_sum : float
        Sum of the points.
    numeric : NumericStats
    """

    rows: int
    y_sum: float
    numeric: NumericStats

    @classmethod
    def zeros(cls) -> PartitionStats:
        """The statistics of no rows: what merging starts from."""
        return cls(rows=0, y_sum=0.0, numeric=NumericStats.zeros())

    def __add__(self, other: PartitionStats) -> PartitionStats:
        return PartitionStats(rows=self.rows + other.rows, y_sum=self.y_sum + other.y_sum,
                              numeric=self.numeric + other.numeric)

    def to_json(self) -> dict:
        """The statistics in plain JSON types (lists for arrays).

        Returns
        -------
        dict
            ``rows``, ``y_sum``, ``features`` (the numeric columns in order, so that
            statistics of other numeric features can be told apart) and ``numeric``
            (``count``, ``sum`` and ``sumsq`` lists).
        """
        numeric = {name: [float(x) for x in getattr(self.numeric, name)]
                   for name in ("count", "sum", "sumsq")}
        return {"rows": int(self.rows), "y_sum": float(self.y_sum),
                "features": list(NUMERIC_FEATURES), "numeric": numeric}

    @classmethod
    def from_json(cls, record: dict) -> PartitionStats | None:
        """Inverse of :meth:`to_json`; None when the numeric columns differ from ours.

        Parameters
        ----------
        record : dict

        Returns
        -------
        PartitionStats or None
        """
        if record.get("features") != list(NUMERIC_FEATURES):
            return None
        numeric = {name: np.asarray(record["numeric"][name], dtype="float64")
                   for name in ("count", "sum", "sumsq")}
        return cls(rows=int(record["rows"]), y_sum=float(record["y_sum"]),
                   numeric=NumericStats(**numeric))


def partition_stats(df: pd.DataFrame) -> PartitionStats:
    """The :class:`PartitionStats` of cleaned training rows.

    Parameters
    ----------
    df : pandas.DataFrame
        Cleaned training rows with ``points``.

    Returns
    -------
    PartitionStats
    """
    y = df[TARGET].to_numpy(dtype="float64")
    return PartitionStats(rows=len(df), y_sum=float(y.sum()),
                          numeric=numeric_stats(numeric_frame(df)))


@dataclasses.dataclass(eq=False)
class FeatureSpec:
    """How a cleaned row becomes a sparse feature vector.

    A transformer in the scikit-learn shape: the hash sizes and block weights are its
    parameters; the scaling of :data:`NUMERIC_FEATURES`, its only learned state, is
    set by :meth:`fit`, :meth:`partial_fit` or :meth:`fit_stats` on the training split.

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

    Attributes
    ----------
    numeric_stats_ : NumericStats or None
        Sums over the rows fitted so far (None before any fit).
    numeric_mean_, numeric_std_ : numpy.ndarray or None
        Scaling of :data:`NUMERIC_FEATURES` learned from them.
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
    numeric_stats_: NumericStats | None = dataclasses.field(default=None, init=False)
    numeric_mean_: np.ndarray | None = dataclasses.field(default=None, init=False)
    numeric_std_: np.ndarray | None = dataclasses.field(default=None, init=False)

    def fit(self, df: pd.DataFrame) -> FeatureSpec:
        """Learn the numeric scaling on cleaned training rows (forgetting any earlier fit).

        Parameters
        ----------
        df : pandas.DataFrame

        Returns
        -------
        FeatureSpec
            ``self``.
        """
        return self.fit_stats(numeric_stats(numeric_frame(df)))

    def partial_fit(self, df: pd.DataFrame) -> FeatureSpec:
        """Add cleaned training rows to those fitted so far, like ``StandardScaler.partial_fit``.

        Fitting the partitions of a split one after the other gives the scaling of
        :meth:`fit` on all of them (to rounding), and exactly that of :meth:`fit_stats`
        on the sum of their :func:`numeric_stats`, as train computes it.

        Parameters
        ----------
        df : pandas.DataFrame

        Returns
        -------
        FeatureSpec
            ``self``.
        """
        seen = self.numeric_stats_ if self.numeric_stats_ is not None else NumericStats.zeros()
        return self.fit_stats(seen + numeric_stats(numeric_frame(df)))

    def fit_stats(self, stats: NumericStats) -> FeatureSpec:
        """Learn the numeric scaling from sums made elsewhere (forgetting any earlier fit).

        How the training fits on a cluster: each worker sums its partitions
        (:func:`partition_stats`), the sums are added, and the total fitted here.

        Parameters
        ----------
        stats : NumericStats
            The sums of the whole training split.

        Returns
        -------
        FeatureSpec
            ``self``.
        """
        self.numeric_stats_ = stats
        self.numeric_mean_, self.numeric_std_ = stats.scaling()
        return self

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
        sklearn.exceptions.NotFittedError
            When no scaling has been learned yet (see :meth:`fit`).
        ValueError
            When ``df`` has no rows.
        """
        if self.numeric_mean_ is None:
            raise NotFittedError("this FeatureSpec has no numeric scaling yet: fit it on the "
                                 "training rows (fit, partial_fit or fit_stats) first")
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
        mean = self.numeric_mean_
        numeric = np.where(np.isnan(numeric), mean, numeric)
        numeric = (numeric - mean) / self.numeric_std_ * self.numeric_weight
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
