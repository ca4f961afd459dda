"""The fitted models: everything needed to score a cleaned row, in one joblib object.

Two kinds of model share one interface in the scikit-learn shape
(:meth:`WineModel.predict`, :meth:`WineModel.predict_interval`,
:meth:`WineModel.contributions`; learned state ends with ``_``):

- :class:`SgdModel`, a linear model on the hashed features;
- :class:`StackedGbmModel`, LightGBM on a few dense features plus the linear
  model's text score (see :mod:`pipeline.gbm_features`).

Both carry an 80% prediction interval placed on the validation split by
:meth:`WineModel.fit_interval` (:mod:`pipeline.intervals`): one that adapts to
each wine when it validates, else the 10th and 90th percentiles of the
validation residuals, the same for every wine.

A model records its file format (:data:`MODEL_FORMAT`) and :meth:`WineModel.save`
writes it; :func:`pipeline.model_file.load_model` reads it back, checked.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import SGDRegressor

from pipeline.atomic import atomic_file
from pipeline.features import FeatureSpec
from pipeline.gbm_features import GBM_FEATURES, gbm_frame
from pipeline.intervals import (
    AdaptiveInterval,
    ConstantInterval,
    choose_interval,
    spread_features,
)
from pipeline.params import MAX_EPOCHS, MIN_EPOCHS, SGD_PARAMS, TARGET_ROW_UPDATES
from pipeline.schema import POINTS_MAX, POINTS_MIN, TARGET
from pipeline.storage import as_path

log = logging.getLogger(__name__)

#: Name of the constant part of every prediction in :meth:`WineModel.contributions`.
BASELINE = "baseline"

#: Format of the model files this code writes and reads, recorded in their metadata under
#: :data:`FORMAT_KEY`; raised whenever a model's pickled attributes change.
MODEL_FORMAT = 2
#: The metadata entry holding the format; files written before it existed are format 1.
FORMAT_KEY = "file_format"

#: Either interval a model can carry.
Interval = ConstantInterval | AdaptiveInterval


def clip_points(predicted: np.ndarray) -> np.ndarray:
    """Predictions brought onto the 80-100 scale.

    Parameters
    ----------
    predicted : numpy.ndarray

    Returns
    -------
    numpy.ndarray of float64
    """
    return np.clip(predicted, POINTS_MIN, POINTS_MAX).astype("float64")


def n_epochs(rows: int) -> int:
    """Passes of the linear model over ``rows`` training rows (see :data:`TARGET_ROW_UPDATES`).

    Parameters
    ----------
    rows : int

    Returns
    -------
    int
    """
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_ROW_UPDATES / max(rows, 1)))))


@dataclasses.dataclass
class WineModel:
    """Base of the rating predictors.

    Subclasses give :meth:`contributions` and the unclipped predictions (``_raw``);
    the rest of the interface is here.

    Parameters
    ----------
    metadata : dict, optional
        What the file tells of the model: its kind and parameters, and what train adds
        with :meth:`annotate` (versions, rows, validation metrics, data fingerprint,
        time).  Records :data:`MODEL_FORMAT` under :data:`FORMAT_KEY`.

    Attributes
    ----------
    interval_ : ConstantInterval or AdaptiveInterval or None
        The interval :meth:`predict_interval` gives, placed by :meth:`fit_interval`
        (None before).
    other_interval_ : ConstantInterval or AdaptiveInterval or None
        The interval tried and not kept, so that evaluate can show both (None when
        there were too few validation rows to try one).
    """

    #: Short name of the model kind.
    kind: ClassVar[str]

    metadata: dict = dataclasses.field(default_factory=dict, kw_only=True)
    interval_: Interval | None = dataclasses.field(default=None, init=False)
    other_interval_: Interval | None = dataclasses.field(default=None, init=False)

    def __post_init__(self) -> None:
        self.metadata = dict(self.metadata)
        self.metadata.setdefault(FORMAT_KEY, MODEL_FORMAT)

    def _raw(self, df: pd.DataFrame) -> np.ndarray:
        # Unclipped predictions of cleaned rows (not empty).
        raise NotImplementedError

    def _raw_and_dense(self, df: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame | None]:
        # Unclipped predictions, and the dense features built on the way (None when the
        # model builds none), so that an adaptive interval does not build them again.
        return self._raw(df), None

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """Predict the points of cleaned rows.

        Parameters
        ----------
        df : pandas.DataFrame
            Cleaned rows (see :func:`pipeline.cleaning.clean_partition`).

        Returns
        -------
        numpy.ndarray
            Points, clipped to the 80-100 scale.
        """
        if len(df) == 0:
            return np.empty(0, dtype="float64")
        return clip_points(self._raw(df))

    def predict_interval(self, df: pd.DataFrame, other: bool = False) -> pd.DataFrame:
        """Predictions with their 80% interval.

        Parameters
        ----------
        df : pandas.DataFrame
            Cleaned rows.
        other : bool, default False
            Also give the bounds of :attr:`other_interval_` around the same predictions,
            ``other_lower`` and ``other_upper`` (NaN when the model has no other
            interval), so that evaluate can compare the two in one scoring.

        Returns
        -------
        pandas.DataFrame
            ``predicted_points``, ``lower``, ``upper`` (and with ``other``,
            ``other_lower`` and ``other_upper``) on ``df``'s index; each interval
            always holds the prediction.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            When no interval has been placed (see :meth:`fit_interval`).
        """
        if self.interval_ is None:
            raise NotFittedError(f"this {type(self).__name__} has no interval yet: place it "
                                 "on validation rows with fit_interval first")
        if len(df) == 0:
            pred, dense = np.empty(0, dtype="float64"), None
        else:
            raw, dense = self._raw_and_dense(df)
            pred = clip_points(raw)
        given = [self.interval_, self.other_interval_ if other else None]
        if dense is None and any(isinstance(i, AdaptiveInterval) for i in given):
            dense = gbm_frame(df, pred)
        out = {"predicted_points": pred}
        out["lower"], out["upper"] = _bounds(self.interval_, pred, df, dense)
        if other:
            out["other_lower"], out["other_upper"] = (
                _bounds(self.other_interval_, pred, df, dense)
                if self.other_interval_ is not None else (np.full(len(df), np.nan),) * 2)
        return pd.DataFrame(out, index=df.index)

    def contributions(self, df: pd.DataFrame) -> pd.DataFrame:
        """Per-row contribution of each feature group, plus :data:`BASELINE`.

        Parameters
        ----------
        df : pandas.DataFrame
            Cleaned rows.

        Returns
        -------
        pandas.DataFrame
            One column per feature group and ``baseline``; each row sums to the
            unclipped prediction, so the report can show why a wine got its score.
        """
        raise NotImplementedError

    def fit_interval(self, features: pd.DataFrame, residuals: np.ndarray,
                     segments: dict[str, np.ndarray], seed: int = 0) -> dict:
        """Place the 80% interval on validation rows the model did not learn from.

        The adaptive interval when it validates, else the constant one
        (:func:`pipeline.intervals.choose_interval`); sets :attr:`interval_` and
        :attr:`other_interval_`.

        Parameters
        ----------
        features : pandas.DataFrame
            :func:`pipeline.intervals.spread_features` of the validation rows.
        residuals : numpy.ndarray
            ``actual - predicted`` of the same rows.
        segments : dict
            :func:`pipeline.intervals.segment_labels` of the same rows.
        seed : int, default 0

        Returns
        -------
        dict
            :func:`pipeline.intervals.choose_interval`'s record, for the metadata.
        """
        self.interval_, self.other_interval_, info = choose_interval(
            features, residuals, segments, seed=seed)
        return info

    def annotate(self, **entries: Any) -> WineModel:
        """Add entries to :attr:`metadata` (what train records of the fit), in order.

        Returns
        -------
        WineModel
            ``self``.
        """
        self.metadata.update(entries)
        return self

    @property
    def linear_model(self) -> SgdModel:
        """The linear model on the hashed features: this one, or the one a GBM stacks on."""
        raise NotImplementedError

    @property
    def interval_kind(self) -> str | None:
        """``adaptive`` or ``constant``: the interval :meth:`predict_interval` gives (or None)."""
        return self.interval_.kind if self.interval_ is not None else None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model atomically with joblib.

        Parameters
        ----------
        path : path-like

        Returns
        -------
        pathlib.Path or upath.UPath
        """
        with atomic_file(path) as tmp:
            joblib.dump(self, tmp, compress=3)
        return as_path(path)


def _bounds(interval: Interval, pred: np.ndarray, df: pd.DataFrame,
            dense: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    # Lower and upper bound around predictions ``pred`` of ``df``; ``dense`` is
    # gbm_frame of df (its text score is replaced by pred), needed by an adaptive interval.
    features = spread_features(dense, pred) if isinstance(interval, AdaptiveInterval) else df
    low, high = interval.offsets(features)
    return (np.clip(pred + np.minimum(low, 0), POINTS_MIN, POINTS_MAX),
            np.clip(pred + np.maximum(high, 0), POINTS_MIN, POINTS_MAX))


@dataclasses.dataclass
class SgdModel(WineModel):
    """A linear model on the hashed features.

    Fitted by :meth:`fit` in memory, or on a Dask cluster from hashed blocks
    (:func:`pipeline.distributed.fit.fit_candidates`, which passes the fitted state in).

    Parameters
    ----------
    spec : FeatureSpec, optional
        How rows become features; :meth:`fit` learns its scaling, else it comes fitted.
    seed : int, default 0
        Seeds SGD's shuffling.
    epochs : int, optional
        Passes of :meth:`fit` over the rows; default :func:`n_epochs`.
    estimator_ : sklearn.linear_model.SGDRegressor, optional
        Fitted on centred targets (with :data:`pipeline.params.SGD_PARAMS`).
    target_mean_ : float, optional
        Mean points of the training rows, added back to predictions.
    """

    kind: ClassVar[str] = "sgd"

    spec: FeatureSpec = dataclasses.field(default_factory=FeatureSpec)
    seed: int = 0
    epochs: int | None = None
    estimator_: Any = None
    target_mean_: float | None = None

    def fit(self, df: pd.DataFrame) -> SgdModel:
        """Fit on cleaned training rows in memory: the scaling, then SGD on centred points.

        Parameters
        ----------
        df : pandas.DataFrame
            Cleaned rows with ``points``.

        Returns
        -------
        SgdModel
            ``self``.
        """
        y = df[TARGET].to_numpy(dtype="float64")
        x = self.spec.fit(df).transform(df)
        self.target_mean_ = float(y.mean())
        estimator = SGDRegressor(random_state=self.seed, max_iter=self.epochs or n_epochs(len(y)),
                                 tol=None, shuffle=True, **SGD_PARAMS)
        self.estimator_ = estimator.fit(x, y - self.target_mean_)
        return self

    def _raw(self, df: pd.DataFrame) -> np.ndarray:
        if self.estimator_ is None:
            raise NotFittedError("this SgdModel is not fitted yet: call fit first")
        return self.estimator_.predict(self.spec.transform(df)) + self.target_mean_

    def contributions(self, df: pd.DataFrame) -> pd.DataFrame:
        """A feature group's contribution: the sum of its weights times its values."""
        x = self.spec.transform(df).tocsc()
        weighted = x.multiply(self.estimator_.coef_.reshape(1, -1)).tocsc()
        out = {name: np.asarray(weighted[:, start:stop].sum(axis=1)).ravel()
               for name, (start, stop) in self.spec.blocks().items()}
        frame = pd.DataFrame(out, index=df.index)
        frame[BASELINE] = float(np.ravel(self.estimator_.intercept_)[0]) + self.target_mean_
        return frame

    @property
    def linear_model(self) -> SgdModel:  # noqa: D102
        return self


@dataclasses.dataclass
class StackedGbmModel(WineModel):
    """LightGBM on dense features and the linear model's text score.

    Fitted on a Dask cluster only (:func:`pipeline.distributed.gbm.fit_stacked_gbm`, from
    out-of-fold text scores), which passes the fitted parts in.

    Parameters
    ----------
    text_model_ : SgdModel
        Linear model whose prediction is the GBM's ``text_score`` feature.
    booster_ : lightgbm.Booster
        Fitted on centred targets, with out-of-fold text scores on train.
    best_iteration_ : int
        Trees used, chosen on the validation split.
    target_mean_ : float
        Mean points of the training split.
    text_weight_ : float, default 0.0
        Share of the linear model's own prediction blended into the GBM's, chosen on
        the validation split: the two err differently, so a blend beats either.
    """

    kind: ClassVar[str] = "lightgbm"

    text_model_: SgdModel
    booster_: Any
    best_iteration_: int
    target_mean_: float
    text_weight_: float = 0.0

    def _raw(self, df: pd.DataFrame) -> np.ndarray:
        return self._raw_and_dense(df)[0]

    def _raw_and_dense(self, df: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        text = self.text_model_._raw(df)
        dense = gbm_frame(df, text)
        trees = self.booster_.predict(dense, num_iteration=self.best_iteration_)
        return blend(trees + self.target_mean_, text, self.text_weight_), dense

    def contributions(self, df: pd.DataFrame) -> pd.DataFrame:
        """LightGBM's SHAP-style ``pred_contrib`` scaled by the GBM's share of the blend.

        The linear model's own share is added to ``text_score``.
        """
        text = self.text_model_._raw(df)
        raw = self.booster_.predict(gbm_frame(df, text), num_iteration=self.best_iteration_,
                                    pred_contrib=True)
        gbm_share = 1.0 - self.text_weight_
        out = pd.DataFrame(raw[:, :-1] * gbm_share, columns=list(GBM_FEATURES), index=df.index)
        out["text_score"] += self.text_weight_ * (text - self.target_mean_)
        out[BASELINE] = raw[:, -1] * gbm_share + self.target_mean_
        return out

    @property
    def linear_model(self) -> SgdModel:  # noqa: D102
        return self.text_model_


def blend(gbm: np.ndarray, text: np.ndarray, text_weight: float) -> np.ndarray:
    """The stacked model's prediction from its GBM and linear parts.

    Parameters
    ----------
    gbm, text : numpy.ndarray
        Points predicted by LightGBM and by the linear model.
    text_weight : float
        Share of the linear model, 0 to 1.

    Returns
    -------
    numpy.ndarray
    """
    return (1.0 - text_weight) * np.asarray(gbm) + text_weight * np.asarray(text)
