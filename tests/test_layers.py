"""The package's layers, read from its source: who may import Dask, and the steps apart.

Only :mod:`pipeline.distributed` imports Dask, distributed, dask-ml or
LightGBM's Dask interface; everything else is plain functions of DataFrames
and arrays, usable (and testable) without a cluster.  A step module imports
the layers below it, never another step.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"

#: Top-level packages only the distributed layer may import.
DASK_PACKAGES = ("dask", "distributed", "dask_ml")

#: Modules that are Dask although their package is not.
DASK_MODULES = ("lightgbm.dask",)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_in(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every module ``source`` (the code of ``module``) imports, absolute, with its line.

    ``from x import y`` gives ``x`` and ``x.y``, since ``y`` may be a module.
    """
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    return _imports_in(path.read_text(), _module_name(path), path.name == "__init__.py")


def _is_dask(module: str) -> bool:
    return (module.split(".")[0] in DASK_PACKAGES
            or any(module == m or module.startswith(m + ".") for m in DASK_MODULES))


def _modules(under: Path = PACKAGE) -> list[Path]:
    return sorted(under.rglob("*.py"))


def _report(found: list[tuple[Path, int, str]]) -> list[str]:
    # One line per import statement: ``from x import y`` matches as ``x`` and ``x.y``.
    first: dict[tuple[Path, int], str] = {}
    for path, line, module in found:
        first.setdefault((path, line), module)
    return [f"{path.relative_to(ROOT)}:{line}: imports {module}"
            for (path, line), module in first.items()]


def test_the_layer_is_found():
    assert (PACKAGE / "distributed" / "__init__.py").is_file()
    layer = [p for p in _modules() if "distributed" in p.relative_to(PACKAGE).parts]
    assert any(_is_dask(m) for p in layer for _, m in _imports(p))


def test_only_the_distributed_layer_imports_dask():
    bad = _report([(path, line, module) for path in _modules()
                   if path.relative_to(PACKAGE).parts[0] != "distributed"
                   for line, module in _imports(path) if _is_dask(module)])
    assert not bad, "Dask outside pipeline/distributed/:\n" + "\n".join(bad)


def test_the_check_sees_every_way_of_importing_dask():
    ways = ["import dask", "import dask.dataframe as dd", "from dask.utils import parse_bytes",
            "from distributed import Client", "import distributed", "import dask_ml",
            "from lightgbm.dask import DaskLGBMRegressor", "import lightgbm.dask",
            "from lightgbm import dask", "def f():\n    from distributed import Client"]
    for way in ways:
        assert any(_is_dask(m) for _, m in _imports_in(way, "pipeline.probe")), way
    for fine in ("import lightgbm", "from pipeline.distributed.cluster import dask_client",
                 "from pipeline import dataset", "from . import cleaning"):
        assert not any(_is_dask(m) for _, m in _imports_in(fine, "pipeline.probe")), fine


def test_relative_imports_are_resolved():
    assert (3, "pipeline.steps.train") in _imports_in("\n\nfrom . import train",
                                                      "pipeline.steps.predict")
    assert (1, "pipeline.dataset") in _imports_in("from ..dataset import Dataset",
                                                  "pipeline.steps.predict")
    assert (1, "pipeline.distributed.fit") in _imports_in("from .fit import x",
                                                          "pipeline.distributed", True)


def test_no_step_imports_another_step():
    steps = PACKAGE / "steps"
    names = {_module_name(p) for p in _modules(steps)} - {"pipeline.steps"}
    bad = _report([(path, line, module) for path in _modules(steps)
                   for line, module in _imports(path)
                   if any(module == n or module.startswith(n + ".")
                          for n in names - {_module_name(path)})])
    assert not bad, "a step imports another step:\n" + "\n".join(bad)
