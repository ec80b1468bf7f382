"""The binary plan analysis on the MSC + basiliximab RCT's synthetic records: week-4 GVHD complete response
54/65 vs 36/65, as published, with the numbers of allotrack.stats.binary (checked against R there)."""

from __future__ import annotations

from functools import cache

import pandas as pd
import pytest

from allotrack.endpoints.measurements import value_at_visit
from allotrack.stats.binary import binary_counts
from allotrack.study.five_studies import five_study_records
from allotrack.study.plan import parse_plan
from allotrack.study.run import StudyResult, run_study

PLAN = """
[study]
title = "MSC + basiliximab for steroid-refractory acute GVHD"
time_unit = "days"

[data]
source = "demo"

[endpoints]
use = ["os"]

[[analyses]]
kind = "binary"
title = "GVHD complete response at week 4"
item = "gvhd_response"
visit = "week 4"
event = ["CR"]
by = "arm"
reference = "basiliximab"
test = "{test}"
"""


@cache
def _run(test: str = "chisq") -> StudyResult:
    return run_study(parse_plan(PLAN.replace("{test}", test)), records=five_study_records()["msc_rct"])


def test_week_4_complete_response_by_arm_is_the_published_result():
    block = _run().document.sections[0].tables[0]
    expected = binary_counts(54, 65, 36, 65, labels=("MSC + basiliximab", "basiliximab"))
    rows = dict(zip(block.frame[""], block.frame["Estimate (95% CI)"], strict=True))
    assert rows["MSC + basiliximab: 54/65"].startswith("83% (")
    assert rows["basiliximab: 36/65"].startswith("55% (")
    assert rows["Risk difference"] == "28% (12–42%)"
    assert rows["p-value¹"] == "<0.001"
    assert block.notes[0] == "¹ Pearson's chi-square test without continuity correction."
    data = block.data.set_index("measure")  # the unrounded values written beside the report
    assert data.loc["risk_difference", "estimate"] == pytest.approx(expected.risk_difference.estimate, rel=1e-12)
    assert data.loc["risk_difference", "lower"] == pytest.approx(expected.risk_difference.lower, rel=1e-12)
    assert data.loc["chisq_corrected", "p_value"] == pytest.approx(expected.chisq_corrected.p_value, rel=1e-12)


@pytest.mark.parametrize(("test", "name"), [("chisq_yates", "with Yates' continuity correction"),
                                            ("fisher", "Fisher's exact test")])  # fmt: skip
def test_the_test_shown_is_the_test_named(test, name):
    block = _run(test).document.sections[0].tables[0]
    assert name in block.notes[0]
    expected = binary_counts(54, 65, 36, 65)
    p = expected.chisq_corrected.p_value if test == "chisq_yates" else expected.fisher_p_value
    assert dict(zip(block.frame[""], block.frame["Estimate (95% CI)"], strict=True))["p-value¹"] == (
        f"{p:.3f}" if p >= 0.001 else "<0.001")
    assert "Newcombe" in _run(test).document.methods


def test_every_table_is_written_beside_the_report_with_unrounded_values(tmp_path):
    import json

    import pandas as pd

    from allotrack.study.run import write_report

    written = write_report(_run(), tmp_path, formats=("html",))
    index = json.loads(written["tables"].read_text())
    assert [(t["section"], t["unrounded"]) for t in index] == [("GVHD complete response at week 4", True)]
    table = pd.read_csv(tmp_path / "tables" / index[0]["file"]).set_index("measure")
    assert table.loc["risk_difference", "estimate"] == pytest.approx(18 / 65, rel=1e-12)
    assert index[0]["footnotes"][0].startswith("¹ Pearson's chi-square")


def test_populations_and_subsets_restrict_an_analysis_and_are_named():
    """The per-protocol population (125 of 130) and a subset by arm-independent dataset values; the report says
    which patients were analysed. An unknown population is refused naming the recorded ones."""
    from allotrack.errors import InputError

    records = five_study_records()["msc_rct"]
    pops = records["populations"]
    pp = set(pops[(pops["population"] == "per-protocol") & pops["included"].astype(str).isin(["yes", "True",
                                                                                                "true", "1"])]
             ["patient_id"])  # fmt: skip
    text = PLAN.replace("{test}", "chisq").replace('test = "chisq"', 'test = "chisq"\npopulation = "per-protocol"')
    section = run_study(parse_plan(text), records=records).document.sections[0]
    assert section.paragraphs[0] == f"Analysed: population per-protocol, n = {len(pp)}."
    data = section.tables[0].data.set_index("measure")
    assert data.loc["proportion_a", "estimate"] > 0  # computed on the population only
    rows = section.tables[0].frame[""].tolist()
    n_shown = sum(int(r.split("/")[1]) for r in rows[:2])
    assert n_shown <= len(pp) < 130
    female = PLAN.replace("{test}", "fisher").replace('test = "fisher"', "test = \"fisher\"\nsubset = \"[sex] = 'F'\"")
    section = run_study(parse_plan(female), records=records).document.sections[0]
    n_female = int((records["patients"]["sex"] == "F").sum())
    assert section.paragraphs[0] == f"Analysed: subset [sex] = 'F', n = {n_female}."
    with pytest.raises(InputError, match="analysis population 'mITT' has no patients"):
        run_study(parse_plan(text.replace("per-protocol", "mITT")), records=records)


def test_a_subset_naming_an_unknown_column_is_refused_at_its_line():
    from allotrack.study.plan import PlanError

    text = PLAN.replace("{test}", "chisq").replace('test = "chisq"', "test = \"chisq\"\nsubset = \"[dsa_neg] = '1'\"")
    with pytest.raises(PlanError) as err:
        parse_plan(text)
    ((line, key, msg),) = err.value.problems
    assert key == "analyses[0].subset" and "'dsa_neg'" in msg and line == text.splitlines().index(
        "subset = \"[dsa_neg] = '1'\"") + 1  # fmt: skip


def test_subgroups_have_an_odds_ratio_each_an_interaction_test_and_a_forest_plot():
    """By sex: each level's odds ratio is the conditional MLE of its own 2 × 2 table; the interaction p is the
    likelihood-ratio test between logistic models with and without arm × sex."""
    from scipy import stats as sps

    from allotrack.records.validate import validate_records
    from allotrack.stats.logistic import logistic_regression
    from allotrack.study.dataset import analysis_dataset

    records = five_study_records()["msc_rct"]
    text = PLAN.replace("{test}", "chisq").replace('test = "chisq"', 'test = "chisq"\nsubgroups = ["sex"]')
    plan = parse_plan(text)
    section = run_study(plan, records=records).document.sections[0]
    table = section.tables[1].frame.set_index("Subgroup")
    data = analysis_dataset(validate_records(records), plan)
    cr = value_at_visit(validate_records(records), "gvhd_response", "week 4")
    frame = data.assign(event=data["patient_id"].map(cr).eq("CR").astype(int)).dropna(subset=["sex"])
    frame = frame[data["patient_id"].isin(cr.index)]
    women = frame[frame["sex"] == "F"]
    counts = [(int(women.loc[women["arm"] == g, "event"].sum()), int((women["arm"] == g).sum()))
              for g in ("MSC + basiliximab", "basiliximab")]  # fmt: skip
    odds = binary_counts(*counts[0], *counts[1]).odds_ratio
    assert table.loc["Sex: F", "Odds ratio (95% CI)"] == f"{odds.estimate:.2f} ({odds.lower:.2f}–{odds.upper:.2f})"
    main = logistic_regression(frame, "event", formula="arm + sex")
    full = logistic_regression(frame, "event", formula="arm * sex")
    p = sps.chi2.sf(main.deviance - full.deviance, 1)
    from allotrack.report.format import format_pvalue

    assert table.loc["Sex: F", "Interaction p¹"] == format_pvalue(p)
    assert len(section.figures) == 1


def test_stratified_and_adjusted_odds_ratios():
    """By the randomisation stratum: the Cochran–Mantel–Haenszel test and Mantel–Haenszel odds ratio of
    allotrack.stats.binary.cmh_test; adjusted for sex: the arm's odds ratio of a logistic regression."""
    import numpy as np

    from allotrack.records.validate import validate_records
    from allotrack.stats.binary import cmh_test
    from allotrack.stats.logistic import logistic_regression
    from allotrack.study.dataset import analysis_dataset

    records = five_study_records()["msc_rct"]
    text = PLAN.replace("{test}", "chisq").replace('test = "chisq"',
                                                   'test = "chisq"\nstrata = "stratum"\nadjust = ["sex"]')  # fmt: skip
    plan = parse_plan(text)
    block = run_study(plan, records=records).document.sections[0].tables[1]
    typed = validate_records(records)
    data = analysis_dataset(typed, plan)
    cr = value_at_visit(typed, "gvhd_response", "week 4")
    frame = data[data["patient_id"].isin(cr.index)].assign(event=lambda f: f["patient_id"].map(cr).eq("CR")
                                                           .astype(int))  # fmt: skip
    arms = ("MSC + basiliximab", "basiliximab")
    layers = np.stack([np.array([[int(p.loc[p["arm"] == g, "event"].sum()),
                                  int((p["arm"] == g).sum() - p.loc[p["arm"] == g, "event"].sum())] for g in arms])
                       for _, p in frame.groupby("stratum")])  # fmt: skip
    cmh = cmh_test(layers)
    result = block.data.set_index("analysis")
    assert result.loc["cmh", "p_value"] == pytest.approx(cmh.chisq.p_value, rel=1e-12)
    assert result.loc["cmh", "odds_ratio"] == pytest.approx(cmh.common_odds_ratio.estimate, rel=1e-12)
    model = logistic_regression(frame.assign(arm=pd.Categorical(frame["arm"], categories=list(arms)[::-1])),
                                "event", formula="arm + sex")  # fmt: skip
    expected = model.summary.set_index("term").loc["arm[T.MSC + basiliximab]"]
    assert result.loc["logistic", "odds_ratio"] == pytest.approx(expected["odds_ratio"], rel=1e-10)
    assert result.loc["logistic", "lower"] == pytest.approx(expected["lower"], rel=1e-10)
