"""The NK-cell study's comparative design run on a synthetic registry (``example:nk_registry``, the bundled plan
``nk_registry``): 25 treated patients and 800 registry transplants; controls matched exactly on disease, disease
status and conditioning intensity and on age within ±10 years, up to 7 per case; balance, and relapse, DFS and
acute GVHD compared with methods that respect the matched sets. The report's numbers are those of the library
functions (validated against R elsewhere) applied to the matched cohort."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

import allotrack as at
from allotrack.report.format import format_pvalue
from allotrack.stats import conditional_logistic
from allotrack.study.plan import load_plan
from allotrack.study.run import StudyResult, example_plan_path, run_study

MATCHED = "[matched_set] <> ''"


@cache
def _run() -> StudyResult:
    return run_study(load_plan(example_plan_path("nk_registry")))


def _section(title: str):
    return next(s for s in _run().document.sections if s.title == title)


def _matched() -> pd.DataFrame:
    """The matched cohort, the controls as the reference group (the plan's ``reference``)."""
    data = _run().dataset
    m = data[data["matched_set"].notna()].copy()
    m["matched_set_group"] = pd.Categorical(m["matched_set_group"], categories=["Registry controls", "NK cells"])
    return m


def test_the_registry_holds_800_candidates_besides_the_25_cases():
    data = _run().dataset
    assert len(data) == 825
    assert (data["nk_trial"].notna()).sum() == 25
    assert data["matched_set_group"].value_counts().to_dict().keys() == {"NK cells", "Registry controls",
                                                                          "not matched"}  # fmt: skip


def test_every_set_is_one_case_and_up_to_7_controls_matched_exactly_and_within_10_years():
    m = _matched()
    cases = m[m["matched_set_group"] == "NK cells"].set_index("matched_set")
    controls = m[m["matched_set_group"] == "Registry controls"]
    assert len(cases) == 25 and cases.index.is_unique
    assert controls["patient_id"].is_unique  # without replacement
    sizes = controls.groupby("matched_set").size()
    assert sizes.max() == 7 and sizes.min() >= 1 and set(sizes.index) <= set(cases.index)
    case_of = cases.loc[controls["matched_set"]]
    for column in ("diagnosis", "disease_status", "conditioning"):
        assert (controls[column].to_numpy() == case_of[column].to_numpy()).all()
    age_gap = np.abs(controls["age_at_diagnosis"].to_numpy(float) - case_of["age_at_diagnosis"].to_numpy(float))
    assert age_gap.max() <= 10
    # MatchIt's weights: a control of a set with k controls weighs (1/k), scaled so the control weights sum to
    # the number of matched controls
    k = controls["matched_set"].map(sizes).to_numpy(float)
    expected = (1 / k) * len(controls) / (1 / k).sum()
    assert controls["matched_set_weight"].to_numpy(float) == pytest.approx(expected, rel=1e-12)


def test_balance_is_reported_before_and_after_with_a_love_plot():
    section = _section("Matched registry controls: balance before and after matching")
    data = section.tables[0].data.set_index(["term", "sample"])["smd"]
    assert abs(data[("age_at_diagnosis", "after")]) < 0.05  # matched within ±10 years, nearest first
    assert abs(data[("age_at_diagnosis", "before")]) > 0.4  # the registry is older than the trial's patients
    assert data.xs("after", level="sample").drop("age_at_diagnosis").abs().max() < 1e-12
    shown = section.tables[0].frame.set_index("Covariate")
    assert shown.loc["Age at diagnosis, years", "SMD after"] != shown.loc["Age at diagnosis, years", "SMD before"]
    exact_rows = [c for c in shown.index if c.startswith(("Diagnosis:", "Disease status", "Conditioning"))]
    assert len(exact_rows) == 8 and (shown.loc[exact_rows, "SMD after"] == "0.000").all()
    assert abs(float(shown.loc["Age at diagnosis, years", "SMD after"].replace("−", "-"))) < 0.1
    assert section.figures and section.paragraphs[0].startswith("25 of 25 treated patients matched to ")


def test_relapse_is_compared_by_stratified_grays_test_and_fine_gray_with_a_clustered_variance():
    m = _matched()
    section = _section("Relapse after HSCT and death without relapse, NK cells vs matched controls")
    fg = section.tables[-1]
    assert "clustered by matched set" in " ".join(fg.notes)
    d = m.assign(time=m["relapse_hsct_time"] / (365.25 / 12), status=m["relapse_hsct_status"].astype(int))
    model = at.fine_gray(d, "time", "status", formula="C(matched_set_group)", cause=1, cluster="matched_set")
    row = fg.frame.iloc[0]
    shr = float(model.summary["shr"].iloc[0])
    assert row["SHR (95% CI)"].startswith(f"{shr:.2f}") and shr < 1  # NK cells vs the controls
    assert row["Term"] == "NK cells vs Registry controls"
    unclustered = at.fine_gray(d, "time", "status", formula="C(matched_set_group)", cause=1)
    assert float(model.summary["se"].iloc[0]) != pytest.approx(float(unclustered.summary["se"].iloc[0]), rel=1e-3)
    gray = section.tables[0].frame
    assert gray["p-value"].str.len().gt(0).sum() == 2  # relapse and death without relapse, each stratified


def test_dfs_cox_within_sets_and_weighted_with_clustered_variance_equal_the_library_fits():
    m = _matched()
    d = m.assign(time=m["dfs_hsct_time"] / (365.25 / 12), status=m["dfs_hsct_status"].astype(int))
    stratified = at.cox_ph(d, "time", "status", formula="C(matched_set_group)", strata="matched_set")
    weighted = at.cox_ph(d, "time", "status", formula="C(matched_set_group)", cluster="matched_set",
                         weights="matched_set_weight", robust=True)  # fmt: skip
    s1 = _section("Disease-free survival: Cox regression within matched sets").tables[0]
    s2 = _section("Disease-free survival: weighted Cox regression, variance clustered by matched set").tables[0]
    assert s1.data["hr"].iloc[0] == pytest.approx(float(stratified.summary["hr"].iloc[0]), rel=1e-12)
    assert s2.data["hr"].iloc[0] == pytest.approx(float(weighted.summary["hr"].iloc[0]), rel=1e-12)
    assert s2.data["hr_upper"].iloc[0] == pytest.approx(float(weighted.summary["hr_upper"].iloc[0]), rel=1e-12)
    assert s2.data["p_robust_score"].iloc[0] == pytest.approx(weighted.test("robust score").p_value, rel=1e-12)
    assert "Robust score p¹" in s2.frame.columns and "Likelihood-ratio p¹" in s1.frame.columns
    assert "clustered by matched set" in s2.notes[0] and "weighted by" in s2.notes[0]


def test_acute_gvhd_is_compared_within_matched_sets_by_conditional_logistic_regression():
    section = _section("Acute GVHD grade II–IV by day +100 (patients assessed then), NK cells vs matched controls")
    main = section.tables[0].frame.set_index("")["Estimate (95% CI)"]
    within = section.tables[1]
    row = within.data[within.data["analysis"] == "conditional_logistic"].iloc[0]
    assessed = _matched().merge(_gvhd_by_day_100(), on="patient_id")
    model = conditional_logistic(assessed.assign(exposed=(assessed["matched_set_group"] == "NK cells").astype(int)),
                                 "event", covariates=["exposed"], strata="matched_set")  # fmt: skip
    assert row["odds_ratio"] == pytest.approx(float(model.summary["odds_ratio"].iloc[0]), rel=1e-12)
    assert row["p_value"] == pytest.approx(float(model.summary["p"].iloc[0]), rel=1e-12)
    shown = within.frame.iloc[0]
    assert shown["Analysis"].startswith(f"Within matched sets ({model.n_informative_sets} of {model.n_sets} sets")
    assert shown["p-value"].endswith("²") and any("clogit" in n for n in within.notes)
    assert "conditional logistic regression" in _run().document.methods
    assert main["p-value¹"] == format_pvalue(float(model.summary["p"].iloc[0]))  # the matched test, not chi-square
    assert section.tables[0].notes[0].startswith("¹ Conditional logistic regression within matched sets")


def _gvhd_by_day_100() -> pd.DataFrame:
    """Grade II–IV acute GVHD (1/0) of the patients assessed at day +100, from the synthetic records."""
    from allotrack.study.five_studies import example_records

    a = example_records("nk_registry")["assessments"]
    a = a[(a["item"] == "agvhd_grade") & (a["visit"] == "day +100")]
    return pd.DataFrame({"patient_id": a["patient_id"], "event": a["value_text"].isin(["2", "3", "4"]).astype(int)})


def test_dose_finding_reads_levels_and_dlts_from_the_records_and_selects_the_mtd():
    from allotrack.design.dose_finding import dose_decisions

    section = _section("NK-cell dose escalation: BOIN decisions and the MTD")
    shown = section.tables[0].frame
    assert shown["Patients"].tolist() == [3, 3, 3, 16] and shown["DLTs"].tolist() == [0, 0, 0, 1]
    records = pd.DataFrame({"patient_id": range(25), "dose_level": ["DL1"] * 3 + ["DL2"] * 3 + ["DL3"] * 3
                            + ["DL4"] * 16, "dlt": [0] * 9 + [1] + [0] * 15})  # fmt: skip
    direct = dose_decisions(records, levels=["DL1", "DL2", "DL3", "DL4"], design="boin", target=0.3)
    # the rule on each level's counts; at the highest level "escalate" means staying there
    assert direct.table["decision"].tolist() == ["escalate"] * 4
    assert shown["Decision on the level's counts"].tolist() == ["escalate"] * 3 + ["stay (highest level)"]
    assert direct.mtd == "DL4"  # BOIN's selection: the level whose isotonic estimate is closest to the target
    assert section.paragraphs[-1].startswith("The MTD was not reached: the highest level tested, DL4, has an "
                                             "estimated DLT rate of 0.06, below the target 0.3")  # fmt: skip
    assert shown["DLT rate, isotonic estimate"].iloc[-1] == f"{1 / 16:.2f}"


def test_sample_size_is_the_design_function_and_a_wrong_input_is_refused_at_plan_check():
    from allotrack.design.power import competing_risks
    from allotrack.study.plan import PlanError, parse_plan

    section = _section("Design-stage power of the comparison of relapse (planned 25 cases, 175 controls)")
    direct = competing_risks(0.35, 0.38, n=200, allocation=0.125)
    assert section.tables[0].data["power"].iloc[0] == pytest.approx(direct.power, rel=1e-15)
    assert section.paragraphs[0].startswith(f"{direct.events} events and 25 + 175 = 200 patients give power "
                                            f"{direct.power:.3f}")  # fmt: skip
    text = example_plan_path("nk_registry").read_text(encoding="utf-8")
    with pytest.raises(PlanError, match="hazard_ratio"):
        parse_plan(text.replace("subdistribution_hr = 0.35", "hazard_ratio = 0.35"))
    with pytest.raises(PlanError, match="target DLT rate"):
        parse_plan(text.replace("target = 0.3\n", ""))
