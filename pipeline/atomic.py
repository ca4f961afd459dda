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
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

SUCCESS_FLAG = "_SUCCESS"

#: Suffix of the hidden marker beside a file output: ``.<name>.wine-pipeline``.
MARKER_SUFFIX = ".wine-pipeline"

#: What the markers say of who wrote the output.
WRITTEN_BY = "wine-pipeline"

#: A temporary sibling younger than this is never swept: its writer may be between
#: creating it and locking it.
STALE_AFTER_SECONDS = 60.0


class NotOurs(ValueError):
    """An output path holds something this program did not write; it is left alone."""


def marker_path(path: str | os.PathLike) -> Path:
    """The hidden marker beside a file output.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    pathlib.Path
        ``.<name>.wine-pipeline`` in the same directory.
    """
    path = Path(path)
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
        ``written_by``, ``version`` and ``files`` (every file of the output, relative
        to it, in order).
    """
    flag = Path(path) / SUCCESS_FLAG
    try:
        text = flag.read_text()
        record = json.loads(text) if text.strip() else _legacy(Path(path))
    except (OSError, ValueError):
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


def _files_below(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


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
    pathlib.Path
        Empty temporary directory beside ``path``.
    """
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
