"""Render the evaluation report: one self-contained HTML file from a context directory.

The ``evaluate`` step writes a *context directory* and calls
:func:`render_report`.  The directory holds:

``predictions.parquet``
    One row per test review: ``id``, ``points``, ``predicted_points`` (needed)
    and ``baseline_mean``, ``baseline_price``, ``price``, ``country`` ...
    (used when present; missing values are fine).
``metrics.json``
    ``model``, ``baselines`` (``mean``, ``price_only``), ``rows`` and
    ``model_info``, see :func:`load_context`.
``word_weights.csv`` (optional)
    ``term``, ``weight``: the words that push a prediction up or down.

How it runs
-----------
Pweave executes ``template.pmd`` in a fresh Jupyter kernel.  The kernel is
started from a kernel spec written into a scratch directory whose command is
``sys.executable -m ipykernel_launcher``: the interpreter that calls
:func:`render_report`, never a ``python3`` spec found on the machine, and
nothing is registered globally.  The kernel gets the context directory in
:data:`CONTEXT_ENV` and the package on its ``PYTHONPATH``, so it works from
any working directory.  Every intermediate file (the template copy, figures,
the kernel's connection file and IPython profile) lives in that scratch
directory, which is removed afterwards; only the finished HTML is moved
(atomically) to ``out_html``.

The HTML has its own small stylesheet instead of Pweave's themes, which load
MathJax and web fonts from the internet; figures are embedded as base64 PNG
``data:`` URIs.  A final check refuses to write a report that still refers to
anything outside the file.
"""

from __future__ import annotations

import contextlib
import copy
import html
import io
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.atomic import atomic_file
from pipeline.schema import SchemaError

log = logging.getLogger(__name__)

#: Environment variable through which the template finds its context directory.
CONTEXT_ENV = "WINE_REPORT_CONTEXT"
#: The Pweave template rendered by :func:`render_report`.
TEMPLATE = Path(__file__).with_name("template.pmd")

PREDICTIONS_FILE = "predictions.parquet"
METRICS_FILE = "metrics.json"
WORD_WEIGHTS_FILE = "word_weights.csv"

#: Columns ``predictions.parquet`` must have.
REQUIRED_PREDICTION_COLUMNS: tuple[str, ...] = ("points", "predicted_points")
#: Columns of ``predictions.parquet`` the report reads when present (the text is left out).
REPORT_PREDICTION_COLUMNS: tuple[str, ...] = (
    "id", "points", "predicted_points", "baseline_mean", "baseline_price", "price", "country",
    "province", "variety", "taster_name",
)

#: Metrics of the metrics table: key in ``metrics.json``, label, plain-words meaning, kind.
METRIC_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("mae", "Average error (MAE)",
     "How many points the prediction is off, on average. Lower is better.", "points"),
    ("rmse", "Typical error, big misses weigh more (RMSE)",
     "Like the average error, but a few large misses count more. Lower is better.", "points"),
    ("r2", "Share of score differences explained (R²)",
     "1 is perfect; 0 is no better than always guessing the average score.", "ratio"),
    ("within_2", "Within ±2 points",
     "Share of wines whose prediction is at most 2 points off. Higher is better.", "share"),
    ("within_3", "Within ±3 points",
     "Share of wines whose prediction is at most 3 points off. Higher is better.", "share"),
)
_LOWER_IS_BETTER = {"mae", "rmse"}

_KERNEL_NAME = "wine-report-python"
_KERNEL_START_TIMEOUT = 120.0
#: Longest a single template chunk may run, in seconds.
CHUNK_TIMEOUT = 600.0


class ReportError(RuntimeError):
    """Raised when the report cannot be rendered (a chunk failed, the kernel died, ...)."""


# ---------------------------------------------------------------------------
# Reading the context directory (used by the template, inside the kernel)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportContext:
    """Everything the report shows, read from a context directory.

    Attributes
    ----------
    predictions : pandas.DataFrame
        Test rows with the columns of :data:`REPORT_PREDICTION_COLUMNS` that
        exist (all of them: absent optional ones are filled with missing values).
    metrics : dict
        Content of ``metrics.json``.
    word_weights : pandas.DataFrame
        Columns ``term`` and ``weight``; empty when the file is absent.
    """

    predictions: pd.DataFrame
    metrics: dict[str, Any]
    word_weights: pd.DataFrame


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.dataset as ds

    return list(ds.dataset(path, format="parquet").schema.names)


def check_context(context_dir: str | os.PathLike) -> None:
    """Check a context directory cheaply, before a kernel is started.

    Parameters
    ----------
    context_dir : path-like
        Directory written by the ``evaluate`` step.

    Raises
    ------
    FileNotFoundError
        If the directory, ``predictions.parquet`` or ``metrics.json`` is missing.
    pipeline.schema.SchemaError
        If a required prediction column is missing, or ``metrics.json`` has
        no ``model`` section.
    """
    context = Path(context_dir)
    if not context.is_dir():
        raise FileNotFoundError(f"report context directory not found: {context}")
    for name in (PREDICTIONS_FILE, METRICS_FILE):
        if not (context / name).exists():
            raise FileNotFoundError(f"report context {context} lacks {name}")
    columns = _parquet_columns(context / PREDICTIONS_FILE)
    missing = [c for c in REQUIRED_PREDICTION_COLUMNS if c not in columns]
    if missing:
        raise SchemaError(
            f"{context / PREDICTIONS_FILE} lacks column(s) {', '.join(missing)}"
            f" (has: {', '.join(columns)})"
        )
    metrics = json.loads((context / METRICS_FILE).read_text(encoding="utf-8"))
    if not isinstance(metrics, dict) or not isinstance(metrics.get("model"), dict):
        raise SchemaError(f"{context / METRICS_FILE} has no 'model' section")


def load_context(context_dir: str | os.PathLike | None = None) -> ReportContext:
    """Read a context directory.

    Parameters
    ----------
    context_dir : path-like, optional
        Directory written by the ``evaluate`` step; defaults to the value of
        the :data:`CONTEXT_ENV` environment variable.

    Returns
    -------
    ReportContext
        Predictions (without the free text), metrics and word weights.

    Raises
    ------
    KeyError
        If no directory is given and :data:`CONTEXT_ENV` is not set.
    """
    context = Path(context_dir if context_dir is not None else os.environ[CONTEXT_ENV])
    check_context(context)
    present = _parquet_columns(context / PREDICTIONS_FILE)
    wanted = [c for c in REPORT_PREDICTION_COLUMNS if c in present]
    predictions = pd.read_parquet(context / PREDICTIONS_FILE, columns=wanted)
    for column in REPORT_PREDICTION_COLUMNS:
        if column not in predictions.columns:
            predictions[column] = pd.NA if column in ("country", "province", "variety",
                                                     "taster_name") else float("nan")
    metrics = json.loads((context / METRICS_FILE).read_text(encoding="utf-8"))
    weights_path = context / WORD_WEIGHTS_FILE
    if weights_path.exists():
        weights = pd.read_csv(weights_path, keep_default_na=False, na_values=[""])
    else:
        weights = pd.DataFrame({"term": pd.Series(dtype="string"),
                                "weight": pd.Series(dtype=float)})
    return ReportContext(predictions=predictions, metrics=metrics, word_weights=weights)


# ---------------------------------------------------------------------------
# Text and tables of the report (used by the template)
# ---------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _section(mapping: Any, key: str) -> Mapping[str, Any]:
    value = mapping.get(key) if isinstance(mapping, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def format_metric(value: Any, kind: str) -> str:
    """Format one metric for a reader.

    Parameters
    ----------
    value : Any
        The metric; anything that is not a finite number gives ``"n/a"``.
    kind : {"points", "ratio", "share"}
        Points are shown with two decimals, a ratio with two, a share (0-1) as
        a whole percentage.

    Returns
    -------
    str
        E.g. ``"1.85"``, ``"0.47"`` or ``"78%"``.
    """
    number = _number(value)
    if number is None:
        return "n/a"
    text = f"{100 * number:.0f}%" if kind == "share" else f"{number:.2f}"
    return text.replace("-0.00", "0.00").replace("-0%", "0%")


def in_ten(share: Any) -> str | None:
    """Say a share as "N wines in 10".

    Parameters
    ----------
    share : Any
        Share between 0 and 1.

    Returns
    -------
    str or None
        E.g. ``"8 wines in 10"``, ``"nearly every wine"`` (95% and more),
        ``"fewer than 1 wine in 10"``; None when ``share`` is not a number.
    """
    number = _number(share)
    if number is None:
        return None
    if number >= 0.95:
        return "nearly every wine"
    tenths = round(10 * number)
    if tenths < 1:
        return "fewer than 1 wine in 10"
    return f"{tenths} wine{'s' if tenths > 1 else ''} in 10"


def accuracy_sentence(metrics: Mapping[str, Any]) -> str:
    """The headline in plain words, e.g. "For 8 wines in 10 the prediction is within 2 points".

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``.

    Returns
    -------
    str
        Plain text (not HTML-escaped).
    """
    model = _section(metrics, "model")
    within2, within3 = in_ten(model.get("within_2")), in_ten(model.get("within_3"))
    mae = _number(model.get("mae"))
    parts = []
    if within2:
        sentence = (f"For {within2} ({format_metric(model.get('within_2'), 'share')}) the "
                    "predicted score is within 2 points of the critic's score")
        if within3:
            sentence += f", and for {within3} within 3 points"
        parts.append(sentence + ".")
    if mae is not None:
        parts.append(f"On average the prediction is {mae:.1f} points off.")
    return " ".join(parts) or "No accuracy figures are available."


def baseline_sentence(metrics: Mapping[str, Any]) -> str:
    """Compare the model's average error with the naive baselines, in plain words.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``.

    Returns
    -------
    str
        Plain text (not HTML-escaped); empty when the numbers are missing.
    """
    model = _number(_section(metrics, "model").get("mae"))
    baselines = _section(metrics, "baselines")
    mean = _number(_section(baselines, "mean").get("mae"))
    price = _number(_section(baselines, "price_only").get("mae"))
    if model is None or (mean is None and price is None):
        return ""
    guesses = []
    if mean is not None:
        guesses.append(f"always guessing the average score would be {mean:.1f} points off")
    if price is not None:
        guesses.append(f"guessing from the price alone {price:.1f} points off")
    sentence = "By comparison, " + " and ".join(guesses) + "."
    best = min(x for x in (mean, price) if x is not None)
    if best > 0 and model < best:
        sentence += (f" The model's errors are {100 * (1 - model / best):.0f}% smaller than the"
                     " better of these simple rules.")
    elif model >= best:
        sentence += " The model does not beat the simple rules on this data."
    return sentence


def _table(header: list[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def metrics_table_html(metrics: Mapping[str, Any]) -> str:
    """HTML table of the model's metrics beside the two baselines.

    The best value of each row is in bold.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``.

    Returns
    -------
    str
        An HTML ``<table>``.
    """
    model = _section(metrics, "model")
    baselines = _section(metrics, "baselines")
    columns = [
        (f"Model ({html.escape(str(model.get('name', 'model')))})", model),
        ("Always the average score", _section(baselines, "mean")),
        ("From the price only", _section(baselines, "price_only")),
    ]
    rows = []
    for key, label, meaning, kind in METRIC_ROWS:
        values = [_number(col.get(key)) for _, col in columns]
        known = [v for v in values if v is not None]
        best = (min(known) if key in _LOWER_IS_BETTER else max(known)) if known else None
        cells = []
        for value in values:
            text = format_metric(value, kind)
            cells.append(f"<strong>{text}</strong>" if value is not None and value == best
                         else text)
        note = f'<span class="note">{html.escape(meaning)}</span>'
        rows.append([html.escape(label), *cells, note])
    header = ["", *(name for name, _ in columns), "What it means"]
    return _table(header, rows, css="metrics")


def data_overview_html(metrics: Mapping[str, Any]) -> str:
    """HTML table of the number of reviews in each part of the data.

    Parameters
    ----------
    metrics : mapping
        Content of ``metrics.json``; its ``rows`` section gives the counts.

    Returns
    -------
    str
        An HTML ``<table>``.
    """
    counts = metrics.get("rows")
    counts = counts if isinstance(counts, Mapping) else {}
    parts = (
        ("train", "Training", "the model learned from these"),
        ("valid", "Validation", "used to choose the model's settings"),
        ("test", "Test", "kept aside until the end; every figure in this report is on these"),
        ("rejected", "Set aside", "unusable rows (e.g. no score or no tasting note), "
                                  "kept with their reason"),
    )
    rows = []
    for key, label, meaning in parts:
        number = _number(counts.get(key))
        rows.append([label, "n/a" if number is None else f"{number:,.0f}",
                     f'<span class="note">{html.escape(meaning)}</span>'])
    return _table(["Part", "Reviews", "Used for"], rows, css="overview")


def _flatten(info: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in info.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            items.extend(_flatten(value, f"{name} / "))
        else:
            items.append((name, value))
    return items


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "n/a"
    if isinstance(value, list | tuple):
        return ", ".join(_format_value(v) for v in value)
    if value is None:
        return "n/a"
    return str(value)


def _label(key: str) -> str:
    # "valid_metrics / within_2" -> "Valid metrics / within_2": only the section names are prose.
    head, *rest = key.split(" / ")
    head = head.replace("_", " ")
    return " / ".join([head[:1].upper() + head[1:], *rest])


def model_info_html(model_info: Mapping[str, Any] | None) -> str:
    """HTML table of the free-form model information (versions, training time, ...).

    Nested dictionaries are flattened to ``section / key`` rows.

    Parameters
    ----------
    model_info : mapping or None
        The ``model_info`` section of ``metrics.json``.

    Returns
    -------
    str
        An HTML ``<table>``, or a short paragraph when there is nothing to show.
    """
    if isinstance(model_info, Mapping):
        items = _flatten(model_info)
    else:
        items = [("model info", model_info)] if model_info else []
    if not items:
        return "<p>No model information was recorded.</p>"
    rows = [[html.escape(_label(k)), f"<code>{html.escape(_format_value(v))}</code>"]
            for k, v in items]
    return _table(["Item", "Value"], rows, css="info")


def band_sentence(table: pd.DataFrame, what: str,
                  names: Mapping[str, str] | None = None) -> str:
    """Name the bands where the model is most and least accurate.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`pipeline.report.plots.mae_by_band`.
    what : str
        What the bands are, for the sentence (e.g. ``"wines scored"``, giving
        "wines scored 85-87").
    names : mapping, optional
        Whole phrases for particular bands, e.g.
        ``{"no price": "wines without a price"}``.

    Returns
    -------
    str
        Plain text (not HTML-escaped); empty with fewer than two bands of
        at least 5 wines.
    """
    names = names or {}
    model = table[(table["predictor"] == "Model") & (table["n"] >= 5)]
    if len(model) < 2:
        return ""
    best = model.loc[model["mae"].idxmin()]
    worst = model.loc[model["mae"].idxmax()]

    def phrase(band: object) -> str:
        return names.get(str(band), f"{what} {band}")

    return (f"The model is most accurate for {phrase(best['band'])} (off by"
            f" {best['mae']:.1f} points on average) and least accurate for"
            f" {phrase(worst['band'])} ({worst['mae']:.1f} points).")


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

_CSS = """
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: #faf8f6; color: #2b2326;
  font: 16px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.page { max-width: 960px; margin: 0 auto; padding: 24px 32px 48px; background: #fff;
  box-shadow: 0 0 12px rgba(0,0,0,.06); }
h1 { color: #7b1e3a; font-size: 1.9em; margin: .4em 0 .3em; }
h2 { color: #7b1e3a; font-size: 1.35em; margin-top: 1.8em; border-bottom: 2px solid #ead9de;
  padding-bottom: .2em; }
h3 { font-size: 1.1em; }
p { margin: .6em 0; }
.lead { font-size: 1.15em; background: #f6eef1; border-left: 4px solid #7b1e3a;
  padding: .7em 1em; }
table { border-collapse: collapse; margin: 1em 0; width: 100%; font-size: .95em; }
th, td { border-bottom: 1px solid #e6e1e3; padding: .45em .6em; text-align: left;
  vertical-align: top; }
th { background: #f6eef1; }
table.metrics td:not(:first-child):not(:last-child),
table.metrics th:not(:first-child):not(:last-child),
table.overview td:nth-child(2), table.overview th:nth-child(2) { text-align: right;
  white-space: nowrap; }
.note { color: #6b6266; font-size: .92em; }
table.info code { font-size: .9em; word-break: break-all; }
figure { margin: 1.2em 0; text-align: center; }
img { max-width: 100%; height: auto; }
figcaption { color: #6b6266; font-size: .92em; margin-top: .3em; }
.footer { margin-top: 3em; color: #8a8185; font-size: .85em; border-top: 1px solid #e6e1e3;
  padding-top: .6em; }
@media print { body { background: #fff; } .page { box-shadow: none; } }
"""

_HEADER = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Wine rating predictor: evaluation report</title>
<style>{css}</style>
</head>
<body>
<div class="page">
"""

_FOOTER = """
<div class="footer">Generated by wine-pipeline {version} with Pweave {pweave}.
This file is self-contained: it needs no network connection.</div>
</div>
</body>
</html>
"""

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: Attributes that load (or link to) something outside the file.
_EXTERNAL_ATTR = re.compile(r"""\b(src|href|data|poster|action)\s*=\s*(["']?)\s*(?:https?:)?//""",
                            re.IGNORECASE)
_EXTERNAL_TAG = re.compile(
    r"""<(script|link|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^>]*>"""
    r"""(?:.*?</\1\s*>)?""",
    re.IGNORECASE | re.DOTALL,
)
_EXTERNAL_CSS = re.compile(r"""(@import[^;]*;|url\(\s*["']?\s*(?:https?:)?//[^)]*\))""",
                           re.IGNORECASE)


def external_references(document: str) -> list[str]:
    """Find everything in an HTML document that refers outside it.

    Parameters
    ----------
    document : str
        HTML text.

    Returns
    -------
    list of str
        The offending snippets: ``src``/``href``-like attributes with an
        ``http(s)://`` or protocol-relative URL, and CSS ``url(...)``/``@import``
        of such URLs.  Empty for a self-contained document.
    """
    found = [document[m.start():m.start() + 80] for m in _EXTERNAL_ATTR.finditer(document)]
    found += [m.group(0)[:80] for m in _EXTERNAL_CSS.finditer(document)
              if re.search(r"(https?:)?//", m.group(0))]
    return found


def make_self_contained(document: str) -> str:
    """Remove external scripts, stylesheets and fonts; unlink external links.

    Parameters
    ----------
    document : str
        HTML text.

    Returns
    -------
    str
        The document without ``<script>``/``<link>``/``<iframe>`` elements that
        load from the network, without CSS ``url()``/``@import`` of network
        resources, and with remaining external ``href``/``src`` attributes
        replaced by ``#``.
    """
    document = _EXTERNAL_TAG.sub("", document)
    document = _EXTERNAL_CSS.sub(lambda m: "" if re.search(r"(https?:)?//", m.group(0))
                                 else m.group(0), document)
    return re.sub(r"""\b(src|href|data|poster|action)\s*=\s*(["']?)\s*(?:https?:)?//[^"'\s>]*""",
                  lambda m: f"{m.group(1)}={m.group(2)}#", document, flags=re.IGNORECASE)


def _kernel_env(context_dir: Path, scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    env[CONTEXT_ENV] = str(context_dir)
    # The package must import in the kernel even when it is not installed and the
    # kernel's working directory (the scratch dir) is elsewhere.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["PYTHONWARNINGS"] = "ignore"
    env["IPYTHONDIR"] = str(scratch / "ipython")  # no profile or history in $HOME
    env["JUPYTER_RUNTIME_DIR"] = str(scratch / "runtime")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env.pop("MPLBACKEND", None)  # the kernel sets up the inline backend itself
    return env


def _write_kernel_spec(scratch: Path) -> Path:
    """Write a kernel spec that runs this very interpreter; return its parent dir."""
    if not sys.executable:
        raise ReportError("cannot start a report kernel: sys.executable is empty")
    root = scratch / "kernels"
    spec_dir = root / _KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--HistoryManager.enabled=False"],
        "display_name": f"wine report ({sys.executable})",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return root


def _processor_class() -> type:
    """Build the Pweave processor that runs chunks in our own kernel (pweave imported lazily)."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from pweave.processors import IPythonProcessor
    from pweave.processors.base import PwebProcessorBase

    class ReportProcessor(IPythonProcessor):
        """Pweave's IPython processor on an explicit kernel.

        Runs cells with the jupyter_client 8 API (Pweave 0.30's own loop calls
        ``get_msg(block=...)``, which jupyter_client 8 removed) and drops stderr.
        """

        def __init__(self, parsed, kernel, source, mode, figdir, outdir, *,
                     scratch: Path, env: dict[str, str]):
            PwebProcessorBase.__init__(self, parsed, kernel, source, mode, figdir, outdir)
            self.timeout = CHUNK_TIMEOUT
            self.kernel_log = scratch / "kernel.log"
            ksm = KernelSpecManager(kernel_dirs=[str(_write_kernel_spec(scratch))],
                                    ensure_native_kernel=False)
            self.km = KernelManager(kernel_name=_KERNEL_NAME, kernel_spec_manager=ksm)
            self.km.connection_file = str(scratch / "kernel-connection.json")
            self.kc = None
            with open(self.kernel_log, "wb") as err:
                self.km.start_kernel(cwd=str(outdir), env=env, stdout=subprocess.DEVNULL,
                                     stderr=err)
            try:
                self.kc = self.km.client()
                self.kc.start_channels()
                self.kc.allow_stdin = False
                try:
                    self.kc.wait_for_ready(timeout=_KERNEL_START_TIMEOUT)
                except RuntimeError as exc:
                    raise ReportError(f"the report kernel did not start: {exc}\n"
                                      f"{self.log_tail()}") from exc
                self.init_matplotlib()
            except BaseException:
                self.close()
                raise

        def init_matplotlib(self):
            # PNG only: Pweave's default also renders every figure as PDF and SVG.
            outputs = self.loadstring(
                "import warnings\nwarnings.simplefilter('ignore')\n"
                "%matplotlib inline\n"
                "from matplotlib_inline.backend_inline import set_matplotlib_formats\n"
                "set_matplotlib_formats('png')\n"
                "import matplotlib\n"
            )
            errors = _errors([{"type": "code", "number": 0, "start_line": 0,
                               "result": outputs}])
            if errors:
                raise ReportError("setting up matplotlib in the report kernel failed in "
                                  + errors[0])

        def pre_run_hook(self, chunk):
            # Figure size and resolution are set by the template and the plot helpers,
            # not reset to Pweave's defaults (6x4 in, 200 dpi) before every chunk.
            pass

        def run_cell(self, src):
            from nbformat.v4 import output_from_msg

            outputs = []

            def hook(msg):
                kind = msg["msg_type"]
                if kind == "clear_output":
                    outputs.clear()
                elif kind in ("stream", "display_data", "execute_result", "error"):
                    outputs.append(output_from_msg(msg))

            try:
                self.kc.execute_interactive(src.lstrip(), store_history=False,
                                            timeout=self.timeout, output_hook=hook,
                                            allow_stdin=False)
            except TimeoutError as exc:
                raise ReportError(f"a report chunk ran longer than {self.timeout:.0f} s")\
                    from exc
            if not self.km.is_alive():
                raise ReportError(f"the report kernel died\n{self.log_tail()}")
            return outputs

        def _runcode(self, chunk):
            # Stop at the first failing chunk: the rest would only fail in its wake.
            result = super()._runcode(chunk)
            errors = _errors(result if isinstance(result, list) else [result])
            if errors:
                raise ReportError("the report template failed in " + errors[0])
            return result

        def loadstring(self, code_str, **kwargs):
            # Warnings and other stderr never reach the report.
            return [o for o in self.run_cell(code_str)
                    if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]

        def log_tail(self, n: int = 4000) -> str:
            try:
                return self.kernel_log.read_text(errors="replace")[-n:]
            except OSError:
                return ""

        def close(self):
            if self.kc is not None:
                with contextlib.suppress(Exception):
                    self.kc.stop_channels()
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)

    return ReportProcessor


def _formatter_class() -> type:
    """Build the md2html formatter with our own header, footer and figure markup."""
    import base64

    import markdown
    import pweave
    from pweave.formatters import PwebMDtoHTMLFormatter

    from pipeline import __version__

    class ReportFormatter(PwebMDtoHTMLFormatter):
        """Pweave's md2html without CDN scripts, web fonts or links to the source."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.header = _HEADER.format(css=_CSS)
            self.footer = _FOOTER.format(version=html.escape(__version__),
                                         pweave=html.escape(pweave.__version__))

        def format_docchunk(self, chunk):
            # Plain Markdown (+ tables): no MathJax, so a "$" in the text stays a dollar.
            return markdown.markdown(chunk["content"], extensions=["tables"])

        def formatfigure(self, chunk):
            caption = chunk.get("caption") or ""
            out = []
            for fig in chunk["figure"]:
                data = Path(self.wd, fig).read_bytes()
                if not data.startswith(_PNG_MAGIC):
                    raise ReportError(f"figure {fig} is not a PNG")
                b64 = base64.b64encode(data).decode("ascii")
                alt = html.escape(caption or chunk.get("name") or "figure", quote=True)
                out.append(f'<img src="data:image/png;base64,{b64}" alt="{alt}"/>')
            if not out:
                return ""
            cap = f"<figcaption>{caption}</figcaption>" if caption else ""
            return "<figure>\n" + "\n".join(out) + f"\n{cap}</figure>\n"

    return ReportFormatter


def _errors(executed: list[dict[str, Any]]) -> list[str]:
    from nbconvert import filters

    found = []
    for chunk in executed:
        if chunk.get("type") != "code":
            continue
        for out in chunk.get("result") or []:
            if out.get("output_type") == "error":
                trace = filters.strip_ansi("\n".join(out.get("traceback", [])))
                found.append(f"chunk {chunk.get('number')} (line {chunk.get('start_line')}):"
                             f"\n{trace}")
    return found


def render_report(context_dir: Path, out_html: Path) -> None:
    """Render the evaluation report of a context directory into one HTML file.

    Parameters
    ----------
    context_dir : pathlib.Path
        Directory with ``predictions.parquet``, ``metrics.json`` and
        (optionally) ``word_weights.csv``; see the module docstring.
    out_html : pathlib.Path
        The report.  Written atomically; its directory is created if needed
        and nothing else is written there.

    Raises
    ------
    FileNotFoundError
        If the context directory or a required file in it is missing.
    pipeline.schema.SchemaError
        If a required column or section is missing.
    ReportError
        If a template chunk fails (the traceback is in the message), the
        kernel does not start, or the result would not be self-contained.
    """
    with warnings.catch_warnings():
        # Pweave 0.30 imports IPython.core.inputsplitter, deprecated since IPython 7.
        warnings.simplefilter("ignore", DeprecationWarning)
        from pweave import Pweb

    started = time.perf_counter()
    context_dir = Path(context_dir).resolve()
    out_html = Path(out_html).resolve()
    check_context(context_dir)

    with tempfile.TemporaryDirectory(prefix="wine-report-") as tmp:
        scratch = Path(tmp)
        source = scratch / "report.pmd"
        shutil.copyfile(TEMPLATE, source)
        work_out = scratch / "report.html"

        doc = Pweb(str(source), doctype="md2html", informat="markdown", kernel=None,
                   output=str(work_out), figdir="figures")
        doc.kernel, doc.language = _KERNEL_NAME, "python"
        doc.setformat(Formatter=_formatter_class())

        processor = _processor_class()(
            copy.deepcopy(doc.parsed), doc.kernel, doc.source, False, doc.figdir, doc.wd,
            scratch=scratch, env=_kernel_env(context_dir, scratch),
        )
        chatter = io.StringIO()  # Pweave prints "Processing chunk ..." to stdout
        try:
            with contextlib.redirect_stdout(chatter):
                processor.run()  # closes the kernel when done
        except ReportError:
            raise
        except Exception as exc:
            raise ReportError(f"rendering the report failed: {exc}\n{processor.log_tail()}") \
                from exc
        finally:
            processor.close()
        log.debug("pweave: %s", chatter.getvalue())
        doc.executed = processor.getresults()

        with contextlib.redirect_stdout(chatter):
            doc.format()
        document = make_self_contained(doc.formatted.replace("\r", ""))
        leftovers = external_references(document)
        if leftovers:
            raise ReportError(f"the report still refers to external resources: {leftovers}")

        with atomic_file(out_html) as tmp_out:
            tmp_out.write_text(document, encoding="utf-8")

    log.info("report written to %s in %.1f s", out_html, time.perf_counter() - started)
