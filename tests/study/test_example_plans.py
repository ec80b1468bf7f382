"""The bundled plans of four reference studies run end to end on their synthetic records and report their
published primary results; `allotrack plan check` accepts them and `allotrack run` writes their reports."""

from __future__ import annotations

from functools import cache

import pandas as pd
import pytest
from typer.testing import CliRunner

from allotrack.cli import app
from allotrack.study.plan import load_plan
from allotrack.study.run import StudyResult, example_plan_path, run_study


@cache
def _run(code: str) -> StudyResult:
    return run_study(load_plan(example_plan_path(code)))


def _section(code: str, title: str):
    return next(s for s in _run(code).document.sections if s.title == title)


def test_the_msc_trial_plan_reports_the_primary_endpoint_in_the_itt_and_per_protocol_populations():
    primary = _section("msc_rct", "GVHD complete response at week 4 (primary endpoint)")
    assert primary.paragraphs[0] == "Analysed: population ITT, n = 130."
    assert all(t.caption.endswith(" [population ITT, n = 130]") for t in primary.tables)
    assert all(f.caption.endswith(" [population ITT, n = 130]") for f in primary.figures)
    rows = dict(zip(primary.tables[0].frame[""], primary.tables[0].frame["Estimate (95% CI)"], strict=True))
    assert rows["MSC + basiliximab: 54/65"].startswith("83%") and rows["basiliximab: 36/65"].startswith("55%")
    assert rows["Risk difference"] == "28% (12–42%)"
    # the plan stratifies (by the randomisation stratum) and adjusts for nothing: the caption says only that
    assert [t.caption for t in primary.tables][1:] == ["MSC + basiliximab vs basiliximab: stratified odds ratios "
                                                        "[population ITT, n = 130]",
                                                        "Subgroups: MSC + basiliximab vs basiliximab [population ITT, "
                                                        "n = 130]"]  # fmt: skip
    pp = _section("msc_rct", "GVHD complete response at week 4, per protocol")
    assert pp.paragraphs[0] == "Analysed: population per-protocol, n = 125."
    assert "Overall survival from randomisation, to week 52" in _run("msc_rct").document.methods
    assert "from randomisation from randomisation" not in _run("msc_rct").document.methods


def test_the_myeloma_plan_compares_t_cells_before_and_after_mst():
    section = _section("myeloma_mst", "CD4⁺ T cells before and after MST")
    assert section.tables[0].data.iloc[0]["pairs"] == 14
    assert {s.title for s in _run("myeloma_mst").document.sections} >= {
        "Overall survival from the first MST course", "Progression-free survival (from the first course)"}


def test_the_myeloma_plan_reproduces_the_published_response_and_six_year_survival():
    """Published: 17/20 responded (IMWG ≥ PR), 6-year OS 64.7 % and PFS 35.3 %, both from the first MST course
    (OS from diagnosis would credit the months before treatment: immortal time)."""
    response = _section("myeloma_mst", "Response and early death").tables[0].frame.iloc[0]
    assert response["Response (sCR, CR, VGPR, PR), n (%; 95% CI)"].startswith("17 (85%;")
    os_table = _section("myeloma_mst", "Overall survival from the first MST course").tables[0]
    pfs_table = _section("myeloma_mst", "Progression-free survival (from the first course)").tables[0]
    assert os_table.frame["72 months"].iloc[0].startswith("65%")
    assert pfs_table.frame["72 months"].iloc[0].startswith("35%")
    assert _section("myeloma_mst", "Overall survival from the first MST course").figures  # a curve without groups


def test_plan_check_and_run_accept_the_example_plans(tmp_path):
    runner = CliRunner()
    for code in ("msc_rct", "myeloma_mst", "imak", "nk_cells"):
        checked = runner.invoke(app, ["plan", "check", str(example_plan_path(code))])
        assert checked.exit_code == 0, checked.output
    ran = runner.invoke(app, ["run", str(example_plan_path("myeloma_mst")), "--out", str(tmp_path), "--format",
                              "html"])  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "report.html").exists() and (tmp_path / "tables" / "index.json").exists()


def _rows(table, key: str, value: str) -> dict[str, str]:
    frame = getattr(table, "frame", table)
    return dict(zip(frame[key], frame[value], strict=True))


def test_the_nk_plan_reports_relapse_and_dfs_from_the_transplant_against_matched_controls():
    """Published: 2-year relapse 4 % vs 38 %, DFS 66 % vs 44 %; without DSA 0 % vs 40 %, 72 % vs 44 %, and the
    Cox hazard ratio of DFS of the controls 2.64 (unmatched). Every endpoint starts at the transplant, for all 25
    cases (none dropped for active disease) and 160 controls; every comparison is within matched sets (stratified
    Gray's and log-rank tests and Cox model, checked against the estimators called with the matched set as
    strata)."""
    import allotrack as at

    result = _run("nk_cells")
    relapse = _section("nk_cells", "Relapse after HSCT and death without relapse, cases vs matched controls").tables[0]
    assert "from HSCT" in relapse.caption and "Gray's test stratified by matched set" in relapse.footnotes[0]
    first = relapse.frame[relapse.frame["Event"] == "Relapse after HSCT"]
    assert _rows(first, "Group", "N") == {"All analysed": 185, "Cohort: case": 25, "Cohort: control": 160}
    assert _rows(first, "Group", "24 months")["Cohort: case"] == "4.0% (0.3–17)"
    assert _rows(first, "Group", "24 months")["Cohort: control"] == "38% (31–46)"
    d = result.dataset.assign(time=lambda f: f["relapse_hsct_time"] / 30.4375, status=lambda f: f["relapse_hsct_status"])
    gray = at.gray_test(d, "time", "status", by="cohort", strata="matched_set")
    assert _rows(first, "Group", "p-value")["Cohort: case"] == f"{gray.p_value:.3f}¹"
    dfs = _section("nk_cells", "Disease-free survival after HSCT, cases vs matched controls").tables[0]
    assert [c.split(" (")[0] for c in _rows(dfs, "Group", "24 months").values()] == ["47%", "66%", "44%"]
    d = result.dataset.assign(time=lambda f: f["dfs_hsct_time"] / 30.4375, status=lambda f: f["dfs_hsct_status"])
    logrank = at.logrank_test(d, "time", "status", by="cohort", strata="matched_set")
    assert _rows(dfs, "Group", "p-value")["Cohort: case"] == f"{logrank.p_value:.3f}¹" == "0.054¹"
    matched = _section("nk_cells", "Disease-free survival, controls vs cases: Cox regression within matched "
                       "sets").tables[0]  # fmt: skip
    cox = at.cox_ph(d.assign(control=(d["cohort"] == "control").astype(float)), "time", "status",
                    covariates=["control"], strata="matched_set").summary.iloc[0]  # fmt: skip
    assert matched.data["hr"].iloc[0] == float(cox["hr"]) and matched.frame["Term"].iloc[0] == "control vs case"
    title = "Relapse after HSCT: cases without donor-specific antibodies and their controls"
    sub = _section("nk_cells", title)
    assert sub.paragraphs[0] == "Analysed: subset [dsa] = 'negative', n = 133."
    assert _rows(sub.tables[0], "Group", "24 months")["Cohort: case"] == "0%"
    assert _rows(sub.tables[0], "Group", "24 months")["Cohort: control"] == "40% (31–49)"
    unmatched = _section("nk_cells", "Disease-free survival, controls vs cases without donor-specific antibodies: "
                         "unmatched Cox regression (as published)").tables[0]  # fmt: skip
    assert round(float(unmatched.data["hr"].iloc[0]), 2) == 2.64
    trend = _section("nk_cells", "NK cells at day +30 by NK dose level").tables[0]
    assert list(trend.frame["Patients"]) == [3, 3, 3, 16]
    methods = result.document.methods
    assert "Time origins: Relapse after HSCT from HSCT" in methods and "Fine–Gray" not in methods
    assert "Gray's test (stratified where stated by matched set: comparisons within strata)" in methods
    assert "Jonckheere–Terpstra" in methods and "Cochran–Armitage" not in methods
    assert "Median follow-up from HSCT, by the reverse Kaplan–Meier method" in methods


def test_the_imak_plan_reports_remission_by_disease_toxicity_and_early_loss_of_donor_cells():
    """Published: CR 23/33, no adverse event above grade 3, donor cells in the 6 female recipients of male donors
    undetectable beyond day +6, 6 patients in remission for more than 5 years."""
    response = _section("imak", "Response and early death").tables[0]
    assert _rows(response, "Group", "Complete remission, n (%; 95% CI)")["All analysed"].startswith("23 (70%")
    assert list(response.frame["Group"])[1:] == ["Diagnosis: AML", "Diagnosis: ALL", "Diagnosis: MM",
                                                 "Diagnosis: NHL"]  # fmt: skip
    ae = _section("imak", "Adverse events").tables[0].frame
    assert set(ae["Grade 4"]) == {"0 (0%)"} and set(ae["Grade 5"]) == {"0 (0%)"}
    chimerism = _section("imak", "Donor chimerism").tables[0].frame.iloc[0]
    assert (chimerism["Patients"], chimerism["Tests"]) == (6, 36)
    assert chimerism["Last day detected after an infusion, median (range)"] == "6 (6–6)"
    landmarks = _section("imak", "Overall survival and remission duration at 1 and 5 years").tables[0]
    lfs = landmarks.data[(landmarks.data["endpoint"] == "remission") & (landmarks.data["time"] == 60)].iloc[0]
    assert lfs["n"] == 23 and lfs["estimate"] > 0
    baseline = _section("imak", "Baseline characteristics").tables[0].frame
    assert "not tested" in set(baseline["Characteristic"])  # the choice's label, not its code
    assert "Time origins: Overall survival from the first IMAK infusion;" in _run("imak").document.methods


def test_plan_copy_writes_a_bundled_plan_that_runs_and_refuses_to_overwrite(tmp_path):
    runner = CliRunner()
    target = tmp_path / "nk.toml"
    copied = runner.invoke(app, ["plan", "copy", "nk_cells", str(target)])
    assert copied.exit_code == 0, copied.output
    assert target.read_text(encoding="utf-8") == example_plan_path("nk_cells").read_text(encoding="utf-8")
    again = runner.invoke(app, ["plan", "copy", "nk_cells", str(target)])
    assert again.exit_code == 1 and "exists" in again.output
    unknown = runner.invoke(app, ["plan", "copy", "nk", str(tmp_path / "x.toml")])
    assert unknown.exit_code == 1 and "demo, myeloma_mst, imak, msc_rct, nk_cells" in unknown.output
    assert not (tmp_path / "x.toml").exists()


def test_the_msc_plan_has_the_trials_baseline_secondary_endpoints_and_the_arms_hazard_ratio():
    """Baseline by arm; overall response at week 4; 52-week DFS in malignant disease 85 % vs 66 % (published
    84.8 / 65.9); chronic GVHD with death competing; the hazard ratio of MSC + basiliximab against basiliximab
    (the comparator as reference, stratified by the randomisation stratum) equal to coxph called directly."""
    import allotrack as at

    result = _run("msc_rct")
    baseline = _section("msc_rct", "Baseline characteristics").tables[0].frame
    assert list(baseline.columns[1:4]) == ["Overall (N = 130)¹", "MSC + basiliximab (N = 65)¹",
                                           "basiliximab (N = 65)¹"]  # fmt: skip
    dfs = _section("msc_rct", "Disease-free survival to week 52 in malignant disease").tables[0]
    assert [v.split(" (")[0] for v in _rows(dfs, "Group", "364 days").values()][1:] == ["85%", "66%"]
    cgvhd = _section("msc_rct", "Chronic GVHD from randomisation, to week 52").tables[0]
    assert "Death without chronic GVHD (competing event, same analysis)" in set(cgvhd.frame["Event"])
    cox = _section("msc_rct", "Overall survival to week 52: hazard ratio of the arms").tables[0]
    assert cox.frame["Term"].iloc[0] == "MSC + basiliximab vs basiliximab"
    d = result.dataset.dropna(subset=["os_rand_time"]).assign(msc=lambda f: (f["arm"] == "MSC + basiliximab") * 1.0)
    expected = at.cox_ph(d, "os_rand_time", "os_rand_status", covariates=["msc"], strata="stratum").summary.iloc[0]
    assert cox.data["hr"].iloc[0] == pytest.approx(float(expected["hr"]), rel=1e-9)


def test_the_msc_plan_reports_the_consort_flow_counted_from_the_records():
    """130 enrolled and randomised (the patient found ineligible after randomisation stays in ITT), 65 per arm,
    per-protocol 62 and 63 with the exclusion reasons of the population records, deaths by day 364 per arm."""
    from allotrack.records.validate import validate_records
    from allotrack.study.five_studies import five_study_records

    section = _section("msc_rct", "Patient flow (CONSORT)")
    flow = section.tables[0].frame
    n = {(r.Stage, r.Arm): r.n for r in flow.itertuples()}
    assert (n[("Enrolled (assessed for eligibility)", "")], n[("Randomised", "")]) == (130, 130)
    assert n[("Allocated", "MSC + basiliximab")] == n[("Allocated", "basiliximab")] == 65
    assert (n[("Analysed: per-protocol", "MSC + basiliximab")], n[("Analysed: per-protocol", "basiliximab")]) == (62, 63)
    assert n[("Excluded from per-protocol: fewer than 4 MSC infusions", "MSC + basiliximab")] == 2
    recs = validate_records(five_study_records()["msc_rct"])
    enrol = recs["enrolments"].set_index("patient_id")
    deaths = recs["deaths"].set_index("patient_id")["date"]
    days = (deaths - enrol.loc[deaths.index, "randomisation_date"]).dt.days
    for arm in ("MSC + basiliximab", "basiliximab"):
        died = int((days[enrol.loc[days.index, "arm"] == arm] <= 364).sum())
        assert n[("Died by day 364", arm)] == died
    assert section.figures
    # the allocation's balance by stratum, counted from the enrolment records' stratum and arm
    balance = section.tables[1].frame.set_index("Stratum")
    randomised = recs["enrolments"].dropna(subset=["arm"])
    expected = pd.crosstab(randomised["stratum"], randomised["arm"])
    for stratum in expected.index:
        assert balance.loc[stratum, "MSC + basiliximab"] == expected.loc[stratum, "MSC + basiliximab"]
        assert balance.loc[stratum, "Difference"] == abs(expected.loc[stratum].diff().iloc[-1])
    assert balance.loc["All strata", "Total"] == 130 and balance.loc["All strata", "Difference"] == 0
