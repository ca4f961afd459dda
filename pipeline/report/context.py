"""The report's input: the context directory written by the ``evaluate`` step.

The directory holds:

``predictions.parquet``
    One row per test review (a capped, evenly spread sample when the test
    split is huge): ``points`` and ``predicted_points`` are needed; ``id``,
    ``lower``/``upper`` (the 80% prediction interval), ``baseline_mean``,
    ``baseline_price``, ``price``, ``country``, ``province``, ``variety``,
    ``winery``, ``taster_name``, ``title`` and ``description`` are used when
    present (missing values are fine).
``metrics.json``
    ``model`` (``name``, ``mae`` ... ``interval_coverage``), ``baselines``
    (``mean``, ``price_only``), ``rows`` and ``model_info``.
``word_weights.csv`` (optional)
    ``term``, ``weight``: the words that push a prediction up or down.
``importance.csv`` (optional, may be empty)
    ``feature``, ``mean_abs_contribution``: global importance of each
    feature group, in points.
``explained.csv`` (optional, may be empty)
    Long table of a few wines: ``id``, ``title``, ``points``,
    ``predicted_points``, ``feature``, ``contribution``; a wine's
    contributions plus its ``baseline`` row add up to its prediction.

Absent or empty optional files give empty tables; a file with rows but
without a needed column is a :class:`pipeline.schema.SchemaError` naming it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.schema import SchemaError

#: Environment variable through which the template finds its context directory.
CONTEXT_ENV = "WINE_REPORT_CONTEXT"

PREDICTIONS_FILE = "predictions.parquet"
METRICS_FILE = "metrics.json"
WORD_WEIGHTS_FILE = "word_weights.csv"
IMPORTANCE_FILE = "importance.csv"
EXPLAINED_FILE = "explained.csv"

#: Columns ``predictions.parquet`` must have.
REQUIRED_PREDICTION_COLUMNS: tuple[str, ...] = ("points", "predicted_points")
#: Text columns of ``predictions.parquet`` the report reads when present.
TEXT_PREDICTION_COLUMNS: tuple[str, ...] = (
    "country", "province", "variety", "winery", "taster_name", "title", "description",
)
#: Columns of ``predictions.parquet`` the report reads when present.
REPORT_PREDICTION_COLUMNS: tuple[str, ...] = (
    "id", "points", "predicted_points", "lower", "upper", "baseline_mean", "baseline_price",
    "price", *TEXT_PREDICTION_COLUMNS,
)
#: Columns of each optional table, with their kind (``"str"`` or ``"float"``).
OPTIONAL_TABLES: dict[str, dict[str, str]] = {
    WORD_WEIGHTS_FILE: {"term": "str", "weight": "float"},
    IMPORTANCE_FILE: {"feature": "str", "mean_abs_contribution": "float"},
    EXPLAINED_FILE: {"id": "str", "title": "str", "points": "float",
                     "predicted_points": "float", "feature": "str", "contribution": "float"},
}


@dataclass(frozen=True)
class ReportContext:
    """Everything the report shows, read from a context directory.

    Attributes
    ----------
    predictions : pandas.DataFrame
        Test rows with every column of :data:`REPORT_PREDICTION_COLUMNS`
        (absent optional ones are filled with missing values).
    metrics : dict
        Content of ``metrics.json``.
    word_weights : pandas.DataFrame
        Columns ``term`` and ``weight``; empty when the file is absent.
    importance : pandas.DataFrame
        Columns ``feature`` and ``mean_abs_contribution``; may be empty.
    explained : pandas.DataFrame
        Columns ``id``, ``title``, ``points``, ``predicted_points``,
        ``feature`` and ``contribution``; may be empty.
    """

    predictions: pd.DataFrame
    metrics: dict[str, Any]
    word_weights: pd.DataFrame
    importance: pd.DataFrame
    explained: pd.DataFrame


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.dataset as ds

    return list(ds.dataset(path, format="parquet").schema.names)


def _empty_table(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="string" if kind == "str" else float)
                         for name, kind in columns.items()})


def read_optional_table(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    """Read an optional CSV table of the context directory.

    Parameters
    ----------
    path : pathlib.Path
        The CSV file; it may be absent, empty (no bytes) or hold only a header.
    columns : dict
        Needed column names and their kind, ``"str"`` or ``"float"``.

    Returns
    -------
    pandas.DataFrame
        The needed columns (extra ones are kept), empty when there are no rows.
        ``"str"`` columns are of dtype ``string``, ``"float"`` ones numeric
        (unreadable numbers become NaN).

    Raises
    ------
    pipeline.schema.SchemaError
        If the file has rows but lacks a needed column.
    """
    if not path.exists() or path.stat().st_size == 0:
        return _empty_table(columns)
    try:
        table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:  # whitespace only
        return _empty_table(columns)
    if table.empty:
        return _empty_table(columns)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SchemaError(f"{path} lacks column(s) {', '.join(missing)}"
                          f" (has: {', '.join(map(str, table.columns))})")
    for name, kind in columns.items():
        table[name] = (table[name].astype("string") if kind == "str"
                       else pd.to_numeric(table[name], errors="coerce").astype(float))
    return table


def check_context(context_dir: str | os.PathLike) -> None:
    """Check a context directory cheaply, before a kernel is started.

    Parameters
    ----------
    context_dir : path-like
        Directory written by the ``evaluate`` step.

    Raises
    ------
    FileNotFoundError
        If the directory, ``predictions.parquet`` or ``metrics.json`` is missing.
    pipeline.schema.SchemaError
        If a required prediction column is missing, ``metrics.json`` has
        no ``model`` section, or ``importance.csv``/``explained.csv`` has rows
        but lacks a column.
    """
    context = Path(context_dir)
    if not context.is_dir():
        raise FileNotFoundError(f"report context directory not found: {context}")
    for name in (PREDICTIONS_FILE, METRICS_FILE):
        if not (context / name).exists():
            raise FileNotFoundError(f"report context {context} lacks {name}")
    columns = _parquet_columns(context / PREDICTIONS_FILE)
    missing = [c for c in REQUIRED_PREDICTION_COLUMNS if c not in columns]
    if missing:
        raise SchemaError(
            f"{context / PREDICTIONS_FILE} lacks column(s) {', '.join(missing)}"
            f" (has: {', '.join(columns)})"
        )
    metrics = json.loads((context / METRICS_FILE).read_text(encoding="utf-8"))
    if not isinstance(metrics, dict) or not isinstance(metrics.get("model"), dict):
        raise SchemaError(f"{context / METRICS_FILE} has no 'model' section")
    for name in (IMPORTANCE_FILE, EXPLAINED_FILE):  # small files: cheap to read twice
        read_optional_table(context / name, OPTIONAL_TABLES[name])


def load_context(context_dir: str | os.PathLike | None = None) -> ReportContext:
    """Read a context directory.

    Parameters
    ----------
    context_dir : path-like, optional
        Directory written by the ``evaluate`` step; defaults to the value of
        the :data:`CONTEXT_ENV` environment variable.

    Returns
    -------
    ReportContext
        Predictions, metrics, word weights, importances and explained wines.

    Raises
    ------
    KeyError
        If no directory is given and :data:`CONTEXT_ENV` is not set.
    """
    context = Path(context_dir if context_dir is not None else os.environ[CONTEXT_ENV])
    check_context(context)
    present = _parquet_columns(context / PREDICTIONS_FILE)
    wanted = [c for c in REPORT_PREDICTION_COLUMNS if c in present]
    predictions = pd.read_parquet(context / PREDICTIONS_FILE, columns=wanted)
    for column in REPORT_PREDICTION_COLUMNS:
        if column not in predictions.columns:
            predictions[column] = (pd.Series(pd.NA, index=predictions.index, dtype="string")
                                   if column in TEXT_PREDICTION_COLUMNS else float("nan"))
    metrics = json.loads((context / METRICS_FILE).read_text(encoding="utf-8"))
    tables = {name: read_optional_table(context / name, columns)
              for name, columns in OPTIONAL_TABLES.items()}
    return ReportContext(predictions=predictions, metrics=metrics,
                         word_weights=tables[WORD_WEIGHTS_FILE],
                         importance=tables[IMPORTANCE_FILE], explained=tables[EXPLAINED_FILE])
