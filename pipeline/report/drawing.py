"""Draw the report's figures to PNG in the report's look, two at a time.

Drawing a figure (laying out its text and ticks, rasterising, encoding the PNG)
keeps one core busy, and the report has many; when evaluate draws them, the
workers have finished scoring and their cores are idle.  :class:`FigureDrawer`
draws the later half of the figures in a helper process forked from evaluate's
while this one draws the earlier half.

The figures are :class:`matplotlib.figure.Figure` objects built by the pure
functions of :mod:`pipeline.report.plots`, which never touch pyplot state, so a
forked process can draw them safely.  If the helper cannot be started, fails or
stalls, this process draws the figure itself: the PNGs are the same either way.
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


@contextlib.contextmanager
def report_style() -> Iterator[None]:
    """The report's look (:data:`THEME`, :data:`FIGURE_RC`) inside the block, restored after.

    The caller's own matplotlib settings are back afterwards (``evaluate`` and
    ``predict`` draw in processes that may draw other figures).
    """
    import seaborn as sns

    with matplotlib.rc_context():
        sns.set_theme(**THEME)
        matplotlib.rcParams.update(FIGURE_RC)
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
            # plotting libraries already in memory, in the report's style.
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
            # Terminated, not joined: a stalled helper must not hold up evaluate.
            self._pool.terminate()
            self._pool = None
