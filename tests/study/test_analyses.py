"""The demo plan's analyses: medians, rates, recovery and model tables carry the numbers they should."""

from __future__ import annotations

from functools import cache

import pandas as pd
import pytest
from scipy import stats

from allotrack.study.plan import load_plan
from allotrack.study.run import StudyResult, demo_plan_path, run_study


@cache
def _result() -> StudyResult:
    return run_study(load_plan(demo_plan_path()))


def _section(title: str):
    return next(s for s in _result().document.sections if s.title == title)


def test_recovery_is_measured_after_induction_from_the_onset_of_cytopenia():
    """The paper's rule on each patient's first course (one per patient), worked from the stored counts with
    allotrack.clinical.recovery.hematopoietic_recovery; the old table pooled 113 correlated courses with CIBMTR
    thresholds counted from infusion."""
    import numpy as np

    from allotrack.clinical.recovery import hematopoietic_recovery
    from allotrack.records import views
    from allotrack.records.validate import validate_records
    from allotrack.study.demo import demo_records

    recs = validate_records(demo_records())
    counts = views.counts(recs, ("ANC", "PLT"))
    first = recs["courses"].sort_values(["patient_id", "number"]).drop_duplicates("patient_id")
    nxt = recs["courses"].set_index(["patient_id", "number"])["start_date"]
    durations = []
    for c in first.itertuples():
        stop = nxt.get((c.patient_id, c.number + 1), pd.Timestamp.max)
        mine = counts[(counts["patient_id"] == c.patient_id) & (counts["date"] >= c.start_date)
                      & (counts["date"] < stop)]  # fmt: skip
        anc = mine[mine["analyte"] == "ANC"].groupby("date")["value"].min()
        plt = mine[mine["analyte"] == "PLT"].groupby("date")["value"].min()
        days = anc.index.intersection(plt.index)
        if not len(days):
            continue
        w = hematopoietic_recovery([(d - c.start_date).days for d in days], anc[days].tolist(), plt[days].tolist(),
                                   chemotherapy_end=(c.end_date - c.start_date).days)  # fmt: skip
        if w.status == "recovered":
            durations.append(w.duration_days)
    q1, med, q3 = np.quantile(durations, [0.25, 0.5, 0.75], method="inverted_cdf")
    row = _section("Hematopoietic recovery").tables[0].frame.iloc[0]
    assert (row["Patients"], row["Courses"], row["Recovered"]) == (28, 28, len(durations)) == (28, 28, 25)
    assert row["Median days (Q1, Q3)"] == f"{med:.0f} ({q1:.0f}, {q3:.0f})"
    assert "each patient's first (induction) course" in _section("Hematopoietic recovery").tables[0].notes[1]


def test_recovery_over_all_courses_is_summarised_per_patient():
    from allotrack.study.plan import parse_plan

    plan = parse_plan("""
[study]
title = "t"
[data]
source = "demo"
[[analyses]]
kind = "recovery"
rule = "cibmtr"
courses = "all"
""")
    table = run_study(plan).document.sections[0].tables[0]
    from allotrack.endpoints.recovery import recovery_per_course
    from allotrack.records.validate import validate_records
    from allotrack.study.demo import demo_records

    per_course = recovery_per_course(validate_records(demo_records()), rule="neutrophil")
    with_counts = per_course[per_course["status"] != "no counts"]
    neutrophils = table.data.iloc[0]
    assert (neutrophils["courses"], neutrophils["patients"]) == (len(with_counts), with_counts["patient_id"].nunique())
    assert neutrophils["patients"] < neutrophils["courses"]  # several courses per patient: one value per patient
    assert "summarised per patient" in table.notes[1]


def test_overall_survival_median_and_logrank_rows():
    table = _section("Overall survival").tables[0].frame
    assert table.iloc[0]["Median, months (95% CI)"].startswith("20.0 ")
    assert table["p-value"].str.endswith("¹").sum() == 2  # one log-rank p per grouping (age, donor age)


def test_response_rates_have_clopper_pearson_intervals():
    row = _section("Response and early death").tables[0].frame.iloc[0]
    ci = stats.beta.ppf([0.025, 0.975], [24, 25], [29 - 24 + 1, 29 - 24])  # exact CI for 24/29
    assert row["Complete remission, n (%; 95% CI)"] == f"24 (83%; {ci[0] * 100:.0f}–{ci[1] * 100:.0f}%)"


def test_time_dependent_courses_differ_from_the_biased_fixed_comparison():
    rows = _section("Overall survival: courses as a time-dependent covariate").tables[0].frame
    hr = [float(text.split()[0]) for text in rows["HR (95% CI)"]]
    assert len(hr) == 2 and hr[0] != pytest.approx(hr[1], rel=0.05)  # immortal time changes the estimate


def test_every_section_has_content_and_methods_name_the_tests():
    doc = _result().document
    assert all(s.tables or s.figures for s in doc.sections)
    for phrase in ("log-rank", "Gray's test", "Fine–Gray", "Clopper–Pearson", "Fisher's exact test"):
        assert phrase in doc.methods


def test_recovery_on_a_cohort_without_blood_counts_says_so_instead_of_failing():
    from allotrack.records.schema import Records
    from allotrack.study.demo import demo_records
    from allotrack.study.run import run_study

    without_counts = Records({k: v for k, v in demo_records().tables.items() if k != "observations"})
    result = run_study(load_plan(demo_plan_path()), records=without_counts)
    table = next(s for s in result.document.sections if s.title == "Hematopoietic recovery").tables[0].frame
    assert table["Courses"].tolist() == [0]
    assert table["Median days (Q1, Q3)"].tolist() == ["—"]


def test_cause_of_death_is_compared_among_deaths_only():
    """'Alive' is not a cause of death: the p-value is Fisher's test on the deaths' causes by age group, and the
    living are shown on their own row, outside the test (the old table tested alive vs each cause)."""
    from allotrack.stats.contingency import fisher_test

    table = _section("Baseline characteristics").tables[0]
    frame = table.frame.set_index("Characteristic")
    d = _result().dataset
    deaths = d[d["died"] == 1]
    counts = pd.crosstab(deaths["death_cause"], deaths["age_group"]).reindex(
        index=["relapse", "infection", "organ failure"], columns=["60–70", "> 70"], fill_value=0)  # fmt: skip
    expected = fisher_test(counts.to_numpy())
    assert table.table.tests["death_cause"].p_value == pytest.approx(expected.p_value, rel=1e-12)
    assert "alive" not in frame.index and int(frame.loc["Alive (not applicable)", "Overall (N = 29)¹"]) == int(
        (d["died"] == 0).sum()) == 8  # fmt: skip
    assert frame.loc["relapse", "Overall (N = 29)¹"] == "11 (52%)"  # of the 21 deaths


def test_the_variable_selection_test_is_the_test_shown():
    """Variables enter the multivariate Cox model by univariate likelihood-ratio p; the table shows that p (the
    old table showed only Wald p-values while the selection used likelihood-ratio ones)."""
    import allotrack as at

    section = next(s for s in _result().document.sections if s.title.endswith("Cox regression"))
    uni = section.tables[0]
    assert "Likelihood-ratio p¹" in uni.frame.columns and uni.notes[1].startswith("¹ Likelihood-ratio test")
    plan = _result().plan
    cox = next(a for a in plan.analyses if a.kind == "cox")
    d = _result().dataset.dropna(subset=[f"{cox.endpoint}_time"])
    var = cox.univariate[0]
    sub = d.dropna(subset=[var]).assign(time=lambda f: f[f"{cox.endpoint}_time"].astype(float),
                                        status=lambda f: f[f"{cox.endpoint}_status"].astype(int))  # fmt: skip
    from allotrack.report.format import format_pvalue
    from allotrack.study.analyses.survival import _formula_term

    lr = at.cox_ph(sub, "time", "status", formula=_formula_term(var, sub)).test("likelihood ratio").p_value
    assert uni.frame["Likelihood-ratio p¹"].iloc[0] == format_pvalue(lr)
    assert {"hr", "hr_lower", "hr_upper", "p_wald"} <= set(uni.data.columns)


def test_relapse_and_non_relapse_mortality_are_one_competing_risks_analysis_from_remission():
    """Both cumulative incidences come from one fit: the same origin (first remission) and the same patients (the
    24 in remission), so they add up with leukaemia-free survival. The old report started NRM at first infusion
    in 28 patients, in a separate analysis."""
    section = _section("Cumulative incidence of relapse (from first remission)")
    table = section.tables[0]
    assert "from first remission" in table.caption
    groups = table.frame[table.frame["Group"] != "All analysed"]
    events = groups.groupby("Event")["N"].sum().to_dict()
    assert table.frame.loc[table.frame["Group"] == "All analysed", "N"].tolist() == [24, 24]
    assert events == {"Cumulative incidence of relapse (from first remission)": 24,
                      "Death without relapse (competing event, same analysis)": 24}  # fmt: skip
    assert not any(s.title == "Non-relapse mortality" for s in _result().document.sections)


def test_no_survival_comparison_by_the_number_of_courses_received():
    """Courses are known only as treatment goes on: the courses grouping appears only in the time-dependent
    analysis (beside its fixed, immortal-time-biased counterpart, labelled as such)."""
    for s in _result().document.sections:
        text = " ".join(" ".join(map(str, t.frame.astype(str).to_numpy().ravel())) for t in s.tables)
        if "time-dependent" in s.title:
            assert "immortal-time biased" in text
        else:
            assert "courses" not in text.lower() or s.title in ("Baseline characteristics", "Hematopoietic recovery"), s.title


def test_methods_name_origins_follow_up_welch_sandwich_and_selection():
    methods = _result().document.methods
    for phrase in ("Time origins: Overall survival from diagnosis", "Cumulative incidence of relapse from first "
                   "remission", "reverse Kaplan–Meier method (deaths censored), was 148.5 months", "Welch's t-test",
                   "sandwich (robust) variance", "univariate likelihood-ratio test gave p < 0.1"):  # fmt: skip
        assert phrase in methods, phrase


def test_time_dependent_courses_switch_on_at_the_course_start_counted_from_the_endpoints_own_origin():
    """Survival from the first course: "more than 3 courses" switches on at the start of course 4 counted from
    each patient's first course, not from diagnosis (which shifted every switch by the diagnosis-to-treatment
    interval). The hazard ratio is the Cox fit of the (start, stop] intervals built by hand."""
    import allotrack as at
    from allotrack.endpoints import derive_endpoints
    from allotrack.endpoints.timevarying import counting_process
    from allotrack.records.validate import validate_records
    from allotrack.study.demo import demo_records
    from allotrack.study.plan import parse_plan

    plan = parse_plan("""
[study]
title = "t"
time_unit = "months"
[data]
source = "demo"
[endpoints]
use = ["os_c1"]
[[endpoints.define]]
name = "os_c1"
label = "Survival from the first course"
origin = "first_course"
events = ["death"]
[[analyses]]
kind = "time_dependent_cox"
endpoint = "os_c1"
""")
    table = run_study(plan).document.sections[0].tables[0]
    recs = validate_records(demo_records())
    d = derive_endpoints(recs, [plan.endpoint("os_c1")], validate=False).data
    d = d.assign(time=d["os_c1_time"].astype(float) / 30.4375, status=d["os_c1_status"].astype(int))
    courses = recs["courses"]
    first = courses[courses["number"] == 1].set_index("patient_id")["start_date"]
    fourth = courses[courses["number"] == 4]
    changes = pd.DataFrame({"patient_id": fourth["patient_id"], "value": 1.0,
                            "day": (fourth["start_date"] - fourth["patient_id"].map(first)).dt.days / 30.4375})
    cp = counting_process(d[["patient_id", "time", "status"]], "time", "status", changes, "more_courses")
    expected = at.cox_ph(cp, "stop", "status", covariates=["more_courses"], entry="start").summary
    assert table.data is not None
    got = table.data.iloc[0]
    assert got["hr"] == pytest.approx(float(expected["hr"].iloc[0]), rel=1e-9)
    assert got["p_wald"] == pytest.approx(float(expected["p"].iloc[0]), rel=1e-9)
