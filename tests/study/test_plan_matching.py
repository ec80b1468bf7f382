"""The plan's [matching]: controls matched to the treated patients of the analysis dataset before the analyses
run, equal to allotrack.design.match_controls called directly; the sets usable as strata; the balance analysis
equal to the match's own balance table; mistakes refused at plan check."""

from __future__ import annotations

import pytest

from allotrack.design.matching import match_controls
from allotrack.study.plan import PlanError, parse_plan
from allotrack.study.run import run_study

PLAN = """
[study]
title = "t"
time_unit = "months"
[data]
source = "example:nk_cells"
[[variables]]
name = "cohort"
table = "matched_sets"
column = "role"
[matching]
treated = "[cohort] = 'case'"
covariates = ["age_at_diagnosis", "sex"]
exact = ["diagnosis"]
caliper = { age_at_diagnosis = 10 }
distance = "mahalanobis"
ratio = 4
set_column = "new_set"
[endpoints]
use = ["dfs_hsct"]
[[endpoints.define]]
name = "dfs_hsct"
label = "DFS"
origin = "hsct"
events = ["relapse", "death"]
[[analyses]]
kind = "balance"
[[analyses]]
kind = "km"
endpoint = "dfs_hsct"
by = ["cohort"]
strata = "new_set"
"""


@pytest.fixture(scope="module")
def result():
    return run_study(parse_plan(PLAN))


def test_the_plans_matching_is_match_controls_on_the_dataset(result):
    d = result.dataset
    frame = d[["patient_id", "age_at_diagnosis", "sex", "diagnosis"]].assign(treated=d["cohort"] == "case")
    direct = match_controls(frame.reset_index(drop=True), "treated", ["age_at_diagnosis", "sex"], exact="diagnosis",
                            distance="mahalanobis", ratio=4, caliper={"age_at_diagnosis": 10}, std_caliper=False,
                            ids="patient_id").sets_frame().set_index("patient_id")  # fmt: skip
    got = d.set_index("patient_id")[["new_set", "new_set_weight"]].dropna()
    assert got["new_set"].to_dict() == direct["set_id"].to_dict()
    assert got["new_set_weight"].to_dict() == pytest.approx(direct["weight"].to_dict())
    sets = d.dropna(subset=["new_set"]).groupby("new_set")
    assert (sets["diagnosis"].nunique() == 1).all()  # exact on diagnosis
    assert (sets["age_at_diagnosis"].agg(lambda a: a.max() - a.min()) <= 20).all()  # each within ±10 of its case


def test_balance_section_is_the_matchs_balance_and_the_km_compares_within_the_new_sets(result):
    balance = result.document.sections[0]
    assert balance.paragraphs[0].startswith("25 of 25 treated patients matched to")
    table = balance.tables[0]
    assert "Age at diagnosis" in set(table.frame["Covariate"]) and balance.figures
    assert set(table.data["sample"]) == {"before", "after"}
    km = result.document.sections[1].tables[0]
    assert "stratified by new set" in km.footnotes[0]
    assert km.frame["N"].iloc[0] == int(result.dataset["new_set"].notna().sum())


def test_matching_mistakes_are_refused_at_plan_check():
    with pytest.raises(PlanError) as err:
        parse_plan(PLAN.replace('covariates = ["age_at_diagnosis", "sex"]', 'covariates = ["age"]')
                   .replace("[cohort] = 'case'", "[cohrt] = 'case'"))
    keys = [key for _, key, _ in err.value.problems]
    assert keys == ["matching.treated", "matching.covariates"]
    without = PLAN.split("[matching]")[0] + PLAN.split('set_column = "new_set"\n')[1].replace('strata = "new_set"\n', "")
    with pytest.raises(PlanError, match="a balance analysis needs the plan's \\[matching\\]"):
        parse_plan(without)
