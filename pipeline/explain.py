"""What drives a prediction: per-feature contributions that add up to it.

For the linear model a feature group's contribution is the sum of its
weights times its values; for the stacked model it is LightGBM's SHAP-style
``pred_contrib``, scaled by the GBM's share of the blend, with the linear
model's share added to ``text_score``.  Either way, contributions plus the baseline equal the
(unclipped) prediction, so the report can show why a wine got its score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.gbm_features import GBM_FEATURES, gbm_frame
from pipeline.model import SgdModel, StackedGbmModel, WineModel

#: Name of the constant part of every prediction.
BASELINE = "baseline"


def contributions(model: WineModel, df: pd.DataFrame) -> pd.DataFrame:
    """Per-row contribution of each feature group, plus the baseline.

    Parameters
    ----------
    model : WineModel
    df : pandas.DataFrame
        Cleaned rows.

    Returns
    -------
    pandas.DataFrame
        One column per feature group and ``baseline``; each row sums to the
        unclipped prediction.
    """
    if isinstance(model, StackedGbmModel):
        text = model.text_model.predict_raw(df)
        raw = model.booster.predict(gbm_frame(df, text), num_iteration=model.best_iteration,
                                    pred_contrib=True)
        gbm_share = 1.0 - model.text_weight
        out = pd.DataFrame(raw[:, :-1] * gbm_share, columns=list(GBM_FEATURES), index=df.index)
        out["text_score"] += model.text_weight * (text - model.target_mean)
        out[BASELINE] = raw[:, -1] * gbm_share + model.target_mean
        return out
    if isinstance(model, SgdModel):
        x = model.spec.transform(df).tocsc()
        weighted = x.multiply(model.estimator.coef_.reshape(1, -1)).tocsc()
        out = {}
        for name, (start, stop) in model.spec.blocks().items():
            out[name] = np.asarray(weighted[:, start:stop].sum(axis=1)).ravel()
        frame = pd.DataFrame(out, index=df.index)
        frame[BASELINE] = float(np.ravel(model.estimator.intercept_)[0]) + model.target_mean
        return frame
    raise TypeError(f"no explanation for {type(model).__name__}")


def importance(contrib: pd.DataFrame) -> pd.DataFrame:
    """Global importance: the mean absolute contribution of each feature group.

    Parameters
    ----------
    contrib : pandas.DataFrame
        :func:`contributions` of the rows to average over (e.g. a sample of the test split).

    Returns
    -------
    pandas.DataFrame
        ``feature`` and ``mean_abs_contribution``, largest first; the baseline left out.
    """
    table = (contrib.drop(columns=BASELINE).abs().mean()
             .rename("mean_abs_contribution").rename_axis("feature"))
    return table.sort_values(ascending=False).reset_index()
