"""Tests of the synthetic wine review generator (real code, small sizes)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from pipeline.schema import INPUT_COLUMNS, POINTS_MAX, POINTS_MIN
from synth import BLOCK_ROWS, generate_csv, generate_frame
from synth.generate import _unique_keys

SAMPLE_CSV = Path(__file__).resolve().parents[2] / "shared/data/wine_reviews_sample.csv"

#: sha256 of ``generate_csv(4_000, seed=0)`` and of ``generate_frame(2_000, seed=7,
#: start=BLOCK_ROWS - 1_000).to_csv()``: a change to the generator's logic or tables changes
#: the data every test and benchmark runs on, so it should be deliberate.
PINNED_CSV_SHA256 = "6e68504d348afd078c8b93060bc1d97faa957d20b7479f1c19a145a4e6bfaa48"
PINNED_FRAME_SHA256 = "c12654b5890af5d74ab1742916b74eea1061b6e8aa2317ca7b29e52fa3225583"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_frame(20_000, seed=123)


def test_header_is_the_real_samples_header(tmp_path: Path) -> None:
    if not SAMPLE_CSV.is_file():
        pytest.fail(f"real sample not found at {SAMPLE_CSV}")
    with SAMPLE_CSV.open(encoding="utf-8", newline="") as fh:
        sample_header = fh.readline().rstrip("\r\n")
    out = tmp_path / "synthetic.csv"
    generate_csv(50, seed=1, out_csv=out)
    with out.open(encoding="utf-8", newline="") as fh:
        header = fh.readline().rstrip("\r\n")
    assert header == sample_header
    assert header.startswith(",")  # the unnamed index column
    sample = pd.read_csv(SAMPLE_CSV, index_col=0, nrows=200)
    synthetic = pd.read_csv(out, index_col=0)
    assert list(synthetic.columns) == list(sample.columns) == list(INPUT_COLUMNS)
    assert synthetic["points"].dtype == sample["points"].dtype
    assert synthetic["price"].dtype == sample["price"].dtype


def test_row_count_and_index_are_exact(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "rows.csv"  # the directory is created
    written = generate_csv(2_345, seed=3, out_csv=out, chunk_rows=1_000)
    assert written == 2_345
    back = pd.read_csv(out, index_col=0)
    assert len(back) == 2_345
    assert back.index.tolist() == list(range(2_345))
    # Written atomically: nothing but the final file is left behind.
    assert sorted(p.name for p in out.parent.iterdir()) == [".rows.csv.wine-pipeline", "rows.csv"]


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{name}.csv" for name in "abc")
    generate_csv(3_000, seed=7, out_csv=a)
    generate_csv(3_000, seed=7, out_csv=b)
    generate_csv(3_000, seed=8, out_csv=c)
    assert _sha(a) == _sha(b)
    assert _sha(a) != _sha(c)
    # Not just a different header: most rows differ.
    ra, rc = pd.read_csv(a, index_col=0), pd.read_csv(c, index_col=0)
    assert (ra["description"] != rc["description"]).mean() > 0.99


def test_chunked_output_equals_unchunked(tmp_path: Path) -> None:
    rows = BLOCK_ROWS + 2_345  # crosses an internal block boundary
    whole, chunked, odd = (tmp_path / f"{name}.csv" for name in ("whole", "chunked", "odd"))
    generate_csv(rows, seed=11, out_csv=whole, chunk_rows=rows)
    generate_csv(rows, seed=11, out_csv=chunked, chunk_rows=1_000)
    generate_csv(rows, seed=11, out_csv=odd, chunk_rows=3_333)
    assert _sha(whole) == _sha(chunked) == _sha(odd)


def test_output_is_pinned(tmp_path: Path) -> None:
    out = tmp_path / "pinned.csv"
    generate_csv(4_000, seed=0, out_csv=out, chunk_rows=1_500)
    assert _sha(out) == PINNED_CSV_SHA256
    frame = generate_frame(2_000, seed=7, start=BLOCK_ROWS - 1_000)  # crosses a block
    text = frame.to_csv(lineterminator="\n")
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == PINNED_FRAME_SHA256


def test_frame_with_start_is_a_slice_of_the_whole() -> None:
    whole = generate_frame(1_500, seed=5)
    part = generate_frame(400, seed=5, start=1_000)
    assert part.index.tolist() == list(range(1_000, 1_400))
    pd.testing.assert_frame_equal(part, whole.iloc[1_000:1_400])


def test_points_and_price(frame: pd.DataFrame) -> None:
    points = frame["points"]
    assert points.between(POINTS_MIN, POINTS_MAX).all()
    assert 87.8 < points.mean() < 89.2
    assert 2.5 < points.std() < 3.6
    assert frame["price"].isna().mean() == pytest.approx(0.07, abs=0.015)
    price = frame["price"].dropna()
    assert (price >= 4).all() and (price == price.round()).all()
    assert 18 < price.median() < 35
    # Dearer wines rate better, as in the source (r ~0.6 on log price).
    r = np.corrcoef(np.log(price), points[price.index])[0, 1]
    assert 0.45 < r < 0.75


def test_missing_values_and_categories_look_like_the_source(frame: pd.DataFrame) -> None:
    missing = frame.isna().mean()
    assert missing["region_2"] == pytest.approx(0.62, abs=0.05)
    assert missing["taster_name"] == pytest.approx(0.19, abs=0.04)
    assert missing["taster_twitter_handle"] >= missing["taster_name"]
    assert missing["designation"] == pytest.approx(0.28, abs=0.05)
    for column in ("description", "title", "variety", "winery"):
        assert missing[column] == 0
    assert frame["country"].value_counts().index[0] == "US"
    assert frame["region_2"].dropna().pipe(lambda s: set(frame.loc[s.index, "country"])) == {"US"}
    assert frame["winery"].nunique() > 5_000
    assert frame["variety"].nunique() > 80


def test_titles_follow_the_source_pattern(frame: pd.DataFrame) -> None:
    starts = [t.startswith(w + " ") for t, w in zip(frame["title"], frame["winery"], strict=True)]
    assert all(starts)
    vintage = frame["title"].str.extract(r" ((?:19|20)\d\d|NV) ", expand=False)
    assert vintage.notna().all()
    assert 0.01 < (vintage == "NV").mean() < 0.08
    with_place = frame["region_1"].notna()
    assert all(
        r in t for t, r in zip(frame.loc[with_place, "title"], frame.loc[with_place, "region_1"],
                               strict=True)
    )


def test_descriptions_have_two_to_five_sentences(frame: pd.DataFrame) -> None:
    words = frame["description"].str.split().str.len()
    assert 34 < words.mean() < 48
    sentences = frame["description"].map(lambda d: len(re.findall(r"[.!?](?:\s|$)", d)))
    assert sentences.min() >= 2
    assert sentences.max() <= 6  # a verdict sentence may add "Pair it with ..."
    assert frame["description"].nunique() == len(frame)


def test_description_words_carry_signal(frame: pd.DataFrame) -> None:
    vectorizer = HashingVectorizer(n_features=2**18, alternate_sign=False)
    x = vectorizer.transform(frame["description"])
    y = frame["points"].to_numpy(dtype=float)
    split = 16_000
    model = Ridge(alpha=1.0).fit(x[:split], y[:split])
    r2 = r2_score(y[split:], model.predict(x[split:]))
    # Learnable, but with irreducible noise (about 0.55 on this size).
    assert 0.3 < r2 < 0.8
    high = frame.loc[frame["points"] >= 93, "description"].str.contains("superb|profound|age")
    low = frame.loc[frame["points"] <= 83, "description"].str.contains("superb|profound|age")
    assert high.mean() > 3 * low.mean()


@pytest.mark.parametrize("rows", [0, -5])
def test_rows_below_one_raise(tmp_path: Path, rows: int) -> None:
    out = tmp_path / "none.csv"
    with pytest.raises(ValueError, match="rows must be >= 1"):
        generate_csv(rows, seed=1, out_csv=out)
    with pytest.raises(ValueError, match="rows must be >= 1"):
        generate_frame(rows, seed=1)
    assert not out.exists()


def test_bad_seed_and_chunk_rows_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seed must be >= 0"):
        generate_csv(10, seed=-1, out_csv=tmp_path / "x.csv")
    with pytest.raises(ValueError, match="chunk_rows must be >= 1"):
        generate_csv(10, seed=1, out_csv=tmp_path / "x.csv", chunk_rows=0)
    with pytest.raises(TypeError, match="rows must be an integer"):
        generate_frame(10.0, seed=1)  # type: ignore[arg-type]


def test_a_repeated_key_in_a_table_is_refused() -> None:
    text = '{"Pinot Noir": 18, "Syrah": 6, "Pinot Noir": 3}'
    with pytest.raises(ValueError, match="repeated key.*Pinot Noir"):
        json.loads(text, object_pairs_hook=_unique_keys)
