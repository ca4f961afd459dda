"""Every kind of bad input: a clear error or a counted reject, never a silent loss."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import read_split, run_cli
from pipeline.schema import SchemaError
from pipeline.steps.make_dataset import make_dataset
from pipeline.steps.predict import predict


@pytest.fixture()
def good(sample_csv) -> pd.DataFrame:
    return pd.read_csv(sample_csv, index_col=0).head(300)


def lines_of(df: pd.DataFrame) -> list[str]:
    return df.to_csv().splitlines()


def total(stats: dict) -> int:
    return stats["train"] + stats["valid"] + stats["test"] + stats["rejected"]


def test_empty_file_is_named(tmp_path, client):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(SchemaError, match="empty"):
        make_dataset(path, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_file_that_is_not_csv(tmp_path):
    path = tmp_path / "image.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    result = run_cli("make-dataset", "--in-csv", str(path), "--out-dir", str(tmp_path / "ds"))
    assert result.returncode != 0
    assert "not a CSV file: it looks like a PNG image" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ds").exists()


def test_rows_with_the_wrong_number_of_fields_are_rejects(tmp_path, client, good):
    lines = lines_of(good)
    lines[10] = lines[10] + ",surplus,fields"
    lines[20] = "12345,France,too short"
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    stats = make_dataset(path, tmp_path / "ds", blocksize="20KB")
    assert total(stats) == 300
    rejects = read_split(tmp_path / "ds", "rejects")
    reasons = sorted(rejects["reject_reason"])
    assert len(reasons) == 2
    assert reasons[0].startswith("wrong number of fields (16, expected 14)")
    assert reasons[1].startswith("wrong number of fields (3, expected 14)")


def test_absurd_prices_and_points(tmp_path, client, good):
    df = good.astype({"price": "object", "points": "object"})
    df.iloc[0, df.columns.get_loc("price")] = "-10"
    df.iloc[1, df.columns.get_loc("price")] = "1e9"
    df.iloc[2, df.columns.get_loc("price")] = "cheap"
    df.iloc[3, df.columns.get_loc("points")] = "79"
    df.iloc[4, df.columns.get_loc("points")] = ""
    path = tmp_path / "absurd.csv"
    df.to_csv(path)
    stats = make_dataset(path, tmp_path / "ds")
    assert stats["rejected"] == 5 and total(stats) == 300
    assert stats["reason:price outside 0-100000"] == 2
    assert stats["reason:price not a number"] == 1
    assert stats["reason:points outside 80-100"] == 1
    assert stats["reason:points missing or not a number"] == 1


def test_invalid_utf8_is_replaced_not_fatal(tmp_path, client, good):
    path = tmp_path / "latin1.csv"
    data = "\n".join(lines_of(good)).encode("utf-8")
    data = data.replace("Rosé".encode(), b"Ros\xe9", 1)  # a Latin-1 byte, invalid UTF-8
    assert b"\xe9" in data
    path.write_bytes(data + b"\n")
    stats = make_dataset(path, tmp_path / "ds")
    assert stats["rejected"] == 0 and total(stats) == 300
    rows = pd.concat(read_split(tmp_path / "ds", s) for s in ("train", "valid", "test"))
    assert rows["title"].str.contains("Ros\ufffd").any()


def test_exact_duplicates_are_kept_in_one_split(tmp_path, client, good):
    df = pd.concat([good, good.head(50)])
    path = tmp_path / "dups.csv"
    df.to_csv(path)
    stats = make_dataset(path, tmp_path / "ds")
    assert total(stats) == 350 and stats["rejected"] == 0
    rows = pd.concat(read_split(tmp_path / "ds", s).assign(split=s)
                     for s in ("train", "valid", "test"))
    assert rows["id"].is_unique  # each record its own id, copies included
    assert (rows.groupby("source_id")["split"].nunique() == 1).all()
    assert rows["source_id"].value_counts().max() == 2


def test_a_one_megabyte_description(tmp_path, client, good, model_path):
    df = good.copy()
    df.iloc[0, df.columns.get_loc("description")] = "Rich dark fruit. " * 62_000  # ~1 MB
    path = tmp_path / "huge.csv"
    df.to_csv(path)
    stats = make_dataset(path, tmp_path / "ds")
    assert stats["rejected"] == 0 and total(stats) == 300
    out = tmp_path / "pred.csv"
    predict(model_path, path, out)
    scored = pd.read_csv(out)
    assert scored["predicted_points"].between(80, 100).all()


def test_predict_marks_bad_rows_and_scores_the_rest(tmp_path, client, good, model_path):
    df = good.drop(columns="points").astype({"price": "object"})
    df.iloc[5, df.columns.get_loc("price")] = "-3"
    df.iloc[6, df.columns.get_loc("description")] = None
    lines = lines_of(df)
    lines[8] = lines[8] + ",extra"
    path = tmp_path / "inventory.csv"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "pred.csv"
    result = predict(model_path, path, out)
    scored = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert result == {"rows": 300, "rejected": 3}
    assert len(scored) == 300
    bad = scored[scored["predicted_points"].isna()]
    assert len(bad) == 3
    assert sorted(r.split(" (")[0] for r in bad["reject_reason"]) == [
        "description missing", "price outside 0-100000", "wrong number of fields"]
    assert scored["predicted_points"].notna().sum() == 297
