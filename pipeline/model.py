"""The model file: everything needed to score a cleaned row, in one joblib object.

Two kinds of model share one interface, :meth:`WineModel.predict_frame`:

- :class:`SgdModel`, a linear model on the hashed features;
- :class:`StackedGbmModel`, LightGBM on a few dense features plus the linear
  model's text score (see :mod:`pipeline.gbm_features`).

Both carry an 80% prediction interval placed on the validation split
(:mod:`pipeline.intervals`): one that adapts to each wine when it validates,
else the 10th and 90th percentiles of the validation residuals, the same for
every wine.

The file records the package versions it was trained with; :func:`load_model`
compares them with the installed ones, warns about any difference and refuses a
model pickled by another major version of a library whose objects it holds.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import re
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from pipeline.atomic import atomic_file
from pipeline.features import FeatureSpec
from pipeline.gbm_features import GBM_FEATURES, gbm_frame
from pipeline.intervals import AdaptiveInterval, ConstantInterval, spread_features
from pipeline.schema import POINTS_MAX, POINTS_MIN
from pipeline.storage import as_path

log = logging.getLogger(__name__)

#: Name of the constant part of every prediction in :meth:`WineModel.contributions`.
BASELINE = "baseline"

#: Libraries whose versions are recorded in the model file (besides Python's).
VERSIONED = ("dask", "distributed", "scikit-learn", "lightgbm", "numba", "numpy", "pandas",
             "pyarrow")
#: Libraries whose objects a model file may hold (dask-ml in files that hold its wrappers):
#: unpickled under another major version they may fail or score differently, so refused.
MAJOR_CHECKED = ("scikit-learn", "lightgbm", "dask-ml")
#: The recorded version of a library that is not installed.
ABSENT = "absent"


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
        :func:`pipeline.intervals.choose_interval`); None when the file records no
        interval, and then the constant offsets are used.
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

    def _raw_and_dense(self, df: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame | None]:
        # Unclipped predictions, and the dense features built on the way (None when the
        # model builds none), so that an adaptive interval does not build them again.
        return self.predict_raw(df), None

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

    @property
    def linear_model(self) -> SgdModel:
        """The linear model on the hashed features: this one, or the one a GBM stacks on."""
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
        if len(df) == 0:
            pred, dense = np.empty(0, dtype="float64"), None
        else:
            raw, dense = self._raw_and_dense(df)
            pred = clip_points(raw)
        return pd.DataFrame({"predicted_points": pred, **self.bounds(df, pred, other, dense)},
                            index=df.index)

    def bounds(self, df: pd.DataFrame, pred: np.ndarray, other: bool = False,
               dense: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
        """``lower`` and ``upper`` of the interval around predictions ``pred`` of ``df``.

        ``dense`` is :func:`pipeline.gbm_features.gbm_frame` of ``df`` when the caller
        has it (its text score is replaced by ``pred``); else it is built when needed.
        """
        interval = self.other_interval if other and self.other_interval else self.interval
        if interval is None:
            interval = ConstantInterval(low_=self.residual_quantiles[0],
                                        high_=self.residual_quantiles[1])
        if isinstance(interval, AdaptiveInterval):
            features = spread_features(gbm_frame(df, pred) if dense is None else dense, pred)
        else:
            features = df
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
        pathlib.Path or upath.UPath
        """
        with atomic_file(path) as tmp:
            joblib.dump(self, tmp, compress=3)
        return as_path(path)


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

    def contributions(self, df: pd.DataFrame) -> pd.DataFrame:
        """A feature group's contribution: the sum of its weights times its values."""
        x = self.spec.transform(df).tocsc()
        weighted = x.multiply(self.estimator.coef_.reshape(1, -1)).tocsc()
        out = {name: np.asarray(weighted[:, start:stop].sum(axis=1)).ravel()
               for name, (start, stop) in self.spec.blocks().items()}
        frame = pd.DataFrame(out, index=df.index)
        frame[BASELINE] = float(np.ravel(self.estimator.intercept_)[0]) + self.target_mean
        return frame

    @property
    def linear_model(self) -> SgdModel:  # noqa: D102
        return self

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
    """A model file is missing, damaged, holds something else, or needs other versions."""


def installed_version(name: str) -> str:
    """The installed version of a distribution (or of Python), or ``"absent"``.

    Parameters
    ----------
    name : str
        Distribution name, e.g. ``scikit-learn``; ``python`` for the interpreter.

    Returns
    -------
    str
    """
    if name == "python":
        return platform.python_version()
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return ABSENT


def package_versions() -> dict[str, str]:
    """Versions of Python and the numeric libraries, recorded in the model's metadata.

    Returns
    -------
    dict of str to str
        Name to version, ``"absent"`` for a library that is not installed.
    """
    return {name: installed_version(name) for name in ("python", *VERSIONED)}


def _major(version: str) -> int | None:
    found = re.match(r"\d+", str(version))
    return int(found.group()) if found else None


def check_versions(recorded: Any, where: str) -> dict[str, tuple[str, str]]:
    """Compare the package versions a model recorded with the installed ones.

    Any difference is logged as one warning; a model file with no versions loads
    with a warning too (nothing can be checked).

    Parameters
    ----------
    recorded : mapping of str to str, or None
        ``model.metadata["versions"]``.
    where : str
        The model file, named in the messages.

    Returns
    -------
    dict of str to (str, str)
        Each library that differs: (recorded, installed).

    Raises
    ------
    ModelFileError
        When a library of :data:`MAJOR_CHECKED` is installed in another major version
        than the one the model was trained with.
    """
    if not isinstance(recorded, Mapping) or not recorded:
        log.warning("%s records no package versions: it cannot be checked against the "
                    "installed ones (train it again to record them)", where)
        return {}
    differs = {name: (str(version), installed_version(name))
               for name, version in sorted(recorded.items())
               if str(version) != installed_version(name)}
    for name in MAJOR_CHECKED:
        was, now = differs.get(name, (ABSENT, ABSENT))
        if None in (_major(was), _major(now)) or _major(was) == _major(now):
            continue  # the same major version, or one side absent (that only warns)
        raise ModelFileError(
            f"{where}: trained with {name} {was}, but {name} {now} is installed: another "
            f"major version may not read or score it alike; train it again, or install "
            f"{name} {was}")
    if differs:
        log.warning("%s was trained with other package versions than installed "
                    "(recorded -> installed): %s; it should load, but may score slightly "
                    "differently", where,
                    ", ".join(f"{name}: {was} -> {now}" for name, (was, now) in differs.items()))
    return differs


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
        random bytes, another format), it holds something else, or it was trained
        with another major version of scikit-learn, LightGBM or dask-ml (see
        :func:`check_versions`; other differences only warn).
    """
    if not as_path(path).is_file():
        raise ModelFileError(f"{path}: no such model file; run train first")
    try:
        with as_path(path).open("rb") as fh:
            obj = joblib.load(fh)
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - unpickling fails in many ways on bad bytes
        what = "it is truncated" if isinstance(err, EOFError) else f"{type(err).__name__}"
        raise ModelFileError(f"{path}: not a readable model file ({what}); train it again "
                             "or give the file train wrote") from err
    if not isinstance(obj, WineModel):
        raise ModelFileError(f"{path}: holds a {type(obj).__name__}, not a wine-pipeline "
                             "model")
    check_versions((obj.metadata or {}).get("versions"), str(path))
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
        return self._raw_and_dense(df)[0]

    def _raw_and_dense(self, df: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        text = self.text_model.predict_raw(df)
        dense = gbm_frame(df, text)
        trees = self.booster.predict(dense, num_iteration=self.best_iteration)
        return blend(trees + self.target_mean, text, self.text_weight), dense

    def contributions(self, df: pd.DataFrame) -> pd.DataFrame:
        """LightGBM's SHAP-style ``pred_contrib`` scaled by the GBM's share of the blend.

        The linear model's own share is added to ``text_score``.
        """
        text = self.text_model.predict_raw(df)
        raw = self.booster.predict(gbm_frame(df, text), num_iteration=self.best_iteration,
                                   pred_contrib=True)
        gbm_share = 1.0 - self.text_weight
        out = pd.DataFrame(raw[:, :-1] * gbm_share, columns=list(GBM_FEATURES), index=df.index)
        out["text_score"] += self.text_weight * (text - self.target_mean)
        out[BASELINE] = raw[:, -1] * gbm_share + self.target_mean
        return out

    @property
    def linear_model(self) -> SgdModel:  # noqa: D102
        return self.text_model


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
