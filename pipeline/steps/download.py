"""download: fetch the raw CSV from a URL, copy a local file, or generate synthetic rows."""

from __future__ import annotations

import logging
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from pipeline.atomic import atomic_file

log = logging.getLogger(__name__)

#: Address of the challenge's original sample, the default source.
DEFAULT_SOURCE = (
    "https://github.com/datarevenue-berlin/code-challenge-2019/releases/download/0.1.0/"
    "dataset_sampled.csv"
)

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


def fetch_url(url: str, out_csv: Path, timeout: float = 30.0) -> int:
    """Stream an http(s) URL to ``out_csv`` atomically.

    Parameters
    ----------
    url : str
        http:// or https:// address.
    out_csv : pathlib.Path
        Target file; written only when the whole body arrived.
    timeout : float, default 30
        Seconds to wait for the connection and for each read.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    DownloadError
        On any network or HTTP error, with a hint on using a local file.
    """
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, \
                atomic_file(out_csv) as tmp, tmp.open("wb") as fh:
            while chunk := response.read(_CHUNK):
                fh.write(chunk)
                size += len(chunk)
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as err:
        raise DownloadError(f"{_hint(url)} ({err})") from err
    return size


def copy_file(path: Path, out_csv: Path) -> int:
    """Copy a local file to ``out_csv`` atomically.

    Parameters
    ----------
    path : pathlib.Path
        Existing file.
    out_csv : pathlib.Path
        Target file.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    DownloadError
        When ``path`` is not a readable file.
    """
    if not path.is_file():
        raise DownloadError(f"source file {path} does not exist or is not a file")
    with atomic_file(out_csv) as tmp:
        shutil.copyfile(path, tmp)
    return out_csv.stat().st_size


def download(source: str, out_csv: str | Path, timeout: float = 30.0) -> Path:
    """Put the raw data named by ``source`` at ``out_csv``.

    Parameters
    ----------
    source : str
        An http(s) URL, a local path, or ``synthetic:N[:SEED]`` for N generated rows.
    out_csv : str or pathlib.Path
        Target CSV, written atomically.
    timeout : float, default 30
        Network timeout in seconds.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    DownloadError
        When the source cannot be read.
    """
    out = Path(out_csv)
    if match := _SYNTHETIC.match(source):
        from pipeline.steps.generate import generate_csv

        rows, seed = int(match[1]), int(match[2] or 0)
        log.info("generating %d synthetic rows (seed %d)", rows, seed)
        generate_csv(rows=rows, seed=seed, out_csv=out)
    elif source.startswith(("http://", "https://")):
        log.info("downloading %s", source)
        size = fetch_url(source, out, timeout=timeout)
        log.info("downloaded %d bytes", size)
    elif "://" in source:
        raise DownloadError(f"unsupported source {source!r}: use http(s), a path or synthetic:N")
    else:
        size = copy_file(Path(source), out)
        log.info("copied %s (%d bytes)", source, size)
    return out
