"""The buyer's sheet in numbers: a small summary of each scored partition, merged exactly.

``predict`` scores an inventory partition by partition on the workers.  Beside its
predictions, each partition returns a :class:`SheetSummary`: how many rows it held
and scored, how many were set aside for each kind of reason, a histogram of the
predicted points on fixed bins, a few sums, and the top :data:`TOP_K` wines of each
ranking of the sheet with the columns the sheet shows.  A summary is a few kilobytes
whatever the partition's size, so an inventory of millions of rows never passes
through the client.

Summaries merge exactly (:func:`merge_summaries`): counts and histograms add, and
the top k of the partitions' top k are the top k of the whole, because every
ranking is a strict total order (ties broken by the predicted points, then by the
record number in the file).  :mod:`pipeline.report.sheet` renders the merged one.

Pure pandas and numpy: the workers import this without the report's plotting
libraries.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipeline.cleaning import REASON
from pipeline.schema import ID_COLUMN, POINTS_MAX, POINTS_MIN

#: Wines kept in each ranking.
TOP_K = 15
#: Edges of the histogram of predicted points: half-point bins from 80 to 100.
POINTS_EDGES: np.ndarray = np.linspace(POINTS_MIN, POINTS_MAX, 2 * (POINTS_MAX - POINTS_MIN) + 1)
#: The score the first ranking is about: 90 and more is "excellent" on the critics' scale.
GOOD_SCORE = 90.0
#: Value is counted in points above this per dollar: the bottom of the 80-100 scale, so
#: that a wine's value measures what its price buys beyond the lowest rating there is.
VALUE_BASE = float(POINTS_MIN)

#: Record number of a row in the inventory (the index of a parsed partition).
RECORD = "record"
#: Columns of a wine in the rankings: what the sheet shows of it.
SHOWN_COLUMNS: tuple[str, ...] = ("title", "winery", "variety", "country", "province", "price")
#: Text columns among :data:`SHOWN_COLUMNS`.
TEXT_COLUMNS: tuple[str, ...] = ("title", "winery", "variety", "country", "province")
#: Derived columns of a ranked wine: points above :data:`VALUE_BASE` per dollar, range width.
VALUE, WIDTH = "points_per_dollar", "width"
#: Every column of a ranking, in order.
TOP_COLUMNS: tuple[str, ...] = (RECORD, ID_COLUMN, *SHOWN_COLUMNS, "predicted_points",
                                "lower", "upper", VALUE, WIDTH)

#: The rankings of the sheet: name to the column ranked, largest first.
RANKINGS: dict[str, str] = {
    "likely_90": "lower",  # most likely to rate 90+: the highest lower end of the range
    "value": VALUE,  # best predicted points (above 80) per dollar, wines with a price
    "widest": WIDTH,  # the widest range: where a tasting tells most
}


def reason_kind(reason: str) -> str:
    """The kind of a reject reason, without the details of the row.

    Parameters
    ----------
    reason : str
        A ``reject_reason``, e.g. ``"wrong number of fields (3, expected 14): ..."``.

    Returns
    -------
    str
        The text before the first ``" ("`` or ``": "``, e.g. ``"wrong number of
        fields"``: a small, fixed set of kinds, however many rows are set aside.
    """
    kind = str(reason).split(" (", 1)[0].split(": ", 1)[0].strip()
    return kind or "unknown reason"


def _empty_top() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in TOP_COLUMNS}))


def _typed(top: pd.DataFrame) -> pd.DataFrame:
    """One set of column types for every ranking, so rankings concatenate and compare."""
    columns: dict[str, np.ndarray] = {RECORD: top[RECORD].to_numpy(dtype="int64")}
    for col in (ID_COLUMN, *TEXT_COLUMNS):
        values = top[col].to_numpy(dtype="object")
        columns[col] = np.where(pd.isna(values), None, values)
    for col in ("price", "predicted_points", "lower", "upper", VALUE, WIDTH):
        columns[col] = top[col].to_numpy(dtype="float64")
    return pd.DataFrame(columns, columns=list(TOP_COLUMNS))


def _stack(tops: list[pd.DataFrame]) -> pd.DataFrame:
    # Empty rankings left out: pandas would otherwise let them decide the column types.
    kept = [t for t in tops if len(t)]
    return pd.concat(kept, ignore_index=True) if kept else _empty_top()


def rank(wines: pd.DataFrame, ranking: str, k: int = TOP_K) -> pd.DataFrame:
    """The top ``k`` wines of one ranking.

    Parameters
    ----------
    wines : pandas.DataFrame
        Scored wines with the :data:`TOP_COLUMNS` (a ranking's output will do).
    ranking : str
        A key of :data:`RANKINGS`.
    k : int, default TOP_K

    Returns
    -------
    pandas.DataFrame
        At most ``k`` rows, best first: largest ranked column, then highest
        predicted points, then first in the file.  Wines without a value for
        the ranked column (no price for ``value``) are left out.
    """
    column = RANKINGS[ranking]
    pool = wines[wines[column].notna()]
    ordered = pool.sort_values([column, "predicted_points", RECORD],
                               ascending=[False, False, True], kind="mergesort")
    return _typed(ordered.head(k))


@dataclasses.dataclass
class SheetSummary:
    """What the buyer's sheet shows of an inventory (or of one partition of it).

    Attributes
    ----------
    rows : int
        Records read.
    scored : int
        Records with a prediction.
    reasons : dict of str to int
        Records set aside, per kind of reason (:func:`reason_kind`).
    histogram : numpy.ndarray of int
        Scored wines per bin of :data:`POINTS_EDGES`.
    predicted_sum, width_sum : float
        Sums of the predicted points and of the range widths of the scored wines.
    width_min, width_max : float
        Narrowest and widest range (``inf`` and ``-inf`` when nothing was scored).
    good, sure_good : int
        Scored wines predicted at :data:`GOOD_SCORE` or more, and those whose whole
        range is at or above it.
    priced : int
        Scored wines with a price above 0 (those the value ranking considers).
    top : dict of str to pandas.DataFrame
        The top :attr:`k` of each ranking of :data:`RANKINGS`.
    k : int
        Length of the rankings.
    """

    rows: int = 0
    scored: int = 0
    reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    histogram: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(len(POINTS_EDGES) - 1, dtype="int64"))
    predicted_sum: float = 0.0
    width_sum: float = 0.0
    width_min: float = float("inf")
    width_max: float = float("-inf")
    good: int = 0
    sure_good: int = 0
    priced: int = 0
    top: dict[str, pd.DataFrame] = dataclasses.field(
        default_factory=lambda: {name: _empty_top() for name in RANKINGS})
    k: int = TOP_K

    @property
    def set_aside(self) -> int:
        """Records without a prediction."""
        return self.rows - self.scored

    @property
    def mean_predicted(self) -> float:
        """Average predicted points of the scored wines (NaN when none)."""
        return self.predicted_sum / self.scored if self.scored else float("nan")

    @property
    def mean_width(self) -> float:
        """Average width of the ranges of the scored wines (NaN when none)."""
        return self.width_sum / self.scored if self.scored else float("nan")


def summarize(frame: pd.DataFrame, k: int = TOP_K) -> SheetSummary:
    """Summarise scored rows for the buyer's sheet.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per record, indexed by its record number in the file: the
        predictions (``id``, ``predicted_points``, ``lower``, ``upper``,
        ``reject_reason``; empty prediction for a row set aside) and, for the
        scored rows, the :data:`SHOWN_COLUMNS` (absent ones count as missing;
        ``price`` as a number).
    k : int, default TOP_K
        Wines kept per ranking.

    Returns
    -------
    SheetSummary
    """
    frame = frame.copy()
    frame[RECORD] = frame.index.to_numpy(dtype="int64")
    for col in SHOWN_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    predicted = frame["predicted_points"]
    scored = frame[predicted.notna()].astype({"price": "float64"})
    price = scored["price"].where(scored["price"] > 0)
    scored[VALUE] = (scored["predicted_points"] - VALUE_BASE) / price
    # Rounded as the predictions are, so that equal ranges tie (and the prediction decides).
    scored[WIDTH] = (scored["upper"] - scored["lower"]).round(3)
    aside = frame.loc[predicted.isna(), REASON].fillna("").astype(str)
    reasons = Counter(reason_kind(r) for r in aside)
    points = np.clip(scored["predicted_points"].to_numpy(), POINTS_MIN, POINTS_MAX)
    width = scored[WIDTH].dropna()
    return SheetSummary(
        rows=len(frame),
        scored=len(scored),
        reasons=dict(reasons),
        histogram=np.histogram(points, bins=POINTS_EDGES)[0].astype("int64"),
        predicted_sum=float(points.sum()),
        width_sum=float(width.sum()),
        width_min=float(width.min()) if len(width) else float("inf"),
        width_max=float(width.max()) if len(width) else float("-inf"),
        good=int((scored["predicted_points"] >= GOOD_SCORE).sum()),
        sure_good=int((scored["lower"] >= GOOD_SCORE).sum()),
        priced=int(price.notna().sum()),
        top={name: rank(scored, name, k) for name in RANKINGS},
        k=k,
    )


def merge_summaries(parts: Iterable[SheetSummary], k: int = TOP_K) -> SheetSummary:
    """One summary of the whole inventory from the summaries of its partitions.

    Parameters
    ----------
    parts : iterable of SheetSummary
        Each partition's summary, each ranking holding at least its top ``k``.
    k : int, default TOP_K
        Wines kept per ranking.

    Returns
    -------
    SheetSummary
        Equal to :func:`summarize` of all the partitions' rows at once (the sums
        up to the order of floating-point additions).  No parts: the summary of
        an empty inventory.
    """
    parts = list(parts)
    if not parts:
        return SheetSummary(k=k)
    reasons: Counter[str] = Counter()
    for part in parts:
        reasons.update(part.reasons)
    return SheetSummary(
        rows=sum(p.rows for p in parts),
        scored=sum(p.scored for p in parts),
        reasons=dict(reasons),
        histogram=np.sum([p.histogram for p in parts], axis=0).astype("int64"),
        predicted_sum=float(sum(p.predicted_sum for p in parts)),
        width_sum=float(sum(p.width_sum for p in parts)),
        width_min=min(p.width_min for p in parts),
        width_max=max(p.width_max for p in parts),
        good=sum(p.good for p in parts),
        sure_good=sum(p.sure_good for p in parts),
        priced=sum(p.priced for p in parts),
        top={name: rank(_stack([p.top[name] for p in parts]), name, k) for name in RANKINGS},
        k=k,
    )
