"""The 80% range around each prediction: one that adapts to the wine, or a constant one.

Both are split conformal: they are placed on validation rows the model never
learnt from, so the promised share of new wines falls inside them.

- :class:`ConstantInterval` adds the 10th and 90th percentiles of the
  validation residuals to every prediction: the same offsets for every wine.
- :class:`AdaptiveInterval` is normalised conformal: a small LightGBM model
  predicts how far off the model is likely to be for this wine (the *spread*,
  the size of the residual, from the wine's dense features and its predicted
  points), and the range is ``predicted + [low, high] * spread ** power``,
  where ``low`` and ``high`` are percentiles of ``residual / spread ** power``.
  The spread models are cross-fitted over folds of the validation rows, so
  each row's ratio comes from a model that did not see it; new wines get the
  mean of the fold models.

Why a power: a range that holds 80% of the wines of every kind is wider on
average than one that holds 80% of all wines, because the constant range buys
its narrowness by failing the hard wines.  ``power`` trades the two: 1 scales
the range fully with the spread, smaller values partly.
:func:`choose_interval` keeps the most adaptive power whose range, on the
out-of-fold spreads, holds between :data:`SEGMENT_COVERAGE` in every price band
and for every critic with :data:`SEGMENT_MIN_ROWS` rows or more, and is on
average at most :data:`WIDTH_TOLERANCE` wider than the constant range; when the
constant range itself fails a segment, the narrowest adaptive range that holds
in every segment; otherwise the constant range, with the reason recorded.

:func:`coverage_sums` and :func:`coverage_table` measure a range on the test
split, overall and per segment, from sums that add up over partitions.
"""

from __future__ import annotations

import dataclasses

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.gbm_features import GBM_CATEGORIES, GBM_FEATURES
from pipeline.params import (
    INTERVAL_COVERAGE,
    MIN_ADAPTIVE_ROWS,
    POWERS,
    PRICE_BAND_EDGES,
    SEGMENT_COVERAGE,
    SEGMENT_MIN_ROWS,
    SPREAD_FLOOR,
    SPREAD_FOLDS,
    SPREAD_PARAMS,
    SPREAD_ROUNDS,
    WIDTH_TOLERANCE,
)

#: Label of the price band of wines without a price, and of wines without a critic.
NO_PRICE, NO_CRITIC = "no price", "unknown"


def conformal_quantiles(scores: np.ndarray, coverage: float) -> tuple[float, float]:
    """Lower and upper percentiles of ``scores`` leaving ``(1 - coverage) / 2`` on each side.

    Parameters
    ----------
    scores : numpy.ndarray
        Residuals, or residuals over spreads.
    coverage : float

    Returns
    -------
    tuple of float
    """
    tail = (1 - coverage) / 2
    low, high = np.quantile(scores, [tail, 1 - tail])
    return float(low), float(high)


@dataclasses.dataclass
class ConstantInterval:
    """The same offsets for every wine: percentiles of the validation residuals.

    Parameters
    ----------
    coverage : float, default :data:`INTERVAL_COVERAGE`

    Attributes
    ----------
    low_, high_ : float
        Offsets added to the prediction (``low_`` is negative).
    """

    coverage: float = INTERVAL_COVERAGE
    low_: float = -2.0
    high_: float = 2.0

    kind = "constant"

    def fit(self, features: pd.DataFrame | None, residuals: np.ndarray) -> ConstantInterval:
        """Place the offsets on ``actual - predicted`` of validation rows; features unused."""
        self.low_, self.high_ = conformal_quantiles(np.asarray(residuals), self.coverage)
        return self

    def offsets(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Offsets of each row's range from its prediction.

        Parameters
        ----------
        features : pandas.DataFrame
            :func:`spread_features` of the rows (only their number is used).

        Returns
        -------
        low, high : numpy.ndarray
        """
        n = len(features)
        return np.full(n, self.low_), np.full(n, self.high_)


@dataclasses.dataclass
class AdaptiveInterval:
    """A range scaled by each wine's predicted spread (normalised split conformal).

    Parameters
    ----------
    coverage : float, default :data:`INTERVAL_COVERAGE`
    folds : int, default :data:`SPREAD_FOLDS`
    seed : int, default 0

    Attributes
    ----------
    boosters_ : list of lightgbm.Booster
        One spread model per fold.
    floor_ : float
        Smallest spread, in points.
    power_ : float
        How fully the range scales with the spread (see the module's docstring).
    low_, high_ : float
        Percentiles of ``residual / spread ** power_``; the range is
        ``prediction + low_ * spread ** power_`` to ``prediction + high_ * spread ** power_``.
    oof_spread_ : numpy.ndarray
        Each validation row's spread from the model that did not see it (for the checks of
        :func:`choose_interval`; not needed to predict).
    """

    coverage: float = INTERVAL_COVERAGE
    folds: int = SPREAD_FOLDS
    seed: int = 0
    boosters_: list = dataclasses.field(default_factory=list)
    floor_: float = 0.0
    power_: float = 1.0
    low_: float = -1.0
    high_: float = 1.0
    oof_spread_: np.ndarray | None = dataclasses.field(default=None, repr=False)

    kind = "adaptive"

    def fit(self, features: pd.DataFrame, residuals: np.ndarray) -> AdaptiveInterval:
        """Cross-fit the spread models and place the range on validation rows.

        Parameters
        ----------
        features : pandas.DataFrame
            :func:`spread_features` of the validation rows.
        residuals : numpy.ndarray
            ``actual - predicted`` of the same rows.

        Returns
        -------
        AdaptiveInterval
            ``self``.
        """
        residuals = np.asarray(residuals, dtype="float64")
        size = np.abs(residuals)
        self.floor_ = float(SPREAD_FLOOR * max(np.median(size), 1e-3))
        fold = np.random.default_rng(self.seed).integers(0, self.folds, len(residuals))
        oof = np.zeros(len(residuals))
        self.boosters_ = []
        for k in range(self.folds):
            learn = fold != k
            data = lgb.Dataset(features[learn], size[learn],
                               categorical_feature=list(GBM_CATEGORIES), free_raw_data=True)
            booster = lgb.train({**SPREAD_PARAMS, "seed": self.seed + k}, data,
                                num_boost_round=SPREAD_ROUNDS)
            oof[~learn] = booster.predict(features[~learn])
            self.boosters_.append(booster)
        self.oof_spread_ = np.maximum(oof, self.floor_)
        return self.temper(self.power_, residuals)

    def temper(self, power: float, residuals: np.ndarray) -> AdaptiveInterval:
        """Set the power of the spread and place the range again on the same rows.

        Parameters
        ----------
        power : float
            0 (constant) to 1 (fully scaled with the spread).
        residuals : numpy.ndarray
            The residuals :meth:`fit` saw.

        Returns
        -------
        AdaptiveInterval
            ``self``.
        """
        self.power_ = float(power)
        ratio = np.asarray(residuals, dtype="float64") / self.oof_spread_**self.power_
        self.low_, self.high_ = conformal_quantiles(ratio, self.coverage)
        return self

    def oof_offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """Offsets of the validation rows' ranges from their out-of-fold spreads."""
        scaled = self.oof_spread_**self.power_
        return self.low_ * scaled, self.high_ * scaled

    def spread(self, features: pd.DataFrame) -> np.ndarray:
        """Predicted size of each row's error, in points (mean of the fold models)."""
        if len(features) == 0:
            return np.empty(0)
        found = np.mean([b.predict(features) for b in self.boosters_], axis=0)
        return np.maximum(found, self.floor_)

    def offsets(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Offsets of each row's range from its prediction, in points."""
        scaled = self.spread(features) ** self.power_
        return self.low_ * scaled, self.high_ * scaled

    def __getstate__(self) -> dict:
        # The out-of-fold spreads are only for the checks; the model file does not need them.
        return {**self.__dict__, "oof_spread_": None}


def spread_features(dense: pd.DataFrame, predicted: np.ndarray) -> pd.DataFrame:
    """The spread model's input: a row's dense features with its predicted points.

    Parameters
    ----------
    dense : pandas.DataFrame
        :func:`pipeline.gbm_features.gbm_frame` of the rows (its ``text_score`` is replaced).
    predicted : numpy.ndarray
        The model's predicted points.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`pipeline.gbm_features.GBM_FEATURES`, ``text_score`` holding the
        prediction.
    """
    frame = dense[list(GBM_FEATURES)].copy()
    frame["text_score"] = np.asarray(predicted, dtype=np.float32)
    return frame


def segment_labels(price: pd.Series, critic: pd.Series) -> dict[str, np.ndarray]:
    """The price band and the critic of each row, the segments a range is checked on.

    Parameters
    ----------
    price : pandas.Series
        Prices (NaN when not listed).
    critic : pandas.Series
        Critic names, or any stable code per critic (NaN when unnamed).

    Returns
    -------
    dict
        ``"price band"`` and ``"critic"`` to an array of string labels.
    """
    price = pd.to_numeric(price, errors="coerce")
    edges = PRICE_BAND_EDGES
    names = [f"{edges[i]:g}-{edges[i + 1]:g}" if np.isfinite(edges[i + 1]) else f"{edges[i]:g}+"
             for i in range(len(edges) - 1)]
    band = pd.cut(price, list(edges), right=False, labels=names).astype("object")
    critic = critic.astype("object")
    return {
        "price band": band.where(band.notna(), NO_PRICE).astype(str).to_numpy(),
        "critic": critic.where(critic.notna(), NO_CRITIC).astype(str).to_numpy(),
    }


def coverage_sums(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                  segments: dict[str, np.ndarray]) -> dict:
    """Rows, rows inside their range and summed widths, overall and per segment.

    The sums of several partitions add up (:func:`add_coverage_sums`).

    Parameters
    ----------
    actual, lower, upper : numpy.ndarray
    segments : dict
        Output of :func:`segment_labels` for the same rows.

    Returns
    -------
    dict
        ``{"all": [n, inside, width], kind: {label: [n, inside, width]}}``.
    """
    inside = ((actual >= lower) & (actual <= upper)).astype("float64")
    width = np.asarray(upper, dtype="float64") - np.asarray(lower, dtype="float64")
    out: dict = {"all": [float(len(actual)), float(inside.sum()), float(width.sum())]}
    for kind, labels in segments.items():
        frame = pd.DataFrame({"label": labels, "n": 1.0, "inside": inside, "width": width})
        sums = frame.groupby("label")[["n", "inside", "width"]].sum()
        out[kind] = {str(k): [float(v) for v in row] for k, row in sums.iterrows()}
    return out


def add_coverage_sums(parts: list[dict]) -> dict:
    """The :func:`coverage_sums` of the union of the partitions."""
    total: dict = {"all": [0.0, 0.0, 0.0]}
    for part in parts:
        total["all"] = [a + b for a, b in zip(total["all"], part["all"], strict=True)]
        for kind, groups in part.items():
            if kind == "all":
                continue
            into = total.setdefault(kind, {})
            for label, sums in groups.items():
                into[label] = [a + b for a, b in zip(into.get(label, [0.0] * 3), sums,
                                                     strict=True)]
    return total


def coverage_table(sums: dict, min_rows: int = SEGMENT_MIN_ROWS) -> dict:
    """Coverage and mean width, overall and for each segment with ``min_rows`` rows or more.

    Parameters
    ----------
    sums : dict
        Output of :func:`coverage_sums` or :func:`add_coverage_sums`.
    min_rows : int, default :data:`SEGMENT_MIN_ROWS`

    Returns
    -------
    dict
        ``{"all": {"n", "coverage", "mean_width"}, kind: {label: {...}}}``; smaller
        segments are left out.
    """
    def cell(n: float, inside: float, width: float) -> dict:
        return {"n": int(n), "coverage": inside / n if n else float("nan"),
                "mean_width": width / n if n else float("nan")}

    out: dict = {"all": cell(*sums["all"])}
    for kind, groups in sums.items():
        if kind != "all":
            out[kind] = {label: cell(*s) for label, s in sorted(groups.items())
                         if s[0] >= min_rows}
    return out


def segments_within(table: dict, bounds: tuple[float, float] = SEGMENT_COVERAGE) -> list[str]:
    """The segments of a :func:`coverage_table` whose coverage is outside ``bounds``.

    Returns
    -------
    list of str
        ``"kind label (coverage)"`` for each; empty when every segment is within.
    """
    low, high = bounds
    return [f"{kind} {label} ({cell['coverage']:.0%})"
            for kind, groups in table.items() if kind != "all"
            for label, cell in groups.items() if not low <= cell["coverage"] <= high]


def choose_interval(features: pd.DataFrame, residuals: np.ndarray,
                    segments: dict[str, np.ndarray], coverage: float = INTERVAL_COVERAGE,
                    seed: int = 0) -> tuple[ConstantInterval | AdaptiveInterval,
                                            ConstantInterval | AdaptiveInterval | None, dict]:
    """The adaptive range when it validates, else the constant one.

    Parameters
    ----------
    features : pandas.DataFrame
        :func:`spread_features` of the validation rows.
    residuals : numpy.ndarray
        ``actual - predicted`` of the same rows.
    segments : dict
        :func:`segment_labels` of the same rows.
    coverage : float, default :data:`INTERVAL_COVERAGE`
    seed : int, default 0

    Returns
    -------
    interval : ConstantInterval or AdaptiveInterval
        The one to give.
    other : ConstantInterval or AdaptiveInterval or None
        The one tried and not kept (None when there were too few rows to try).
    info : dict
        For the model file's metadata: ``kind``, ``reason`` (why the constant range,
        when it is kept), ``valid_constant`` (its :func:`coverage_table` on the
        validation rows), ``valid_adaptive`` (mean width and failing segments per power
        tried) and, for an adaptive range, ``power`` and ``valid_chosen`` (its table).
    """
    residuals = np.asarray(residuals, dtype="float64")
    constant = ConstantInterval(coverage).fit(None, residuals)
    zeros = np.zeros(len(residuals))
    valid_constant = coverage_table(coverage_sums(
        residuals, zeros + constant.low_, zeros + constant.high_, segments))
    info: dict = {"coverage": coverage, "rows": len(residuals),
                  "constant_offsets": [constant.low_, constant.high_],
                  "valid_constant": valid_constant}
    if len(residuals) < MIN_ADAPTIVE_ROWS:
        return constant, None, {**info, "kind": "constant",
                                "reason": f"{len(residuals)} validation rows scored, fewer "
                                          f"than {MIN_ADAPTIVE_ROWS}"}
    adaptive = AdaptiveInterval(coverage, seed=seed).fit(features, residuals)
    budget = (1 + WIDTH_TOLERANCE) * valid_constant["all"]["mean_width"]
    tried = {}
    for power in POWERS:
        adaptive.temper(power, residuals)
        table = coverage_table(coverage_sums(residuals, *_around(adaptive.oof_offsets()),
                                             segments))
        tried[power] = {"width": table["all"]["mean_width"], "outside": segments_within(table),
                        "table": table}
    info["valid_adaptive"] = {f"{p:g}": {"mean_width": t["width"], "outside": t["outside"]}
                              for p, t in tried.items()}
    holding = [p for p in POWERS if not tried[p]["outside"]]
    within_budget = [p for p in holding if tried[p]["width"] <= budget]
    if within_budget:
        power = within_budget[0]
    elif holding and segments_within(valid_constant):
        power = min(holding, key=lambda p: tried[p]["width"])
    else:
        reason = ("no adaptive range holds in every segment" if not holding else
                  f"every adaptive range that holds in every segment is more than "
                  f"{WIDTH_TOLERANCE:.0%} wider on average than the constant one")
        return constant, adaptive.temper(POWERS[0], residuals), {
            **info, "kind": "constant", "reason": reason}
    adaptive.temper(power, residuals)
    return adaptive, constant, {**info, "kind": "adaptive", "power": power,
                                "adaptive_quantiles": [adaptive.low_, adaptive.high_],
                                "spread_floor": adaptive.floor_,
                                "valid_chosen": tried[power]["table"]}


def _around(offsets: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    # The ranges always hold the prediction, as WineModel.predict_interval makes them.
    low, high = offsets
    return np.minimum(low, 0), np.maximum(high, 0)
