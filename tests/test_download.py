from __future__ import annotations

import hashlib
import http.server
import threading

import pandas as pd
import pytest

from conftest import run_cli
from pipeline.schema import INPUT_COLUMNS
from pipeline.steps import download as download_step
from pipeline.steps.download import DownloadError, download

BODY = b",country,description\n1,France,Bright and fresh.\n"


class Handler(http.server.BaseHTTPRequestHandler):
    """A loopback server: /ok, /flaky (500 twice, then the body), /missing, /big."""

    hits: dict[str, int] = {}

    def do_GET(self):  # noqa: N802 - the name http.server calls
        hits = Handler.hits[self.path] = Handler.hits.get(self.path, 0) + 1
        if self.path == "/flaky" and hits <= 2:
            self.send_error(500)
        elif self.path in ("/ok", "/flaky"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/big":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 5000)
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_local_file_is_copied(tmp_path, sample_csv):
    out = download(str(sample_csv), tmp_path / "raw" / "reviews.csv")
    assert out.read_bytes() == sample_csv.read_bytes()


def test_local_file_checksum(tmp_path, sample_csv):
    good = hashlib.sha256(sample_csv.read_bytes()).hexdigest()
    download(str(sample_csv), tmp_path / "a.csv", sha256=good)
    with pytest.raises(DownloadError, match="does not match"):
        download(str(sample_csv), tmp_path / "b.csv", sha256="0" * 64)
    assert not (tmp_path / "b.csv").exists()


def test_synthetic_source(tmp_path):
    out = download("synthetic:500:7", tmp_path / "syn.csv")
    df = pd.read_csv(out, index_col=0)
    assert len(df) == 500
    assert list(df.columns) == list(INPUT_COLUMNS)
    assert df.index.tolist() == list(range(500))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="does not exist"):
        download(str(tmp_path / "nope.csv"), tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_url_download_with_checksum(tmp_path, server):
    out = download(f"{server}/ok", tmp_path / "ok.csv", allow_http=True,
                   sha256=hashlib.sha256(BODY).hexdigest())
    assert out.read_bytes() == BODY


def test_transient_errors_are_retried(tmp_path, server, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(download_step.time, "sleep", waits.append)  # the backoff, not slept
    out = download(f"{server}/flaky", tmp_path / "flaky.csv", allow_http=True, retries=3)
    assert out.read_bytes() == BODY
    assert Handler.hits["/flaky"] == 3
    assert waits == [2.0, 4.0]  # doubling after each failure


def test_client_errors_are_not_retried(tmp_path, server):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server}/missing", tmp_path / "m.csv", allow_http=True, retries=3)
    assert Handler.hits["/missing"] == 1
    assert list(tmp_path.iterdir()) == []


def test_size_limit_and_checksum_leave_nothing(tmp_path, server):
    with pytest.raises(DownloadError, match="over the limit"):
        download(f"{server}/big", tmp_path / "big.csv", allow_http=True, max_bytes=1000)
    with pytest.raises(DownloadError, match="does not match"):
        download(f"{server}/ok", tmp_path / "ok.csv", allow_http=True, sha256="ab" * 32)
    assert list(tmp_path.iterdir()) == []


def test_plain_http_needs_opting_in(tmp_path, server):
    with pytest.raises(DownloadError, match="refusing plain http"):
        download(f"{server}/ok", tmp_path / "ok.csv")


def test_unreachable_url_says_how_to_go_offline(tmp_path):
    # Nothing listens on this loopback port, so the fetch fails at once, as offline.
    result = run_cli("download", "--source", "http://127.0.0.1:9/reviews.csv", "--allow-http",
                     "--retries", "0", "--out-csv", str(tmp_path / "out.csv"), "--timeout", "5")
    assert result.returncode != 0
    assert "synthetic:" in result.stderr and "local file" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing partial left


def test_unsupported_scheme(tmp_path):
    with pytest.raises(DownloadError, match="unsupported source"):
        download("ftp://example.org/x.csv", tmp_path / "out.csv")
