"""Browser test with Playwright driving Debian's headless Chromium (no browser download): log in, import the demo
study through the import page, open a patient timeline, enter a GVHD assessment and watch the grade appear, see
an alert, run the report and download it. Screenshots go to ``test-artifacts/browser/`` for a person to look at.
CI installs chromium and sets ALLOTRACK_REQUIRE_CHROMIUM=1, so there the test fails instead of skipping."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from browserfixtures import chromium, served

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "browser"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from allotrack.web.app import create_app
    from allotrack.web.auth import add_user
    from allotrack.web.jobs import JobRunner, app_key

    folder = tmp_path_factory.mktemp("browser")
    app = create_app(f"sqlite:///{folder / 'web.db'}", secret_key="browser-test")
    add_user(app.state.store.engine, "coordinator", PASSWORD, "data_manager", "C1")
    app.state.checks_may_run = threading.Event()  # the first import's check waits for it: its progress is seen
    app.state.import_jobs = JobRunner(app.state.uploads, app_key(app.state.store.engine.url), settle=0,
                                      step=lambda state, _: state != "queued" or app.state.checks_may_run.wait(60))
    with served(app) as base:
        yield base, folder, app
        app.state.checks_may_run.set()


def test_coordinator_workflow_in_chromium(server):
    from playwright.sync_api import expect, sync_playwright

    from allotrack.study.demo import demo_records

    base, folder, app = server
    csv_dir = folder / "demo_csv"
    csv_dir.mkdir()
    for name, frame in demo_records().tables.items():
        frame.to_csv(csv_dir / f"{name}.csv", index=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "coordinator")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Patients")

        page.goto(f"{base}/import")
        page.set_input_files("input[type=file]", sorted(str(f) for f in csv_dir.glob("*.csv")))
        page.click("text=Check")  # answered at once with the check's progress, polled by htmx every second
        expect(page.locator("#import-job h2")).to_have_text("Checking the files")
        expect(page.locator("#import-job")).to_contain_text("Waiting for its turn")
        page.screenshot(path=str(ARTIFACTS / "1a-import-progress.png"), full_page=True)
        app.state.checks_may_run.set()
        expect(page.locator("h2")).to_contain_text("Ready to import", timeout=30_000)  # the poll reloads the page
        page.screenshot(path=str(ARTIFACTS / "1-import-report.png"), full_page=True)
        page.click("text=Commit")
        expect(page.locator("#rows tr")).to_have_count(29)
        page.fill("input[type=search]", "MST14")
        expect(page.locator("#rows tr")).to_have_count(1)  # htmx search
        page.screenshot(path=str(ARTIFACTS / "2-patients.png"))

        # a correction through the import page: stored → new is shown, and a reason is asked for
        import pandas as pd

        follow_up = demo_records()["follow_up"].head(1).copy()
        old_date = str(follow_up["last_contact_date"].iloc[0])
        new_date = str((pd.Timestamp(old_date) + pd.Timedelta(days=30)).date())
        follow_up["last_contact_date"] = new_date
        follow_up.to_csv(folder / "follow_up.csv", index=False)
        page.goto(f"{base}/import")
        page.set_input_files("input[type=file]", [str(folder / "follow_up.csv")])
        page.click("text=Check")
        expect(page.locator("h2").nth(1)).to_have_text("Corrections of stored records (1 field(s))", timeout=30_000)
        expect(page.locator("td", has_text=new_date)).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "2b-import-correction.png"), full_page=True)
        page.fill("input[name=reason]", "last contact confirmed by phone")
        page.click("text=Commit")
        expect(page.locator("h1")).to_have_text("Patients")

        page.click("text=MST14")
        expect(page.locator("h1")).to_have_text("Patient MST14")
        expect(page.locator("#chart-counts .main-svg").first).to_be_visible()  # drawn by plotly.js
        page.screenshot(path=str(ARTIFACTS / "3-timeline.png"), full_page=True)

        page.click("text=Add GVHD assessment")
        page.fill("input[name=date]", "2018-03-01")
        page.fill("input[name=bilirubin]", "4")
        expect(page.locator("#magic-grade")).to_have_text("MAGIC grade III")  # computed as the user types
        page.fill("input[name=skin_bsa]", "60")
        page.fill("input[name=bilirubin]", "16")
        expect(page.locator("#magic-grade")).to_have_text("MAGIC grade IV")
        page.screenshot(path=str(ARTIFACTS / "4-gvhd-form.png"), full_page=True)
        page.click("text=Save assessment")
        expect(page.locator("h1")).to_have_text("Patient MST14")

        page.goto(f"{base}/alerts")
        expect(page.locator("td.high", has_text="Severe acute GVHD")).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "5-alerts.png"), full_page=True)

        page.goto(f"{base}/studies")
        page.click("button[aria-label='Run demo']")
        with page.expect_download() as download:
            page.click("text=report.docx")
        target = folder / "report.docx"
        download.value.save_as(str(target))
        assert target.stat().st_size > 100_000
        page.screenshot(path=str(ARTIFACTS / "6-report.png"))
        browser.close()
