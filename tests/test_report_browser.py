"""The report renders offline in a real browser: headless Chromium loads every figure.

A copy of the report gets a small script that, once the page has loaded,
writes into the DOM how many images it has, how many decoded (``complete``
and ``naturalWidth > 0``), how wide each is drawn, which resources the
page fetched (none: everything is inline), how many scripts it holds and its
tables that have an id, with their rows (the buyer's sheet's test reads those).
Chromium prints the DOM (``--dump-dom``) and the test reads those numbers back.
The browser runs with networking features off and a throw-away profile.

Chromium is Debian's ``chromium`` package (``apt-get install chromium
fonts-liberation``).  Without it the test fails, unless
``WINE_ALLOW_NO_BROWSER=1`` is set, in which case it is reported as skipped.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import shared_full_report

pytestmark = pytest.mark.slow  # a browser, and the sample's report

#: Names the browser may have on the PATH, Debian's first.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ALLOW_NO_BROWSER = "WINE_ALLOW_NO_BROWSER"

#: Runs in the copy of the report only.  A figure counts as shown when it decoded and is
#: drawn at least 300 px wide (readable on a 1100 px wide window).
PROBE = """
<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var result = {
    total: images.length,
    loaded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    widths: images.map(function (i) { return Math.round(i.getBoundingClientRect().width); }),
    broken: images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                  .map(function (i) { return i.alt; }),
    fetched: performance.getEntriesByType("resource").map(function (e) { return e.name; }),
    scripts: document.scripts.length,
    tables: Array.prototype.map.call(document.querySelectorAll("table[id]"), function (t) {
      return {id: t.id, rows: t.tBodies.length ? t.tBodies[0].rows.length : 0};
    })
  };
  var out = document.createElement("pre");
  out.id = "browser-check";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>
"""


def find_browser() -> str:
    """Path of a Chromium binary; fail (or skip when allowed) when there is none."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    message = (f"no headless browser found (tried {', '.join(BROWSERS)}); install Debian's "
               f"chromium package: apt-get install chromium fonts-liberation")
    if os.environ.get(ALLOW_NO_BROWSER) == "1":
        pytest.skip(f"{message} ({ALLOW_NO_BROWSER}=1)")
    pytest.fail(f"{message}, or set {ALLOW_NO_BROWSER}=1 to skip this check")


def browser_check(browser: str, report: Path, workdir: Path) -> dict:
    """Open a probed copy of ``report`` in headless Chromium and return the probe's numbers."""
    document = report.read_text(encoding="utf-8")
    assert document.count("</body>") == 1
    probed = workdir / "probed.html"
    probed.write_text(document.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--disable-default-apps", "--no-first-run",
        "--no-default-browser-check", "--mute-audio", "--hide-scrollbars",
        f"--user-data-dir={workdir / 'profile'}", "--window-size=1100,2000",
        "--virtual-time-budget=15000", "--dump-dom", probed.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HOME": str(workdir)})
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, (f"the browser printed no result (exit {done.returncode}):\n"
                   f"{done.stderr[-3000:]}\n{done.stdout[-1000:]}")
    return json.loads(html.unescape(found.group(1)))


def test_every_figure_loads_in_headless_chromium(tmp_path_factory, tmp_path):
    browser = find_browser()
    report, _, _ = shared_full_report(tmp_path_factory)
    expected = report.read_text(encoding="utf-8").count("<img ")
    assert expected >= 15

    result = browser_check(browser, report, tmp_path)

    assert result["total"] == expected
    assert result["loaded"] == expected, f"figures that did not load: {result['broken']}"
    assert min(result["widths"]) >= 300, result["widths"]
    assert result["fetched"] == [], "the report fetched something from outside itself"
