"""The paired and longitudinal plan analyses on the five studies' synthetic records: CD4 % before and after MST in
the myeloma study (14 patients), and an MSC factor on days 0, 1 and 7 by arm in the RCT (19 patients)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from allotrack.endpoints.measurements import item_rows, value_at_visit
from allotrack.records.validate import validate_records
from allotrack.report.format import format_pvalue
from allotrack.stats import mixed_model, paired_test
from allotrack.study.five_studies import five_study_records
from allotrack.study.plan import parse_plan
from allotrack.study.run import run_study

HEAD = '[study]\ntitle = "t"\ntime_unit = "days"\n[data]\nsource = "demo"\n[endpoints]\nuse = ["os"]\n'


def test_paired_analysis_is_the_paired_test_on_the_patients_measured_twice():
    records = five_study_records()["myeloma_mst"]
    plan = parse_plan(HEAD + '[[analyses]]\nkind = "paired"\nitem = "cd4_pct"\nbefore = "before MST"\n'
                             'after = "after MST"\n')  # fmt: skip
    block = run_study(plan, records=records).document.sections[0].tables[0]
    typed = validate_records(records)
    pairs = pd.DataFrame({"before": value_at_visit(typed, "cd4_pct", "before MST"),
                          "after": value_at_visit(typed, "cd4_pct", "after MST")}).dropna()  # fmt: skip
    expected = paired_test(pairs, "after", "before")  # the change, after − before
    row = block.data.iloc[0]
    assert (row["pairs"], row["p_value"], row["change"]) == (14, expected.p_value, expected.estimate)
    assert row["change"] == pytest.approx(-paired_test(pairs, "before", "after").estimate, rel=1e-12)
    assert (row["median_before"], row["median_after"]) == (pairs["before"].median(), pairs["after"].median())
    assert block.notes[0].startswith("¹ Wilcoxon signed-rank test")
    t_plan = parse_plan(HEAD + '[[analyses]]\nkind = "paired"\nitem = "cd4_pct"\nbefore = "before MST"\n'
                               'after = "after MST"\nmethod = "t"\n')  # fmt: skip
    t_row = run_study(t_plan, records=records).document.sections[0].tables[0].data.iloc[0]
    assert t_row["p_value"] == pytest.approx(paired_test(pairs, "before", "after", method="t").p_value, rel=1e-12)


def test_longitudinal_analysis_is_the_mixed_model_over_visits():
    """The MSC factors were measured in the 19 MSC-arm patients only: by arm there is one group, so the model is
    value ~ visit, and the report says no comparison between groups was possible."""
    records = five_study_records()["msc_rct"]
    plan = parse_plan(HEAD + '[[analyses]]\nkind = "longitudinal"\nitem = "hgf"\nvisits = ["day 0", "day 1", '
                             '"day 7"]\nby = "arm"\n')  # fmt: skip
    block = run_study(plan, records=records).document.sections[0].tables[0]
    rows = item_rows(validate_records(records), "hgf")  # in the dictionary's unit (pg/mL), as the run stores it
    long = pd.DataFrame({"patient": rows["patient_id"], "value": rows["value"],
                         "visit": pd.Categorical(rows["visit"], categories=["day 0", "day 1", "day 7"])})  # fmt: skip
    expected = mixed_model(long, "value ~ visit", "patient").estimated_means(["visit"]).table
    assert block.data["visit"].astype(str).tolist() == ["day 0", "day 1", "day 7"]
    np.testing.assert_allclose(block.data["estimate"], expected["estimate"], rtol=1e-9)
    assert "no comparison between groups" in block.notes[2] and "19 patients, 57 measurements" in block.notes[-1]
    # one group: the change over visits is tested (the Wald test of the visit terms and Friedman's test) and the
    # singular fit said
    wide = long.pivot_table(index="patient", columns="visit", values="value", observed=False).dropna()
    friedman = sps.friedmanchisquare(*[wide[v] for v in ["day 0", "day 1", "day 7"]]).pvalue
    assert f"Friedman test on the 19 patients measured at every visit p {format_pvalue(friedman)}" in block.notes[1]
    assert any("singular fit" in n for n in block.notes)


def test_longitudinal_analysis_by_group_reports_the_interaction():
    """Two groups: value ~ visit × group, estimated means per visit and group, and the interaction's Wald test."""
    from allotrack.records import Records

    rng = np.random.default_rng(11)
    ids = [f"p{i}" for i in range(12)]
    patients = pd.DataFrame({"patient_id": ids, "sex": "F", "diagnosis": "AML", "diagnosis_date": "2020-01-01",
                             "arm": ["A"] * 6 + ["B"] * 6})  # fmt: skip
    visits = ["day 0", "day 1", "day 7"]
    obs = pd.DataFrame([{"patient_id": p, "item": "il6", "visit": v, "value": float(10 + 3 * k * (i >= 6)
                         + rng.normal(0, 1)), "unit": "pg/mL"} for i, p in enumerate(ids) for k, v in
                        enumerate(visits)])  # fmt: skip
    records = Records.from_frames(patients=patients, observations=obs)
    plan = parse_plan(HEAD + '[[analyses]]\nkind = "longitudinal"\nitem = "il6"\nvisits = ["day 0", "day 1", '
                             '"day 7"]\nby = "arm"\n')  # fmt: skip
    block = run_study(plan, records=records).document.sections[0].tables[0]
    assert len(block.data) == 6 and block.notes[1].startswith("Visit × group interaction")
    assert float(block.notes[1].split("p ")[-1].rstrip(".").lstrip("<")) <= 0.001  # B rises by 3 per visit


def test_trend_of_nk_counts_across_dose_levels_is_the_jonckheere_terpstra_test():
    from allotrack.stats.trend import jonckheere_terpstra

    records = five_study_records()["nk_cells"]
    plan = parse_plan(HEAD + '[[analyses]]\nkind = "trend"\nitem = "nk_abs"\nvisit = "day +30"\n'
                             'agent = "nk_infusion"\nlevels = ["DL1", "DL2", "DL3", "DL4"]\n')  # fmt: skip
    block = run_study(plan, records=records).document.sections[0].tables[0]
    typed = validate_records(records)
    given = typed["interventions"].sort_values(["patient_id", "start_date"]).drop_duplicates("patient_id")
    level = given.set_index("patient_id")["dose_level"]
    values = value_at_visit(typed, "nk_abs", "day +30")
    frame = pd.DataFrame({"level": level, "value": values}).dropna()
    expected = jonckheere_terpstra(frame["value"].to_numpy(), frame["level"].to_numpy(),
                                   order=["DL1", "DL2", "DL3", "DL4"])  # fmt: skip
    assert block.data.iloc[0]["p_value"] == expected.p_value and block.frame["Patients"].sum() == 25
    assert block.notes[1].startswith("¹ Jonckheere–Terpstra")


def test_trend_of_a_binary_outcome_is_the_cochran_armitage_test():
    from allotrack.records import Records
    from allotrack.stats.trend import cochran_armitage

    ids = [f"p{i}" for i in range(12)]
    levels = ["DL1"] * 4 + ["DL2"] * 4 + ["DL3"] * 4
    records = Records.from_frames(
        patients=pd.DataFrame({"patient_id": ids, "sex": "M", "diagnosis": "AML", "diagnosis_date": "2020-01-01"}),
        interventions=pd.DataFrame({"patient_id": ids, "agent": "nk_infusion", "start_date": "2020-02-01",
                                    "dose": 1.0, "dose_level": levels}),
        assessments=pd.DataFrame({"patient_id": ids, "item": "dlt", "visit": "day 28",
                                  "value_text": ["no"] * 4 + ["yes", "no", "no", "no"] + ["yes", "yes", "yes", "no"]}),
    )  # fmt: skip
    plan = parse_plan(HEAD + '[[analyses]]\nkind = "trend"\nitem = "dlt"\nvisit = "day 28"\nagent = "nk_infusion"\n'
                             'levels = ["DL1", "DL2", "DL3"]\nevent = ["1"]\n')  # fmt: skip
    block = run_study(plan, records=records).document.sections[0].tables[0]
    assert block.frame["Events"].tolist() == ["0 (0%)", "1 (25%)", "3 (75%)"]
    expected = cochran_armitage([0, 1, 3], [4, 4, 4], [1, 2, 3])
    assert block.data.iloc[0]["p_value"] == pytest.approx(expected.p_value, rel=1e-12)
    assert block.notes[1].startswith("¹ Cochran–Armitage")


def test_measurements_are_shown_without_exponents_and_with_the_dictionary_unit():
    from allotrack.study.analyses.repeated import _number

    assert [_number(x) for x in (1012.4, 883.2, 12.345, 0.4567, 0.00123)] == ["1,012", "883", "12.3", "0.457",
                                                                               "0.0012"]  # fmt: skip
    records = five_study_records()["msc_rct"]
    plan = parse_plan(HEAD + '[[analyses]]\nkind = "longitudinal"\nitem = "hgf"\nvisits = ["day 0", "day 1", '
                             '"day 7"]\n')  # fmt: skip
    frame = run_study(plan, records=records).document.sections[0].tables[0].frame
    assert list(frame.columns) == ["Visit", "Estimated mean (95% CI), pg/mL"]
    assert "e+" not in " ".join(frame.iloc[:, 1])
