"""Cleaning of one partition, without a cluster: whitespace, numbers, reasons, ids."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from pipeline.cleaning import REASON, clean_partition, squash_whitespace
from pipeline.schema import STRING_COLUMNS

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
