"""The demo report rendered by headless Chromium (Debian's ``chromium``): nothing overflows the page width, the
tables and the figures are drawn. CI installs chromium (``.ci/run``) and sets ALLOTRACK_REQUIRE_CHROMIUM=1, so
there the test fails instead of skipping when the browser is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from allotrack.report.html import render_html
from allotrack.study.plan import load_plan
from allotrack.study.run import demo_plan_path, run_study

WIDTH, HEIGHT = 1280, 16000


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        if os.environ.get("ALLOTRACK_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is required here (ALLOTRACK_REQUIRE_CHROMIUM is set) but not installed")
        pytest.skip("headless chromium not installed (apt-get install chromium)")
    return found


def _screenshot(html_path: Path, png: Path) -> np.ndarray:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-dev-shm-usage",
           f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={png}", html_path.as_uri()]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return image.imread(str(png))[:, :, :3]


def test_demo_report_layout_in_headless_chromium(tmp_path):
    result = run_study(load_plan(demo_plan_path()))
    html = tmp_path / "report.html"
    html.write_text(render_html(result.document), encoding="utf-8")
    px = _screenshot(html, tmp_path / "report.png")
    assert px.shape[:2] == (HEIGHT, WIDTH)
    ink = px.min(axis=2) < 0.6  # text, rules and curves; the page is white, the navigation pale grey
    main = ink[:, 260:]
    # no overflow: nothing is drawn in the right-hand margin of the page
    assert not main[:, -40:].any(), "content reaches the right edge of a 1280-px page"
    rows_with_ink = np.flatnonzero(main.any(axis=1))
    assert rows_with_ink.size > 3000 and rows_with_ink.max() > 8000  # a long report, drawn to its end
    colour = (np.abs(px[:, :, 0] - px[:, :, 2]) > 0.1)[:, 260:]  # blue and orange curves, confidence bands
    figure_rows = np.flatnonzero(colour.sum(axis=1) > 5)
    blocks = np.split(figure_rows, np.flatnonzero(np.diff(figure_rows) > 60) + 1) if figure_rows.size else []
    assert len([b for b in blocks if b.size > 150]) >= 6, "fewer coloured figures than the report holds"
