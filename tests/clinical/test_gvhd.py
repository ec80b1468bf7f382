"""MAGIC, Keystone and IBMTR acute GVHD rules and NIH 2014 chronic GVHD severity, from the guideline tables."""

from __future__ import annotations

from datetime import date
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allotrack.clinical import gvhd
from allotrack.clinical.gvhd import glucksberg_grade, ibmtr_index, magic_grade, magic_stage, maximum_grade
from allotrack.errors import InputError


@pytest.mark.parametrize(
    ("value", "unit", "stage"),
    [
        (1.99, "mg/dL", 0), (2.0, "mg/dL", 1), (3.0, "mg/dL", 1), (3.05, "mg/dL", 2), (3.1, "mg/dL", 2),
        (6.0, "mg/dL", 2), (6.05, "mg/dL", 3), (15.0, "mg/dL", 3), (15.1, "mg/dL", 4),
        (34.2, "umol/L", 1), (51.3, "umol/L", 1), (53.0, "umol/L", 2), (257.0, "µmol/L", 4),
    ],
)  # fmt: skip
def test_liver_bilirubin_boundaries(value, unit, stage):
    assert magic_stage("liver", bilirubin=value, unit=unit).stage == stage


@pytest.mark.parametrize(
    ("bsa", "bullae", "desq", "stage"),
    [(0, False, 0, 0), (10, False, 0, 1), (24.9, False, 0, 1), (25, False, 0, 2), (50, False, 0, 2),
     (50.1, False, 0, 3), (90, True, 0, 3), (90, False, 10, 3), (90, True, 5, 3), (90, True, 6, 4), (50, True, 10, 2)],
)  # fmt: skip
def test_skin_stages(bsa, bullae, desq, stage):
    assert magic_stage("skin", bsa_percent=bsa, bullae=bullae, desquamation_percent=desq).stage == stage


@pytest.mark.parametrize(
    ("kwargs", "stage"),
    [
        ({"stool_ml": 499, "weight_kg": 70}, 0), ({"stool_ml": 500, "weight_kg": 70}, 1),
        ({"stool_ml": 999, "weight_kg": 70}, 1), ({"stool_ml": 1000}, 2), ({"stool_ml": 1500}, 2),
        ({"stool_ml": 1501}, 3), ({"episodes": 2}, 0), ({"episodes": 3}, 1), ({"episodes": 4}, 1),
        ({"episodes": 5}, 2), ({"episodes": 7}, 2), ({"episodes": 8}, 3),
        # unmeasured episodes count 200 mL: 300 mL measured + 1 unmeasured = 500 mL
        ({"stool_ml": 300, "unmeasured_episodes": 1}, 1), ({"unmeasured_episodes": 8}, 3),
        # measured volume decides over the episode count
        ({"stool_ml": 400, "episodes": 9}, 0),
        # children (≤ 50 kg): mL/kg/day and episodes 4-6 / 7-10 / > 10
        ({"stool_ml": 190, "weight_kg": 20}, 0), ({"stool_ml": 200, "weight_kg": 20}, 1),
        ({"stool_ml": 600, "weight_kg": 20}, 2), ({"stool_ml": 620, "weight_kg": 20}, 3),
        ({"episodes": 3, "weight_kg": 20}, 0), ({"episodes": 4, "weight_kg": 20}, 1),
        ({"episodes": 10, "weight_kg": 20}, 2), ({"episodes": 11, "weight_kg": 20}, 3),
        ({"stool_ml": 100, "unmeasured_episodes": 3, "weight_kg": 10}, 1),  # 10 + 9 mL/kg = 19
        # stage 4 regardless of volume
        ({"stool_ml": 100, "severe_pain": True}, 4), ({"episodes": 0, "bloody_stool": True}, 4),
        ({"stool_ml": 100, "ileus": True}, 0),
    ],
)  # fmt: skip
def test_lower_gi_stages(kwargs, stage):
    assert magic_stage("lower_gi", **kwargs).stage == stage


def test_upper_gi_has_two_stages():
    assert magic_stage("upper_gi", persistent_symptoms=True).stage == 1
    assert magic_stage("upper_gi", persistent_symptoms=False).stage == 0
    with pytest.raises(InputError):
        magic_grade(upper_gi=2)


@pytest.mark.parametrize(
    ("stages", "grade"),
    [
        ({}, 0), ({"skin": 1}, 1), ({"skin": 2}, 1), ({"skin": 3}, 2), ({"skin": 4}, 4),
        ({"liver": 1}, 2), ({"liver": 2}, 3), ({"liver": 3}, 3), ({"liver": 4}, 4),
        ({"upper_gi": 1}, 2), ({"lower_gi": 1}, 2), ({"lower_gi": 2}, 3), ({"lower_gi": 3}, 3), ({"lower_gi": 4}, 4),
        ({"skin": 3, "upper_gi": 1}, 2), ({"skin": 2, "lower_gi": 1}, 2), ({"skin": 3, "liver": 2}, 3),
        ({"skin": 4, "lower_gi": 1}, 4), ({"upper_gi": 1, "liver": 1, "lower_gi": 1, "skin": 3}, 2),
    ],
)  # fmt: skip
def test_magic_grade_patterns(stages, grade):
    g = magic_grade(**stages)
    assert g.grade == grade and g.label == gvhd.ROMAN[grade] and "MAGIC" in g.system


@given(st.integers(0, 4), st.integers(0, 4), st.integers(0, 1), st.integers(0, 4))
def test_magic_grade_monotone_in_each_stage(skin, liver, upper, lower):
    base = magic_grade(skin, liver, upper, lower).grade
    for organ, top in (("skin", 4), ("liver", 4), ("upper_gi", 1), ("lower_gi", 4)):
        stages = {"skin": skin, "liver": liver, "upper_gi": upper, "lower_gi": lower}
        if stages[organ] < top:
            stages[organ] += 1
            assert magic_grade(**stages).grade >= base


def test_keystone_and_ibmtr():
    assert glucksberg_grade(skin=2).grade == 1
    assert glucksberg_grade(skin=3).grade == 2
    assert glucksberg_grade(gut=1).grade == 2
    assert glucksberg_grade(gut=4).grade == 3
    assert glucksberg_grade(gut=4, gut_stage4_is_grade_iv=True).grade == 4
    assert glucksberg_grade(liver=4).grade == 4
    assert [ibmtr_index(skin=1).label, ibmtr_index(skin=2).label, ibmtr_index(gut=1).label] == ["A", "B", "B"]
    assert [ibmtr_index(liver=3).label, ibmtr_index(skin=4).label, ibmtr_index().label] == ["C", "D", "0"]
    for s, l_, g in product(range(5), range(5), range(5)):
        assert ibmtr_index(s, l_, g).grade >= (1 if max(s, l_, g) else 0)


def test_maximum_grade_over_series():
    series = [
        (date(2024, 3, 10), magic_grade(skin=1)),
        (date(2024, 3, 3), magic_grade()),
        (date(2024, 3, 17), magic_grade(lower_gi=2)),
        (date(2024, 3, 24), magic_grade(liver=2)),
    ]
    best = maximum_grade(series)
    assert (best.grade, best.label, best.first_date, best.n_assessments) == (3, "III", date(2024, 3, 17), 4)
    assert maximum_grade([(date(2024, 1, 1), magic_grade())]).first_date is None


@pytest.mark.parametrize(
    ("baseline", "day28", "category"),
    [
        ({"skin": 3, "lower_gi": 2}, {}, "CR"),
        ({"skin": 3, "lower_gi": 2}, {"skin": 1, "lower_gi": 2}, "PR"),
        ({"skin": 3, "lower_gi": 2}, {"skin": 1, "lower_gi": 3}, "mixed"),
        ({"skin": 3}, {"skin": 3}, "no response"),
        ({"skin": 1}, {"skin": 1, "liver": 1}, "progression"),
    ],
)
def test_day28_response(baseline, day28, category):
    assert gvhd.day28_response(baseline, day28).category == category
    assert gvhd.day28_response(baseline, day28, new_systemic_therapy=True).category == "no response"


@pytest.mark.parametrize(
    ("scores", "severity"),
    [
        ({}, "none"), ({"skin": 1}, "mild"), ({"skin": 1, "mouth": 1}, "mild"),
        ({"skin": 1, "mouth": 1, "eyes": 1}, "moderate"), ({"mouth": 2}, "moderate"), ({"lungs": 1}, "moderate"),
        ({"skin": 3}, "severe"), ({"lungs": 2}, "severe"), ({"mouth": 1, "lungs": 3}, "severe"),
    ],
)  # fmt: skip
def test_nih_global_severity(scores, severity):
    assert gvhd.nih_cgvhd_severity(scores).severity == severity


def test_nih_excluded_organ():
    assert gvhd.nih_cgvhd_severity({"liver": 3, "mouth": 1}, excluded=["liver"]).severity == "mild"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: magic_stage("skin", bsa_percent=120), "skin bsa_percent must be ≤ 100"),
        (lambda: magic_stage("skin", bsa_percent=-1), "≥ 0"),
        (lambda: magic_stage("liver", bilirubin=-0.5), "liver bilirubin must be ≥ 0"),
        (lambda: magic_stage("liver", bilirubin=250, unit="mg/dL"), "check the unit"),
        (lambda: magic_stage("liver", bilirubin=2, unit="mmol/L"), "unit must be one of"),
        (lambda: magic_stage("lower_gi"), "needs stool_ml"),
        (lambda: magic_stage("heart", x=1), "organ must be one of"),
        (lambda: magic_stage("skin", area=3), "unexpected values"),
        (lambda: magic_grade(skin=5), "skin must be an integer stage"),
        (lambda: magic_grade(skin="3"), "skin must be an integer stage"),
        (lambda: gvhd.nih_cgvhd_severity({"kidney": 1}), "unknown NIH organ"),
        (lambda: maximum_grade([]), "at least one"),
    ],
)
def test_errors_name_field_and_value(call, message):
    with pytest.raises(InputError, match=message):
        call()


def _d(k):
    return date(2024, 5, 1) + __import__("datetime").timedelta(days=k)


@pytest.mark.parametrize(
    ("grades", "doses", "category"),
    [
        ([(0, 2), (2, 3)], [], "steroid-refractory"),  # progression within 3 days
        ([(0, 2), (3, 2), (7, 2)], [], "steroid-refractory"),  # no improvement by day 7
        ([(0, 3), (5, 2), (14, 1), (30, 1)], [], "steroid-refractory"),  # incomplete response at day 28
        ([(0, 3), (5, 2), (14, 0), (21, 2)], [(12, 1.0)], "steroid-dependent"),  # flare during taper
        ([(0, 3), (5, 1), (14, 0), (30, 0)], [(12, 1.0)], "steroid-sensitive"),
        ([(0, 0), (5, 0)], [], "not evaluable"),
    ],
)
def test_steroid_response(grades, doses, category):
    res = gvhd.steroid_response(_d(0), [(_d(k), g) for k, g in grades], [(_d(k), v) for k, v in doses])
    assert res.category == category


def test_steroid_windows_are_parameters():
    grades = [(_d(0), 2), (_d(4), 3)]
    assert gvhd.steroid_response(_d(0), grades).category == "not evaluable"  # day 4 is outside the 3-day window
    assert gvhd.steroid_response(_d(0), grades, progression_window_days=5).reason.startswith("progression")
