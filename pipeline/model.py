"""The model file: feature spec, estimator and metadata in one joblib object."""

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
from pipeline.schema import POINTS_MAX, POINTS_MIN


@dataclasses.dataclass
class WineModel:
    """A fitted rating predictor.

    Parameters
    ----------
    spec : FeatureSpec
        How rows become features (with the scaling learned on train).
    estimator : object
        Fitted scikit-learn-style regressor on centred targets.
    target_mean : float
        Mean points of the training split, added back to predictions.
    metadata : dict
        Versions, rows, validation metrics, data fingerprint, time, parameters.
    """

    spec: FeatureSpec
    estimator: Any
    target_mean: float
    metadata: dict = dataclasses.field(default_factory=dict)

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
        raw = self.estimator.predict(self.spec.transform(df)) + self.target_mean
        return np.clip(raw, POINTS_MIN, POINTS_MAX).astype("float64")

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
    FileNotFoundError
        When there is no such file.
    TypeError
        When the file holds something else.
    """
    obj = joblib.load(path)
    if not isinstance(obj, WineModel):
        raise TypeError(f"{path} does not hold a wine-pipeline model ({type(obj).__name__})")
    return obj
