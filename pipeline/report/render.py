"""Render the evaluation report: one self-contained HTML file from a context directory.

evaluate hands its results to :func:`write_report`: the numbers are computed
(:func:`pipeline.evaluation.report_numbers`), the figures drawn
(:mod:`pipeline.report.plots`, two at a time: :mod:`pipeline.report.drawing`) and
both written into a context directory (:mod:`pipeline.report.context`), which
:func:`render_report` lays out.

Pweave runs ``template.pmd``: its Markdown becomes HTML, and its code chunks,
which compute nothing, place the prepared HTML (``show``) and figures
(``figure``).  They run in this interpreter (:func:`_processor_class`), in a
namespace holding the loaded ``context``: no kernel, no process, no file is
needed.  The HTML has its own small stylesheet instead of Pweave's themes (which
load MathJax and web fonts from the internet), the figures are inlined as base64
PNG ``data:`` URIs, and a final check refuses a report whose markup would load
anything from outside the file.
"""

from __future__ import annotations

import contextlib
import functools
import html
import io
import logging
import re
import tempfile
import time
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.atomic import atomic_file
from pipeline.evaluation import Metrics, report_numbers
from pipeline.report.context import ReportContext, load_context, write_context
from pipeline.report.filters import environment
from pipeline.storage import as_path, is_remote

log = logging.getLogger(__name__)

#: The Pweave template rendered by :func:`render_report`.
TEMPLATE = Path(__file__).with_name("template.pmd")


class ReportError(RuntimeError):
    """Raised when the report cannot be rendered (a chunk failed, a reference outside ...)."""


#: Attributes that load or link to something.
_LINKING = {"src", "href", "data", "poster", "action", "srcset", "formaction", "background"}
#: Elements that load something, or run code, whatever their attributes.
_LOADING = {"script", "link", "iframe", "object", "embed", "base"}


class _Markup(HTMLParser):
    """Collects what a document's markup (never its text) loads from outside the file."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        if tag in _LOADING:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip()
            if name in _LINKING and value and not value.startswith(("data:", "#")):
                self.found.append(f"{tag} {name}={value[:60]}")
            if name == "style" and re.search(r"url\(|@import", value, re.IGNORECASE):
                self.found.append(f"{tag} style={value[:60]}")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and re.search(r"url\(|@import", data, re.IGNORECASE):
            self.found.append(f"<style> {data.strip()[:60]}")


def markup_references(document: str) -> list[str]:
    """What an HTML document's markup loads or runs: empty for a self-contained, inert page.

    Only tags and their attributes count, so a wine named ``src=//x`` (escaped text)
    is no false alarm.  The report and the buyer's sheet are checked with it.

    Parameters
    ----------
    document : str

    Returns
    -------
    list of str
        Every ``<script>``, ``<link>``, ``<iframe>``, ``<object>``, ``<embed>`` or
        ``<base>`` element, every linking attribute that is not a ``data:`` URI or
        a ``#`` anchor, and every CSS ``url(`` or ``@import``.
    """
    parser = _Markup()
    parser.feed(document)
    parser.close()
    return parser.found


def _processor_class() -> type:
    """Build the Pweave processor that runs the template's chunks here (pweave imported lazily)."""
    from pweave.processors.base import PwebProcessorBase

    class InProcess(PwebProcessorBase):
        """Runs each chunk in one namespace of this interpreter; it shows what it adds.

        The namespace holds the ``context`` (:class:`pipeline.report.context.ReportContext`),
        ``page`` (the macros of ``templates/report.html.j2`` on it), ``show(html)``, which
        adds an HTML fragment to the chunk's output, and ``figure(name)``, which adds the
        figure ``name`` of the context.
        """

        def __init__(self, parsed, kernel, source, mode, figdir, outdir, *,
                     context: ReportContext, page: Any):
            super().__init__(parsed, kernel, source, mode, figdir, outdir)
            self.outputs: list[dict] = []
            self.namespace = {"context": context, "page": page, "show": self.show,
                              "figure": self.figure}

        def show(self, fragment: str) -> None:
            self.outputs.append({"output_type": "display_data", "data": {"text/html": fragment}})

        def figure(self, name: str) -> None:
            png = (self.namespace["context"].figures / f"{name}.png").read_bytes()
            self.outputs.append({"output_type": "display_data", "data": {"image/png": png}})

        def loadstring(self, code_str, **kwargs):
            self.outputs = []
            exec(compile(code_str, str(TEMPLATE), "exec"), self.namespace)
            return self.outputs

        def _runcode(self, chunk):
            # Stop at the first failing chunk: the rest would only fail in its wake.
            try:
                return super()._runcode(chunk)
            except Exception as exc:
                raise ReportError(f"the report template failed in chunk {chunk.get('number')}"
                                  f" (line {chunk.get('start_line')}):"
                                  f" {type(exc).__name__}: {exc}") from exc

    return InProcess


def _formatter_class(page: Any) -> type:
    """Build the md2html formatter with the page's header and footer, and inline figures."""
    import base64

    import markdown
    import pweave
    from pweave.formatters import PwebMDtoHTMLFormatter

    from pipeline import __version__

    class ReportFormatter(PwebMDtoHTMLFormatter):
        """Pweave's md2html without CDN scripts, web fonts or links to the source."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.header = str(page.head())
            self.footer = str(page.foot(__version__, pweave.__version__))

        def preformat_chunk(self, chunk):
            return chunk  # no chunk is echoed: nothing to highlight

        def format_docchunk(self, chunk):
            # Plain Markdown (+ tables): no MathJax, so a "$" in the text stays a dollar.
            return markdown.markdown(chunk["content"], extensions=["tables"])

        def figures_from_chunk(self, chunk):
            return [out["data"]["image/png"] for out in chunk["result"]
                    if "image/png" in out["data"]]

        def formatfigure(self, chunk):
            if not chunk["figure"]:
                return ""
            caption = chunk.get("caption") or ""
            alt = html.escape(caption or chunk.get("name") or "figure", quote=True)
            images = "\n".join(f'<img src="data:image/png;base64,'
                               f'{base64.b64encode(png).decode("ascii")}" alt="{alt}"/>'
                               for png in chunk["figure"])
            cap = f"<figcaption>{caption}</figcaption>" if caption else ""
            return f"<figure>\n{images}\n{cap}</figure>\n"

    return ReportFormatter


def render_report(context_dir: str | Path, out_html: str | Path) -> None:
    """Lay out the report of a context directory into one HTML file.

    Parameters
    ----------
    context_dir : str or pathlib.Path
        Written by :func:`pipeline.report.context.write_context`.
    out_html : str or pathlib.Path
        The report.  Written atomically; its directory is created if needed
        and nothing else is written there.

    Raises
    ------
    FileNotFoundError, pipeline.schema.SchemaError
        If the context directory or a file of it is missing, of another version,
        or lacks a field (:func:`pipeline.report.context.load_context`).
    ReportError
        If a template chunk fails (naming it and the error), or the result would
        not be self-contained.
    """
    started = time.perf_counter()
    context = load_context(context_dir)
    with warnings.catch_warnings():
        # Pweave 0.30 imports IPython.core.inputsplitter, deprecated since IPython 7.
        warnings.simplefilter("ignore", DeprecationWarning)
        from pweave import Pweb

    # The output path only tells Pweave where the figures would go: nothing is written.
    doc = Pweb(str(TEMPLATE), doctype="md2html", informat="markdown", kernel=None,
               output=str(context.figures.parent / "report.html"), figdir=context.figures.name)
    page = environment().get_template("report.html.j2").make_module(
        {"m": context.metrics, "r": context.numbers})
    doc.setformat(Formatter=_formatter_class(page))
    chatter = io.StringIO()  # Pweave prints "Processing chunk ..." to stdout
    with contextlib.redirect_stdout(chatter):
        doc.run(Processor=functools.partial(_processor_class(), context=context, page=page))
        doc.format()
    log.debug("pweave: %s", chatter.getvalue())
    document = doc.formatted.replace("\r", "")
    leftovers = markup_references(document)
    if leftovers:
        raise ReportError(f"the report would refer to external resources: {leftovers}")
    out_html = as_path(out_html)
    with atomic_file(out_html if is_remote(out_html) else out_html.resolve()) as tmp_out:
        tmp_out.write_text(document, encoding="utf-8")
    log.info("report written to %s in %.1f s", out_html, time.perf_counter() - started)


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


def write_report(out_html: str | Path, predictions: pd.DataFrame, metrics: Metrics,
                 weights: pd.DataFrame, importance: pd.DataFrame,
                 explained: pd.DataFrame) -> None:
    """The report of evaluate's results: :func:`prepare_context`, then :func:`render_report`.

    The context lives in a temporary directory, removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="wine-report-") as scratch:
        prepare_context(Path(scratch), predictions, metrics, weights, importance, explained)
        render_report(Path(scratch), out_html)
