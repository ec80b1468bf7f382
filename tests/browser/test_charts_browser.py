"""The plotly charts in Debian's headless Chromium under the application's Content-Security-Policy: the dashboard
and a patient page draw their figures, an htmx swap of the dashboard's figures draws the new ones, tooltips show,
"Download plot as a PNG" works, and the console has no policy violation. Screenshots go to
``test-artifacts/charts/`` for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from browserfixtures import chromium, served
from test_web_browser import PASSWORD

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "charts"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    from allotrack.study.demo import demo_records
    from allotrack.web.app import create_app
    from allotrack.web.auth import add_user

    folder = tmp_path_factory.mktemp("charts")
    app = create_app(f"sqlite:///{folder / 'web.db'}", secret_key="charts-test")
    app.state.store.import_records(demo_records(), user="setup", centre="C1")
    add_user(app.state.store.engine, "coordinator", PASSWORD, "data_manager", "C1")
    with served(app) as base:
        yield base


def test_charts_draw_under_the_policy_and_redraw_after_an_htmx_swap(demo_server):
    from playwright.sync_api import expect, sync_playwright

    base = demo_server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page.add_init_script("document.addEventListener('securitypolicyviolation', function (e) {"
                             " console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI); });")
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "favicon" not in m.text
                and "404" not in m.text else None)  # fmt: skip
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "coordinator")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Patients")

        page.goto(f"{base}/dashboard")
        expect(page.locator("#chart-os .main-svg").first).to_be_visible()
        expect(page.locator("#chart-cir .main-svg").first).to_be_visible()
        expect(page.locator("#chart-os .legendtext")).to_have_text(["> 70", "≤ 70"])
        expect(page.locator("#chart-os .gtitle")).to_contain_text("Log-rank p")
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        page.select_option("select[name=group]", "risk")  # htmx swaps #figures: drawn again
        expect(page.locator("#chart-os .legendtext")).to_have_text(["adverse", "favorable", "intermediate"])
        expect(page.locator("#chart-cir .main-svg").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "dashboard-risk.png"), full_page=True)

        page.goto(f"{base}/patients/MST14")
        expect(page.locator("#chart-counts .main-svg").first).to_be_visible()
        expect(page.locator("#chart-chimerism .main-svg").first).to_be_visible()
        expect(page.locator("#chart-counts .legendtext")).to_have_text(["ANC", "Platelets", "Recovery window (MST rule)"])
        page.evaluate("Plotly.Fx.hover(document.querySelector('#chart-counts .plot-area'),"
                      " [{curveNumber: 0, pointNumber: 12}], 'xy')")  # fmt: skip
        expect(page.locator("#chart-counts .hovertext")).to_contain_text("after infusion 1")
        expect(page.locator("#chart-counts .hovertext")).to_contain_text("×10⁹/L")
        page.screenshot(path=str(ARTIFACTS / "patient-MST14.png"), full_page=True)
        page.locator("#chart-counts").screenshot(path=str(ARTIFACTS / "patient-MST14-hover.png"))
        with page.expect_download() as download:
            page.locator("#chart-counts .modebar-btn[data-title='Download plot as a PNG']").click(force=True)
        saved = ARTIFACTS / "download-counts.png"
        download.value.save_as(str(saved))
        assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and saved.stat().st_size > 20_000
        browser.close()
    assert not problems, problems
