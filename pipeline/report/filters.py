"""The Jinja environment of the report and the buyer's sheet, and its formatting filters.

The words and the HTML are templates (``templates/``): ``report.html.j2`` holds the
report's fragments, ``sheet.html.j2`` the buyer's sheet, ``words.j2`` the names of
the kinds of model both use, ``style.css`` their stylesheet.  Values are escaped
(autoescape); a filter here only formats one value, and shows a missing one
(None, or NaN from a table) as ``n/a``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jinja2

from pipeline import evaluation
from pipeline.intervals import SEGMENT_COVERAGE

#: Shown for a value that is not known.
NOT_KNOWN = "n/a"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def money(value: float | None) -> str:
    """A price: ``$25``, ``$1,200``."""
    return NOT_KNOWN if _missing(value) else f"{evaluation.CURRENCY}{value:,.0f}"


def percent(share: float | None) -> str:
    """A share (0-1) as a percentage: one decimal below 10% (``3.4%``), whole above (``81%``)."""
    if _missing(share):
        return NOT_KNOWN
    return f"{100 * share:.1f}%" if 0 < abs(share) < 0.1 else f"{100 * share:.0f}%"


def part_of(n: int, total: int) -> str:
    """``n`` as a share of ``total``; never "100%" for a part that is not the whole."""
    part = n / total
    return f"{100 * part:.1f}%" if 0.995 <= part < 1 else percent(part)


def count(value: float | None) -> str:
    """A count with thousands separators: ``4,869``."""
    return NOT_KNOWN if _missing(value) else f"{value:,.0f}"


def fixed(value: float | None, digits: int = 1) -> str:
    """A number with ``digits`` decimals: ``88.5``."""
    return NOT_KNOWN if _missing(value) else f"{value:.{digits}f}"


def signed(value: float | None, digits: int = 1) -> str:
    """A number with its sign, ``+1.3`` or ``−0.4`` (a real minus sign); ``0.0`` unsigned."""
    if _missing(value):
        return NOT_KNOWN
    text = f"{abs(value):.{digits}f}"
    return text if float(text) == 0 else ("+" if value > 0 else "\u2212") + text


def metric(value: float | None, kind: str) -> str:
    """A metric of the metrics table: a ``share`` as a whole percentage, else two decimals."""
    if _missing(value):
        return NOT_KNOWN
    text = f"{100 * value:.0f}%" if kind == "share" else f"{value:.2f}"
    return text.replace("-0.00", "0.00").replace("-0%", "0%")


def in_ten(share: float) -> str:
    """A share as "8 wines in 10", "nearly every wine" (95%+) or "fewer than 1 wine in 10"."""
    if share >= 0.95:
        return "nearly every wine"
    tenths = round(10 * share)
    if tenths < 1:
        return "fewer than 1 wine in 10"
    return f"{tenths} wine{'s' if tenths > 1 else ''} in 10"


def one_in(share: float) -> str:
    """A small share as "about 1 wine in 30"; empty for 0 or shares above one half."""
    return f"about 1 wine in {round(1 / share):,}" if 0 < share <= 0.5 else ""


def shorten(text: str | None, limit: int = 180) -> str:
    """A text cut to at most ``limit`` characters at a word boundary, with "…"."""
    if _missing(text):
        return ""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[:cut.rfind(" ")]
    return cut.rstrip(" ,;:.") + "\u2026"


def price_band(band: str) -> str:
    """A price band with its currency: ``under $15``, ``$15–25``, ``$100+``, ``no price``."""
    if band.startswith("under "):
        return f"under {evaluation.CURRENCY}{band[len('under '):]}"
    if not band[:1].isdigit():
        return band
    return evaluation.CURRENCY + band.replace("-", "\u2013")


def capfirst(text: str) -> str:
    """The text with its first letter upper-case (the rest unchanged)."""
    return text[:1].upper() + text[1:]


def present(value: Any) -> bool:
    """Whether a text is there: a string that is not blank (a test, ``x is present``)."""
    return isinstance(value, str) and bool(value.strip())


def info_value(value: Any) -> str:
    """A value of the model's free-form information: ``1.234`` (4 digits), ``a, b``."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(info_value(v) for v in value)
    return NOT_KNOWN if value is None else str(value)


@functools.cache
def environment() -> jinja2.Environment:
    """The templates of ``pipeline/report/templates`` with these filters; values autoescaped."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("pipeline.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(money=money, percent=percent, part_of=part_of, count=count,
                       fixed=fixed, signed=signed, metric=metric, in_ten=in_ten, one_in=one_in,
                       shorten=shorten, price_band=price_band, capfirst=capfirst,
                       info_value=info_value)
    env.tests["present"] = present
    # The report's thresholds, and the coverage a range should have in each segment.
    env.globals.update(ev=evaluation, segment_coverage=SEGMENT_COVERAGE)
    return env
