"""ADTTE export and de-identified copies."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from test_derive import history

from allotrack.endpoints import derive_endpoints
from allotrack.endpoints.adtte import adtte
from allotrack.errors import InputError
from allotrack.records import Records, validate_records
from allotrack.records.deidentify import deidentify

TODAY = date(2026, 1, 1)


def test_adtte_rows():
    derived = derive_endpoints(history(), endpoints=("os", "lfs", "cir", "nrm"), today=TODAY)
    a = adtte(derived)
    p1 = a[a["USUBJID"] == "p1"].set_index("PARAMCD")
    assert list(p1.index) == ["CIR", "LFS", "NRM", "OS"]
    assert (p1.loc["CIR", "CNSR"], p1.loc["CIR", "AVAL"], p1.loc["CIR", "EVNTDESC"]) == (0, 170.0, "relapse")
    assert (p1.loc["NRM", "CNSR"], p1.loc["NRM", "EVNTDESC"]) == (2, "competing event: relapse")
    assert str(p1.loc["OS", "STARTDT"]) == "2020-01-01" and str(p1.loc["OS", "ADT"]) == "2020-10-27"
    p3 = a[a["USUBJID"] == "p3"].set_index("PARAMCD")
    assert (p3.loc["OS", "CNSR"], p3.loc["OS", "CNSDTDSC"], p3.loc["OS", "SRCDOM"]) == (
        1, "follow_up.last_contact_date", "FU")  # fmt: skip
    assert "LFS" not in set(a[a["USUBJID"] == "p4"]["PARAMCD"])  # undefined: no remission
    assert adtte(derived, aval_plus_one=True)["AVAL"].sub(a["AVAL"]).eq(1).all()


def test_deidentified_copy_keeps_intervals_and_hides_dates_and_ids():
    recs = validate_records(history(), today=TODAY)
    out = deidentify(recs, secret="a-long-enough-secret-key")
    before = derive_endpoints(recs, endpoints=("os", "lfs", "cir", "nrm"), today=TODAY).data
    after = derive_endpoints(out.records, endpoints=("os", "lfs", "cir", "nrm"), today=TODAY).data
    key = out.key.set_index("study_code")["patient_id"]
    after["patient_id"] = after["patient_id"].map(key)
    cols = ["os_time", "os_status", "lfs_time", "cir_time", "cir_status", "nrm_time", "nrm_status"]
    pd.testing.assert_frame_equal(before.set_index("patient_id")[cols], after.set_index("patient_id")[cols])
    deid = out.records
    assert not set(deid["patients"]["patient_id"]) & set(recs["patients"]["patient_id"])
    assert "birth_date" not in deid["patients"].columns and "cause" not in deid["deaths"].columns
    shifted = deid["patients"]["diagnosis_date"].iloc[0] - recs["patients"]["diagnosis_date"].iloc[0]
    assert abs(shifted.days) <= 182 and set(out.key["shift_days"]) != {0}
    # the same secret gives the same shifts; another secret different ones
    again = deidentify(recs, secret="a-long-enough-secret-key").key["shift_days"]
    assert list(again) == list(out.key["shift_days"])
    with pytest.raises(InputError, match="at least 16"):
        deidentify(recs, secret="short")


def test_ages_above_89_are_grouped():
    recs = history()
    pats = recs["patients"].assign(birth_date=[date(1925, 1, 1), date(1931, 6, 1), date(1950, 1, 1), date(1940, 1, 1),
                                               date(1960, 1, 1)])  # fmt: skip
    out = deidentify(Records({**recs.tables, "patients": pats}), secret="another-long-secret-123")
    assert list(out.records["patients"]["age_at_diagnosis"]) == ["90+", 88, 70, 80, 60]


def test_deidentified_dictionary_kinds_shift_date_items_and_drop_free_text():
    """A date item's value moves with the patient's other dates; a text item's value and an assessment's raw
    inputs (which may hold anything typed at the bedside) are dropped; coded and numeric values stay."""
    from allotrack.records.dictionary import Item, default_dictionary

    dictionary = default_dictionary().with_items(
        Item("prior_hct_date", "Date of the prior transplant", "date", "attribute"),
        Item("comment", "Comment", "text", "attribute"))  # fmt: skip
    attributes = pd.DataFrame({"patient_id": ["p1", "p1", "p1"], "item": ["prior_hct_date", "comment", "cd20_status"],
                               "value_text": ["2019-05-01", "seen by Dr Smith", "positive"]})  # fmt: skip
    assessments = history()["assessments"].assign(inputs='{"note": "bed 12"}')
    recs = validate_records(Records({**history().tables, "attributes": attributes, "assessments": assessments}),
                            today=TODAY, dictionary=dictionary)  # fmt: skip
    out = deidentify(recs, secret="a-long-enough-secret-key", dictionary=dictionary)
    shift = out.key.set_index("patient_id").loc["p1", "shift_days"]
    values = out.records["attributes"].set_index("item")["value_text"]
    assert values["prior_hct_date"] == (pd.Timestamp("2019-05-01") + pd.Timedelta(days=int(shift))).strftime("%Y-%m-%d")
    assert values["comment"] is None and values["cd20_status"] == "positive"
    assert "inputs" not in out.records["assessments"].columns
    assert out.records["assessments"]["value_text"].tolist() == recs["assessments"]["value_text"].tolist()
