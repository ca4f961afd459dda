from __future__ import annotations

import pandas as pd
import pytest

from conftest import run_cli
from pipeline.steps.download import DownloadError, download


def test_local_file_is_copied(tmp_path, sample_csv):
    out = download(str(sample_csv), tmp_path / "raw" / "reviews.csv")
    assert out.read_bytes() == sample_csv.read_bytes()


def test_synthetic_source(tmp_path):
    out = download("synthetic:500:7", tmp_path / "syn.csv")
    df = pd.read_csv(out, index_col=0)
    assert len(df) == 500
    assert "points" in df.columns


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="does not exist"):
        download(str(tmp_path / "nope.csv"), tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_unreachable_url_says_how_to_go_offline(tmp_path):
    # Nothing listens on this loopback port, so the fetch fails at once, as offline.
    result = run_cli("download", "--source", "http://127.0.0.1:9/reviews.csv",
                     "--out-csv", str(tmp_path / "out.csv"), "--timeout", "5")
    assert result.returncode != 0
    assert "synthetic:" in result.stderr and "local file" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing partial left


def test_unsupported_scheme(tmp_path):
    with pytest.raises(DownloadError, match="unsupported source"):
        download("ftp://example.org/x.csv", tmp_path / "out.csv")
