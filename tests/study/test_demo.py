"""The bundled demo study reproduces the published counts (shared/reference/studies.md) from dated records."""

from __future__ import annotations

from functools import cache

import pandas as pd
import pytest

import allotrack as at
from allotrack.records.dates import DAYS_PER_MONTH
from allotrack.records.validate import validate_records
from allotrack.report.table_one import table_one
from allotrack.study.dataset import analysis_dataset
from allotrack.study.demo import COHORT, PUBLISHED, demo_records
from allotrack.study.plan import load_plan
from allotrack.study.run import demo_plan_path

GROUPS = ("60–70", "> 70")


@cache
def _data() -> pd.DataFrame:
    return analysis_dataset(validate_records(demo_records()), load_plan(demo_plan_path()), validate=False)


def _by_group(column: str, value: object = 1) -> tuple[int, int]:
    d = _data()
    return tuple(int((d.loc[d["age_group"] == g, column] == value).sum()) for g in GROUPS)  # type: ignore[return-value]


def test_records_are_valid_and_deterministic():
    a, b = demo_records(), demo_records()
    for name in a.tables:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert len(validate_records(a)["patients"]) == len(COHORT) == 29


@pytest.mark.parametrize(("column", "value", "key"), [
    ("sex", "M", "male_patients"), ("donor_sex", "M", "male_donors"), ("unrelated_donor", 1, "unrelated"),
    ("hla_mismatches", 5, "hla_5_of_10"), ("courses_group", "> 3 courses", "more_than_3_courses"), ("cr", 1, "cr"),
    ("died", 1, "deaths"), ("early_death", 1, "early_deaths"), ("alive_1y", 1, "alive_1y"),
    ("alive_3y", 1, "alive_3y"), ("alive_5y", 1, "alive_5y"), ("leukaemia_free_1y", 1, "leukaemia_free_1y"),
    ("leukaemia_free_3y", 1, "leukaemia_free_3y"), ("leukaemia_free_5y", 1, "leukaemia_free_5y"),
    ("death_cause", "relapse", "relapse_deaths"), ("death_cause", "infection", "infection_deaths"),
    ("death_cause", "organ failure", "organ_failure_deaths"),
])  # fmt: skip
def test_published_counts_by_age_group(column, value, key):
    assert _by_group(column, value) == PUBLISHED[key]


def test_group_sizes_sex_pairs_and_donor_age():
    d = _data()
    assert tuple(int((d["age_group"] == g).sum()) for g in GROUPS) == PUBLISHED["n"]
    for g, pairs in zip(GROUPS, PUBLISHED["sex_pairs"], strict=True):
        counts = d.loc[d["age_group"] == g, "sex_pair"].value_counts().to_dict()
        assert {k: counts.get(k, 0) for k in pairs} == pairs
    for g, mean, sd in zip(GROUPS, PUBLISHED["donor_age_mean"], PUBLISHED["donor_age_sd"], strict=True):
        ages = d.loc[d["age_group"] == g, "donor_age"].astype(float)
        assert round(ages.mean(), 2) == mean and round(ages.std(ddof=1), 2) == sd


def test_median_overall_survival_and_follow_up():
    d = _data()
    months = d["os_time"].astype(float) / DAYS_PER_MONTH
    os_fit = at.kaplan_meier(pd.DataFrame({"t": months, "e": d["os_status"].astype(int)}), "t", "e")
    assert round(float(os_fit.median()["median"].iloc[0]), 1) == PUBLISHED["median_os_months"]
    reverse = at.kaplan_meier(pd.DataFrame({"t": months, "e": 1 - d["os_status"].astype(int)}), "t", "e")
    assert round(float(reverse.median()["median"].iloc[0]), 1) == PUBLISHED["median_follow_up_months"]


def test_baseline_table_shows_the_published_counts():
    plan = load_plan(demo_plan_path())
    b = plan.baseline
    t = table_one(_data(), by=b.by, variables=b.variables, labels=b.labels, normal=b.normal, levels=b.levels,
                  digits=b.digits)  # fmt: skip
    rows = t.table.set_index("Characteristic")
    assert rows.loc["Complete remission"].iloc[1:3].tolist() == ["18 (90%)", "6 (67%)"]
    assert rows.loc["Alive at 3 years"].iloc[1:3].tolist() == ["13 (65%)", "0 (0%)"]
    assert rows.loc["Donor age, years"].iloc[1:3].tolist() == ["35.75 (4.52)", "43.78 (5.85)"]
    assert rows.loc["Unrelated donor"].iloc[1:3].tolist() == ["5 (25%)", "0 (0%)"]
