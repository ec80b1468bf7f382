"""Incremental validation of a form's new records (:func:`allotrack.records.validate_new.validate_new`) against
full validation: for random small stored patients (valid when imported, some made invalid afterwards) and random
new rows of any record table, the problems it reports are exactly the problems full validation of the stored
records plus the new rows reports and full validation of the stored records alone does not — with the default
dictionary and with one that has branching logic and a required attribute — and valid rows come out typed and
hashed as full validation types them. On SQLite and on the PostgreSQL test database."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from allotrack.records import Records, ValidationError
from allotrack.records.dictionary import default_dictionary
from allotrack.records.hashing import content_and_key_values
from allotrack.records.importing import describe
from allotrack.records.schema import TABLES
from allotrack.records.store import Store, load_records
from allotrack.records.validate import Problem, validate_records
from allotrack.records.validate_new import UnknownPatient, validate_new

TODAY = date(2021, 6, 1)
DIAGNOSIS = date(2020, 1, 1)
_IDS = itertools.count()


def _conditioned():
    base = default_dictionary()
    return base.with_items(
        dataclasses.replace(base.item("agvhd_grade"), condition="[cd20_status] <> 'negative'"),
        dataclasses.replace(base.item("anc"), condition="[plt] > 1"),  # read on the same day
        dataclasses.replace(base.item("prior_allo_hct"), required=True, condition="[cd20_status] = 'positive'"),
    )


DICTIONARIES = {"default": default_dictionary(), "conditioned": _conditioned()}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request, tmp_path_factory):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "web"))
    from webfixtures import empty_store_url

    url = empty_store_url(request.param, tmp_path_factory.mktemp("validate_new"))
    s = Store(url)
    s.init()
    yield s
    s.engine.dispose()


def _day(offset: int | None) -> str | None:
    return None if offset is None else (DIAGNOSIS + timedelta(days=offset)).isoformat()


@st.composite
def patients(draw):
    """A valid stored patient (and how to break it afterwards): courses, donors, infusions, assessments (GVHD
    grades and responses), observations, a relapse after a remission, an enrolment, a death and a last contact
    after every event."""
    pid = f"V{next(_IDS):06d}"
    courses = [{"course_id": f"{pid}-C{i}", "patient_id": pid, "number": i + 1, "kind": "induction",
                "start_date": _day(draw(st.integers(0, 60))), "end_date": None} for i in range(draw(st.integers(0, 2)))]
    donors = [{"donor_id": f"{pid}-D0", "patient_id": pid, "relation": "sibling"}] if draw(st.booleans()) else []
    infusions = [{"infusion_id": f"{pid}-I0", "patient_id": pid, "date": _day(draw(st.integers(0, 90))),
                  "product": "HSCT", "course_id": courses[0]["course_id"] if courses else None,
                  "donor_id": donors[0]["donor_id"] if donors else None}] if draw(st.booleans()) else []
    assessments = []
    for day in sorted(set(draw(st.lists(st.integers(5, 150), max_size=3)))):
        item, value = draw(st.sampled_from([("agvhd_grade", "2"), ("response_eln", "CR"), ("response_eln", "PR")]))
        assessments.append({"patient_id": pid, "item": item, "date": _day(day), "value_text": value})
    remission = [a["date"] for a in assessments if a["value_text"] == "CR"]
    relapses = ([{"patient_id": pid, "date": (date.fromisoformat(remission[0]) + timedelta(days=5)).isoformat()}]
                if remission and draw(st.booleans()) else [])  # fmt: skip
    lab_days = draw(st.lists(st.tuples(st.sampled_from(["anc", "plt"]), st.integers(0, 150),
                                       st.sampled_from([0.5, 3.0])), max_size=3, unique_by=lambda t: (t[0], t[1])))
    observations = [{"patient_id": pid, "item": item, "date": _day(day), "value": value, "unit": "10^9/L"}
                    for item, day, value in lab_days]
    enrolments = [{"patient_id": pid, "study": "S1", "enrolment_date": _day(10), "randomisation_date": _day(12)}] \
        if draw(st.booleans()) else []  # fmt: skip
    attributes = [{"patient_id": pid, "item": "cd20_status", "value_text": draw(st.sampled_from(
        ["positive", "negative"]))}] if draw(st.booleans()) else []  # fmt: skip
    death = draw(st.one_of(st.none(), st.integers(200, 250)))
    deaths = [{"patient_id": pid, "date": _day(death)}] if death is not None else []
    follow_up = [{"patient_id": pid, "last_contact_date": _day(260)}] if draw(st.booleans()) else []
    records = Records.from_frames(
        patients=pd.DataFrame([{"patient_id": pid, "sex": "F", "diagnosis": "AML", "diagnosis_date": _day(0)}]),
        **{name: pd.DataFrame(rows) for name, rows in (
            ("courses", courses), ("donors", donors), ("infusions", infusions), ("assessments", assessments),
            ("relapses", relapses), ("observations", observations), ("enrolments", enrolments),
            ("attributes", attributes), ("deaths", deaths), ("follow_up", follow_up)) if rows})  # fmt: skip
    broken = draw(st.sampled_from([None, "early_last_contact", "early_death"]))
    return pid, records, broken


DATES = st.one_of(st.none(), st.integers(-400, 320).map(_day),
                  st.sampled_from(["2021-07-01", "2020-13-45", "01/02/2020"]))  # future, no date, not ISO


def _new_rows(table: str, pid: str):
    """1-3 new rows of ``table`` with values valid and not: dates around the patient's, unknown items and codes,
    unknown courses and donors, numbers out of range, keys that repeat each other or a stored record."""
    ids = st.sampled_from([f"{pid}-C0", f"{pid}-C1", f"{pid}-D0", "nope", None])
    row = {
        "assessments": st.fixed_dictionaries({"item": st.sampled_from(["agvhd_grade", "response_eln", "no_such", "anc"]),
                                              "date": DATES, "value_text": st.sampled_from(["2", "CR", "9", None])}),
        "observations": st.fixed_dictionaries({"item": st.sampled_from(["anc", "plt"]), "date": DATES,
                                               "value": st.sampled_from(["1.5", "3.0", "-3", "abc", None]),
                                               "unit": st.sampled_from([None, "10^9/L", "mg"])}),
        "courses": st.fixed_dictionaries({"course_id": st.sampled_from([f"{pid}-C0", f"{pid}-C9"]),
                                          "number": st.sampled_from(["1", "0", "x"]),
                                          "kind": st.sampled_from(["induction", "bogus"]), "start_date": DATES,
                                          "end_date": DATES}),
        "infusions": st.fixed_dictionaries({"infusion_id": st.sampled_from([f"{pid}-I0", f"{pid}-I9"]), "date": DATES,
                                            "product": st.just("HSCT"), "course_id": ids, "donor_id": ids}),
        "interventions": st.fixed_dictionaries({"agent": st.sampled_from(["rituximab", "anc"]), "start_date": DATES,
                                                "end_date": DATES, "course_id": ids}),
        "relapses": st.fixed_dictionaries({"date": DATES, "kind": st.sampled_from([None, "hematologic", "progression"])}),
        "deaths": st.fixed_dictionaries({"date": DATES}),
        "follow_up": st.fixed_dictionaries({"last_contact_date": DATES}),
        "enrolments": st.fixed_dictionaries({"study": st.sampled_from(["S1", "S2"]), "enrolment_date": DATES,
                                             "randomisation_date": DATES}),
        "donors": st.fixed_dictionaries({"donor_id": st.sampled_from([f"{pid}-D0", f"{pid}-D9"]),
                                         "relation": st.sampled_from(["sibling", "aunt"])}),
        "attributes": st.fixed_dictionaries({"item": st.sampled_from(["cd20_status", "prior_allo_hct"]),
                                             "value_text": st.sampled_from(["positive", "negative", None]),
                                             "value": st.sampled_from([None, "1"])}),
        "adverse_events": st.fixed_dictionaries({"start_date": DATES, "term": st.just("rash"), "soc": st.just("skin"),
                                                 "grade": st.sampled_from(["3", "7"])}),
    }[table]  # fmt: skip
    return st.lists(row.map(lambda r: {"patient_id": pid, **r}), min_size=1, max_size=3)


def _problems(frames: dict[str, pd.DataFrame], dictionary) -> tuple[list[Problem], Records | None]:
    try:
        return [], validate_records(Records(frames), TODAY, dictionary)
    except ValidationError as err:
        return err.problems, None


def _full_validation(stored: Records, table: str, new: pd.DataFrame, dictionary) -> tuple[set[Problem], pd.DataFrame]:
    """What full validation of the stored records plus the new rows reports and of the stored records alone does
    not, new rows named by position among the new rows, stored records by natural key; and the typed new rows."""
    n = len(stored[table])

    def located(problems: list[Problem], with_new: bool) -> set[Problem]:
        out = set()
        for p in problems:
            if p.row is None:
                out.add(p)
            elif with_new and p.table == table and p.row >= n:
                out.add(Problem(table, p.row - n, p.column, p.value, p.rule))
            else:
                out.add(Problem(p.table, None, p.column, p.value, p.rule,
                                stored=describe(p.table, stored[p.table].iloc[p.row])))  # fmt: skip
        return out

    frames = {name: stored[name] for name in TABLES}
    both = {**frames, table: pd.concat([frames[table], new], ignore_index=True)}
    after, typed = _problems(both, dictionary)
    before, _ = _problems(frames, dictionary)
    rows = typed[table].iloc[n:].reset_index(drop=True) if typed is not None else None
    return located(after, True) - located(before, False), rows


def _store_patient(store: Store, records: Records, broken: str | None) -> None:
    store.import_records(records, user="t", centre="C1")
    pid = str(records["patients"]["patient_id"].iloc[0])
    with store.engine.begin() as conn:  # stored records made invalid after their import (deletions, edits)
        if broken == "early_last_contact":
            conn.execute(sa.text("UPDATE follow_up SET last_contact_date = :d WHERE patient_id = :p"),
                         {"d": DIAGNOSIS + timedelta(days=20), "p": pid})  # fmt: skip
        elif broken == "early_death":
            conn.execute(sa.text("UPDATE deaths SET date = :d WHERE patient_id = :p"),
                         {"d": DIAGNOSIS + timedelta(days=30), "p": pid})  # fmt: skip


@settings(max_examples=60, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking:
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # each draw stores a patient
@given(st.data(), patients(), st.sampled_from(sorted(t for t in TABLES if t not in ("patients", "populations",
                                                                                    "matched_sets"))),
       st.sampled_from(sorted(DICTIONARIES)))  # fmt: skip
def test_incremental_validation_reports_what_full_validation_reports(store, data, patient, table, dictionary_name):
    pid, records, broken = patient
    dictionary = DICTIONARIES[dictionary_name]
    _store_patient(store, records, broken)
    rows = data.draw(_new_rows(table, pid))
    new = pd.DataFrame([{c.name: r.get(c.name) for c in TABLES[table].columns} for r in rows])
    stored = load_records(store.engine, patient_id=pid)
    expected, typed = _full_validation(stored, table, new, dictionary)
    with store.engine.connect() as conn:
        try:
            checked = validate_new(conn, table, new, pid, dictionary, TODAY)
            found: set[Problem] = set()
        except ValidationError as err:
            found, checked = set(err.problems), None
    assert found == expected
    if checked is not None and typed is not None:  # typed and hashed as full validation types them
        content, key = content_and_key_values(typed, table)
        assert checked.content.tolist() == content.tolist()
        assert checked.key.tolist() == key.tolist()
        assert checked.centre == "C1"


def test_worked_example_new_event_after_the_last_contact_and_a_duplicate(store):
    """A new GVHD grade after the stored last contact breaks the follow-up record (named by its key); the same
    grade again is a duplicate of the stored one; a date before diagnosis by more than a year is refused."""
    pid = f"V{next(_IDS):06d}"
    records = Records.from_frames(
        patients=pd.DataFrame([{"patient_id": pid, "sex": "M", "diagnosis": "AML", "diagnosis_date": "2020-01-01"}]),
        assessments=pd.DataFrame([{"patient_id": pid, "item": "agvhd_grade", "date": "2020-02-01", "value_text": "1"}]),
        follow_up=pd.DataFrame([{"patient_id": pid, "last_contact_date": "2020-03-01"}]))  # fmt: skip
    store.import_records(records, user="t", centre="C1")

    def problems(rows: list[dict]) -> set[Problem]:
        frame = pd.DataFrame([{c.name: r.get(c.name) for c in TABLES["assessments"].columns} for r in rows])
        with store.engine.connect() as conn, pytest.raises(ValidationError) as err:
            validate_new(conn, "assessments", frame, pid, default_dictionary(), TODAY)
        return set(err.value.problems)

    grade = {"patient_id": pid, "item": "agvhd_grade", "value_text": "2"}
    assert problems([{**grade, "date": "2020-04-01"}]) == {Problem(
        "follow_up", None, "last_contact_date", "2020-03-01", "last contact before the patient's latest dated record",
        stored=f"patient_id '{pid}'")}  # fmt: skip
    assert problems([{**grade, "date": "2020-02-01"}]) == {Problem(
        "assessments", 0, None, None, "duplicate key: an earlier row has the same (patient_id, item, date, visit)")}
    assert problems([{**grade, "date": "2018-12-01"}]) == {Problem(
        "assessments", 0, "date", "2018-12-01", "more than a year before diagnosis")}
    with store.engine.connect() as conn:
        frame = pd.DataFrame([{c.name: r.get(c.name) for c in TABLES["assessments"].columns}
                              for r in [{**grade, "date": "2020-02-15"}]])  # fmt: skip
        assert validate_new(conn, "assessments", frame, pid, default_dictionary(), TODAY).rows["date"].tolist() == [
            pd.Timestamp("2020-02-15")]
        with pytest.raises(UnknownPatient):
            validate_new(conn, "assessments", frame, pid, default_dictionary(), TODAY, centre="C2")
