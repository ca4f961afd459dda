"""download: fetch the raw CSV from a URL, copy a local file, or generate synthetic rows.

Network fetches have a timeout, a bounded number of retries with backoff, a
size limit and an optional SHA-256 check; plain http is refused unless asked
for.  The target path only ever holds a complete, checked file.  A compressed
source (gzip, bzip2, xz, zip holding one CSV) is decompressed on the way, so
the raw file can be read in parallel blocks; the checksum is of the source's
own bytes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from pipeline.atomic import atomic_file, check_not_input, check_replaceable, scratch_dir
from pipeline.storage import as_path, is_remote
from pipeline.textfiles import COMPRESSED_KINDS, decompress_to, open_binary, sniff

log = logging.getLogger(__name__)

#: Address of the challenge's original sample, the default source.
DEFAULT_SOURCE = (
    "https://github.com/datarevenue-berlin/code-challenge-2019/releases/download/0.1.0/"
    "dataset_sampled.csv"
)

#: Largest download accepted by default: room for the largest synthetic sources, while a
#: runaway download still stops before it fills the disk.
DEFAULT_MAX_BYTES = 20 * 1024**3

_SYNTHETIC = re.compile(r"^synthetic:(\d+)(?::(\d+))?$")
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """The source could not be fetched; the message says why and what to do instead."""


def _hint(source: str) -> str:
    return (
        f"could not fetch {source}. Without network, pass a local file "
        "(--source /path/to/reviews.csv, or make run SOURCE=/path/to/reviews.csv) "
        "or synthetic data (--source synthetic:10000)."
    )


def _stream(url: str, tmp: Path, timeout: float, max_bytes: int) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with urllib.request.urlopen(url, timeout=timeout) as response, tmp.open("wb") as fh:
        declared = response.headers.get("Content-Length")
        if declared is not None and int(declared) > max_bytes:
            raise DownloadError(f"{url} is {int(declared)} bytes, over the limit of {max_bytes}")
        while chunk := response.read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise DownloadError(f"{url} is over the limit of {max_bytes} bytes")
            digest.update(chunk)
            fh.write(chunk)
    return size, digest.hexdigest()


def fetch_url(
    url: str,
    out_csv: Path,
    timeout: float = 30.0,
    retries: int = 3,
    max_bytes: int = DEFAULT_MAX_BYTES,
    sha256: str | None = None,
    backoff: float = 2.0,
) -> int:
    """Stream an http(s) URL to ``out_csv`` atomically, retrying transient failures.

    Parameters
    ----------
    url : str
        http:// or https:// address.
    out_csv : pathlib.Path
        Target file; written only when the whole body arrived and passed the checks.
    timeout : float, default 30
        Seconds to wait for the connection and for each read.
    retries : int, default 3
        Further attempts after a network error (not after an HTTP 4xx).
    max_bytes : int
        Refuse bodies larger than this.
    sha256 : str, optional
        Expected SHA-256 of the body, hex.
    backoff : float, default 2
        Seconds before the first retry, doubled after each.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    DownloadError
        On a network or HTTP error after the retries, an oversized body or a
        checksum mismatch; with a hint on using a local file.
    """
    for attempt in range(retries + 1):
        try:
            with _body_dir(out_csv) as scratch, atomic_file(out_csv) as tmp:
                body = Path(scratch, "body")
                size, digest = _stream(url, body, timeout, max_bytes)
                if sha256 and digest != sha256.lower():
                    raise DownloadError(f"{url}: SHA-256 {digest} does not match {sha256}")
                _unpack(body, tmp, url, ours=True)
            return size
        except urllib.error.HTTPError as err:
            if err.code < 500 or attempt == retries:
                raise DownloadError(f"{_hint(url)} (HTTP {err.code})") from err
            last: Exception = err
        except (TimeoutError, urllib.error.URLError, ConnectionError) as err:
            if attempt == retries:
                raise DownloadError(f"{_hint(url)} ({err})") from err
            last = err
        wait = backoff * 2**attempt
        log.warning("attempt %d of %d failed (%s); retrying in %.0f s", attempt + 1,
                    retries + 1, last, wait)
        time.sleep(wait)
    raise AssertionError("unreachable")


def copy_file(path: Path, out_csv: Path, sha256: str | None = None) -> int:
    """Copy a local file to ``out_csv`` atomically.

    Parameters
    ----------
    path : pathlib.Path
        Existing file.
    out_csv : pathlib.Path
        Target file.
    sha256 : str, optional
        Expected SHA-256 of the file, hex.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    DownloadError
        When ``path`` is not a readable file or its checksum does not match.
    """
    if not path.is_file():
        raise DownloadError(f"source file {path} does not exist or is not a file")
    check_not_input(out_csv, path)
    if sha256:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != sha256.lower():
            raise DownloadError(f"{path}: SHA-256 {digest.hexdigest()} does not match "
                                f"{sha256}")
    with atomic_file(out_csv) as tmp:
        _unpack(path, tmp, path)
    return out_csv.stat().st_size


def _body_dir(out_csv: str | Path):
    """Where a download's body waits: beside a local output (swept if killed), else locally."""
    if is_remote(out_csv):
        return tempfile.TemporaryDirectory(prefix="wine-pipeline-download-")
    return scratch_dir(out_csv)


def _unpack(source: Path, target: Path, name: str | Path, ours: bool = False) -> None:
    """Copy ``source`` to ``target``, decompressing it when it is compressed.

    ``ours``: ``source`` is a scratch file of this step, moved rather than copied.
    """
    kind, _ = sniff(source)
    if kind in COMPRESSED_KINDS:
        log.info("%s is %s-compressed: writing it decompressed", name, kind)
        decompress_to(source, kind, target)
    elif ours:
        os.replace(source, target)
    else:
        with open_binary(source) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)


def download(
    source: str,
    out_csv: str | Path,
    timeout: float = 30.0,
    retries: int = 3,
    max_bytes: int = DEFAULT_MAX_BYTES,
    sha256: str | None = None,
    allow_http: bool = False,
) -> Path:
    """Put the raw data named by ``source`` at ``out_csv``.

    Parameters
    ----------
    source : str
        An https URL (http only with ``allow_http``), a local path, or
        ``synthetic:N[:SEED]`` for N generated rows.
    out_csv : str or pathlib.Path
        Target CSV, written atomically.
    timeout : float, default 30
        Network timeout in seconds.
    retries : int, default 3
        Further attempts after a transient network error.
    max_bytes : int
        Largest accepted download.
    sha256 : str, optional
        Expected SHA-256 of the data (URL or file).
    allow_http : bool, default False
        Accept plain http URLs.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    DownloadError
        When the source cannot be read or fails a check.
    """
    out = as_path(out_csv)
    check_replaceable(out, directory=False)
    if match := _SYNTHETIC.match(source):
        from synth import generate_csv

        rows, seed = int(match[1]), int(match[2] or 0)
        log.info("generating %d synthetic rows (seed %d)", rows, seed)
        generate_csv(rows=rows, seed=seed, out_csv=out)
    elif source.startswith("https://") or (allow_http and source.startswith("http://")):
        log.info("downloading %s", source)
        size = fetch_url(source, out, timeout=timeout, retries=retries, max_bytes=max_bytes,
                         sha256=sha256)
        log.info("downloaded %d bytes", size)
    elif source.startswith("http://"):
        raise DownloadError(f"refusing plain http for {source}: use https, or --allow-http "
                            "if you trust the network")
    elif "://" in source and not is_remote(source):
        raise DownloadError(f"unsupported source {source!r}: use https, s3://, a path or "
                            "synthetic:N")
    else:
        size = copy_file(as_path(source), out, sha256=sha256)
        log.info("copied %s (%d bytes)", source, size)
    return out
