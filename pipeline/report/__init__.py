"""The evaluation report: the figures, the Pweave template and its renderer.

evaluate computes the report's numbers (:mod:`pipeline.evaluation`), draws its
figures (:mod:`~pipeline.report.plots`) and writes both into a context directory
(:mod:`~pipeline.report.context`); :func:`pipeline.report.render.render_report`
(re-exported here) lays them out into one self-contained HTML file.
:mod:`~pipeline.report.text` and :mod:`~pipeline.report.advice` write the words.
"""

from pipeline.report.render import ReportError, render_report

__all__ = ["ReportError", "render_report"]
