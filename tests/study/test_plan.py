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
