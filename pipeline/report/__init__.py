"""The evaluation report: a Pweave template, its plotting helpers and the renderer.

Use :func:`pipeline.report.render.render_report` (re-exported here) to turn the
context directory written by the ``evaluate`` step into one self-contained
HTML file.  Importing this package is cheap: Pweave, matplotlib and seaborn are
imported only when a report is rendered.

Modules: :mod:`~pipeline.report.context` reads the context directory,
:mod:`~pipeline.report.analysis` computes the numbers, :mod:`~pipeline.report.plots`
draws the figures, :mod:`~pipeline.report.text` and :mod:`~pipeline.report.advice`
write the words and tables, and :mod:`~pipeline.report.render` runs the template.
"""

from pipeline.report.render import CONTEXT_ENV, ReportError, render_report

__all__ = ["CONTEXT_ENV", "ReportError", "render_report"]
