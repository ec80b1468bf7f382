"""Study plans: the demo plan validates; every mistake is reported with its key path and line."""

from __future__ import annotations

import pytest

from allotrack.study.plan import PlanError, load_plan, parse_plan
from allotrack.study.run import demo_plan_path

GOOD = """
[study]
title = "t"

[data]
source = "demo"

[endpoints]
use = ["os", "cir"]

[[analyses]]
kind = "km"
endpoint = "os"

[[analyses]]
kind = "competing"
endpoint = "cir"
"""


def test_demo_plan_is_valid():
    plan = load_plan(demo_plan_path())
    assert plan.study.time_unit == "months" and plan.baseline is not None
    assert [a.kind for a in plan.analyses][:3] == ["response", "km", "km"]


def test_minimal_plan_parses_with_defaults():
    plan = parse_plan(GOOD)
    assert plan.endpoints.early_death_days == 28 and plan.groups == []


def _problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(PlanError) as err:
        parse_plan(text, "plan.toml")
    return err.value.problems


def test_unknown_endpoint_points_at_its_line():
    (line, key, msg), = _problems(GOOD.replace('use = ["os", "cir"]', 'use = ["os", "cir", "ovrall"]'))
    assert line == 9 and key == "endpoints.use" and "ovrall" in msg


def test_misspelt_key_in_the_second_analysis():
    problems = _problems(GOOD.replace('kind = "competing"\nendpoint = "cir"', 'kind = "competing"\nendpont = "cir"'))
    lines = {(line, key) for line, key, _ in problems}
    assert (17, "analyses[1].endpont") in lines  # the unknown key, on its own line
    assert (15, "analyses[1].endpoint") in lines  # the missing one: the [[analyses]] header


def test_every_problem_is_reported_at_once():
    text = GOOD.replace('title = "t"', 'title = "t"\ntime_unit = "weeks"').replace('kind = "km"', 'kind = "kaplan"')
    problems = _problems(text)
    assert {key for _, key, _ in problems} >= {"study.time_unit", "analyses[0]"}
    assert next(line for line, key, _ in problems if key == "study.time_unit") == 4


def test_analysis_on_an_undeclared_endpoint_and_bad_toml():
    (_, _, msg), = _problems(GOOD.replace('use = ["os", "cir"]', 'use = ["os"]'))
    assert "'cir'" in msg and "[endpoints] use" in msg
    (line, key, _), = _problems(GOOD.replace('title = "t"', 'title = "t'))
    assert line == 3 and key == "(file)"


def test_group_labels_must_match_the_cuts():
    text = GOOD + '\n[[groups]]\nname = "g"\nvariable = "age_at_diagnosis"\ncut = [60, 70]\nlabels = ["a", "b"]\n'
    (line, key, msg), = _problems(text)
    assert key == "groups[0]" and "3 labels" in msg and line == 19


def test_a_survival_analysis_of_an_endpoint_with_competing_events_is_refused_at_its_line():
    text = GOOD.replace('kind = "km"\nendpoint = "os"', 'kind = "km"\nendpoint = "cir"')
    (line, key, msg), = _problems(text)
    assert (line, key) == (13, "analyses[0].endpoint") and "'cir' has competing events" in msg
    td = GOOD + '\n[[analyses]]\nkind = "time_dependent_cox"\nendpoint = "cir"\n'
    (line, key, msg), = _problems(td)
    assert (line, key) == (21, "analyses[2].endpoint") and 'use kind = "competing"' in msg
    # landmark estimates of a competing endpoint are its cumulative incidence (tests/study/test_time_points.py)
    assert parse_plan(GOOD + '\n[[analyses]]\nkind = "landmarks"\nendpoints = ["os", "cir"]\nyears = [1]\n')
    cox = GOOD + '\n[[analyses]]\nkind = "cox"\nendpoint = "cir"\nunivariate = ["sex"]\n'
    assert [(k, "competing events" in m) for _, k, m in _problems(cox)] == [("analyses[2].endpoint", True)]


def test_an_undeclared_endpoint_and_an_unknown_grouping_point_at_their_lines():
    (line, key, msg), = _problems(GOOD.replace('use = ["os", "cir"]', 'use = ["os"]'))
    assert (line, key) == (17, "analyses[1].endpoint") and "'cir'" in msg and "[endpoints] use" in msg
    (line, key, msg), = _problems(GOOD.replace('endpoint = "os"', 'endpoint = "os"\nby = ["age_grp"]'))
    assert (line, key) == (14, "analyses[0].by") and "'age_grp'" in msg
    assert parse_plan(GOOD.replace('endpoint = "os"', 'endpoint = "os"\nby = ["sex_pair"]'))  # a dataset column


def test_data_files_that_do_not_exist_are_refused_before_anything_runs(tmp_path):
    (tmp_path / "patients.csv").write_text("patient_id\n")
    plan = tmp_path / "plan.toml"
    plan.write_text(GOOD.replace('source = "demo"', 'files = ["patients.csv", "deaths.csv"]\nmapping = "map.toml"'))
    with pytest.raises(PlanError) as err:
        load_plan(plan)
    assert [(line, key) for line, key, _ in err.value.problems] == [(6, "data.files[1]"), (7, "data.mapping")]
    assert "'deaths.csv' does not exist" in str(err.value)


def test_a_comparison_by_a_variable_known_only_later_is_refused():
    """Immortal time: courses received (and groups cut from them), response and GVHD grade are known only after
    the origin; survival, cumulative incidence and Cox comparisons by them are refused at their line."""
    groups = '\n[[groups]]\nname = "courses_group"\nvariable = "n_courses"\ncut = [3]\nlabels = ["1–3", "> 3"]\n'
    text = GOOD.replace('endpoint = "os"', 'endpoint = "os"\nby = ["courses_group"]') + groups
    (line, key, msg), = _problems(text)
    assert (line, key) == (14, "analyses[0].by") and "immortal-time bias" in msg and "time_dependent_cox" in msg
    cox = GOOD + '\n[[analyses]]\nkind = "cox"\nendpoint = "os"\nunivariate = ["sex", "cr"]\n'
    assert [(k, "'cr' is known only after" in m) for _, k, m in _problems(cox)] == [("analyses[2].univariate", True)]
    fine_gray = GOOD.replace('endpoint = "cir"', 'endpoint = "cir"\nfine_gray = ["max_agvhd_grade"]')
    assert [k for _, k, _ in _problems(fine_gray)] == ["analyses[1].fine_gray"]


DEFINED = GOOD.replace('use = ["os", "cir"]', 'use = ["os", "cir", "dfs_52w", "relapse_nk"]') + """
[[endpoints.define]]
name = "dfs_52w"
label = "Disease-free survival to week 52 (from randomisation)"
origin = "randomization"
events = ["relapse", "death"]
horizon_days = 364

[[endpoints.define]]
name = "relapse_nk"
label = "Relapse from the first NK-cell infusion"
origin = "first_infusion:NK"
events = ["relapse"]
competing = ["death_without_relapse"]
"""


def test_a_plan_defines_its_own_endpoints_with_origin_events_competing_events_and_horizon():
    plan = parse_plan(DEFINED)
    dfs = plan.endpoint("dfs_52w")
    assert (dfs.origin, dfs.events, dfs.horizon_days, dfs.is_competing) == ("randomization", ("relapse", "death"),
                                                                           364, False)  # fmt: skip
    assert plan.endpoint("relapse_nk").is_competing and plan.endpoint("os").origin == "diagnosis"
    bad = DEFINED.replace('origin = "first_infusion:NK"', 'origin = "first_nk"')
    (line, key, msg), = _problems(bad)
    second = [i + 1 for i, text in enumerate(bad.splitlines()) if text == "[[endpoints.define]]"][1]
    assert (line, key) == (second, "endpoints.define[1]") and "origin must be one of" in msg


def test_plan_defined_endpoints_are_derived_from_their_origin_with_the_horizon():
    """Worked by hand: p1 randomised on day 10 (enrolment record), relapse on day 200 -> 190 days, an event;
    p2 randomised on day 0, death on day 500 -> censored at the 364-day horizon; p3 NK infusion on day 20, relapse
    on day 80 -> 60 days, relapse; p4 without NK infusion -> undefined."""
    from datetime import date, timedelta

    import pandas as pd

    from allotrack.records import Records
    from allotrack.study.dataset import analysis_dataset

    d0 = date(2021, 1, 1)
    day = lambda k: d0 + timedelta(days=k)  # noqa: E731
    records = Records.from_frames(
        patients=pd.DataFrame({"patient_id": ["p1", "p2", "p3", "p4"], "sex": "F", "diagnosis": "AML",
                               "diagnosis_date": [day(0)] * 4, "randomization_date": [None, day(0), None, None]}),
        enrolments=pd.DataFrame({"patient_id": ["p1"], "study": ["RCT"], "randomisation_date": [day(10)]}),
        infusions=pd.DataFrame({"infusion_id": ["i3"], "patient_id": ["p3"], "date": [day(20)], "product": ["NK"]}),
        assessments=pd.DataFrame({"patient_id": ["p1", "p3"], "item": "response_eln", "date": [day(30), day(30)],
                                  "value_text": "CR"}),
        relapses=pd.DataFrame({"patient_id": ["p1", "p3"], "date": [day(200), day(80)]}),
        deaths=pd.DataFrame({"patient_id": ["p2"], "date": [day(500)]}),
        follow_up=pd.DataFrame({"patient_id": ["p1", "p2", "p3", "p4"],
                                "last_contact_date": [day(300), day(500), day(300), day(300)]}),
    )  # fmt: skip
    data = analysis_dataset(records, parse_plan(DEFINED)).set_index("patient_id")
    assert data.loc[["p1", "p2"], "dfs_52w_time"].tolist() == [190, 364]
    assert data.loc[["p1", "p2"], "dfs_52w_status"].tolist() == [1, 0]
    assert (data.loc["p3", "relapse_nk_time"], data.loc["p3", "relapse_nk_status"]) == (60, 1)
    assert pd.isna(data.loc["p4", "relapse_nk_time"])
