"""Cleaning of one partition, without a cluster: whitespace, numbers, reasons, ids."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from pipeline.cleaning import (
    REASON,
    SOURCE_ID,
    VINTAGE_MAX,
    clean_partition,
    parse_vintage,
    squash_whitespace,
)
from pipeline.csv_input import PARSE_ERROR, UNDECODABLE
from pipeline.schema import INPUT_COLUMNS, STRING_COLUMNS

#: Every character str.split() splits on, and some look-alikes it does not.
PYTHON_SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
NOT_SPACES = ["\u200b", "\u2060", "\ufeff", "\u180e", "_", "é", "漢", "🍷"]


def by_expression(values: list) -> list:
    # The definition: words joined by single spaces, missing when none.
    return [(" ".join(v.split()) or None) if isinstance(v, str) else None for v in values]


def test_squash_whitespace_equals_the_expression_on_random_text():
    rng = np.random.default_rng(0)
    alphabet = ["a", "b", " ", *PYTHON_SPACES, *NOT_SPACES]
    values = ["".join(rng.choice(alphabet, size=rng.integers(0, 15))) for _ in range(5000)]
    values += [None, np.nan, pd.NA, "", "   ", "tidy words", " lead", "trail ", "a\u3000b"]
    s = pd.Series(values, dtype=object, index=np.arange(len(values)) * 7 + 3)
    got = squash_whitespace(s)
    assert got.index.equals(s.index)
    assert str(got.dtype) == "string"
    assert got.astype(object).where(got.notna(), None).tolist() == by_expression(values)
    assert sum(isinstance(v, str) and v != " ".join(v.split()) for v in values) > 1000


def test_squash_whitespace_of_each_python_space_and_other_values():
    for space in PYTHON_SPACES:
        assert squash_whitespace(pd.Series([f"a{space}{space}b{space}"])).tolist() == ["a b"]
    # Values that are not text are missing, as the expression has them.
    mixed = pd.Series(["x  y", 5, 2.5, b"bytes", None], dtype=object)
    assert squash_whitespace(mixed).isna().tolist() == [False, True, True, True, True]
    assert squash_whitespace(mixed)[0] == "x y"
    assert squash_whitespace(pd.Series([], dtype=object)).empty


def raw_rows(**columns) -> pd.DataFrame:
    # As parse_block gives them: every column text, indexed by record number.
    n = len(next(iter(columns.values())))
    base = {"country": ["France"] * n, "description": ["Ripe fruit."] * n,
            "points": ["90"] * n, "price": ["20"] * n, "title": ["X 2015 Red"] * n,
            "taster_name": ["A B"] * n, "variety": ["Red"] * n, "winery": ["X"] * n}
    base.update(columns)
    return pd.DataFrame(base, dtype=object, index=pd.RangeIndex(10, 10 + n))


def test_clean_partition_types_tidies_and_gives_reasons():
    raw = raw_rows(
        description=["  Ripe\tfruit,\n firm. ", None, "Fine.", "Fine.", "Fine.", "Fine."],
        points=["90", "91", " 87 ", "79", "ninety", "88"],
        price=["20", "15", "", "12", "9", "-3"],
        title=["X 2015 Red", "Y", "Z 1899 and 2011", "W", "V", "U 2101"],
    )
    clean, rejects = clean_partition(raw, require_points=True)
    assert clean["id"].tolist() == [10, 12]
    assert clean["description"].tolist() == ["Ripe fruit, firm.", "Fine."]
    assert clean["points"].tolist() == [90.0, 87.0]
    assert clean["price"].isna().tolist() == [False, True]
    assert clean["vintage"].tolist() == [2015.0, 2011.0]
    assert all(str(clean[c].dtype) == "string" for c in STRING_COLUMNS)
    assert dict(zip(rejects["id"], rejects[REASON], strict=True)) == {
        11: "description missing", 13: "points outside 80-100",
        14: "points missing or not a number", 15: "price outside 0-100000",
    }
    assert len(clean) + len(rejects) == len(raw)


def test_clean_partition_for_scoring_keeps_rows_without_points():
    raw = raw_rows(points=["", None, "x"], description=["A.", "B.", "C."])
    clean, rejects = clean_partition(raw, require_points=False)
    assert clean["id"].tolist() == [10, 11]
    assert clean["points"].isna().all()
    assert rejects[REASON].tolist() == ["points not a number"]


def test_clean_and_rejected_rows_have_fixed_columns_and_types():
    raw = raw_rows(points=["90", "x", "88"], price=["20", "5", None])
    clean, rejects = clean_partition(raw, require_points=True)
    assert list(clean.columns) == ["id", SOURCE_ID, *INPUT_COLUMNS, "vintage"]
    assert clean.index.tolist() == [10, 12]  # the record numbers, as they came
    assert str(clean["id"].dtype) == "int64"
    assert {c: str(clean[c].dtype) for c in ("points", "price", "vintage")} == dict.fromkeys(
        ("points", "price", "vintage"), "float64")
    assert all(str(clean[c].dtype) == "string" for c in (SOURCE_ID, *STRING_COLUMNS))
    # A rejected row is kept as it was read, between its id and its reason.
    assert list(rejects.columns) == ["id", *raw.columns, REASON]
    assert str(rejects["id"].dtype) == "int64" and str(rejects[REASON].dtype) == "string"
    assert rejects.iloc[0][["id", "points", "price", "title"]].tolist() == [11, "x", "5",
                                                                             "X 2015 Red"]


def test_the_record_number_is_the_id_and_the_files_index_is_kept_as_text():
    raw = raw_rows(**{"Unnamed: 0": [" 7 ", None, "  ", "a-12"]})
    clean, rejects = clean_partition(raw, require_points=True)
    assert rejects.empty
    assert clean["id"].tolist() == [10, 11, 12, 13]
    assert clean[SOURCE_ID].tolist() == ["7", pd.NA, pd.NA, "a-12"]
    assert "Unnamed: 0" not in clean.columns
    without_index, _ = clean_partition(raw_rows(points=["90"]), require_points=True)
    assert without_index[SOURCE_ID].isna().all()


def test_a_parse_error_is_the_reason_before_any_other():
    raw = raw_rows(description=["Fine.", None, "Fine."], points=["90", None, "70"])
    raw[PARSE_ERROR] = ["", "wrong number of fields (3, expected 14): a,b,c", ""]
    raw[UNDECODABLE] = [False, False, True]
    clean, rejects = clean_partition(raw, require_points=True)
    assert clean["id"].tolist() == [10]
    assert rejects[REASON].tolist() == ["wrong number of fields (3, expected 14): a,b,c",
                                        "points outside 80-100"]
    # The reader's bookkeeping columns are neither data nor part of a reject.
    for frame in (clean, rejects):
        assert PARSE_ERROR not in frame.columns and UNDECODABLE not in frame.columns


def test_the_first_reason_found_is_given():
    raw = raw_rows(description=[None, "Fine.", "Fine."], points=["x", "120", "x"],
                   price=["20", "cheap", "-1"])
    _, rejects = clean_partition(raw, require_points=True)
    assert rejects[REASON].tolist() == ["description missing", "price not a number",
                                        "price outside 0-100000"]


def test_the_ranges_include_their_ends():
    raw = raw_rows(points=["80", "100", "79.9", "100.5", "85", "85"],
                   price=["0", "100000", "1", "1", "100000.5", " 12.50 "])
    clean, rejects = clean_partition(raw, require_points=True)
    assert clean["points"].tolist() == [80.0, 100.0, 85.0]
    assert clean["price"].tolist() == [0.0, 100000.0, 12.5]
    assert rejects[REASON].tolist() == ["points outside 80-100"] * 2 + [
        "price outside 0-100000"]


def test_columns_the_file_lacks_are_missing_text():
    raw = raw_rows(points=["90", "91"]).assign(region_2=None)
    raw = raw.drop(columns=["region_2", "variety"])
    clean, _ = clean_partition(raw, require_points=True)
    for col in ("region_2", "variety", "designation"):
        assert str(clean[col].dtype) == "string" and clean[col].isna().all(), col


def test_an_empty_partition_gives_two_empty_frames_of_the_same_columns():
    some_clean, some_rejects = clean_partition(raw_rows(points=["90", "x"]), require_points=True)
    clean, rejects = clean_partition(raw_rows(points=[]), require_points=True)
    assert clean.empty and rejects.empty
    assert list(clean.columns) == list(some_clean.columns)
    assert list(rejects.columns) == list(some_rejects.columns)
    assert clean.dtypes.astype(str).tolist() == some_clean.dtypes.astype(str).tolist()


def test_scoring_still_rejects_points_outside_the_range():
    clean, rejects = clean_partition(raw_rows(points=["79", "", "95"]), require_points=False)
    assert clean["id"].tolist() == [11, 12]
    assert rejects[REASON].tolist() == ["points outside 80-100"]


def test_vintage_is_a_plausible_year_of_the_title():
    titles = pd.Series(["Wine 2015 Red", "Old 1899 then 2011", "Year 2101", "No year",
                        "Lot 12015", f"Young {VINTAGE_MAX}", f"Future {VINTAGE_MAX + 1}",
                        "Est. 1900", ""])
    got = parse_vintage(titles)
    assert str(got.dtype) == "float64"
    assert got.fillna(-1).tolist() == [2015, 2011, -1, -1, -1, VINTAGE_MAX, -1, 1900, -1]
