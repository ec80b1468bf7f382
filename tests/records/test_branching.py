"""Conditional items (REDCap branching logic) and required attributes: the logic itself, worked by hand and as a
property, and its effect on imports (an item recorded where its condition is false is refused with the item and
the condition named; stored values count)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1] / "endpoints"))
sys.path.insert(0, str(Path(__file__).parent))
from test_derive import history
from test_store_import import store  # noqa: F401  (the SQLite + PostgreSQL store fixture)

from allotrack.records import Records, ValidationError
from allotrack.records.branching import UnsupportedLogic, holds, items_of, parse
from allotrack.records.dictionary import default_dictionary
from allotrack.records.validate import validate_records


@pytest.mark.parametrize(("logic", "values", "expected"), [
    ("[cd20_status] = 'positive'", {"cd20_status": "positive"}, True),
    ("[cd20_status] = 'positive'", {"cd20_status": "negative"}, False),
    ("[cd20_status] = 'positive'", {}, False),  # missing: REDCap hides the field
    ("[cd20_status] <> 'positive'", {}, False),
    ("[cd20_status] = ''", {}, True),
    ("[cd20_status] <> ''", {"cd20_status": "negative"}, True),
    ("[prior_allo_hct] >= 1", {"prior_allo_hct": 2.0}, True),
    ("[prior_allo_hct] >= '1'", {"prior_allo_hct": 0.0}, False),
    ("[dlt] = '1'", {"dlt": 1.0}, True),  # yes/no items are stored as 1/0
    ("[a] = '1' or [b] = '1' and [c] = '1'", {"a": "1"}, True),  # and binds tighter than or
    ("([a] = '1' or [b] = '1') and [c] = '1'", {"a": "1"}, False),
    ("[A] = 'x' AND [b] != 'y'", {"a": "x", "b": "z"}, True),
])  # fmt: skip
def test_branching_logic_worked_by_hand(logic, values, expected):
    assert holds(parse(logic), values) is expected


def test_the_items_a_condition_reads():
    assert items_of(parse("([a] = '1' or [b] > 2) and [c] <> ''")) == {"a", "b", "c"}


@pytest.mark.parametrize("logic", ["[event_1_arm_1][x] = '1'", "[x(2)] = '1'", "datediff([d1], [d2], 'd') > 7",
                                   "[x] = '1' and", "([x] = '1'", "[x] == '1'"])  # fmt: skip
def test_logic_outside_the_subset_is_refused(logic):
    with pytest.raises(UnsupportedLogic):
        parse(logic)


@given(st.one_of(st.none(), st.floats(-100, 100, allow_nan=False)), st.floats(-100, 100, allow_nan=False),
       st.sampled_from(["=", "<>", ">", ">=", "<", "<="]))  # fmt: skip
def test_numeric_comparisons_agree_with_python(given_value, wanted, op):
    import operator

    python = {"=": operator.eq, "<>": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt,
              "<=": operator.le}[op]  # fmt: skip
    text = f"{wanted:.4f}"  # REDCap writes plain decimals
    expected = False if given_value is None else python(given_value, float(text))
    assert holds(parse(f"[x] {op} {text}"), {"x": given_value}) is expected


def _dictionary(**conditions: str | None):
    base = default_dictionary()
    changed = [dataclasses.replace(base.item(code), condition=logic) for code, logic in conditions.items()]
    return base.with_items(*changed)


def _rituximab(*patients: str) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": list(patients), "agent": "rituximab", "start_date": "2020-02-01",
                         "dose": 375.0, "unit": "mg/m2"})  # fmt: skip


def _cd20(**status: str) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": list(status), "item": "cd20_status", "value_text": list(status.values())})


def _with(**frames: pd.DataFrame) -> Records:
    base = dict(history().tables)
    return Records({**base, **frames})


def test_a_conditional_intervention_is_refused_where_its_condition_is_false():
    dictionary = _dictionary(rituximab="[cd20_status] = 'positive'")
    records = _with(attributes=_cd20(p1="positive", p2="negative"), interventions=_rituximab("p1", "p2", "p3"))
    with pytest.raises(ValidationError) as info:
        validate_records(records, dictionary=dictionary)
    assert [str(p) for p in info.value.problems] == [
        f"interventions, row {r}, column 'agent' (value 'rituximab'): item 'rituximab' is recorded only when "
        "[cd20_status] = 'positive' (branching logic), which is not so for this patient" for r in (2, 3)]  # fmt: skip
    ok = _with(attributes=_cd20(p1="positive"), interventions=_rituximab("p1"))
    assert len(validate_records(ok, dictionary=dictionary)["interventions"]) == 1


def test_a_condition_reads_the_same_day_of_the_same_kind():
    """An organ stage recorded only with an overall grade on the same day."""
    dictionary = _dictionary(agvhd_skin_stage="[agvhd_grade] <> ''")
    stages = pd.DataFrame({"patient_id": ["p2", "p2"], "item": "agvhd_skin_stage",
                           "date": ["2020-03-01", "2020-03-05"], "value_text": ["2", "3"]})  # fmt: skip
    with pytest.raises(ValidationError) as info:  # history() has p2's grades on 2020-03-01 and 2020-03-11
        validate_records(Records.from_frames(**{**history().tables, "assessments": pd.concat(
            [stages, history()["assessments"]], ignore_index=True)}), dictionary=dictionary)  # fmt: skip
    assert [(p.table, p.row) for p in info.value.problems] == [("assessments", 1)]  # the 2020-03-05 stage


def test_a_required_attribute_is_required_where_its_condition_holds():
    base = default_dictionary()
    required = dataclasses.replace(base.item("prior_allo_hct"), required=True,
                                   condition="[cd20_status] <> 'not_tested'")  # fmt: skip
    dictionary = base.with_items(required)
    attributes = pd.concat([_cd20(p1="positive", p2="not_tested", p3="negative"), pd.DataFrame(
        {"patient_id": ["p3"], "item": ["prior_allo_hct"], "value": [1.0]})], ignore_index=True)  # fmt: skip
    with pytest.raises(ValidationError) as info:
        validate_records(_with(attributes=attributes), dictionary=dictionary)
    # p1 was tested and has no prior transplants recorded; p2 was not tested; p3 has them; p4 and p5 have no CD20
    # status, so the condition is false (a comparison with a missing value) and nothing is required
    assert [str(p) for p in info.value.problems] == [
        "patients, row 1: required attribute 'prior_allo_hct' is missing for this patient"]


def test_logic_outside_the_subset_is_said_and_a_store_will_not_save_it(store):  # noqa: F811
    from allotrack.errors import InputError
    from allotrack.records.validate import type_tables
    from allotrack.records.validate_items import check_conditions

    dictionary = _dictionary(rituximab="datediff([a], [b], 'd') > 7")
    typed, _ = type_tables(_with(interventions=_rituximab("p1")))
    (warning,) = check_conditions(typed, dictionary).warnings
    assert warning.startswith("the condition of item 'rituximab' was not checked: cannot read \"datediff(")
    with pytest.raises(InputError, match="the condition of 'rituximab' cannot be checked"):
        store.save_dictionary(dictionary, user="dm", reason="test")


def test_stored_values_satisfy_a_condition_of_a_later_import(store):  # noqa: F811
    store.save_dictionary(_dictionary(rituximab="[cd20_status] = 'positive'"), user="dm", reason="IMAK")
    store.import_records(_with(attributes=_cd20(p1="positive", p2="negative")))
    assert store.import_records(Records.from_frames(interventions=_rituximab("p1"))).added == {"interventions": 1}
    with pytest.raises(ValidationError) as info:
        store.import_records(Records.from_frames(interventions=_rituximab("p2")))
    assert [(p.table, p.row, p.column) for p in info.value.problems] == [("interventions", 0, "agent")]
