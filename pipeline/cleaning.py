"""Cleaning shared by make-dataset and predict.

Types, whitespace, the vintage from the title, and a reason for every row that
cannot be used.
"""

from __future__ import annotations

import datetime
import functools
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.csv_input import PARSE_ERROR, UNDECODABLE
from pipeline.schema import (
    ID_COLUMN,
    INPUT_COLUMNS,
    POINTS_MAX,
    POINTS_MIN,
    PRICE_MAX,
    STRING_COLUMNS,
    TARGET,
)

#: Column of a rejects file that says why the row was set aside.
REASON = "reject_reason"

#: Vintage years accepted from titles.
VINTAGE_MIN = 1900
VINTAGE_MAX = datetime.date.today().year + 1

_YEAR = r"\b((?:19|20)\d{2})\b"

#: Column names a CSV may use for its unnamed index column.
INDEX_ALIASES = ("", "Unnamed: 0", ID_COLUMN)

#: Column of a cleaned data set that keeps the input's own index value, as text.
SOURCE_ID = "source_id"


def id_column_of(columns: list[str]) -> str | None:
    """Name of the CSV's index column, or None when it has none.

    Parameters
    ----------
    columns : list of str
        Header as pandas read it.

    Returns
    -------
    str or None
    """
    for name in INDEX_ALIASES:
        if name in columns:
            return name
    return None


def parse_vintage(title: pd.Series) -> pd.Series:
    """The first plausible year in each title, as float (NaN when none).

    Parameters
    ----------
    title : pandas.Series of str

    Returns
    -------
    pandas.Series of float
    """
    years = pd.to_numeric(title.str.extract(_YEAR, expand=False), errors="coerce")
    return years.where((years >= VINTAGE_MIN) & (years <= VINTAGE_MAX)).astype("float64")


@functools.cache
def _untidy() -> str:
    # RE2 pattern of text that " ".join(v.split()) changes: whitespace other than a
    # single space between words (Python's isspace characters).
    spaces = (chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and c != 32)
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in spaces) + "]|  |^ | $"


def _squash_each(s: pd.Series) -> pd.Series:
    return s.map(lambda v: " ".join(v.split()) or None if isinstance(v, str) else None)


def squash_whitespace(s: pd.Series) -> pd.Series:
    """Each text's words joined by single spaces, ``" ".join(v.split())``; else missing.

    Most texts are tidy already: an Arrow regular expression finds the ones the
    expression would change, and only those go through it, which gives the same
    strings at a fraction of the cost.  Columns holding other values than text take
    the expression row by row.

    Parameters
    ----------
    s : pandas.Series
        Raw text column.

    Returns
    -------
    pandas.Series
        ``string`` dtype; missing where ``s`` is missing, not text, or only whitespace.
    """
    values = s.to_numpy(dtype=object, na_value=None)
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return _squash_each(s).astype("string")
    text = pa.array(values, type=pa.large_string())
    untidy = pc.match_substring_regex(text, _untidy()).fill_null(False)
    rows = np.flatnonzero(untidy.to_numpy(zero_copy_only=False))
    if rows.size:
        values = values.copy()
        values[rows] = [" ".join(values[i].split()) for i in rows]
        text = pa.array(values, type=pa.large_string())
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.large_string()), text)
    out = text.to_pandas(types_mapper=lambda _: pd.StringDtype("pyarrow"))
    out.index = s.index
    return out


def clean_partition(raw: pd.DataFrame, require_points: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Type and tidy one partition of raw CSV rows; set aside those that cannot be used.

    Parameters
    ----------
    raw : pandas.DataFrame
        Rows as read from the CSV, all columns as strings, indexed by their record
        number in the file (see :func:`pipeline.csv_input.parse_block`).
    require_points : bool
        Whether a valid ``points`` (80-100) is required (training data) or
        optional (data to score).

    Returns
    -------
    clean : pandas.DataFrame
        Usable rows: ``id`` (the record number, unique in the file), ``source_id``
        (the file's own index value, when it has an index column), the input
        columns, ``vintage``.
    rejects : pandas.DataFrame
        The other rows, as read, with ``id`` and a ``reject_reason`` column.
    """
    df = raw.drop(columns=[UNDECODABLE], errors="ignore")
    parse_error = df.pop(PARSE_ERROR) if PARSE_ERROR in df.columns else None
    ids = pd.Series(raw.index.to_numpy(dtype="int64"), index=df.index)
    id_col = id_column_of(list(df.columns))
    source_ids = (df.pop(id_col).astype("object").map(
        lambda v: v.strip() or None if isinstance(v, str) else None)
        if id_col is not None else pd.Series(None, index=df.index, dtype="object"))
    for col in INPUT_COLUMNS:
        if col not in df.columns:
            df[col] = None
    reason = pd.Series("", index=df.index, dtype="object")

    def flag(mask: pd.Series, why: str) -> None:
        # Keep the first reason found per row.
        reason[mask & (reason == "")] = why

    strings = {col: squash_whitespace(df[col]) for col in STRING_COLUMNS}

    if parse_error is not None:
        unparsed = parse_error.fillna("") != ""
        reason[unparsed] = parse_error[unparsed]
    flag(strings["description"].isna(), "description missing")

    price_raw = df["price"].astype("object").map(
        lambda v: v.strip() if isinstance(v, str) else v
    )
    price = pd.to_numeric(price_raw.replace("", None), errors="coerce").astype("float64")
    flag(price.isna() & price_raw.notna() & (price_raw != ""), "price not a number")
    flag((price < 0) | (price > PRICE_MAX), f"price outside 0-{PRICE_MAX:g}")

    points_raw = df[TARGET].astype("object").map(
        lambda v: v.strip() if isinstance(v, str) else v
    )
    points = pd.to_numeric(points_raw.replace("", None), errors="coerce").astype("float64")
    if require_points:
        flag(points.isna(), "points missing or not a number")
    else:
        flag(points.isna() & points_raw.notna() & (points_raw != ""), "points not a number")
    flag((points < POINTS_MIN) | (points > POINTS_MAX),
         f"points outside {POINTS_MIN}-{POINTS_MAX}")

    clean = pd.DataFrame({ID_COLUMN: ids, SOURCE_ID: source_ids}, index=df.index)
    for col in INPUT_COLUMNS:
        clean[col] = strings[col] if col in strings else None
    clean[TARGET] = points
    clean["price"] = price
    clean["vintage"] = parse_vintage(clean["title"].fillna("").astype("object"))

    bad = reason != ""
    # Explicit string types, so every Parquet piece has the same schema even when
    # a column is empty in one partition.
    rejects = raw[bad].drop(columns=[PARSE_ERROR, UNDECODABLE], errors="ignore")
    rejects = rejects.astype("string")
    rejects.insert(0, ID_COLUMN, ids[bad].astype("int64"))
    rejects[REASON] = reason[bad].astype("string")
    clean = clean[~bad].copy()
    clean[ID_COLUMN] = clean[ID_COLUMN].astype("int64")
    text = [SOURCE_ID, *STRING_COLUMNS]
    clean[text] = clean[text].astype("string")
    return clean, rejects
