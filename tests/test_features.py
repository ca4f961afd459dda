"""FeatureSpec on a few hand-made rows: its fitted scaling, and the matrix group by group.

tests/test_hashing.py compares the compiled hashing with scikit-learn on the sample
and on hostile text; here the matrix itself is read, group by group, and the
scaling's fit checked (whole, by parts, from sums, and recorded as JSON).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from test_hashing import assert_same_csr, with_scaling

from benchmarks.sklearn_features import sklearn_transform
from pipeline import hashing
from pipeline.features import (
    NUMERIC_FEATURES,
    FeatureSpec,
    NumericStats,
    PartitionStats,
    numeric_frame,
    numeric_stats,
    partition_stats,
)
from pipeline.schema import CATEGORY_COLUMNS

#: Scaling as training would learn it, and a numeric weight that is not 1.
MEAN = [3.0, 9.0, 0.25, 2013.0, 0.25, 1.5]
STD = [0.5, 3.0, 0.5, 2.0, 0.5, 0.5]

SPEC = with_scaling(FeatureSpec(text_features=2**8, char_features=2**8, title_features=2**6,
                                category_features=2**10, bin_features=2**5,
                                numeric_weight=2.0), MEAN, STD)


def rows() -> pd.DataFrame:
    """Four cleaned rows: a full one, one with nothing but a note, an empty note, another."""
    df = pd.DataFrame({
        "description": ["Ripe cherry and firm tannins.", "Ripe, ripe ripe.", "", "Bright."],
        "title": ["Domaine X 2015 Pinot Noir", None, "Z", "Y 2011 Rosso"],
        **{col: [None] * 4 for col in CATEGORY_COLUMNS},
        "points": [91.0, 85.0, 87.0, 88.0],
        "price": [20.0, np.nan, 15.0, 100.0],
        "vintage": [2015.0, np.nan, np.nan, 2011.0],
    })
    df.loc[0, ["country", "variety", "taster_name"]] = ["France", "Pinot Noir", "Anna"]
    df.loc[3, ["country", "winery"]] = ["Italy", "Y"]
    strings = ["description", "title", *CATEGORY_COLUMNS]
    df[strings] = df[strings].astype("string")
    return df


def block(matrix: sp.csr_matrix, name: str) -> np.ndarray:
    start, stop = SPEC.blocks()[name]
    return matrix[:, start:stop].toarray()


@pytest.fixture(scope="module")
def matrix() -> sp.csr_matrix:
    return SPEC.transform(rows())


def test_shape_type_and_groups_cover_the_columns_in_order(matrix):
    assert isinstance(matrix, sp.csr_matrix) and matrix.dtype == np.float32
    assert matrix.shape == (4, SPEC.n_features)
    spans = list(SPEC.blocks().values())
    assert spans[0][0] == 0 and spans[-1][1] == SPEC.n_features
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert list(SPEC.blocks()) == ["description", "description_chars", "title", "category",
                                   "bins", *NUMERIC_FEATURES]
    assert SPEC.n_features == 2**8 + 2**8 + 2**6 + 2**10 + 2**5 + len(NUMERIC_FEATURES)


def test_text_groups_are_l2_normalised_then_weighted(matrix):
    norms = {name: np.linalg.norm(block(matrix, name), axis=1)
             for name in ("description", "description_chars", "title")}
    np.testing.assert_allclose(norms["description"], [1, 1, 0, 1], rtol=1e-6)  # "" is empty
    np.testing.assert_allclose(norms["description_chars"],
                               np.array([1, 1, 0, 1]) * SPEC.char_weight, rtol=1e-6)
    # No title, and the title "Z": a one-letter word is no token (scikit-learn's pattern).
    np.testing.assert_allclose(norms["title"], np.array([1, 0, 0, 1]) * SPEC.title_weight,
                               rtol=1e-6)
    # "Ripe, ripe ripe.": the word "ripe" three times and the bigram "ripe ripe" twice,
    # lower-cased and counted before the normalisation.
    row = block(matrix, "description")[1]
    assert sorted(row[row > 0]) == pytest.approx([2 / np.sqrt(13), 3 / np.sqrt(13)])
    assert np.flatnonzero(row).tolist() == sorted(
        SPEC.text_term_index(["ripe", "ripe ripe"]).tolist())


def test_categories_are_column_value_tokens_of_the_present_values(matrix):
    categories = block(matrix, "category")
    for i, tokens in ((0, ["country=France", "variety=Pinot Noir", "taster_name=Anna"]),
                      (1, []), (3, ["country=Italy", "winery=Y"])):
        expected = np.zeros(SPEC.category_features)
        np.add.at(expected, hashing.hash_tokens(tokens, SPEC.category_features), 1.0)
        np.testing.assert_allclose(categories[i], expected * SPEC.category_weight, rtol=1e-6)


def test_every_row_has_three_band_tokens(matrix):
    # Price band, length band and critic within price band, whatever is missing.
    np.testing.assert_allclose(block(matrix, "bins").sum(axis=1), [3 * SPEC.bin_weight] * 4,
                               rtol=1e-6)


def test_numbers_are_scaled_weighted_and_missing_values_take_the_mean(matrix):
    got = {name: block(matrix, name)[:, 0] for name in NUMERIC_FEATURES}
    mean, std = dict(zip(NUMERIC_FEATURES, MEAN, strict=True)), dict(
        zip(NUMERIC_FEATURES, STD, strict=True))

    def scaled(name: str, raw) -> np.ndarray:
        return ((np.asarray(raw, dtype="float64") - mean[name]) / std[name] * 2.0).astype(
            np.float32)

    log_price = np.log1p([20.0, 15.0, 100.0])
    np.testing.assert_allclose(got["log_price"][[0, 2, 3]], scaled("log_price", log_price),
                               rtol=1e-6)
    np.testing.assert_allclose(got["log_price_sq"][[0, 2, 3]],
                               scaled("log_price_sq", log_price**2), rtol=1e-6)
    # A missing price or vintage is the training mean (0 once scaled), and its flag says so.
    assert got["log_price"][1] == got["log_price_sq"][1] == 0.0
    assert got["vintage"][1] == got["vintage"][2] == 0.0
    np.testing.assert_allclose(got["price_missing"], scaled("price_missing", [0, 1, 0, 0]))
    np.testing.assert_allclose(got["vintage"][[0, 3]], scaled("vintage", [2015, 2011]))
    np.testing.assert_allclose(got["vintage_missing"], scaled("vintage_missing", [0, 1, 1, 0]))
    np.testing.assert_allclose(got["log_description_words"],
                               scaled("log_description_words", np.log1p([5, 3, 0, 1])),
                               rtol=1e-6)
    raw = numeric_frame(rows())
    assert raw["log_price"].isna().tolist() == [False, True, False, False]  # NaN until filled


def test_each_row_is_transformed_on_its_own(matrix):
    df = rows()
    alone = sp.vstack([SPEC.transform(df.iloc[[i]]) for i in range(len(df))], format="csr")
    assert (alone != matrix).nnz == 0
    reordered = SPEC.transform(df.iloc[::-1])
    assert (reordered != matrix[::-1]).nnz == 0


def test_equals_the_scikit_learn_reference_on_these_rows(matrix):
    assert_same_csr(matrix, sklearn_transform(SPEC, rows()))


# --- the fitted scaling ------------------------------------------------------------------

def test_fit_learns_the_mean_and_std_of_the_present_values():
    df = rows()
    spec = FeatureSpec().fit(df)
    raw = numeric_frame(df)
    np.testing.assert_allclose(spec.numeric_mean_, raw.mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(spec.numeric_std_, raw.std(ddof=0).to_numpy(), rtol=1e-12)
    assert spec.numeric_stats_.count.tolist() == [3, 3, 4, 2, 4, 4]  # NaN left out


def test_a_constant_or_empty_feature_gets_std_one():
    df = rows().iloc[[1]]  # no price, no vintage, one row
    spec = FeatureSpec().fit(df)
    assert spec.numeric_std_.tolist() == [1.0] * len(NUMERIC_FEATURES)
    assert spec.numeric_mean_[NUMERIC_FEATURES.index("log_price")] == 0.0


def test_partial_fit_of_the_parts_is_fit_on_the_whole():
    df = rows()
    whole = FeatureSpec().fit(df)
    parts = FeatureSpec().partial_fit(df.iloc[:1]).partial_fit(df.iloc[1:3])
    parts.partial_fit(df.iloc[3:])
    assert np.array_equal(parts.numeric_stats_.count, whole.numeric_stats_.count)
    np.testing.assert_allclose(parts.numeric_mean_, whole.numeric_mean_, rtol=1e-12)
    np.testing.assert_allclose(parts.numeric_std_, whole.numeric_std_, rtol=1e-12)
    # Exactly what train computes from the sums of each part, added in order.
    sums = [numeric_stats(numeric_frame(p)) for p in (df.iloc[:1], df.iloc[1:3], df.iloc[3:])]
    merged = FeatureSpec().fit_stats(sum(sums, NumericStats.zeros()))
    assert np.array_equal(parts.numeric_mean_, merged.numeric_mean_)
    assert np.array_equal(parts.numeric_std_, merged.numeric_std_)
    # fit starts again: it forgets what partial_fit saw.
    assert np.array_equal(parts.fit(df.iloc[:2]).numeric_mean_,
                          FeatureSpec().fit(df.iloc[:2]).numeric_mean_)


def test_the_transform_of_an_unfitted_spec_is_refused():
    with pytest.raises(NotFittedError, match="fit it on the training rows"):
        FeatureSpec().transform(rows())


def test_partition_stats_add_up_and_survive_json():
    df = rows()
    a, b = partition_stats(df.iloc[:2]), partition_stats(df.iloc[2:])
    total = sum([a, b], PartitionStats.zeros())
    assert total.rows == 4 and total.y_sum == pytest.approx(df["points"].sum())
    whole = partition_stats(df)
    for name in ("count", "sum", "sumsq"):
        np.testing.assert_allclose(getattr(total.numeric, name), getattr(whole.numeric, name))
    back = PartitionStats.from_json(whole.to_json())
    assert (back.rows, back.y_sum) == (whole.rows, whole.y_sum)
    for name in ("count", "sum", "sumsq"):
        assert np.array_equal(getattr(back.numeric, name), getattr(whole.numeric, name))
    other = {**whole.to_json(), "features": list(NUMERIC_FEATURES[:-1])}
    assert PartitionStats.from_json(other) is None  # made with other numeric features
