"""Draw the report's figures to PNG, two at a time.

Drawing a figure (laying out its text and ticks, rasterising, encoding the PNG)
keeps one core busy, and the report has many: most of the time the report takes
to render, with the machine's other cores idle (the workers have finished by
then).  :class:`FigureDrawer` draws the later figures in a helper
process, forked from the report's kernel once the figures' data is computed,
while the kernel draws the earlier ones as the template reaches them; by the
time the template shows a later figure, its PNG is usually waiting.

The figures are :class:`matplotlib.figure.Figure` objects built by the pure
functions of :mod:`pipeline.report.plots`, which never touch pyplot state, so a
forked process can draw them safely.  If the helper cannot be started, fails or
stalls, the kernel draws the figure itself: the report is the same either way.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.pool import AsyncResult, Pool

import matplotlib
from matplotlib.figure import Figure

#: Longest wait, in seconds, for one figure from the helper before drawing it here.
HELPER_TIMEOUT = 60.0

#: The seaborn theme of every figure of the report and of the buyer's sheet.
THEME: dict[str, str] = {"style": "whitegrid", "context": "notebook"}
#: Matplotlib settings on top of the theme: resolution and bold titles.
FIGURE_RC: dict[str, object] = {"figure.dpi": 110, "axes.titleweight": "bold",
                                "axes.titlesize": 13, "savefig.dpi": "figure"}


def apply_style() -> None:
    """Set the report's look (:data:`THEME` and :data:`FIGURE_RC`) for this process."""
    import seaborn as sns

    sns.set_theme(**THEME)
    matplotlib.rcParams.update(FIGURE_RC)


@contextlib.contextmanager
def report_style() -> Iterator[None]:
    """The report's look for the figures drawn inside the block, restored afterwards.

    For a caller that draws report-style figures in a process with its own
    matplotlib settings (``predict`` drawing the buyer's sheet).
    """
    with matplotlib.rc_context():
        apply_style()
        yield


def figure_png(make: Callable[..., Figure], *args) -> bytes:
    """Build a figure and return it drawn as PNG.

    Parameters
    ----------
    make : callable
        A figure function of :mod:`pipeline.report.plots`.
    *args
        Its arguments.

    Returns
    -------
    bytes
        The PNG, at the figure's own size and resolution (``savefig`` rcParams).
    """
    buffer = io.BytesIO()
    make(*args).savefig(buffer, format="png")
    return buffer.getvalue()


class FigureDrawer:
    """The PNGs of a report's figures, the later half drawn ahead in a helper process.

    Parameters
    ----------
    figures : mapping
        Figure name to ``(function, *args)``, in the order the report shows them.
    helper : bool, default True
        Draw the later half in a forked helper process (on platforms that can
        fork); False draws everything in this process, as each is asked for.

    Examples
    --------
    >>> drawer = FigureDrawer({"points": (plots.points_distribution, pred)})  # doctest: +SKIP
    >>> png = drawer.png("points")  # doctest: +SKIP
    """

    def __init__(self, figures: Mapping[str, tuple], helper: bool = True):
        self._figures = dict(figures)
        self._ahead: dict[str, AsyncResult] = {}
        self._pool: Pool | None = None
        later = list(self._figures)[len(self._figures) // 2:]
        if helper and later and "fork" in multiprocessing.get_all_start_methods():
            # Forked, not spawned: the helper starts at once with the data and the
            # plotting libraries already in memory and the kernel's matplotlib style.
            try:
                self._pool = multiprocessing.get_context("fork").Pool(1)
            except (OSError, ImportError):
                # No process or semaphore to spare (e.g. a locked-down container):
                # draw everything here.
                return
            self._ahead = {name: self._pool.apply_async(figure_png, self._figures[name])
                           for name in later}

    def png(self, name: str) -> bytes:
        """The PNG of one figure: from the helper if it drew it, else drawn now.

        Parameters
        ----------
        name : str
            A key of ``figures``.

        Returns
        -------
        bytes

        Raises
        ------
        KeyError
            For a name that is not one of the figures.
        """
        spec = self._figures[name]
        future = self._ahead.pop(name, None)
        if future is not None:
            try:
                return future.get(timeout=HELPER_TIMEOUT)
            except Exception:  # noqa: BLE001 - any failure of the helper: draw it here
                # A broken or stalled helper would fail the rest alike: stop using it.
                self.close()
            finally:
                if not self._ahead:
                    self.close()
        return figure_png(*spec)

    def close(self) -> None:
        """Stop the helper process at once (figures not yet collected will be drawn here)."""
        self._ahead.clear()
        if self._pool is not None:
            # Terminated, not joined: a stalled helper must not hold up the kernel's exit.
            self._pool.terminate()
            self._pool = None
