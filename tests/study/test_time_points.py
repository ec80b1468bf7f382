"""Tables at chosen time points for every endpoint kind: survival (Kaplan–Meier) or, with competing events, the
cumulative incidence (Aalen–Johansen), from the analysis's ``times``/``years``, the endpoint's ``time_points`` or
the plan's; checked against the estimators called directly."""

from __future__ import annotations

import numpy as np
import pytest

import allotrack as at
from allotrack.study.plan import parse_plan
from allotrack.study.run import run_study

PLAN = """
[study]
title = "t"
time_unit = "months"
[data]
source = "demo"
[endpoints]
use = ["os", "cir", "os_c1"]
time_points = [6, 24]
[[endpoints.define]]
name = "os_c1"
label = "Survival from the first course"
origin = "first_course"
events = ["death"]
time_points = [12, 36, 1000]
[[analyses]]
kind = "landmarks"
endpoints = ["os", "cir"]
times = [24, 12]
by = "sex"
[[analyses]]
kind = "km"
endpoint = "os_c1"
[[analyses]]
kind = "competing"
endpoint = "cir"
by = ["sex"]
"""


@pytest.fixture(scope="module")
def result():
    return run_study(parse_plan(PLAN))


def test_landmarks_show_cumulative_incidence_for_a_competing_endpoint_in_the_plans_order(result):
    table = result.document.sections[0].tables[0]
    assert list(table.frame.columns[-2:]) == ["24 months", "12 months"]
    data = result.dataset.dropna(subset=["cir_time"])
    sub = data[data["sex"] == "F"].assign(time=lambda f: f["cir_time"] / 30.4375, status=lambda f: f["cir_status"])
    cif = at.cumulative_incidence(sub, "time", "status").at([12, 24])
    expected = cif[cif["cause"] == 1].set_index("time")["estimate"]
    got = table.data[(table.data["endpoint"] == "cir") & (table.data["group"] == "Sex: F")].set_index("time")
    assert list(got["estimate_of"]) == ["cumulative incidence"] * 2
    assert got.loc[24.0, "estimate"] == pytest.approx(expected[24.0], rel=1e-12)
    assert got.loc[12.0, "estimate"] == pytest.approx(expected[12.0], rel=1e-12)
    os_all = result.dataset.assign(time=lambda f: f["os_time"] / 30.4375, status=lambda f: f["os_status"])
    km = at.kaplan_meier(os_all, "time", "status").at([24.0])["survival"].iloc[0]
    row = table.data[(table.data["endpoint"] == "os") & (table.data["group"] == "All patients")]
    assert row.loc[row["time"] == 24.0, "estimate"].iloc[0] == pytest.approx(km, rel=1e-12)
    assert row["estimate_of"].iloc[0] == "survival"


def test_km_table_shows_the_endpoints_own_time_points_and_nothing_beyond_follow_up(result):
    table = result.document.sections[1].tables[0]
    assert [c for c in table.frame.columns if "months" in c and "Median" not in c] == \
        ["12 months", "36 months", "1000 months"]  # fmt: skip
    assert table.frame["1000 months"].iloc[0] == "—"  # beyond the last follow-up
    assert "(" in table.frame["12 months"].iloc[0]


def test_competing_table_uses_the_plans_time_points(result):
    table = result.document.sections[2].tables[0]
    assert [c for c in table.frame.columns if c.endswith("months")] == ["6 months", "24 months"]
    data = result.dataset.dropna(subset=["cir_time"])
    sub = data[data["sex"] == "M"].assign(time=lambda f: f["cir_time"] / 30.4375, status=lambda f: f["cir_status"])
    cif = at.cumulative_incidence(sub, "time", "status").at([6.0])
    est = float(cif[cif["cause"] == 1]["estimate"].iloc[0])
    cell = table.frame.loc[table.frame["Group"] == "Sex: M", "6 months"].iloc[0]
    assert cell.startswith(f"{est * 100:.0f}%") or cell.startswith(f"{est * 100:.1f}%")


def test_without_declared_points_landmarks_default_to_1_3_5_years_and_km_shows_medians_only():
    plan = parse_plan(PLAN.replace("time_points = [6, 24]\n", "").replace("time_points = [12, 36, 1000]\n", "")
                      .replace("times = [24, 12]\n", ""))  # fmt: skip
    result = run_study(plan)
    landmark, km = result.document.sections[0].tables[0], result.document.sections[1].tables[0]
    assert [c for c in landmark.frame.columns if "year" in c] == ["1 year", "3 years", "5 years"]
    assert np.allclose(sorted(set(landmark.data["time"])), [12, 36, 60])
    assert not any("months" in c and "Median" not in c for c in km.frame.columns)
