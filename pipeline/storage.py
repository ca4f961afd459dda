"""Where outputs live: a local folder, or an object store addressed by URL.

Every path the steps read or write goes through :func:`as_path`: a local path
stays a :class:`pathlib.Path`; a URL (``s3://bucket/prefix/...``) becomes a
:class:`upath.UPath`, the same API over fsspec, so a step joins, reads and
lists the same way on both kinds of root.  The object store's endpoint and
credentials come from the usual places (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, fsspec's configuration), never
from code.

:func:`check_root` turns the ways a store is unusable (no such bucket, keys
refused, no answer) into one line that names the problem, before a step does
any work.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path, PurePath

#: What an output path may be: a local path, or a URL fsspec knows.
PathLike = str | os.PathLike


#: URL schemes of object stores a data root may be on (each needs its fsspec backend;
#: s3fs is installed and tested).
STORE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")


def is_url(path: PathLike) -> bool:
    """Tell whether ``path`` is an object-store URL (``s3://...``) rather than a local path."""
    if isinstance(path, PurePath):
        return False
    scheme, sep, _ = str(path).partition("://")
    return bool(sep) and scheme.lower() in STORE_SCHEMES


def is_remote(path: PathLike) -> bool:
    """Tell whether ``path`` lives on an object store (a URL or a path object of one)."""
    if isinstance(path, PurePath) and not _is_upath(path):
        return False
    return is_url(str(path))


def _is_upath(path: object) -> bool:
    from upath import UPath

    return isinstance(path, UPath) and getattr(path, "protocol", "") not in ("", "file", "local")


def as_path(path: PathLike):
    """A path object for ``path``: :class:`pathlib.Path` if local, else :class:`upath.UPath`.

    Listings are not cached, so a reader sees what workers wrote a moment ago.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    pathlib.Path or upath.UPath
    """
    if _is_upath(path):
        return path
    if not is_url(path):
        return Path(path)
    from upath import UPath

    return UPath(str(path), use_listings_cache=False)


def url_of(path: PathLike) -> str:
    """``path`` as a string fsspec, pandas and pyarrow open alike (a URL keeps its scheme)."""
    path = as_path(path)
    return str(path)


def same_place(a: PathLike, b: PathLike) -> bool:
    """Tell whether two paths name the same file (local ones resolved, URLs compared)."""
    if is_remote(a) or is_remote(b):
        return str(as_path(a)).rstrip("/") == str(as_path(b)).rstrip("/")
    return Path(a).resolve() == Path(b).resolve()


def filesystem(path: PathLike):
    """The fsspec filesystem of ``path`` and the path within it.

    Returns
    -------
    fs : fsspec.AbstractFileSystem
    inner : str
    """
    import fsspec

    if is_remote(path):
        return fsspec.core.url_to_fs(url_of(path), use_listings_cache=False)
    return fsspec.filesystem("file"), str(Path(path).absolute())


def remove_tree(path: PathLike) -> None:
    """Remove a directory (or prefix) and everything below it; absent is fine."""
    import shutil

    if not is_remote(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    fs, inner = filesystem(path)
    inner = inner.rstrip("/")
    if not fs.exists(inner):
        return
    fs.rm(inner, recursive=True)
    # Stores with real folders (SeaweedFS) keep the emptied ones as entries: deepest first.
    for entry in [*_folders_below(fs, inner), inner]:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(entry + "/")


def _folders_below(fs, inner: str) -> list[str]:
    """The folder entries below ``inner``, deepest first (``find`` does not list empty ones)."""
    try:
        entries = fs.ls(inner, detail=True, refresh=True)
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        name = entry["name"].rstrip("/")
        if entry["type"] == "directory" and name != inner:
            found += [*_folders_below(fs, name), name]
    return found


#: Where the errors of an object store come from (s3fs, botocore and its HTTP layers).
_STORE_MODULES = {"s3fs", "botocore", "aiobotocore", "aiohttp", "urllib3"}


class StoreError(OSError):
    """An object store that cannot be used: no such bucket, keys refused, no answer."""


def _endpoint() -> str:
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "FSSPEC_S3_ENDPOINT_URL"):
        if os.environ.get(name):
            return os.environ[name]
    return "the default AWS endpoint"


def describe_store_error(err: BaseException, where: str | None = None) -> str | None:
    """One line naming what is wrong with the object store, or None if ``err`` is not that.

    Parameters
    ----------
    err : BaseException
        Raised by s3fs/botocore while reaching ``where``.
    where : str, optional
        The URL that was being read or written (default: the one in the error).

    Returns
    -------
    str or None
    """
    chain, seen = [], err
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(f"{type(e).__name__} {e}" for e in chain)
    if not any(type(e).__module__.split(".")[0] in _STORE_MODULES for e in chain) \
            and not isinstance(err, StoreError):
        return None
    if where is None:
        found = re.search(r"s3://[^\s'\"]+|\b[a-z0-9][a-z0-9.-]{2,62}/[^\s'\"]*", str(err))
        where = found[0] if found else "the object store"
    bucket = where.split("://", 1)[-1].split("/", 1)[0]
    endpoint = _endpoint()
    if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return (f"{where}: the bucket {bucket!r} does not exist at {endpoint}; create it or "
                "fix the data root")
    if any(code in text for code in ("InvalidAccessKeyId", "SignatureDoesNotMatch",
                                     "AccessDenied", "Forbidden", "403")):
        return (f"{where}: the object store at {endpoint} refused the credentials "
                "(check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    if any(word in text for word in ("EndpointConnectionError", "ConnectTimeout",
                                     "ClientConnectorError", "Connection refused",
                                     "Could not connect", "ConnectionError",
                                     "Name or service not known")):
        return (f"{where}: cannot reach the object store at {endpoint} (check "
                "AWS_ENDPOINT_URL and that the store is running)")
    if "NoCredentialsError" in text or "Unable to locate credentials" in text:
        return (f"{where}: no credentials for the object store at {endpoint} (set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    return None


def check_root(root: PathLike) -> None:
    """Fail early, in one line, when an object-store root cannot be listed and written.

    A local root is left to the steps (they create it).  For a URL, the bucket is
    listed and a probe object written and removed under the root.

    Parameters
    ----------
    root : str or path-like

    Raises
    ------
    StoreError
        Naming the problem: the bucket is missing, the credentials are refused,
        or the endpoint does not answer.
    """
    if not is_remote(root):
        return
    fs, inner = filesystem(root)
    probe = f"{inner.rstrip('/')}/.wine-pipeline-probe-{os.getpid()}"
    try:
        bucket = inner.split("/", 1)[0]
        try:
            # exists() would answer False for refused keys too: ls raises what went wrong.
            fs.ls(bucket, refresh=True)
        except FileNotFoundError as err:
            raise StoreError(f"{url_of(root)}: the bucket {bucket!r} does not exist at "
                             f"{_endpoint()}; create it or fix the data root") from err
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)
    except StoreError:
        raise
    except Exception as err:
        message = describe_store_error(err, url_of(root))
        if message is None:
            raise
        raise StoreError(message) from err
