"""The published dashboard in a real headless browser (Debian's Chromium, over the DevTools
protocol: ``helpers.chromium``).

The site is written by the ``qa-bench publish`` command itself (a subprocess) from
``helpers.dashboard.nightly_history``: a real smoke run's result and synthetic nights grown from
it, 12 nights of the tiny-roformer entry with a level shift of −6 points from night 7, with
baselines written from the nights before the shift through the suite's guarded writer. Every
page the overview links to is loaded: no console error, no uncaught exception, no resource that
failed to load; the failing entry is the first row; the plots render (a screenshot of the plot
has ink, the series' blue and the failed points' red); each point has its hover text.

Skipped only where no Chromium is installed and ``$CI`` is unset (``bash tools/chromium.sh``
installs it; ``tox -e dashboard`` runs that and this test); in CI a missing browser fails.
``QA_BENCH_DASHBOARD_SHOTS=DIR`` also writes the overview and the failing F1 page there as small
PNGs (docs/dashboard/ holds the committed ones).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.chromium import Browser, browser, find_chromium
from helpers.dashboard import (
    FAILING,
    NIGHTS,
    SHIFT_AT,
    nightly_history,
    write_baselines,
    write_history,
)

pytestmark = pytest.mark.e2e

BLUE, RED = (31, 119, 180), (214, 39, 40)  # matplotlib's tab:blue (the series), tab:red (fails)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found:
        return found
    why = ("no Chromium for the dashboard's browser test: `bash tools/chromium.sh` installs it "
           "(or set QA_BENCH_CHROMIUM)")
    if os.environ.get("CI"):
        pytest.fail(f"{why}; in CI the dashboard is checked in a real browser, never skipped")
    pytest.skip(why)


def ink(png: Path) -> tuple[float, int, int]:
    """(share of non-white pixels, pixels of the series' blue, pixels of the fail red)."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    pixels = list(image.get_flattened_data() if hasattr(image, "get_flattened_data")
                  else image.getdata())

    def near(pixel: tuple[int, int, int], colour: tuple[int, int, int]) -> bool:
        return all(abs(a - b) <= 40 for a, b in zip(pixel, colour, strict=True))

    inked = sum(1 for p in pixels if sum(p) < 3 * 245)
    return (inked / len(pixels), sum(near(p, BLUE) for p in pixels),
            sum(near(p, RED) for p in pixels))


def _publish(folder: Path) -> Path:
    runs = nightly_history()
    history = write_history(folder / "history.jsonl", runs)
    write_baselines(folder / "baselines", runs)
    site = folder / "site"
    done = subprocess.run([sys.executable, "-m", "qa.frontends.cli", "publish", str(history),
                           "--baselines", str(folder / "baselines"), "--out", str(site)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return site


def _rows(page: Browser) -> list[list[str]]:
    return page.evaluate("[...document.querySelectorAll('#overview tbody tr')]"
                         ".map(r => [r.dataset.entry, r.dataset.state, "
                         "String(Math.round(r.getBoundingClientRect().top))])")


def test_the_dashboard_in_headless_chromium(tmp_path: Path, chromium: str) -> None:
    started = time.monotonic()
    site = _publish(tmp_path)
    published = time.monotonic()
    shots = os.environ.get("QA_BENCH_DASHBOARD_SHOTS")
    with browser(chromium, width=1200, height=860) as page:
        assert page.open((site / "index.html").as_uri()) == []
        rows = _rows(page)
        assert [rows[0][0], rows[0][1]] == [FAILING, "fail"]
        assert [r[1] for r in rows[1:]] == ["pass", "pass"]
        tops = [int(r[2]) for r in rows]
        assert tops == sorted(tops)  # listed first on screen too, not only in the DOM
        if shots:
            _shot(page, Path(shots) / "overview.png")
        links = page.evaluate("[...document.querySelectorAll('#overview a')].map(a => a.href)")
        assert len(links) == 18  # 3 series × 6 gated metrics
        for link in links:
            assert page.open(link) == [], link
            drawn = page.evaluate("document.querySelectorAll('figure.plot svg "
                                  "g[id^=\"qa-point-\"]').length")
            listed = page.evaluate("document.querySelectorAll('#runs tbody tr').length")
            width = page.evaluate("document.querySelector('figure.plot svg')"
                                  ".getBoundingClientRect().width")
            assert drawn == listed >= 1 and width > 600, (link, drawn, listed, width)
        failing = next(link for link in links if link.endswith(
            f"{FAILING.replace('/', '--')}/f1.html"))
        assert page.open(failing) == []
        share, blue, red = ink(page.screenshot(tmp_path / "plot.png", "figure.plot svg"))
        print(f"F1 plot: {share:.1%} of pixels inked, {blue} blue, {red} red")
        assert share > 0.05 and blue > 300 and red > 200, (share, blue, red)
        tip = page.evaluate("document.querySelector('#qa-point-11 title').textContent")
        assert "commit" in tip and "F1" in tip and "cores" in tip, tip  # the hardware line
        steps = page.evaluate("[...document.querySelectorAll('p.bad')].map(p => p.textContent)")
        ago = f"{NIGHTS - 1 - SHIFT_AT} runs ago"  # the first night of the new level
        assert any("F1 dropped" in s and ago in s for s in steps), steps
        if shots:
            _shot(page, Path(shots) / "metric-f1.png", full=False)
        # The checks can fail: the same plot hidden has no ink; a page whose stylesheet is gone
        # reports the failed load.
        page.evaluate("document.querySelector('figure.plot svg').style.visibility = 'hidden'")
        assert ink(page.screenshot(tmp_path / "hidden.png", "figure.plot svg"))[0] < 0.01
        (site / "style.css").unlink()
        assert any("style.css" in e for e in page.open((site / "index.html").as_uri()))
    finished = time.monotonic()
    print(f"publish {published - started:.1f} s, browser {finished - published:.1f} s "
          f"({len(links) + 3} page loads)")


def test_the_error_collector_sees_errors(tmp_path: Path, chromium: str) -> None:
    """What an empty error list above means: these four kinds are reported."""
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><link rel="stylesheet" href="missing.css">'
                      '<script>console.error("logged"); null.x;</script>', encoding="utf-8")
    with browser(chromium) as page:
        errors = page.open(broken.as_uri())
    assert any("missing.css" in e for e in errors), errors
    assert any(e.startswith("console.error: logged") for e in errors), errors
    assert any(e.startswith("uncaught: TypeError") for e in errors), errors


def _shot(page: Browser, path: Path, full: bool = True) -> None:
    """A small PNG for the docs: 64 colours (the pages are flat colours and text)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    raw = page.screenshot(path.with_suffix(".raw.png"), None if full else "body")
    image = Image.open(raw).convert("RGB")
    if not full:
        image = image.crop((0, 0, image.width, min(image.height, 860)))
    image.quantize(64).save(path, optimize=True)
    raw.unlink()
