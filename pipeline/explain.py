"""Global importance of the feature groups, from per-row contributions.

The contributions themselves are the models' own
(:meth:`pipeline.model.WineModel.contributions`): they add up to each
prediction, so their mean absolute size says what drives the model overall.
"""

from __future__ import annotations

import pandas as pd

from pipeline.model import BASELINE


def importance(contrib: pd.DataFrame) -> pd.DataFrame:
    """Global importance: the mean absolute contribution of each feature group.

    Parameters
    ----------
    contrib : pandas.DataFrame
        :meth:`pipeline.model.WineModel.contributions` of the rows to average over (e.g.
        a sample of the test split).

    Returns
    -------
    pandas.DataFrame
        ``feature`` and ``mean_abs_contribution``, largest first; the baseline left out.
    """
    table = (contrib.drop(columns=BASELINE).abs().mean()
             .rename("mean_abs_contribution").rename_axis("feature"))
    return table.sort_values(ascending=False).reset_index()
