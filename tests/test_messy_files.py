"""Messy real files: nothing of the user's touched, no row lost or invented, one-line errors."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import pickle
import random
import subprocess
import zipfile
from pathlib import Path

import dask
import joblib
import numpy as np
import pandas as pd
import pytest

from conftest import read_split, run_cli
from pipeline.atomic import NotOurs
from pipeline.distributed.csv_blocks import read_csv_blocks
from pipeline.schema import INPUT_COLUMNS, REQUIRED_FOR_TRAINING
from pipeline.steps.download import download
from pipeline.steps.make_dataset import make_dataset
from pipeline.steps.predict import predict
from synth import generate_frame

SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def sample(sample_csv) -> pd.DataFrame:
    return pd.read_csv(sample_csv, index_col=0, dtype=str, keep_default_na=False)


def cell(value: str) -> str:
    """A CSV field, quoted only where it must be: a quote inside a field stays bare."""
    if value == "" or not any(c in value for c in ',\r\n') and not value.startswith('"'):
        return value
    return '"' + value.replace('"', '""') + '"'


def write_messy(df: pd.DataFrame, path: Path, seed: int, newline: str = "\n",
                index: bool = True, stray_quotes: bool = True) -> int:
    """Write ``df`` with line breaks in 30% of the descriptions, bare quotes inside some
    unquoted fields, and blank and blank-only lines; returns the number of records."""
    rng = random.Random(seed)
    header = ([""] if index else []) + list(df.columns)
    lines = [",".join(header)]
    for idx, row in zip(df.index, df.itertuples(index=False), strict=True):
        values = list(row)
        desc = df.columns.get_loc("description")
        if rng.random() < 0.3:
            values[desc] = values[desc].replace(". ", rng.choice([".\n", ".\r\n", ".\n\n"]), 2)
        if stray_quotes and rng.random() < 0.05:
            values[df.columns.get_loc("designation")] = 'Magnum 12" Reserve'
        lines.append(",".join(([str(idx)] if index else []) + [cell(v) for v in values]))
        if rng.random() < 0.01:
            lines.append(rng.choice(["", "   ", "\t"]))
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    return len(df)


def parsed(parts) -> pd.DataFrame:
    return pd.concat(dask.compute(*parts))


def dataset_rows(ds: Path) -> pd.DataFrame:
    return pd.concat(read_split(ds, s).assign(split=s) for s in SPLITS).sort_values("id")


# ------------------------------------------------------------------ 2. quoted newlines
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_records_across_block_edges_are_never_lost_or_invented(tmp_path, client, sample,
                                                               newline):
    path = tmp_path / "messy.csv"
    n = write_messy(sample, path, seed=len(newline), newline=newline)
    plain = pd.read_csv(path, index_col=0, dtype=str, keep_default_na=False)
    assert len(plain) == n  # what pandas reads from the whole file at once
    for blocksize in ("20KB", "64KB", "1MB", "32MB"):
        for workers in (1, 2, 3):
            parts = read_csv_blocks(client, path, REQUIRED_FOR_TRAINING, blocksize=blocksize,
                                    workers=workers)
            rows = parsed(parts)
            where = f"blocksize {blocksize}, {workers} workers, {len(parts)} blocks"
            assert len(rows) == n, where
            assert rows.index.tolist() == list(range(n)), where
            assert (rows["_parse_error"] == "").all(), where
            got = rows[list(INPUT_COLUMNS)].fillna("").to_numpy()
            assert (got == plain[list(INPUT_COLUMNS)].to_numpy()).all(), where


def test_make_dataset_and_predict_on_line_breaks_inside_descriptions(tmp_path, client, sample,
                                                                     sample_csv, model_path):
    path = tmp_path / "messy.csv"
    n = write_messy(sample, path, seed=3, stray_quotes=False)
    clean = tmp_path / "clean"
    make_dataset(sample_csv, clean, blocksize="300KB")
    for blocksize in ("300KB", "32MB"):
        out = tmp_path / f"ds-{blocksize}"
        stats = make_dataset(path, out, blocksize=blocksize)
        assert stats["input"] == n
        assert not any(k.startswith("reason:wrong number") for k in stats)
        got, want = dataset_rows(out), dataset_rows(clean)
        # Line breaks are whitespace: the cleaned rows, ids and splits are the sample's.
        pd.testing.assert_frame_equal(
            got[["id", "split", "description"]].reset_index(drop=True),
            want[["id", "split", "description"]].reset_index(drop=True))
    scored = tmp_path / "pred.csv"
    result = predict(model_path, path, scored, blocksize="200KB")
    out = pd.read_csv(scored)
    assert result["rows"] == len(out) == n
    assert out["id"].tolist() == sample.index.astype(int).tolist()  # in line, in order
    reference = tmp_path / "pred-plain.csv"
    predict(model_path, sample_csv, reference)
    assert scored.read_bytes() == reference.read_bytes()


def test_sixty_thousand_rows_with_line_breaks_at_one_megabyte_blocks(tmp_path, client):
    frame = generate_frame(60_000, seed=5)
    frame = frame.astype("object").where(frame.notna(), "").astype(str)
    path = tmp_path / "syn.csv"
    n = write_messy(frame, path, seed=5, index=False)
    stats = make_dataset(path, tmp_path / "ds", blocksize="1MB")
    assert stats["input"] == n == len(pd.read_csv(path))
    assert stats["train"] + stats["valid"] + stats["test"] + stats["rejected"] == n
    assert not any(k.startswith("reason:wrong number") for k in stats)
    ids = dataset_rows(tmp_path / "ds")["id"]
    assert ids.is_unique and ids.max() < n


def test_a_quote_that_is_never_closed_is_named(tmp_path, client, sample):
    path = tmp_path / "unclosed.csv"
    text = sample.head(50).to_csv()
    path.write_text(text + '9999,France,"a description that never ends\n')
    result = run_cli("make-dataset", "--in-csv", str(path), "--out-dir", str(tmp_path / "ds"))
    assert result.returncode == 1
    assert "quoted field" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ds").exists()


# -------------------------------------------------------- 7. ids without an index column
def test_ids_are_unique_without_an_index_column(tmp_path, client, sample):
    path = tmp_path / "noindex.csv"
    sample.to_csv(path, index=False)
    make_dataset(path, tmp_path / "ds", blocksize="200KB")
    rows = dataset_rows(tmp_path / "ds")
    rejects = read_split(tmp_path / "ds", "rejects")
    ids = pd.concat([rows["id"], rejects["id"]])
    assert ids.is_unique
    assert sorted(ids) == list(range(len(sample)))
    assert rows["source_id"].isna().all()


# ----------------------------------------------------------- 1. what the user owns
def test_make_dataset_never_empties_a_folder_of_the_users(tmp_path, client, sample_csv):
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("my notes")
    (out / "sub" / "thesis.docx").write_bytes(b"years of work")
    with pytest.raises(NotOurs, match="notes.txt"):
        make_dataset(sample_csv, out)
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "sub" / "thesis.docx").read_bytes() == b"years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no debris either


def test_the_folder_that_holds_the_input_is_refused(tmp_path, sample):
    folder = tmp_path / "exports"
    folder.mkdir()
    src = folder / "reviews.csv"
    sample.head(100).to_csv(src)
    before = src.read_bytes()
    result = run_cli("make-dataset", "--in-csv", str(src), "--out-dir", str(folder))
    assert result.returncode == 1
    assert "refusing" in result.stderr and "Traceback" not in result.stderr
    assert src.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["reviews.csv"]


def test_an_earlier_data_set_is_replaced_but_not_one_with_the_users_files(tmp_path, client,
                                                                         sample_csv):
    out = tmp_path / "ds"
    make_dataset(sample_csv, out, blocksize="1MB")
    marker = json.loads((out / "_SUCCESS").read_text())
    assert marker["written_by"] == "wine-pipeline" and "stats.json" in marker["files"]
    make_dataset(sample_csv, out, blocksize="600KB")  # ours: replaced
    assert len(list((out / "train").glob("*.parquet"))) > 2
    (out / "train" / "my-annotations.csv").write_text("keep me")
    with pytest.raises(NotOurs, match="my-annotations.csv"):
        make_dataset(sample_csv, out)
    assert (out / "train" / "my-annotations.csv").read_text() == "keep me"


@pytest.mark.parametrize("step", ["download", "generate", "train", "evaluate", "predict",
                                  "cross-validate"])
def test_no_step_overwrites_a_file_it_did_not_write(tmp_path, step, sample_csv, dataset_dir,
                                                    model_path):
    theirs = tmp_path / "theirs.out"
    theirs.write_bytes(b"the user's own file")
    args = {
        "download": ["--source", str(sample_csv), "--out-csv", str(theirs)],
        "generate": ["--rows", "10", "--out-csv", str(theirs)],
        "train": ["--dataset-dir", str(dataset_dir), "--out-model", str(theirs)],
        "evaluate": ["--dataset-dir", str(dataset_dir), "--model", str(model_path),
                     "--out-report", str(theirs)],
        "predict": ["--model", str(model_path), "--input", str(sample_csv),
                    "--output", str(theirs)],
        "cross-validate": ["--dataset-dir", str(dataset_dir), "--out-json", str(theirs)],
    }[step]
    result = run_cli(step, *args)
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: refusing to replace") and str(theirs) in last
    assert theirs.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.out"]


def test_a_steps_own_earlier_output_is_replaced(tmp_path, sample_csv):
    out = tmp_path / "raw.csv"
    download(str(sample_csv), out)
    download("synthetic:20", out)  # ours: replaced
    assert len(pd.read_csv(out)) == 20


# ------------------------------------------------------------- 3. output == input
def test_predict_never_writes_over_its_input(tmp_path, sample, model_path):
    src = tmp_path / "inventory.csv"
    sample.head(50).drop(columns="points").to_csv(src)
    before = src.read_bytes()
    result = run_cli("predict", "--model", str(model_path), "--input", str(src),
                     "--output", str(src))
    assert result.returncode == 1
    assert "it is the input" in result.stderr.splitlines()[-1]
    assert src.read_bytes() == before


# ---------------------------------------------------------------- 4. compressed input
def _compress(plain: Path, kind: str, out: Path) -> Path:
    data = plain.read_bytes()
    if kind == "zip":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("export/reviews.csv", data)
    else:
        out.write_bytes({"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind](
            data))
    return out


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zip"])
def test_compressed_input_is_read_as_the_plain_file(tmp_path, client, sample, kind,
                                                    model_path):
    plain = tmp_path / "reviews.csv"
    sample.head(800).to_csv(plain)
    packed = _compress(plain, kind, tmp_path / f"reviews.csv.{kind}")
    make_dataset(plain, tmp_path / "from-plain", blocksize="200KB")
    stats = make_dataset(packed, tmp_path / "from-packed", blocksize="200KB")
    assert stats["input"] == 800
    pd.testing.assert_frame_equal(dataset_rows(tmp_path / "from-packed").reset_index(drop=True),
                                  dataset_rows(tmp_path / "from-plain").reset_index(drop=True))
    predict(model_path, plain, tmp_path / "a.csv")
    predict(model_path, packed, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    download(str(packed), tmp_path / "raw.csv")
    assert (tmp_path / "raw.csv").read_bytes() == plain.read_bytes()
    # The decompressed copies lived in scratch folders that are gone.
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and "scratch" in p.name]


@pytest.mark.parametrize("case,expected", [
    ("png", "not a CSV file: it looks like a PNG image"),
    ("xlsx", "an Excel workbook (.xlsx), not a CSV"),
    ("two-csvs", "must hold exactly one CSV file"),
    ("truncated-gz", "gzip data is damaged or truncated"),
])
def test_files_that_are_not_text_get_a_short_message(tmp_path, sample, case, expected):
    path = tmp_path / "input.csv"
    if case == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(700_000))
    elif case == "xlsx":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("[Content_Types].xml", "<Types/>")
            archive.writestr("xl/workbook.xml", "<workbook/>")
    elif case == "two-csvs":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("a.csv", "x\n")
            archive.writestr("b.csv", "y\n")
    else:
        path.write_bytes(gzip.compress(sample.to_csv().encode())[:5000])
    result = run_cli("make-dataset", "--in-csv", str(path), "--out-dir", str(tmp_path / "ds"))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert expected in last and len(last) < 400, last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ds").exists()


def test_utf16_text_is_re_encoded_once(tmp_path, client, sample):
    path = tmp_path / "utf16.csv"
    path.write_bytes(sample.head(300).to_csv().encode("utf-16"))
    stats = make_dataset(path, tmp_path / "ds")
    assert stats["input"] == 300 and stats["undecodable"] == 0
    assert dataset_rows(tmp_path / "ds")["title"].str.contains("é").any()


# ------------------------------------------------------------------ 5. encodings
def test_a_cp1252_export_fails_naming_the_encoding_and_reads_with_it(tmp_path, client,
                                                                     sample):
    text = sample.to_csv()
    data = text.encode("cp1252", errors="replace")
    legacy = tmp_path / "export.csv"
    legacy.write_bytes(data)
    utf8 = tmp_path / "utf8.csv"
    utf8.write_bytes(data.decode("cp1252").encode("utf-8"))
    result = run_cli("make-dataset", "--in-csv", str(legacy), "--out-dir", str(tmp_path / "x"))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "not valid utf-8" in last and "--encoding cp1252" in last, last
    assert not (tmp_path / "x").exists()
    stats = make_dataset(legacy, tmp_path / "ds", encoding="cp1252")
    assert stats["undecodable"] == 0 and stats["input"] == len(sample)
    make_dataset(utf8, tmp_path / "ref")
    pd.testing.assert_frame_equal(dataset_rows(tmp_path / "ds").reset_index(drop=True),
                                  dataset_rows(tmp_path / "ref").reset_index(drop=True))


def test_a_few_undecodable_rows_are_kept_and_counted(tmp_path, client, sample):
    data = sample.head(300).to_csv().encode("utf-8").replace("Rosé".encode(), b"Ros\xe9", 1)
    path = tmp_path / "one-bad-row.csv"
    path.write_bytes(data)
    stats = make_dataset(path, tmp_path / "ds")
    assert stats["undecodable"] == 1 and stats["rejected"] == 0 and stats["input"] == 300


def test_unknown_encoding_is_a_clear_error(tmp_path, sample):
    path = tmp_path / "x.csv"
    sample.head(10).to_csv(path)
    result = run_cli("make-dataset", "--in-csv", str(path), "--out-dir", str(tmp_path / "d"),
                     "--encoding", "klingon")
    assert result.returncode == 1
    assert "unknown text encoding 'klingon'" in result.stderr.splitlines()[-1]


# ------------------------------------------------------------------ 6. one-line errors
@pytest.mark.parametrize("case", ["truncated", "random-bytes", "another-pickle", "missing"])
def test_a_bad_model_file_is_one_line_naming_it(tmp_path, sample, model_path, case):
    bad = tmp_path / "model.joblib"
    if case == "truncated":
        bad.write_bytes(model_path.read_bytes()[:1000])
    elif case == "random-bytes":
        bad.write_bytes(np.random.default_rng(0).bytes(5000))
    elif case == "another-pickle":
        joblib.dump({"not": "a model"}, bad)
        with (tmp_path / "plain.pkl").open("wb") as fh:
            pickle.dump([1, 2], fh)
    src = tmp_path / "in.csv"
    sample.head(20).to_csv(src)
    result = run_cli("predict", "--model", str(bad), "--input", str(src),
                     "--output", str(tmp_path / "out.csv"))
    assert result.returncode == 1
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and str(bad) in lines[0], result.stderr[-1500:]
    assert "Traceback" not in result.stderr and "Aborted" not in result.stderr
    assert not (tmp_path / "out.csv").exists()


@pytest.fixture()
def tiny_disk(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line_and_leaves_nothing(tiny_disk, sample_csv):
    out = tiny_disk / "reviews.csv"
    result = run_cli("download", "--source", str(sample_csv), "--out-csv", str(out))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "no space left" in last and str(tiny_disk) in last, result.stderr[-1500:]
    assert "Traceback" not in result.stderr
    assert list(tiny_disk.iterdir()) == []


# --------------------------------------------------- 8. a semicolon-separated export
@pytest.mark.parametrize("first", ["", "Unnamed: 0"])
def test_a_semicolon_export_says_so(tmp_path, sample, first):
    # A file pandas read and wrote back names its index column "Unnamed: 0".
    path = tmp_path / "semi.csv"
    sample.head(20).rename_axis(first or None).to_csv(path, sep=";")
    result = run_cli("make-dataset", "--in-csv", str(path), "--out-dir", str(tmp_path / "d"))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "separated by semicolons" in last and f"found '{first};country" in last, last
