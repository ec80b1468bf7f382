"""The binary plan analysis on the MSC + basiliximab RCT's synthetic records: week-4 GVHD complete response
54/65 vs 36/65, as published, with the numbers of allotrack.stats.binary (checked against R there)."""

from __future__ import annotations

from functools import cache

import pytest

from allotrack.stats.binary import binary_outcome
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
    expected = binary_outcome(54, 65, 36, 65, labels=("MSC + basiliximab", "basiliximab"))
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
    expected = binary_outcome(54, 65, 36, 65)
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
