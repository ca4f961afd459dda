"""Atomic outputs: write under a temporary name, then rename into place.

A crash at any moment leaves either the previous state or the complete new
output, never something a scheduler would take as done.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

SUCCESS_FLAG = "_SUCCESS"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _open_up(path: Path, mode: int) -> None:
    # mkstemp/mkdtemp create private (0600/0700) entries; outputs are shared between
    # steps that may run as other users (containers), so give them the usual modes.
    os.chmod(path, mode & ~_umask())


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    # Same directory as the target so the final rename never crosses a filesystem.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


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
    tmp = _tmp_sibling(target, target.suffix)
    try:
        yield tmp
        _open_up(tmp, 0o666)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


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
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
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
