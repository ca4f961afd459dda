"""Render the evaluation report: one self-contained HTML file from a context directory.

The ``evaluate`` step writes a *context directory* (:func:`prepare_context`: the
numbers and the figures, described in :mod:`pipeline.report.context`) and calls
:func:`render_report`.  The template ``template.pmd`` reads it with
:func:`pipeline.report.context.load_context` and lays it out with the words of
:mod:`pipeline.report.text` and :mod:`pipeline.report.advice`.

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
(atomically) to ``out_html``.  :class:`ReportSession` starts the kernel ahead
of the rendering, so that a caller can let it start while it computes the context.

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
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.atomic import atomic_file
from pipeline.evaluation import Metrics, report_numbers
from pipeline.report.context import load_context, write_context
from pipeline.storage import as_path, is_remote

log = logging.getLogger(__name__)

#: Environment variable through which the template finds its context directory.
CONTEXT_ENV = "WINE_REPORT_CONTEXT"

#: The Pweave template rendered by :func:`render_report`.
TEMPLATE = Path(__file__).with_name("template.pmd")


_KERNEL_NAME = "wine-report-python"
_KERNEL_START_TIMEOUT = 120.0
#: Longest a single template chunk may run, in seconds.
CHUNK_TIMEOUT = 600.0


class ReportError(RuntimeError):
    """Raised when the report cannot be rendered (a chunk failed, the kernel died, ...)."""


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
h4 { font-size: 1em; margin: 1.4em 0 .2em; }
.summary { background: #f6eef1; border-left: 4px solid #7b1e3a; padding: .4em 1.1em .8em; }
.summary dt { font-weight: 600; color: #7b1e3a; margin-top: .6em; }
.summary dd { margin: .1em 0 0 0; }
.verdict { font-size: 1.08em; padding: .7em 1em; border-left: 4px solid #b7791f;
  background: #fbf3e4; }
.verdict-go { background: #eaf4ee; border-color: #2e7d4f; }
.verdict-no, .verdict-unknown { background: #f8e9eb; border-color: #b23a48; }
.quote { color: #4a4145; font-style: italic; font-size: .92em; }
table.misses td:not(:first-child), table.misses th:not(:first-child),
table.numbers td:not(:first-child), table.numbers th:not(:first-child),
table.compact td:nth-child(2), table.compact th:nth-child(2) { text-align: right;
  white-space: nowrap; }
table.compact { width: auto; }
.footer { margin-top: 3em; color: #8a8185; font-size: .85em; border-top: 1px solid #e6e1e3;
  padding-top: .6em; }
@media print { body { background: #fff; } .page { box-shadow: none; } }
"""

#: The report's stylesheet; the buyer's sheet (:mod:`pipeline.report.sheet`) shares it.
STYLESHEET = _CSS

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
            # PNG only: Pweave's default also renders every figure as PDF and SVG.  No
            # tight bounding box: the figures lay themselves out ("constrained"), and
            # the tight box costs a second drawing of every figure.
            outputs = self.loadstring(
                "import warnings\nwarnings.simplefilter('ignore')\n"
                "%matplotlib inline\n"
                "from matplotlib_inline.backend_inline import set_matplotlib_formats\n"
                "set_matplotlib_formats('png', bbox_inches=None)\n"
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


#: Imported in the kernel as soon as it is up (see :class:`ReportSession`): the
#: template's own imports, which then find the modules loaded.
_PRELOAD = (
    "import warnings\n"
    "warnings.simplefilter('ignore')\n"
    "import pandas, IPython.display\n"
    "import pipeline.report.advice, pipeline.report.text, pipeline.report.context\n"
)


class ReportSession:
    """A report kernel started ahead of the rendering.

    Starting the kernel and importing the plotting libraries keep one core busy
    for a while; ``evaluate`` opens a session before it scores the test split,
    so that this work overlaps the scoring instead of following it.  The
    context directory may still be empty when the session opens: the template
    reads it only when :meth:`render` runs.

    Parameters
    ----------
    context_dir : pathlib.Path
        Where the context files (see the module docstring) will be.

    Raises
    ------
    ReportError
        If the kernel does not start.
    """

    def __init__(self, context_dir: Path):
        with warnings.catch_warnings():
            # Pweave 0.30 imports IPython.core.inputsplitter, deprecated since IPython 7.
            warnings.simplefilter("ignore", DeprecationWarning)
            from pweave import Pweb

        self.context_dir = Path(context_dir).resolve()
        self._scratch = tempfile.TemporaryDirectory(prefix="wine-report-")
        scratch = Path(self._scratch.name)
        try:
            source = scratch / "report.pmd"
            shutil.copyfile(TEMPLATE, source)
            self.doc = Pweb(str(source), doctype="md2html", informat="markdown", kernel=None,
                            output=str(scratch / "report.html"), figdir="figures")
            self.doc.kernel, self.doc.language = _KERNEL_NAME, "python"
            self.doc.setformat(Formatter=_formatter_class())
            self.processor = _processor_class()(
                copy.deepcopy(self.doc.parsed), self.doc.kernel, self.doc.source, False,
                self.doc.figdir, self.doc.wd, scratch=scratch,
                env=_kernel_env(self.context_dir, scratch),
            )
        except BaseException:
            self._scratch.cleanup()
            raise
        # Not waited for: the kernel imports while the caller goes on.  A failure
        # here resurfaces, with its traceback, in the template's first chunk.
        self.processor.kc.execute(_PRELOAD, silent=True, store_history=False)

    def render(self, out_html: Path) -> None:
        """Run the template on the context directory and write the HTML report.

        Parameters
        ----------
        out_html : pathlib.Path
            The report.  Written atomically; its directory is created if needed
            and nothing else is written there.

        Raises
        ------
        FileNotFoundError, pipeline.schema.SchemaError, ReportError
            See :func:`render_report`.
        """
        started = time.perf_counter()
        out_html = as_path(out_html)
        out_html = out_html if is_remote(out_html) else out_html.resolve()
        load_context(self.context_dir)
        processor, doc = self.processor, self.doc
        chatter = io.StringIO()  # Pweave prints "Processing chunk ..." to stdout
        try:
            with contextlib.redirect_stdout(chatter):
                processor.run()
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

    def close(self) -> None:
        """Stop the kernel (if still running) and remove the scratch directory."""
        self.processor.close()
        self._scratch.cleanup()

    def __enter__(self) -> ReportSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def prepare_context(directory: Path, predictions: pd.DataFrame, metrics: Metrics,
                    weights: pd.DataFrame, importance: pd.DataFrame,
                    explained: pd.DataFrame) -> None:
    """Compute the report's numbers, draw its figures and write them into ``directory``.

    Parameters
    ----------
    directory : pathlib.Path
        An existing, empty directory.
    predictions : pandas.DataFrame
        evaluate's sample of scored test rows.
    metrics : pipeline.evaluation.Metrics
    weights, importance, explained : pandas.DataFrame
        :func:`pipeline.steps.evaluate.word_weights` and
        :func:`pipeline.steps.evaluate.explanations` (may be empty).
    """
    from pipeline.report.drawing import FigureDrawer, report_style
    from pipeline.report.plots import report_figures

    numbers = report_numbers(predictions, metrics, importance, explained)
    figures = report_figures(predictions, numbers, weights, metrics.model.mae)
    with report_style():
        drawer = FigureDrawer(figures)
        pngs = {name: drawer.png(name) for name in figures}
    write_context(directory, metrics, numbers, pngs)


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
    load_context(Path(context_dir))  # before a kernel is started for nothing
    with ReportSession(context_dir) as session:
        session.render(out_html)
