"""The model file: everything needed to score a cleaned row, in one joblib object.

Two kinds of model share one interface, :meth:`WineModel.predict_frame`:

- :class:`SgdModel`, a linear model on the hashed features;
- :class:`StackedGbmModel`, LightGBM on a few dense features plus the linear
  model's text score (see :mod:`pipeline.gbm_features`).

Both carry an 80% prediction interval placed on the validation split
(:mod:`pipeline.intervals`): one that adapts to each wine when it validates,
else the 10th and 90th percentiles of the validation residuals, the same for
every wine.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from pipeline.atomic import atomic_file
from pipeline.features import FeatureSpec
from pipeline.gbm_features import gbm_frame
from pipeline.intervals import AdaptiveInterval, ConstantInterval, spread_features
from pipeline.schema import POINTS_MAX, POINTS_MIN


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


@dataclasses.dataclass
class WineModel:
    """Base of the fitted rating predictors.

    Attributes
    ----------
    metadata : dict
        Versions, rows, validation metrics, data fingerprint, time, parameters.
    residual_quantiles : tuple of float
        10th and 90th percentile of ``actual - predicted`` on the validation split:
        the constant interval's offsets.
    interval : ConstantInterval or AdaptiveInterval, optional
        The interval :meth:`predict_interval` gives (see
        :func:`pipeline.intervals.choose_interval`); None in model files written before
        it existed, which keep the constant offsets.
    other_interval : ConstantInterval or AdaptiveInterval, optional
        The interval tried and not kept, so that evaluate can show both.
    """

    metadata: dict = dataclasses.field(default_factory=dict, kw_only=True)
    residual_quantiles: tuple[float, float] = dataclasses.field(
        default=(-2.0, 2.0), kw_only=True
    )
    interval: ConstantInterval | AdaptiveInterval | None = dataclasses.field(
        default=None, kw_only=True)
    other_interval: ConstantInterval | AdaptiveInterval | None = dataclasses.field(
        default=None, kw_only=True)

    def predict_raw(self, df: pd.DataFrame) -> np.ndarray:
        """Unclipped predictions of cleaned rows; subclasses implement it."""
        raise NotImplementedError

    def predict_frame(self, df: pd.DataFrame) -> np.ndarray:
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
        return clip_points(self.predict_raw(df))

    def predict_interval(self, df: pd.DataFrame, other: bool = False) -> pd.DataFrame:
        """Predictions with their 80% interval.

        Parameters
        ----------
        df : pandas.DataFrame
            Cleaned rows.
        other : bool, default False
            Give :attr:`other_interval` instead (when there is one), to compare them.

        Returns
        -------
        pandas.DataFrame
            ``predicted_points``, ``lower``, ``upper`` on ``df``'s index; the interval
            always holds the prediction.
        """
        pred = self.predict_frame(df)
        return pd.DataFrame({"predicted_points": pred, **self.bounds(df, pred, other)},
                            index=df.index)

    def bounds(self, df: pd.DataFrame, pred: np.ndarray,
               other: bool = False) -> dict[str, np.ndarray]:
        """``lower`` and ``upper`` of the interval around predictions ``pred`` of ``df``."""
        interval = self.other_interval if other and self.other_interval else self.interval
        if interval is None:
            interval = ConstantInterval(low_=self.residual_quantiles[0],
                                        high_=self.residual_quantiles[1])
        features = (spread_features(gbm_frame(df, pred), pred)
                    if isinstance(interval, AdaptiveInterval) else df)
        low, high = interval.offsets(features)
        return {"lower": np.clip(pred + np.minimum(low, 0), POINTS_MIN, POINTS_MAX),
                "upper": np.clip(pred + np.maximum(high, 0), POINTS_MIN, POINTS_MAX)}

    @property
    def interval_kind(self) -> str:
        """``adaptive`` or ``constant``: the interval :meth:`predict_interval` gives."""
        return self.interval.kind if self.interval is not None else "constant"

    @property
    def kind(self) -> str:
        """Short name of the model kind (``sgd`` or ``lightgbm``)."""
        return self.metadata.get("model", type(self).__name__)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model atomically with joblib.

        Parameters
        ----------
        path : path-like

        Returns
        -------
        pathlib.Path
        """
        with atomic_file(path) as tmp:
            joblib.dump(self, tmp, compress=3)
        return Path(path)


@dataclasses.dataclass
class SgdModel(WineModel):
    """A linear model on the hashed features.

    Parameters
    ----------
    spec : FeatureSpec
        How rows become features (with the scaling learned on train).
    estimator : object
        Fitted scikit-learn regressor on centred targets.
    target_mean : float
        Mean points of the training split, added back to predictions.
    """

    spec: FeatureSpec
    estimator: Any
    target_mean: float

    def predict_raw(self, df: pd.DataFrame) -> np.ndarray:  # noqa: D102
        return self.predict_features(self.spec.transform(df))

    def predict_features(self, x) -> np.ndarray:
        """Unclipped predictions of rows already turned into features by ``spec``.

        Parameters
        ----------
        x : scipy.sparse.csr_matrix
            Output of ``spec.transform``.

        Returns
        -------
        numpy.ndarray
        """
        return self.estimator.predict(x) + self.target_mean


class ModelFileError(ValueError):
    """A model file is missing, damaged, or holds something else."""


def load_model(path: str | os.PathLike) -> WineModel:
    """Read a model written by :meth:`WineModel.save`.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    WineModel

    Raises
    ------
    ModelFileError
        When there is no such file, it cannot be read as a model file (truncated,
        random bytes, another format), or it holds something else.
    """
    if not Path(path).is_file():
        raise ModelFileError(f"{path}: no such model file; run train first")
    try:
        obj = joblib.load(path)
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - unpickling fails in many ways on bad bytes
        what = "it is truncated" if isinstance(err, EOFError) else f"{type(err).__name__}"
        raise ModelFileError(f"{path}: not a readable model file ({what}); train it again "
                             "or give the file train wrote") from err
    if not isinstance(obj, WineModel):
        raise ModelFileError(f"{path}: holds a {type(obj).__name__}, not a wine-pipeline "
                             "model")
    return obj


@dataclasses.dataclass
class StackedGbmModel(WineModel):
    """LightGBM on dense features and the linear model's text score.

    Parameters
    ----------
    text_model : SgdModel
        Linear model whose prediction is the GBM's ``text_score`` feature.
    booster : lightgbm.Booster
        Fitted on centred targets, with out-of-fold text scores on train.
    best_iteration : int
        Trees used, chosen on the validation split.
    target_mean : float
        Mean points of the training split.
    text_weight : float, default 0.0
        Share of the linear model's own prediction blended into the GBM's, chosen on
        the validation split: the two err differently, so a blend beats either.
    """

    text_model: SgdModel
    booster: Any
    best_iteration: int
    target_mean: float
    text_weight: float = 0.0

    def predict_raw(self, df: pd.DataFrame) -> np.ndarray:  # noqa: D102
        from pipeline.gbm_features import gbm_frame

        text = self.text_model.predict_raw(df)
        trees = self.booster.predict(gbm_frame(df, text), num_iteration=self.best_iteration)
        return blend(trees + self.target_mean, text, self.text_weight)


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
