from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import read_split, run_cli
from pipeline.distributed.csv_blocks import read_csv_blocks
from pipeline.features import PartitionStats, partition_stats
from pipeline.schema import REQUIRED_FOR_TRAINING, SchemaError
from pipeline.steps.make_dataset import TooManyRejects, make_dataset


def test_counts_add_up_and_splits_are_80_10_10(dataset_dir, sample_csv):
    stats = json.loads((dataset_dir / "stats.json").read_text())
    n_input = len(pd.read_csv(sample_csv))
    assert stats["input"] == n_input
    sizes = {s: len(read_split(dataset_dir, s)) for s in ("train", "valid", "test")}
    assert sum(sizes.values()) + stats["rejected"] == n_input
    assert {s: stats[s] for s in sizes} == sizes
    assert 0.75 < sizes["train"] / n_input < 0.85
    assert 0.07 < sizes["test"] / n_input < 0.13
    assert (dataset_dir / "_SUCCESS").is_file()


def test_each_csv_block_is_one_file_in_every_split(dataset_dir, sample_csv):
    # blocksize=1MB on a 2.4 MB file: the work really was split into partitions.
    folders = ("train", "valid", "test", "rejects")
    names = {s: sorted(p.name for p in (dataset_dir / s).glob("*.parquet")) for s in folders}
    files = names["train"]
    assert len(files) >= 3 and all(found == files for found in names.values())
    # File i holds one run of records, the next file the run after it: together, every
    # record of the CSV exactly once.
    runs = [np.sort(np.concatenate([pd.read_parquet(dataset_dir / s / name)["id"].to_numpy()
                                    for s in folders])) for name in files]
    assert all(len(run) and np.array_equal(run, np.arange(run[0], run[-1] + 1)) for run in runs)
    assert np.array_equal(np.concatenate(runs), np.arange(len(pd.read_csv(sample_csv))))


def test_training_statistics_are_recorded_per_file(dataset_dir):
    # train relies on these instead of reading the split once more: they must be
    # exactly what the files hold.
    recorded = json.loads((dataset_dir / "train_stats.json").read_text())["partitions"]
    files = sorted((dataset_dir / "train").glob("*.parquet"))
    assert sorted(recorded) == [f.name for f in files]
    for f in files:
        expected = partition_stats(pd.read_parquet(f))
        got = PartitionStats.from_json(recorded[f.name])
        assert got.rows == expected.rows > 0
        assert got.y_sum == pytest.approx(expected.y_sum)
        for key in ("count", "sum", "sumsq"):
            np.testing.assert_allclose(getattr(got.numeric, key), getattr(expected.numeric, key))


def test_cleaned_types_and_vintage(dataset_dir):
    train = read_split(dataset_dir, "train")
    assert train["points"].between(80, 100).all()
    assert train["id"].is_unique
    assert train["vintage"].dropna().between(1900, 2030).all()
    assert train["vintage"].notna().mean() > 0.9
    assert not train["description"].str.contains("  ").any()


def test_no_review_in_two_splits(dataset_dir):
    seen = {}
    for split in ("train", "valid", "test"):
        for text in read_split(dataset_dir, split)["description"]:
            key = " ".join(text.lower().split())
            assert seen.setdefault(key, split) == split, f"review in {seen[key]} and {split}"


def test_split_is_deterministic_and_stable_as_data_grows(tmp_path, client, sample_csv):
    full = pd.read_csv(sample_csv, index_col=0)
    half = tmp_path / "half.csv"
    full.iloc[: len(full) // 2].to_csv(half)
    make_dataset(half, tmp_path / "a", blocksize="256KB")
    make_dataset(half, tmp_path / "b", blocksize="1MB")
    make_dataset(sample_csv, tmp_path / "full", blocksize="1MB")

    def split_of(d):
        return pd.concat(
            read_split(d, s).assign(split=s)[["id", "split"]] for s in ("train", "valid", "test")
        ).set_index("id")["split"].sort_index()

    a, b, grown = split_of(tmp_path / "a"), split_of(tmp_path / "b"), split_of(tmp_path / "full")
    pd.testing.assert_series_equal(a, b)  # partitioning does not matter
    pd.testing.assert_series_equal(grown.loc[a.index], a)  # more data moves no row


def test_duplicates_share_a_split(tmp_path, client, sample_csv):
    df = pd.read_csv(sample_csv, index_col=0).head(400)
    dup = pd.concat([df, df.assign(title=df["title"] + " ")])  # same review twice
    dup.index = range(len(dup))
    path = tmp_path / "dup.csv"
    dup.to_csv(path)
    make_dataset(path, tmp_path / "ds")
    splits = pd.concat(read_split(tmp_path / "ds", s).assign(split=s)
                       for s in ("train", "valid", "test"))
    assert len(splits) == 800
    assert (splits.groupby("description")["split"].nunique() == 1).all()


def test_bad_rows_are_set_aside_with_a_reason(tmp_path, client, sample_csv):
    df = pd.read_csv(sample_csv, index_col=0).head(200).astype({"points": "object",
                                                                "price": "object"})
    df.iloc[0, df.columns.get_loc("points")] = "ninety"
    df.iloc[1, df.columns.get_loc("points")] = 120
    df.iloc[2, df.columns.get_loc("price")] = -5
    df.iloc[3, df.columns.get_loc("description")] = None
    path = tmp_path / "bad.csv"
    df.to_csv(path)
    stats = make_dataset(path, tmp_path / "ds")
    assert stats["rejected"] == 4
    assert stats["train"] + stats["valid"] + stats["test"] == 196
    rejects = read_split(tmp_path / "ds", "rejects")
    assert sorted(rejects["reject_reason"]) == sorted([
        "points missing or not a number", "points outside 80-100", "price outside 0-100000",
        "description missing"])


def test_too_many_rejects_fails_and_writes_nothing(tmp_path, client, sample_csv):
    df = pd.read_csv(sample_csv, index_col=0).head(100)
    df["points"] = "n/a"
    path = tmp_path / "bad.csv"
    df.to_csv(path)
    with pytest.raises(TooManyRejects, match="unusable"):
        make_dataset(path, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_missing_column_names_it(tmp_path, client, sample_csv):
    path = tmp_path / "nopoints.csv"
    pd.read_csv(sample_csv, index_col=0).head(50).drop(columns="points").to_csv(path)
    with pytest.raises(SchemaError, match="'points'"):
        make_dataset(path, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_cli_missing_column_exits_non_zero(tmp_path, sample_csv):
    path = tmp_path / "nodesc.csv"
    pd.read_csv(sample_csv, index_col=0).head(50).drop(columns="description").to_csv(path)
    out = tmp_path / "ds"
    result = run_cli("make-dataset", "--in-csv", str(path), "--out-dir", str(out))
    assert result.returncode != 0
    assert "missing required column(s) 'description'" in result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".ds*"))  # no temporary left behind


def test_cli_on_the_real_sample(tmp_path, sample_csv):
    out = tmp_path / "ds"
    result = run_cli("make-dataset", "--in-csv", str(sample_csv), "--out-dir", str(out),
                     "--blocksize", "1MB")
    assert result.returncode == 0, result.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["train"] + stats["valid"] + stats["test"] + stats["rejected"] == stats["input"]


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("blocksize", ["300kB", "1MB", "32MB"])
def test_blocks_share_out_evenly_over_the_workers(client, sample_csv, workers, blocksize):
    # The blocks are scanned on the cluster.
    parts = read_csv_blocks(client, sample_csv, REQUIRED_FOR_TRAINING, blocksize=blocksize,
                            workers=workers)
    assert len(parts) >= 2 * workers
    assert len(parts) % workers == 0
    # No row lost or doubled at the cuts.
    assert sum(len(p.compute()) for p in parts) == len(pd.read_csv(sample_csv))
