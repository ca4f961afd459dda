"""The report's context: what evaluate prepared, for the report to lay out.

A directory of:

``metrics.json``
    :class:`pipeline.evaluation.Metrics`, measured on every test row.
``report.json``
    :class:`pipeline.evaluation.ReportNumbers`, every other number the report shows.
``figures/<name>.png``
    The figures of :func:`pipeline.report.plots.report_figures`.

Both JSON files carry ``"version"`` (:data:`VERSION`) and write a missing value
as null.  :func:`load_context` reads them back into their dataclasses once; a file
of another version, or one that lacks a field, is a :class:`pipeline.schema.SchemaError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from pipeline.evaluation import Metrics, ReportNumbers
from pipeline.schema import SchemaError

#: Version of the context's JSON files; a reader refuses any other.
VERSION = 1

METRICS_FILE, NUMBERS_FILE, FIGURES_DIR = "metrics.json", "report.json", "figures"

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class ReportContext:
    """A context directory, read.

    Attributes
    ----------
    metrics : Metrics
    numbers : ReportNumbers
    figures : pathlib.Path
        The directory of the figures' PNGs.
    """

    metrics: Metrics
    numbers: ReportNumbers
    figures: Path


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(record: Any) -> str:
    """A dataclass as versioned JSON; NaN and infinities (unknown values) become null."""
    return json.dumps({"version": VERSION, **_plain(dataclasses.asdict(record))}, indent=1,
                      allow_nan=False, default=str)


def _build(kind: Any, value: Any, where: str) -> Any:
    """``value`` (parsed JSON) as ``kind``: dataclasses and lists of them, recursively."""
    if dataclasses.is_dataclass(kind):
        fields = dataclasses.fields(kind)
        missing = [f.name for f in fields if f.name not in value]
        if missing:
            raise SchemaError(f"{where} lacks {', '.join(missing)}")
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _build(hints[f.name], value[f.name], f"{where}.{f.name}")
                       for f in fields})
    origin = typing.get_origin(kind)
    if origin is list:
        return [_build(typing.get_args(kind)[0], v, where) for v in value]
    if origin is types.UnionType and value is not None:  # X | None
        return _build(typing.get_args(kind)[0], value, where)
    return value


def from_json(text: str, kind: type[T], name: str) -> T:
    """Read :func:`to_json` back into ``kind``.

    Raises
    ------
    pipeline.schema.SchemaError
        If the JSON is of another :data:`VERSION` or lacks a field of ``kind``.
    """
    data = json.loads(text)
    version = data.pop("version", None)
    if version != VERSION:
        raise SchemaError(f"{name} is of version {version}, and this wine-pipeline reads"
                          f" version {VERSION} only: run evaluate again")
    return _build(kind, data, name)


def write_context(directory: Path, metrics: Metrics, numbers: ReportNumbers,
                  figures: dict[str, bytes]) -> None:
    """Write a context directory (which must exist).

    Parameters
    ----------
    directory : pathlib.Path
    metrics : Metrics
    numbers : ReportNumbers
    figures : dict of str to bytes
        The PNG of each figure, by name.
    """
    (directory / METRICS_FILE).write_text(to_json(metrics), encoding="utf-8")
    (directory / NUMBERS_FILE).write_text(to_json(numbers), encoding="utf-8")
    (directory / FIGURES_DIR).mkdir(exist_ok=True)
    for name, png in figures.items():
        (directory / FIGURES_DIR / f"{name}.png").write_bytes(png)


def load_context(directory: str | Path) -> ReportContext:
    """Read a context directory written by :func:`write_context`.

    Raises
    ------
    FileNotFoundError
        If the directory or one of its JSON files is missing.
    pipeline.schema.SchemaError
        See :func:`from_json`.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"report context directory not found: {directory}")
    loaded = []
    for name, kind in ((METRICS_FILE, Metrics), (NUMBERS_FILE, ReportNumbers)):
        path = directory / name
        if not path.is_file():
            raise FileNotFoundError(f"report context {directory} lacks {name}")
        loaded.append(from_json(path.read_text(encoding="utf-8"), kind, str(path)))
    return ReportContext(metrics=loaded[0], numbers=loaded[1], figures=directory / FIGURES_DIR)
