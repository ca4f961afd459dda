"""The evaluation report and the buyer's sheet.

evaluate computes the report's numbers (:mod:`pipeline.evaluation`), draws its
figures (:mod:`~pipeline.report.plots`) and writes both into a context directory
(:mod:`~pipeline.report.context`); :func:`~pipeline.report.render.render_report`
(re-exported here) lays them out with Pweave into one self-contained HTML file,
in the words of the Jinja templates of ``templates/`` (:mod:`~pipeline.report.filters`).
:mod:`~pipeline.report.sheet` writes the buyer's sheet of the predict step.
"""

from pipeline.report.render import ReportError, render_report

__all__ = ["ReportError", "render_report"]
