"""Atomic outputs: write under a temporary name, then rename into place.

A crash at any moment leaves either the previous state or the complete new
output, never something a scheduler would take as done.

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

#: A temporary sibling younger than this is never swept: its writer may be between
#: creating it and locking it.
STALE_AFTER_SECONDS = 60.0


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
    tmp, lock = _locked_temp(target, target.suffix, directory=False)
    try:
        yield tmp
        _open_up(tmp, 0o666)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        os.close(lock)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``path`` only if the block succeeds.

    A ``_SUCCESS`` flag is written last inside the directory, so a reader
    can tell a complete output from a partial one even without the rename.
    An existing ``path`` is replaced.

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
    tmp, lock = _locked_temp(target, "", directory=True)
    try:
        yield tmp
        _open_up(tmp, 0o777)
        (tmp / SUCCESS_FLAG).write_text("")
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
        True when the directory holds its ``_SUCCESS`` flag.
    """
    return (Path(path) / SUCCESS_FLAG).is_file()
