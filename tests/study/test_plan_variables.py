"""[[variables]]: per-patient variables of the analysis dataset taken from the records (an item at a visit,
summarised; a study-design column; a matched set's case value), checked by hand on the NK-cell study's records;
and the run's refusal to group a time-to-event analysis by a value measured after its origin."""

from __future__ import annotations

import pandas as pd
import pytest

import allotrack as at
from allotrack.errors import InputError
from allotrack.records.validate import validate_records
from allotrack.study.dataset import variable_values
from allotrack.study.five_studies import five_study_records
from allotrack.study.plan import PlanError, VariableSpec, parse_plan
from allotrack.study.run import run_study

HEAD = """
[study]
title = "t"
time_unit = "months"
[data]
source = "example:nk_cells"
[endpoints]
use = ["dfs_hsct"]
[[endpoints.define]]
name = "dfs_hsct"
label = "DFS"
origin = "hsct"
events = ["relapse", "death"]
"""


@pytest.fixture(scope="module")
def nk():
    return validate_records(five_study_records()["nk_cells"])


def test_an_item_at_a_visit_summarised_cut_and_given_to_the_matched_controls(nk):
    spec = VariableSpec(name="dsa", item="dsa_mfi", visit="before transplant", summary="max", cut=[999.999],
                        labels=["negative", "positive"], from_case=True)  # fmt: skip
    values, dates = variable_values(nk, spec)
    obs = nk["observations"]
    mfi = obs[(obs["item"] == "dsa_mfi") & (obs["visit"] == "before transplant")].groupby("patient_id")["value"].max()
    own = mfi.map(lambda v: "positive" if v >= 1000 else "negative")
    sets = nk["matched_sets"].set_index("patient_id")
    case_of_set = sets[sets["role"] == "case"].reset_index().set_index("set_id")["patient_id"]
    expected = sets["set_id"].map(case_of_set).map(own)
    assert values.sort_index().equals(expected.sort_index().rename("dsa"))
    assert (values == "negative").sum() == 133 and set(dates.index) == set(mfi.index)  # dates: the cases' own


def test_min_max_first_last_and_a_design_column(nk):
    obs = nk["observations"]
    rows = obs[obs["item"] == "nk_abs"].sort_values(["patient_id", "date"])
    for summary, expected in (("max", rows.groupby("patient_id")["value"].max()),
                              ("min", rows.groupby("patient_id")["value"].min()),
                              ("first", rows.groupby("patient_id")["value"].first()),
                              ("last", rows.groupby("patient_id")["value"].last())):  # fmt: skip
        got = variable_values(nk, VariableSpec(name="nk", item="nk_abs", summary=summary))[0]
        assert got.sort_index().to_dict() == expected.to_dict(), summary
    role = variable_values(nk, VariableSpec(name="cohort", table="matched_sets", column="role"))[0]
    assert role.value_counts().to_dict() == {"control": 160, "case": 25}


def test_several_values_without_a_summary_and_an_unknown_column_are_refused_by_name(nk):
    with pytest.raises(InputError) as err:
        variable_values(nk, VariableSpec(name="nk", item="nk_abs"))
    assert "variable 'nk': item 'nk_abs' has more than one value for 25 patients" in str(err.value)
    assert "summary = first, last, min or max" in str(err.value)
    with pytest.raises(InputError) as err:
        variable_values(nk, VariableSpec(name="x", table="matched_sets", column="rol"))
    assert "table 'matched_sets' has no column 'rol'" in str(err.value)


def test_a_variable_is_given_by_one_source_and_a_name_the_dataset_already_has_is_refused():
    with pytest.raises(PlanError) as err:
        parse_plan(HEAD + '[[variables]]\nname = "x"\nitem = "nk_abs"\ntable = "matched_sets"\ncolumn = "role"\n')
    (line, key, msg), = err.value.problems
    assert (line, key) == (14, "variables[0]") and "either item" in msg
    with pytest.raises(PlanError) as err:
        parse_plan(HEAD + '[[variables]]\nname = "sex"\ntable = "matched_sets"\ncolumn = "role"\n')
    (line, key, msg), = err.value.problems
    assert (line, key) == (15, "variables[0].name") and "already a column" in msg


def test_grouping_survival_by_a_value_measured_after_the_origin_is_refused():
    """NK cells at day +30 are known only for patients alive and followed at day +30: grouping DFS from the
    transplant by them is immortal-time biased. The same count measured at the day +30 landmark is allowed in a
    landmark endpoint (see the run's message)."""
    plan = parse_plan(HEAD + '[[variables]]\nname = "nk30"\nitem = "nk_abs"\nvisit = "day +30"\ncut = [300]\n'
                      'labels = ["low", "high"]\n[[analyses]]\nkind = "km"\nendpoint = "dfs_hsct"\nby = ["nk30"]\n')
    with pytest.raises(InputError) as err:
        run_study(plan)
    assert "variable 'nk30' (nk_abs at day +30) is measured after the origin of DFS (HSCT) for 25 patients" \
        in str(err.value) and "immortal-time bias" in str(err.value)  # fmt: skip


def test_a_cox_model_stratified_by_matched_set_equals_coxph_with_strata(nk):
    plan = parse_plan(HEAD + '[[variables]]\nname = "cohort"\ntable = "matched_sets"\ncolumn = "role"\n'
                      '[[variables]]\nname = "mset"\ntable = "matched_sets"\ncolumn = "set_id"\n'
                      '[[analyses]]\nkind = "cox"\nendpoint = "dfs_hsct"\nunivariate = ["cohort"]\nstrata = "mset"\n')
    result = run_study(plan)
    got = result.document.sections[0].tables[0].data.iloc[0]
    d = result.dataset.assign(time=lambda f: f["dfs_hsct_time"] / 30.4375, status=lambda f: f["dfs_hsct_status"],
                              control=lambda f: (f["cohort"] == "control").astype(float))  # fmt: skip
    expected = at.cox_ph(d, "time", "status", covariates=["control"], strata="mset").summary.iloc[0]
    assert got["hr"] == pytest.approx(float(expected["hr"]), rel=1e-9)
    assert got["p_wald"] == pytest.approx(float(expected["p"]), rel=1e-9)
    assert isinstance(result.dataset["mset"].iloc[0], str) and not pd.isna(result.dataset["mset"]).any()
