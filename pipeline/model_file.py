"""Reading a model file safely: its format and the package versions it was trained with.

:func:`load_model` refuses a file that is missing, damaged or holds something else,
one of another :data:`pipeline.model.MODEL_FORMAT`, and one pickled by another major
version of a library whose objects it holds; other version differences only warn.
"""

from __future__ import annotations

import logging
import os
import platform
import re
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from typing import Any

import joblib

from pipeline.model import FORMAT_KEY, MODEL_FORMAT, WineModel
from pipeline.storage import as_path

log = logging.getLogger(__name__)

#: Libraries whose versions are recorded in the model file (besides Python's).
VERSIONED = ("dask", "distributed", "scikit-learn", "lightgbm", "numba", "numpy", "pandas",
             "pyarrow")
#: Libraries whose objects a model file may hold (dask-ml in files that hold its wrappers):
#: unpickled under another major version they may fail or score differently, so refused.
MAJOR_CHECKED = ("scikit-learn", "lightgbm", "dask-ml")
#: The recorded version of a library that is not installed.
ABSENT = "absent"


class ModelFileError(ValueError):
    """A model file is missing, damaged, holds something else, or needs other versions."""


def installed_version(name: str) -> str:
    """The installed version of a distribution (or of Python), or ``"absent"``.

    Parameters
    ----------
    name : str
        Distribution name, e.g. ``scikit-learn``; ``python`` for the interpreter.

    Returns
    -------
    str
    """
    if name == "python":
        return platform.python_version()
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return ABSENT


def package_versions() -> dict[str, str]:
    """Versions of Python and the numeric libraries, recorded in the model's metadata.

    Returns
    -------
    dict of str to str
        Name to version, ``"absent"`` for a library that is not installed.
    """
    return {name: installed_version(name) for name in ("python", *VERSIONED)}


def _major(version: str) -> int | None:
    found = re.match(r"\d+", str(version))
    return int(found.group()) if found else None


def check_versions(recorded: Any, where: str) -> dict[str, tuple[str, str]]:
    """Compare the package versions a model recorded with the installed ones.

    Any difference is logged as one warning; a model file with no versions loads
    with a warning too (nothing can be checked).

    Parameters
    ----------
    recorded : mapping of str to str, or None
        ``model.metadata["versions"]``.
    where : str
        The model file, named in the messages.

    Returns
    -------
    dict of str to (str, str)
        Each library that differs: (recorded, installed).

    Raises
    ------
    ModelFileError
        When a library of :data:`MAJOR_CHECKED` is installed in another major version
        than the one the model was trained with.
    """
    if not isinstance(recorded, Mapping) or not recorded:
        log.warning("%s records no package versions: it cannot be checked against the "
                    "installed ones (train it again to record them)", where)
        return {}
    differs = {name: (str(version), installed_version(name))
               for name, version in sorted(recorded.items())
               if str(version) != installed_version(name)}
    for name in MAJOR_CHECKED:
        was, now = differs.get(name, (ABSENT, ABSENT))
        if None in (_major(was), _major(now)) or _major(was) == _major(now):
            continue  # the same major version, or one side absent (that only warns)
        raise ModelFileError(
            f"{where}: trained with {name} {was}, but {name} {now} is installed: another "
            f"major version may not read or score it alike; train it again, or install "
            f"{name} {was}")
    if differs:
        log.warning("%s was trained with other package versions than installed "
                    "(recorded -> installed): %s; it should load, but may score slightly "
                    "differently", where,
                    ", ".join(f"{name}: {was} -> {now}" for name, (was, now) in differs.items()))
    return differs


def load_model(path: str | os.PathLike) -> WineModel:
    """Read a model written by :meth:`WineModel.save`.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    WineModel

    Raises
    ------
    ModelFileError
        When there is no such file, it cannot be read as a model file (truncated,
        random bytes, another format), it holds something else, it is of another
        :data:`MODEL_FORMAT` (an older file must be trained again), or it was trained
        with another major version of scikit-learn, LightGBM or dask-ml (see
        :func:`check_versions`; other differences only warn).
    """
    if not as_path(path).is_file():
        raise ModelFileError(f"{path}: no such model file; run train first")
    try:
        with as_path(path).open("rb") as fh:
            obj = joblib.load(fh)
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - unpickling fails in many ways on bad bytes
        what = "it is truncated" if isinstance(err, EOFError) else f"{type(err).__name__}"
        raise ModelFileError(f"{path}: not a readable model file ({what}); train it again "
                             "or give the file train wrote") from err
    if not isinstance(obj, WineModel):
        raise ModelFileError(f"{path}: holds a {type(obj).__name__}, not a wine-pipeline "
                             "model")
    metadata = getattr(obj, "metadata", None) or {}
    found = metadata.get(FORMAT_KEY, 1)
    if found != MODEL_FORMAT:
        raise ModelFileError(f"{path}: model file format {found}, this pipeline reads "
                             f"{MODEL_FORMAT}: train it again (`wine-pipeline train`, or remove "
                             "it and `wine-pipeline run` again)")
    check_versions(metadata.get("versions"), str(path))
    return obj
