"""Atomic outputs: write under a temporary name, then rename into place.

A crash at any moment leaves either the previous state or the complete new
output, never something a scheduler would take as done.

An output only ever replaces what this program wrote there before.  A file
output gets a hidden marker beside it (``.<name>.wine-pipeline``); a directory
output ends with a ``_SUCCESS`` marker that lists every file it holds.  An
existing path without its marker, or a directory holding files its marker does
not list, is the user's: it is refused (:class:`NotOurs`), never replaced.

A writer killed outright (SIGKILL, OOM killer, a container stopped) cannot
remove its temporary sibling, which can hold gigabytes.  Each temporary entry is
therefore locked (``flock``) by its writer for as long as it lives; the next
writer of the same output removes the siblings nobody holds
(:func:`sweep_stale`).  A lock dies with its process, wherever it ran: the
containers of the same host share the kernel that keeps them.

On an object store (a data root such as ``s3://bucket/prefix``, see
:mod:`pipeline.storage`) there is no rename and no lock, so the protocol is:

* a file output is written locally and uploaded in one ``PUT`` (an object
  appears whole or not at all), its marker uploaded first;
* a directory output is written under a fresh attempt prefix inside it
  (``<dir>/.attempt-<id>/``); the ``_SUCCESS`` object, written last, names the
  attempt and lists its files, and readers take only what it lists
  (:func:`content_dir`, :func:`listed_files`); the attempts it does not name are
  removed after it lands, and by the next writer when a killed one left them;
* scratch space is a prefix beside the output, removed afterwards, and swept
  like a local temporary once older than :data:`STALE_AFTER_SECONDS`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from pipeline.storage import as_path, is_remote, remove_tree

log = logging.getLogger(__name__)

SUCCESS_FLAG = "_SUCCESS"

#: Suffix of the hidden marker beside a file output: ``.<name>.wine-pipeline``.
MARKER_SUFFIX = ".wine-pipeline"

#: What the markers say of who wrote the output.
WRITTEN_BY = "wine-pipeline"

#: A temporary sibling younger than this is never swept: its writer may be between
#: creating it and locking it.
STALE_AFTER_SECONDS = 60.0

#: Prefix of a directory output's attempts on an object store.
ATTEMPT_PREFIX = ".attempt-"


class NotOurs(ValueError):
    """An output path holds something this program did not write; it is left alone."""


def marker_path(path: str | os.PathLike):
    """The hidden marker beside a file output.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    pathlib.Path or upath.UPath
        ``.<name>.wine-pipeline`` in the same directory.
    """
    path = as_path(path)
    return path.with_name(f".{path.name}{MARKER_SUFFIX}")


def _signature() -> dict:
    from pipeline import __version__

    return {"written_by": WRITTEN_BY, "version": __version__}


def read_success(path: str | os.PathLike) -> dict | None:
    """The ``_SUCCESS`` marker of a directory output, or None when it has none of ours.

    Parameters
    ----------
    path : path-like
        A directory written through :func:`atomic_dir`.

    Returns
    -------
    dict or None
        ``written_by``, ``version``, ``files`` (every file of the output, relative
        to its content, in order) and, on an object store, ``attempt`` (the prefix
        inside ``path`` that holds the content).
    """
    flag = as_path(path) / SUCCESS_FLAG
    # On a store only "not there" means incomplete: refused keys or no answer must surface.
    absent = (FileNotFoundError, NotADirectoryError) if is_remote(path) else (OSError,)
    try:
        text = flag.read_text()
        if text.strip():
            record = json.loads(text)
        else:
            record = None if is_remote(path) else _legacy(Path(path))
    except (*absent, ValueError):
        return None
    if not isinstance(record, dict) or record.get("written_by") != WRITTEN_BY:
        return None
    return record


def _legacy(root: Path) -> dict | None:
    # An empty _SUCCESS lists no files: a data set beside one that holds only Parquet
    # pieces and JSON statistics (the layout make-dataset writes) is taken as ours.
    files = [f for f in _files_below(root) if f != SUCCESS_FLAG]
    if files and all(f.endswith((".parquet", ".json")) for f in files):
        return {"written_by": WRITTEN_BY, "version": "legacy", "files": files}
    return None


def _files_below(root) -> list[str]:
    if is_remote(root):
        fs, inner = _fs(root)
        found = fs.find(inner, detail=True)
        return sorted(name[len(inner) + 1:] for name, info in found.items()
                      if info.get("type") == "file" and name != inner)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def _fs(path):
    from pipeline.storage import filesystem

    fs, inner = filesystem(path)
    return fs, inner.rstrip("/")


def content_dir(path: str | os.PathLike, record: dict | None = None):
    """Where a complete directory output's files are: itself, or its attempt on a store.

    Parameters
    ----------
    path : path-like
        A directory written through :func:`atomic_dir`.
    record : dict, optional
        Its :func:`read_success`, when the caller has read it already.

    Returns
    -------
    pathlib.Path or upath.UPath

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a complete output.
    """
    record = _complete_record(path) if record is None else record
    return as_path(path) / record["attempt"] if record.get("attempt") else as_path(path)


def _complete_record(path: str | os.PathLike) -> dict:
    record = read_success(path)
    if record is None:
        raise FileNotFoundError(f"{path} is not a complete output (no _SUCCESS marker)")
    return record


def listed_files(path: str | os.PathLike, under: str = "") -> list:
    """The files a complete directory output's marker lists, optionally below ``under``.

    Parameters
    ----------
    path : path-like
    under : str, optional
        A subdirectory of the content, e.g. ``"train"``.

    Returns
    -------
    list of pathlib.Path or upath.UPath
        In the marker's (file-name) order.
    """
    record = _complete_record(path)  # read once: on a store each read is a request
    root = content_dir(path, record)
    prefix = f"{under.strip('/')}/" if under else ""
    return [root / f for f in record.get("files", []) if f.startswith(prefix)]


def _listing(names: list[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def check_replaceable(path: str | os.PathLike, directory: bool) -> None:
    """Refuse an output path that holds something this program did not write.

    Call it before a step starts its work, so that a refusal costs nothing; the
    atomic writers call it again before they replace anything.

    Parameters
    ----------
    path : path-like
        Where the output goes.
    directory : bool
        Whether the output is a directory (:func:`atomic_dir`) or a file.

    Raises
    ------
    NotOurs
        When the path exists and is not an earlier output of this program: a file
        without its marker, a directory that is neither empty nor marked, or a
        marked directory that holds files its marker does not list.
    """
    if is_remote(path):
        _check_replaceable_remote(as_path(path), directory)
        return
    target = Path(path)
    if not os.path.lexists(target):
        return
    if not directory:
        if target.is_dir() or not target.is_file():
            raise NotOurs(f"refusing to write {target}: it is a directory or not a regular "
                          "file; choose another output path")
        if not marker_path(target).is_file():
            raise NotOurs(f"refusing to replace {target}: wine-pipeline did not write it (no "
                          f"{marker_path(target).name} beside it); choose another output path "
                          "or move the file away yourself")
        return
    if not target.is_dir():
        raise NotOurs(f"refusing to write the directory {target}: a file of that name exists; "
                      "choose another output path")
    found = _files_below(target)
    if not found and not any(target.iterdir()):
        return
    record = read_success(target)
    if record is None:
        raise NotOurs(f"refusing to replace {target}: it holds files wine-pipeline did not "
                      f"write ({_listing(found) or 'empty folders'}); choose a new or empty "
                      "output directory, or move them away yourself")
    foreign = sorted(set(found) - set(record.get("files", [])) - {SUCCESS_FLAG})
    if foreign:
        raise NotOurs(f"refusing to replace {target}: besides wine-pipeline's output it holds "
                      f"{_listing(foreign)}; move them away or choose another output directory")


def _check_replaceable_remote(target, directory: bool) -> None:
    if not directory:
        if target.is_dir():
            raise NotOurs(f"refusing to write {target}: it is a folder; choose another "
                          "output path")
        if target.exists() and not marker_path(target).is_file():
            raise NotOurs(f"refusing to replace {target}: wine-pipeline did not write it (no "
                          f"{marker_path(target).name} beside it); choose another output path "
                          "or move the object away yourself")
        return
    if target.is_file():
        raise NotOurs(f"refusing to write the directory {target}: an object of that name "
                      "exists; choose another output path")
    found = _files_below(target)
    foreign = [f for f in found if f != SUCCESS_FLAG and not f.startswith(ATTEMPT_PREFIX)]
    if foreign:
        raise NotOurs(f"refusing to replace {target}: it holds objects wine-pipeline did not "
                      f"write ({_listing(foreign)}); choose a new or empty output prefix, or "
                      "move them away yourself")


def check_not_input(output: str | os.PathLike, *inputs: str | os.PathLike) -> None:
    """Refuse an output that is one of the step's inputs, or a directory holding one.

    Parameters
    ----------
    output : path-like
    *inputs : path-like

    Raises
    ------
    NotOurs
    """
    if is_remote(output) or any(is_remote(i) for i in inputs):
        out_text = str(as_path(output)).rstrip("/")
        for given in inputs:
            source = str(as_path(given)).rstrip("/")
            if source == out_text or source.startswith(out_text + "/"):
                raise NotOurs(f"refusing to write {output}: it is or holds the input {given}; "
                              "give the output another path")
        return
    out = Path(output).resolve()
    for given in inputs:
        source = Path(given).resolve()
        if source == out or (out.exists() and source.exists() and os.path.samefile(source, out)):
            raise NotOurs(f"refusing to write {output}: it is the input {given}; "
                          "give the output another path")
        if out in source.parents:
            raise NotOurs(f"refusing to write {output}: it holds the input {given}; "
                          "give the output another path")


def _write_marker(target: Path) -> None:
    # Its presence is what counts, so a plain write will do.
    marker = marker_path(target)
    marker.write_text(json.dumps({**_signature(), "output": target.name}))
    _open_up(marker, 0o666)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _open_up(path: Path, mode: int) -> None:
    # mkstemp/mkdtemp create private (0600/0700) entries; outputs are shared between
    # steps that may run as other users (containers), so give them the usual modes.
    os.chmod(path, mode & ~_umask())


def _lock(fd: int) -> bool:
    """Take the exclusive lock of an open entry without waiting; False if it is held."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _temp_pattern(target: Path) -> re.Pattern:
    # What tempfile makes of prefix ".<name>." and suffix ".tmp...": 8 random characters.
    return re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")


def sweep_stale(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary siblings of ``target`` that killed writers left behind.

    A sibling counts as left behind when no process holds its lock and it is older
    than :data:`STALE_AFTER_SECONDS`; one that cannot be opened (another user's) is
    left alone.

    Parameters
    ----------
    target : path-like
        An output written through :func:`atomic_file`, :func:`atomic_dir` or
        :func:`scratch_dir`.

    Returns
    -------
    list of pathlib.Path
        The entries removed.
    """
    if is_remote(target):
        return _sweep_stale_remote(as_path(target))
    target = Path(target)
    pattern = _temp_pattern(target)
    removed = []
    with contextlib.suppress(FileNotFoundError):
        siblings = [p for p in target.parent.iterdir() if pattern.match(p.name)]
        for path in siblings:
            try:
                if time.time() - path.lstat().st_mtime < STALE_AFTER_SECONDS:
                    continue
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                if not _lock(fd):
                    continue  # its writer is alive
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
            finally:
                os.close(fd)
    if removed:
        log.info("removed what killed writers of %s left behind: %s", target,
                 ", ".join(p.name for p in removed))
    return removed


def _sweep_stale_remote(target) -> list:
    # No locks on a store: what is older than the grace period counts as left behind.
    fs, parent = _fs(target.parent)
    pattern = _temp_pattern(Path(target.name))
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in fs.ls(parent, detail=True, refresh=True):
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if pattern.match(name) and _older_than_grace(fs, entry):
                remove_tree(target.with_name(name))
                removed.append(target.with_name(name))
    if removed:
        log.info("removed what killed writers of %s left behind: %s", target,
                 ", ".join(p.name for p in removed))
    return removed


def _older_than_grace(fs, entry: dict) -> bool:
    # A prefix has no time of its own: its newest object's counts.
    times = [info.get("LastModified") for info in
             (fs.find(entry["name"], detail=True).values() if entry["type"] == "directory"
              else [entry])]
    times = [t.timestamp() for t in times if t is not None]
    return not times or time.time() - max(times) >= STALE_AFTER_SECONDS


def _locked_temp(target: Path, suffix: str, directory: bool) -> tuple[Path, int]:
    """A new temporary sibling of ``target``, locked; stale ones are swept first."""
    # Same directory as the target so the final rename never crosses a filesystem.
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target)
    prefix, suffix = f".{target.name}.", f".tmp{suffix}"
    if directory:
        path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=target.parent))
        fd = os.open(path, os.O_RDONLY)
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
        path = Path(name)
    _lock(fd)  # a brand-new entry: nobody else holds it
    return path, fd


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` only if the block succeeds.

    Parameters
    ----------
    path : path-like
        Final location of the file.

    Yields
    ------
    pathlib.Path
        Temporary file in the same directory; write the output there.
    """
    if is_remote(path):
        with _atomic_file_remote(as_path(path)) as tmp:
            yield tmp
        return
    target = Path(path)
    check_replaceable(target, directory=False)
    tmp, lock = _locked_temp(target, target.suffix, directory=False)
    try:
        yield tmp
        _open_up(tmp, 0o666)
        check_replaceable(target, directory=False)
        # The marker first: from here on the path is ours, whichever rename lands.
        _write_marker(target)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        os.close(lock)


@contextlib.contextmanager
def _atomic_file_remote(target) -> Iterator[Path]:
    # Written here, uploaded in one PUT: the object appears whole or not at all.
    check_replaceable(target, directory=False)
    with tempfile.TemporaryDirectory(prefix="wine-pipeline-upload-") as local:
        tmp = Path(local, target.name)
        yield tmp
        check_replaceable(target, directory=False)
        marker = marker_path(target)
        marker.write_text(json.dumps({**_signature(), "output": target.name}))
        fs, inner = _fs(target)
        fs.put_file(str(tmp), inner)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``path`` only if the block succeeds.

    A ``_SUCCESS`` marker listing every file is written last inside the
    directory, so a reader can tell a complete output from a partial one even
    without the rename.  An existing ``path`` is replaced only when it is an
    earlier output of this program (see :func:`check_replaceable`).

    Parameters
    ----------
    path : path-like
        Final location of the directory.

    Yields
    ------
    pathlib.Path or upath.UPath
        Empty temporary directory beside ``path``; on an object store, the new
        attempt prefix inside it.
    """
    if is_remote(path):
        with _atomic_dir_remote(as_path(path)) as tmp:
            yield tmp
        return
    target = Path(path)
    check_replaceable(target, directory=True)
    tmp, lock = _locked_temp(target, "", directory=True)
    try:
        yield tmp
        _open_up(tmp, 0o777)
        record = {**_signature(), "files": _files_below(tmp)}
        (tmp / SUCCESS_FLAG).write_text(json.dumps(record, indent=0))
        check_replaceable(target, directory=True)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(lock)


def _attempts(target) -> list[str]:
    fs, inner = _fs(target)
    with contextlib.suppress(FileNotFoundError):
        return [e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(inner, detail=False,
                                                                 refresh=True)
                if e.rstrip("/").rsplit("/", 1)[-1].startswith(ATTEMPT_PREFIX)]
    return []


def _remove_attempts(target, keep: str | None) -> None:
    for name in _attempts(target):
        if name != keep:
            remove_tree(target / name)


@contextlib.contextmanager
def _atomic_dir_remote(target) -> Iterator:
    check_replaceable(target, directory=True)
    current = (read_success(target) or {}).get("attempt")
    # Attempts the marker does not name were left by killed writers: theirs, and stale.
    _remove_attempts(target, keep=current)
    attempt = f"{ATTEMPT_PREFIX}{uuid.uuid4().hex[:12]}"
    tmp = target / attempt
    try:
        yield tmp
        record = {**_signature(), "attempt": attempt, "files": _files_below(tmp)}
        check_replaceable(target, directory=True)
        # The one write that makes the new output complete, and the old one gone.
        (target / SUCCESS_FLAG).write_text(json.dumps(record, indent=0))
    except BaseException:
        remove_tree(tmp)
        raise
    _remove_attempts(target, keep=attempt)


@contextlib.contextmanager
def scratch_dir(beside: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside an output, removed afterwards.

    For intermediate files of a step (e.g. pieces to be joined into ``beside``),
    locked like the temporaries of :func:`atomic_dir`, so that a killed step's
    scratch is swept by the next writer of the same output.

    Parameters
    ----------
    beside : path-like
        The output the scratch belongs to.

    Yields
    ------
    pathlib.Path
        Empty directory in ``beside``'s directory.
    """
    if is_remote(beside):
        target = as_path(beside)
        sweep_stale(target)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp.scratch")
        try:
            yield tmp
        finally:
            remove_tree(tmp)
        return
    tmp, lock = _locked_temp(Path(beside), ".scratch", directory=True)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(lock)


def is_complete_dir(path: str | os.PathLike) -> bool:
    """Tell whether ``path`` is a directory output that was completed.

    Parameters
    ----------
    path : path-like
        Directory written through :func:`atomic_dir`.

    Returns
    -------
    bool
        True when the directory holds its ``_SUCCESS`` marker.
    """
    return read_success(path) is not None
