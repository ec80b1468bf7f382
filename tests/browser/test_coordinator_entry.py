"""A coordinator enters a patient's whole history through the forms, in Playwright driving Debian's headless Chromium
(no browser download): a new patient, a donor, a course, an infusion, ANC counts, a GVHD assessment (whose live
grade clears while an input is not a number), a response, a relapse, follow-up and death; one form is saved with
an invalid value, the message shows next to the field and the corrected value saves; the patient page then lists
every record. Screenshots go to ``test-artifacts/coordinator/`` for a person to look at. CI installs chromium and
sets ALLOTRACK_REQUIRE_CHROMIUM=1, so there the test fails instead of skipping."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browserfixtures import chromium, served

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "coordinator"
PASSWORD = "correct horse battery"
PID = "NEW01"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from allotrack.web.app import create_app
    from allotrack.web.auth import add_user

    folder = tmp_path_factory.mktemp("coordinator")
    app = create_app(f"sqlite:///{folder / 'web.db'}", secret_key="browser-test")
    add_user(app.state.store.engine, "coordinator", PASSWORD, "data_manager", "C1")
    with served(app) as base:
        yield base, app


def test_a_coordinator_enters_a_whole_history_through_the_forms(server):
    from playwright.sync_api import expect, sync_playwright

    base, app = server
    started = time.perf_counter()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(10_000)

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

        def save(where: str = f"Patient {PID}") -> None:
            page.click("button:has-text('Save')")
            expect(page.locator("h1")).to_have_text(where)

        def add(link: str, heading: str) -> None:
            page.click(f"nav.entry-links >> text={link}")
            expect(page.locator("h1")).to_have_text(heading)

        page.goto(f"{base}/login")
        page.fill("input[name=username]", "coordinator")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Patients")

        # a new patient: an age the form refuses, the message next to the field, corrected, saved
        page.click("text=+ New patient")
        expect(page.locator("h1")).to_have_text("New patient")
        page.fill("#f-patient_id", PID)
        page.select_option("#f-sex", "F")
        page.fill("#f-diagnosis", "AML")
        page.fill("#f-diagnosis_date", "2024-01-05")
        page.fill("#f-age_at_diagnosis", "630")  # a typo for 63
        page.select_option("#f-eln2022_risk", "adverse")
        shot("1-new-patient")
        page.click("button:has-text('Save')")
        expect(page.locator("#err-age_at_diagnosis")).to_have_text(
            "age_at_diagnosis: 630 is above the highest allowed value 120")
        expect(page.locator("#form-error")).to_be_visible()
        expect(page.locator("#f-patient_id")).to_have_value(PID)  # what was entered is kept
        expect(page.locator("#f-eln2022_risk")).to_have_value("adverse")
        shot("2-field-error")
        page.fill("#f-age_at_diagnosis", "63")
        save()
        shot("3-empty-patient")

        add("donor", "Add donor")
        page.fill("#f-donor_id", f"{PID}-D1")
        page.select_option("#f-relation", "unrelated")
        page.select_option("#f-sex", "M")
        page.fill("#f-age", "29")
        page.fill("#f-hla_mismatches", "1")
        page.fill("#f-hla_out_of", "10")
        save()

        add("course", "Add course")
        page.fill("#f-course_id", f"{PID}-C1")
        page.fill("#f-number", "1")
        page.select_option("#f-kind", "conditioning")
        page.fill("#f-regimen", "FluTreo")
        page.fill("#f-start_date", "2024-02-01")
        page.fill("#f-end_date", "2024-02-06")
        save()

        add("infusion", "Add infusion")
        page.fill("#f-infusion_id", f"{PID}-I1")
        page.select_option("#f-course_id", f"{PID}-C1")
        page.select_option("#f-donor_id", f"{PID}-D1")
        page.fill("#f-date", "2024-02-08")
        page.select_option("#f-product", "HSCT")
        page.fill("#f-cd34_per_kg", "6.1")
        shot("4-infusion-form")
        save()

        for day, anc in (("2024-02-12", "0.1"), ("2024-02-26", "1.4")):
            add("blood count / lab value", "Add observation")
            expect(page.locator("#f-item")).to_have_value("anc")
            page.fill("#f-date", day)
            page.fill("#f-value", anc)
            if day == "2024-02-12":
                shot("5-anc-form")
            save()
        add("blood count / lab value", "Add observation")  # another item: the form follows the item chosen
        page.select_option("#f-item", "plt")
        expect(page.locator("#entry-form")).to_contain_text("number in 10*9/L, allowed 0–5000 10*9/L")
        expect(page.locator("#f-value")).to_have_attribute("max", "5000")
        page.fill("#f-date", "2024-02-26")
        page.fill("#f-value", "35")
        save()

        # GVHD: the live grade, cleared while an input is not a number or out of range
        page.click("text=Add GVHD assessment")
        page.fill("input[name=date]", "2024-03-10")
        page.fill("input[name=skin_bsa]", "30")
        expect(page.locator("#magic-grade")).to_have_text("MAGIC grade I")
        page.fill("input[name=stool_ml]", "")
        page.locator("input[name=stool_ml]").press_sequentially("1e")  # not a number: sent blank by the browser
        expect(page.locator("#grade-invalid")).to_have_text("No grade: Stool volume, mL/day is not a number.")
        expect(page.locator("#magic-grade")).to_have_count(0)
        shot("6-gvhd-invalid-input")
        page.fill("input[name=stool_ml]", "0")
        expect(page.locator("#magic-grade")).to_have_text("MAGIC grade I")
        page.fill("input[name=skin_bsa]", "150")  # out of range: no grade either
        expect(page.locator("#grade-invalid")).to_have_text(
            "No grade: Skin rash, % body surface is above the highest allowed value 100.")
        expect(page.locator("#magic-grade")).to_have_count(0)
        page.fill("input[name=skin_bsa]", "60")
        page.fill("input[name=stool_ml]", "75")  # any amount is a value (no step of 50 mL)
        page.fill("input[name=bilirubin]", "2.5")
        expect(page.locator("#magic-grade")).to_have_text("MAGIC grade II")
        shot("7-gvhd-graded")
        page.click("text=Save assessment")
        expect(page.locator("h1")).to_have_text(f"Patient {PID}")

        add("response", "Add response")
        page.fill("#f-date", "2024-03-15")
        page.select_option("#f-value_text", "CR")
        shot("8-response-form")
        save()

        add("relapse", "Add relapse")
        page.fill("#f-date", "2024-06-01")
        page.select_option("#f-kind", "hematologic")
        save()

        add("follow-up", "Add follow-up")
        page.fill("#f-last_contact_date", "2024-08-20")
        save()

        add("death", "Add death")
        page.fill("#f-date", "2024-09-01")
        page.fill("#f-cause", "relapse")
        page.click("button:has-text('Save')")  # after the last contact: the follow-up has to be updated first
        expect(page.locator("#form-error")).to_contain_text(
            "The patient's last contact (2024-08-20, follow-up) is before this record: update the follow-up first")
        shot("9-death-after-last-contact")
        page.click(f"text=← Patient {PID}")
        page.click("nav.entry-links >> text=edit follow-up")
        expect(page.locator("h1")).to_have_text(f"Edit follow-up — patient {PID}")
        expect(page.locator("#f-last_contact_date")).to_have_value("2024-08-20")
        page.fill("#f-last_contact_date", "2024-09-01")
        page.fill("#f-reason", "date of death is the last contact")
        save()
        add("death", "Add death")
        page.fill("#f-date", "2024-09-01")
        page.fill("#f-cause", "relapse")
        save()

        # the patient page lists every record, each with its Edit link
        expected = {
            "donors": [f"{PID}-D1", "unrelated"], "courses": [f"{PID}-C1", "conditioning", "FluTreo"],
            "infusions": [f"{PID}-I1", "HSCT", "6.1"],
            "observations": ["Absolute neutrophil count", "2024-02-12", "0.1", "2024-02-26", "1.4", "Platelet count"],
            "assessments": ["Acute GVHD overall grade (MAGIC)", "Acute GVHD skin stage (MAGIC)",
                            "Disease response (ELN 2022, AML)", "2024-03-15"],
            "relapses": ["2024-06-01", "hematologic"], "follow_up": ["2024-09-01"], "deaths": ["2024-09-01", "relapse"],
        }  # fmt: skip
        for table, texts in expected.items():
            section = page.locator(f"section#{table}")
            for text in texts:
                expect(section.locator("td", has_text=text).first).to_be_visible()
        expect(page.locator("section#observations tbody tr")).to_have_count(3)
        expect(page.locator("section#assessments tbody tr")).to_have_count(6)  # grade, 4 organ stages, response
        expect(page.locator("section.records a", has_text="Edit")).to_have_count(1 + 1 + 1 + 3 + 6 + 1 + 1 + 1)
        shot("10-patient-page")
        browser.close()
    stored = app.state.store.load(patient_id=PID)
    assert {n: len(stored[n]) for n in ("patients", "donors", "courses", "infusions", "observations", "assessments",
                                        "relapses", "follow_up", "deaths")} == {
        "patients": 1, "donors": 1, "courses": 1, "infusions": 1, "observations": 3, "assessments": 6,
        "relapses": 1, "follow_up": 1, "deaths": 1}  # fmt: skip
    assert stored["patients"]["age_at_diagnosis"].tolist() == [63.0]
    elapsed = time.perf_counter() - started
    assert elapsed < 60, f"the coordinator's session took {elapsed:.1f} s"
