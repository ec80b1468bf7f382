"""The bundled plans of two reference studies run end to end on their synthetic records and report their
published primary results; `allotrack plan check` accepts them and `allotrack run` writes their reports."""

from __future__ import annotations

from functools import cache

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
    assert [t.caption for t in primary.tables][1:] == ["MSC + basiliximab vs basiliximab: stratified and adjusted "
                                                        "odds ratios [population ITT, n = 130]",
                                                        "Subgroups: MSC + basiliximab vs basiliximab [population ITT, "
                                                        "n = 130]"]  # fmt: skip
    pp = _section("msc_rct", "GVHD complete response at week 4, per protocol")
    assert pp.paragraphs[0] == "Analysed: population per-protocol, n = 125."
    assert "Overall survival from randomisation from randomization" not in _run("msc_rct").document.methods
    assert "Overall survival from randomisation, to week 52 from randomization" in _run("msc_rct").document.methods


def test_the_myeloma_plan_compares_t_cells_before_and_after_mst():
    section = _section("myeloma_mst", "CD4⁺ T cells before and after MST")
    assert section.tables[0].data.iloc[0]["pairs"] == 14
    assert {s.title for s in _run("myeloma_mst").document.sections} >= {"Overall survival",
                                                                        "Progression-free survival (from the first course)"}


def test_plan_check_and_run_accept_the_example_plans(tmp_path):
    runner = CliRunner()
    for code in ("msc_rct", "myeloma_mst"):
        checked = runner.invoke(app, ["plan", "check", str(example_plan_path(code))])
        assert checked.exit_code == 0, checked.output
    ran = runner.invoke(app, ["run", str(example_plan_path("myeloma_mst")), "--out", str(tmp_path), "--format",
                              "html"])  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "report.html").exists() and (tmp_path / "tables" / "index.json").exists()
