"""Pages at work: live MAGIC grading, alerts, import with its validation report, the study report download."""

from __future__ import annotations

import io
import json
import re

from webfixtures import import_result, login, page_csrf, web  # noqa: F401  (web: the fixture)


def test_gvhd_form_grades_as_you_type(web):
    dm1 = login(web, "dm1")
    form = dm1.get("/patients/MST18/gvhd/new")
    assert form.status_code == 200 and 'hx-post="/patients/MST18/gvhd/grade"' in form.text
    token = page_csrf(dm1)
    cases = {("0", "0", "0"): "0", ("30", "0", "0"): "I", ("60", "0", "0"): "II", ("0", "4", "0"): "III",
             ("0", "0", "1600"): "III", ("0", "16", "0"): "IV"}  # skin % / bilirubin mg/dL / stool mL  # fmt: skip
    for (skin, bili, stool), label in cases.items():
        res = dm1.post("/patients/MST18/gvhd/grade", data={"csrf_token": token, "skin_bsa": skin, "bilirubin": bili,
                                                          "stool_ml": stool}, headers={"HX-Request": "true"})
        assert res.status_code == 200 and f"MAGIC grade {label}<" in res.text, (skin, bili, stool, res.text)
    bad = dm1.post("/patients/MST18/gvhd/grade", data={"csrf_token": token, "bilirubin": "lots"})
    assert "must be a number" in bad.text


def test_a_saved_gvhd_form_stores_the_grade_its_organ_stages_raw_values_and_rule(web):
    dm1 = login(web, "dm1")
    token = page_csrf(dm1)
    res = dm1.post("/patients/MST17/gvhd", data={"csrf_token": token, "date": "2016-02-01", "skin_bsa": "60",
                                                 "bilirubin": "4", "stool_ml": "800"})  # fmt: skip
    assert res.status_code == 303
    stored = web.state.store.load()["assessments"]
    mine = stored[(stored["patient_id"] == "MST17") & stored["item"].str.startswith("agvhd")].set_index("item")
    # MAGIC: skin 60 % BSA -> stage 3; bilirubin 4 mg/dL -> liver stage 2; 800 mL/day -> lower GI stage 1; grade III (liver 2)
    assert mine["value_text"].to_dict() == {"agvhd_grade": "3", "agvhd_skin_stage": "3", "agvhd_liver_stage": "2",
                                            "agvhd_ugi_stage": "0", "agvhd_lgi_stage": "1"}  # fmt: skip
    assert (mine["rule"].str.startswith("MAGIC 2016")).all()
    assert json.loads(mine.loc["agvhd_grade", "inputs"]) == {"skin_bsa": 60.0, "bilirubin": 4.0, "upper_gi": False,
                                                              "stool_ml": 800.0}  # fmt: skip
    from allotrack.records.views import gvhd

    assert gvhd(web.state.store.load(patient_id="MST17"))["grade"].tolist() == [3.0]  # what endpoints read


def test_alerts_page_lists_follow_up_severe_gvhd_and_chimerism(web):
    dm1 = login(web, "dm1")
    token = page_csrf(dm1)
    # grade IV acute GVHD for a living patient -> severe GVHD alert
    assert dm1.post("/patients/MST19/gvhd", data={"csrf_token": token, "date": "2013-01-10", "bilirubin": "16"}
                    ).status_code == 303  # fmt: skip
    text = dm1.get("/alerts").text
    assert "Severe acute GVHD" in text and "MAGIC grade 4" in text
    assert text.count("Follow-up missing") == 8  # the 8 demo patients alive at the end of follow-up (Oct 2025)


def test_chimerism_above_one_percent_a_week_after_infusion_with_fever_alerts(web):
    from allotrack.records.schema import Records

    store = web.state.store
    inf = store.load()["infusions"]
    first = inf[inf["patient_id"] == "MST20"].sort_values("date").iloc[0]
    day = (first["date"] + __import__("pandas").Timedelta(days=7)).strftime("%Y-%m-%d")
    store.import_records(Records.from_frames(
        chimerism=__import__("pandas").DataFrame({"patient_id": ["MST20"], "date": [day], "donor_percent": [2.5],
                                                  "assay": ["qPCR"]}),
        adverse_events=__import__("pandas").DataFrame({"patient_id": ["MST20"], "start_date": [day],
                                                       "term": ["Fever"], "soc": ["General disorders"], "grade": [2]}),
    ), user="setup", centre="C1")  # fmt: skip
    text = login(web, "dm1").get("/alerts").text
    assert "GVHD risk after MST" in text and "2.5% &gt; 1% on day 7 with fever" in text


def test_import_page_reports_problems_then_commits(web):
    dm2 = login(web, "dm2")
    token = page_csrf(dm2)
    bad = io.BytesIO(b"patient_id,sex,diagnosis,diagnosis_date\nq1,X,AML,2020-01-01\n")
    res = import_result(dm2, dm2.post("/import", data={"csrf_token": token},
                                      files=[("files", ("patients.csv", bad, "text/csv"))]))
    assert res.status_code == 422 and "Nothing was imported" in res.text and "must be one of" in res.text
    good = io.BytesIO(b"patient_id,sex,diagnosis,diagnosis_date\nq1,F,AML,2020-01-01\nq2,M,MDS,2021-02-03\n")
    res = import_result(dm2, dm2.post("/import", data={"csrf_token": token},
                                      files=[("files", ("patients.csv", good, "text/csv"))]))
    assert res.status_code == 200 and "Ready to import" in res.text
    pending = res.text.split('action="/import/')[1].split("/commit")[0]
    assert "/patients/q1" not in dm2.get("/patients").text  # nothing written before the commit (ids as links: a
    # bare "q1" can occur inside the page's random CSRF token)
    assert dm2.post(f"/import/{pending}/commit", data={"csrf_token": token}).status_code == 303
    listing = dm2.get("/patients").text
    assert "/patients/q1" in listing and "/patients/q2" in listing
    assert "No patients." in login(web, "dm1").get("/patients?q=q1").text  # another centre
    assert dm2.post(f"/import/{pending}/commit", data={"csrf_token": token}).status_code == 403  # used up


def test_import_page_shows_corrections_and_needs_a_reason(web):
    """A corrected follow-up date through the web import: the preview shows stored → new, the commit without a
    reason is refused (the upload stays pending), with a reason it is applied and audited per field."""
    import sqlalchemy as sa

    from allotrack.records.store import AUDIT_LOG

    dm2 = login(web, "dm2")
    token = page_csrf(dm2)
    corrected = io.BytesIO(b"patient_id,last_contact_date\np3,2021-06-30\n")
    res = import_result(dm2, dm2.post("/import", data={"csrf_token": token},
                                      files=[("files", ("follow_up.csv", corrected, "text/csv"))]))
    assert res.status_code == 200 and "Corrections of stored records (1 field(s))" in res.text
    assert "<td>last_contact_date</td><td>2021-02-04</td><td>2021-06-30</td>" in res.text
    pending = res.text.split('action="/import/')[1].split("/commit")[0]
    refused = dm2.post(f"/import/{pending}/commit", data={"csrf_token": token, "reason": "   "})
    assert refused.status_code == 422 and "corrections of stored records need a reason" in refused.text
    done = dm2.post(f"/import/{pending}/commit", data={"csrf_token": token, "reason": "date checked in the chart"})
    assert done.status_code == 303
    fu = web.state.store.load()["follow_up"].set_index("patient_id")["last_contact_date"]
    assert str(fu["p3"].date()) == "2021-06-30"
    with web.state.store.engine.connect() as conn:
        audit = conn.execute(sa.select(AUDIT_LOG.c.username, AUDIT_LOG.c.old_values, AUDIT_LOG.c.new_values,
                                       AUDIT_LOG.c.reason).where(AUDIT_LOG.c.action == "update")).all()  # fmt: skip
    assert ("dm2", '{"last_contact_date": "2021-02-04"}', '{"last_contact_date": "2021-06-30"}',
            "date checked in the chart") in audit


def test_study_list_upload_with_line_errors_run_and_download(web):
    from allotrack.study.run import demo_plan_path

    an1 = login(web, "an1")
    token = page_csrf(an1)
    listing = an1.get("/studies")
    assert listing.status_code == 200 and "HLA-mismatched microtransplantation" in listing.text
    bad = b'[study]\ntitle = "x"\n[data]\nsource = "demo"\n[endpoints]\nuse = ["os", "nope"]\n'
    res = an1.post("/studies", data={"csrf_token": token, "name": "broken"},
                   files=[("plan", ("p.toml", io.BytesIO(bad), "application/toml"))])  # fmt: skip
    assert res.status_code == 422 and "line 6: endpoints.use" in res.text
    small = b'[study]\ntitle = "OS by age"\n[data]\nsource = "demo"\n[endpoints]\nuse = ["os"]\n' \
            b'[[analyses]]\nkind = "km"\nendpoint = "os"\n'
    res = an1.post("/studies", data={"csrf_token": token, "name": "os-only"},
                   files=[("plan", ("p.toml", io.BytesIO(small), "application/toml"))])  # fmt: skip
    assert res.status_code == 303 and "OS by age" in an1.get("/studies").text
    assert login(web, "vw1").get("/studies").status_code == 403
    res = an1.post("/studies/0/run", data={"csrf_token": token})  # the demo plan on centre C1's records
    assert res.status_code == 200 and "report.docx" in res.text
    link = res.text.split('href="/report/')[1].split('"')[0]
    html = an1.get(f"/report/{link}")
    assert html.status_code == 200 and "Table 1. Patient and donor characteristics" in html.text
    assert login(web, "vw1").get(f"/report/{link}").status_code == 403  # not this user's report
    assert demo_plan_path().exists()


def test_crs_form_grades_as_you_type_and_saves(web):
    dm1 = login(web, "dm1")
    assert dm1.get("/patients/MST15/crs/new").status_code == 200
    token = page_csrf(dm1)
    cases = [("37.0", {}, "0"), ("38.5", {}, "1"), ("38.5", {"hypotension": "on"}, "2"),
             ("38.5", {"vasopressors": "1"}, "3"), ("39", {"positive_pressure": "on"}, "4")]  # ASTCT  # fmt: skip
    for temp, extra, grade in cases:
        res = dm1.post("/patients/MST15/crs/grade", data={"csrf_token": token, "temperature_c": temp, **extra})
        assert f"ASTCT CRS grade {grade}<" in res.text, (temp, extra, res.text)
    res = dm1.post("/patients/MST15/crs", data={"csrf_token": token, "date": "2018-01-20", "temperature_c": "38.9",
                                                "oxygen_l_min": "4"})  # fmt: skip
    assert res.status_code == 303
    stored = web.state.store.load()["assessments"]
    crs = stored[(stored["patient_id"] == "MST15") & (stored["item"] == "crs_grade")]
    assert crs["value_text"].tolist() == ["2"]  # fever + low-flow oxygen
    assert crs["rule"].str.startswith("ASTCT 2019").all()
    assert json.loads(crs["inputs"].iloc[0]) == {"temperature_c": 38.9, "oxygen_l_min": 4.0, "hypotension": False,
                                                 "vasopressors": 0, "high_flow": False,
                                                 "positive_pressure": False}  # fmt: skip


def test_cohort_dashboard_follows_the_chosen_grouping(web):
    an1 = login(web, "an1")
    page = an1.get("/dashboard")
    figures = re.findall(r'class="chart-spec">(.*?)</script>', page.text)  # plotly figures (allotrack.web.charts)
    assert page.status_code == 200 and len(figures) == 2
    assert json.loads(figures[0])["layout"]["title"]["text"].startswith("Log-rank p")
    partial = an1.get("/dashboard/figures?group=courses", headers={"HX-Request": "true"})
    os_figure = json.loads(re.findall(r'class="chart-spec">(.*?)</script>', partial.text)[0])
    legend = [t["name"] for t in os_figure["data"] if t.get("showlegend", True) and t["mode"] == "lines"]
    assert partial.status_code == 200 and legend == ["1–3", "&gt; 3"]  # escaped: plotly shows "> 3"
    assert "<html" not in partial.text  # a fragment for htmx
    assert login(web, "vw1").get("/dashboard?group=nonsense").status_code == 200  # falls back to age


def test_alerts_leave_out_patients_who_died():
    import pandas as pd

    from allotrack.records.validate import validate_records
    from allotrack.study.demo import demo_records
    from allotrack.web.alerts import all_alerts, recovery_alerts

    records = validate_records(demo_records())
    today = pd.Timestamp("2026-01-01").date()
    early = {a.patient_id for a in recovery_alerts(records, today)}
    assert {"MST01", "MST22"} <= early  # early deaths: their first course never recovered
    shown = {a.patient_id for a in all_alerts(records, today)}
    assert not shown & set(records["deaths"]["patient_id"])


def test_the_patient_list_pages_end(web):
    """50 patients a page with the range shown; "Next page" only while more patients follow, "Previous page" after
    the first; a page past the end says so (counts from the store: other tests of the module add patients)."""
    import sqlalchemy as sa

    with web.state.store.engine.connect() as conn:
        n_c1, n_all = (int(conn.execute(sa.text("SELECT count(*) FROM patients WHERE deleted = :f" + extra),
                                        {"f": False}).scalar_one())
                       for extra in (" AND centre_code = 'C1'", ""))  # fmt: skip
    assert n_all < 50  # one page each
    dm1 = login(web, "dm1")
    first = dm1.get("/patients").text
    assert f"Patients 1–{n_c1} of {n_c1}" in first and "Next page" not in first and "Previous page" not in first
    beyond = dm1.get("/patients?page=3").text
    assert f"No patients on page 3 ({n_c1} in all)" in beyond and "Previous page" in beyond
    assert f"Patients 1–{n_all} of {n_all}" in login(web, "admin").get("/patients").text


def test_a_refused_assessment_comes_back_with_its_reason_and_the_values_entered(web):
    """Saving an invalid or late assessment answers 422 with the form as entered and the reason next to the Save
    button (htmx swaps 422 answers: static/app.js), instead of a silent failure."""
    dm1 = login(web, "dm1")
    token = page_csrf(dm1)
    res = dm1.post("/patients/MST16/gvhd", data={"csrf_token": token, "date": "2016-02-01", "skin_bsa": "500",
                                                 "bilirubin": "2.5", "stool_ml": "0"})  # fmt: skip
    assert res.status_code == 422
    assert 'id="save-error">Not saved: ' in res.text and 'value="500"' in res.text and 'value="2.5"' in res.text
    late = dm1.post("/patients/MST16/gvhd", data={"csrf_token": token, "date": "2099-01-01", "skin_bsa": "10",
                                                  "bilirubin": "0", "stool_ml": "0"})  # fmt: skip
    assert late.status_code == 422 and "Not saved: " in late.text and 'value="2099-01-01"' in late.text
    script = dm1.get("/static/app.js").text
    assert "htmx:beforeSwap" in script and "422" in script and '<script src="/static/app.js">' in res.text
