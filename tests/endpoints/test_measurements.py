"""Item values for the analysis dataset, worked by hand and against a brute-force search."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from allotrack.endpoints.measurements import Window, first_dates, value_at_visit, value_in_window
from allotrack.errors import InputError
from allotrack.records import Records


def _records() -> Records:
    obs = pd.DataFrame({
        "patient_id": ["p1", "p1", "p2", "p1", "p1", "p1", "p3", "p3"],
        "item": ["il6", "il6", "il6", "nk_abs", "nk_abs", "nk_abs", "nk_abs", "nk_abs"],
        "visit": ["day 0", "day 7", "day 7", None, None, None, None, None],
        "date": [None, None, None, "2020-02-25", "2020-03-03", "2020-03-10", "2020-02-29", "2020-03-04"],
        "value": [10.0, 50.0, 30.0, 100.0, 150.0, 200.0, 80.0, 90.0],
    })  # fmt: skip
    given = pd.DataFrame({"patient_id": ["p1", "p3", "p1"], "agent": ["nk_infusion", "nk_infusion", "basiliximab"],
                          "start_date": pd.to_datetime(["2020-02-01", "2020-02-01", "2020-01-15"]), "dose": 1.0})
    gvhd = pd.DataFrame({"patient_id": ["p1", "p2"], "item": "gvhd_response", "visit": "week 4",
                         "value_text": ["CR", "PR"]})  # fmt: skip
    return Records({"observations": obs.assign(date=pd.to_datetime(obs["date"])), "interventions": given,
                    "assessments": gvhd})  # fmt: skip


def test_values_at_a_named_visit():
    assert value_at_visit(_records(), "il6", "day 7").to_dict() == {"p1": 50.0, "p2": 30.0}
    assert value_at_visit(_records(), "gvhd_response", "week 4").to_dict() == {"p1": "CR", "p2": "PR"}


def test_value_nearest_the_target_day_in_a_window_from_each_patients_origin():
    records = _records()
    nk = records["interventions"]
    origin = first_dates(records, "interventions", "start_date", nk["agent"] == "nk_infusion")
    assert origin.to_dict() == {"p1": pd.Timestamp("2020-02-01"), "p3": pd.Timestamp("2020-02-01")}
    # p1: days 24, 31, 38 -> 31 is nearest day 30; p3: days 28 and 32 are equally near -> the earlier
    assert value_in_window(records, "nk_abs", origin, Window(23, 37, target=30)).to_dict() == {"p1": 150.0,
                                                                                              "p3": 80.0}
    assert value_in_window(records, "nk_abs", origin, Window(35, 40)).to_dict() == {"p1": 200.0}


def test_unknown_items_two_values_at_one_visit_and_reversed_windows_are_refused():
    with pytest.raises(InputError, match="item 'il7' is not in the data dictionary"):
        value_at_visit(_records(), "il7", "day 7")
    twice = Records({"observations": pd.DataFrame({"patient_id": ["p1", "p1"], "item": "il6", "visit": "day 7",
                                                   "date": pd.to_datetime(["2020-01-01", "2020-01-02"]),
                                                   "value": [1.0, 2.0]})})  # fmt: skip
    with pytest.raises(InputError, match="more than one value at visit 'day 7'"):
        value_at_visit(twice, "il6", "day 7")
    with pytest.raises(InputError, match="must not be after its end"):
        Window(10, 5)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(-20, 60), st.floats(0, 1000)),
                max_size=40),
       st.integers(-10, 30), st.integers(0, 30), st.integers(-10, 50))  # fmt: skip
def test_window_value_is_the_brute_force_nearest(rows, start, width, target):
    base = pd.Timestamp("2021-01-01")
    obs = pd.DataFrame(rows, columns=["patient_id", "day", "value"]).drop_duplicates(["patient_id", "day"])
    records = Records({"observations": pd.DataFrame({
        "patient_id": obs["patient_id"], "item": "anc", "value": obs["value"],
        "date": base + pd.to_timedelta(obs["day"], unit="D")})})  # fmt: skip
    origin = pd.Series(base, index=["a", "b", "c"])
    got = value_in_window(records, "anc", origin, Window(start, start + width, target=target)).to_dict()
    expected = {}
    for pid, group in obs.groupby("patient_id"):
        inside = [(abs(d - target), d, v) for d, v in zip(group["day"], group["value"], strict=True)
                  if start <= d <= start + width]  # fmt: skip
        if inside:
            expected[pid] = min(inside)[2]
    assert got == expected
