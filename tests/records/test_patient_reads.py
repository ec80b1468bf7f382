"""One patient's records are read through the indexes: every query that loading a patient, checking a form's new
records or a page's data-access-group filter sends names current rows as ``deleted = 0`` — the predicate of the
partial indexes on ``(patient_id, key_hash)`` — so SQLite's plan searches the index instead of scanning the whole
table (``deleted IS 0`` matches no partial index: every patient page and every save then read every row of every
record table). Checked on SQLite's query plans, which do not depend on table sizes."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import sqlalchemy as sa

from allotrack.records import Records
from allotrack.records.dictionary import default_dictionary
from allotrack.records.schema import TABLES
from allotrack.records.store import METADATA, Store, load_records
from allotrack.records.validate_new import validate_new

SCAN = re.compile(r"\bSCAN (\w+)")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(f"sqlite:///{tmp_path_factory.mktemp('reads') / 'store.db'}")
    s.init()
    ids = [f"R{i}" for i in range(3)]
    s.import_records(Records.from_frames(
        patients=pd.DataFrame({"patient_id": ids, "sex": "F", "diagnosis": "AML", "diagnosis_date": "2020-01-01"}),
        observations=pd.DataFrame({"patient_id": ids, "item": "anc", "date": "2020-01-05", "value": 1.0}),
        follow_up=pd.DataFrame({"patient_id": ids, "last_contact_date": "2020-06-01"})), centre="C1")  # fmt: skip
    yield s
    s.engine.dispose()


def _scanned(engine: sa.Engine, action) -> set[str]:
    """The tables SQLite scans (rather than searches through an index) in the SELECTs ``action`` sends."""
    sent: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert sent, "no query was sent"
    scanned = set()
    with engine.connect() as conn:
        for statement, parameters in sent:
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all():
                scanned.update(m.group(1) for m in SCAN.finditer(str(row[-1])))
    return scanned & set(TABLES)


def test_loading_one_patient_searches_every_record_table_by_index(store):
    assert _scanned(store.engine, lambda: load_records(store.engine, centre="C1", patient_id="R1")) == set()


def test_checking_a_forms_records_searches_by_index(store):
    frame = pd.DataFrame([{c.name: v for c, v in zip(TABLES["assessments"].columns, ["R1", "agvhd_grade",
                                                                                      "2020-02-01"], strict=False)}])
    frame = frame.reindex(columns=[c.name for c in TABLES["assessments"].columns]).assign(value_text="2")

    def check() -> None:
        with store.engine.connect() as conn:
            validate_new(conn, "assessments", frame, "R1", default_dictionary(), centre="C1")

    assert _scanned(store.engine, check) == set()


def test_the_data_access_group_filter_matches_the_partial_index(store):
    from allotrack.web.auth import add_user, user_by_id
    from allotrack.web.data import scope_conditions

    user = user_by_id(store.engine, add_user(store.engine, "reader", "correct horse battery", "viewer", "C1").user_id)
    assert user is not None
    t = METADATA.tables["observations"]

    def read() -> None:
        with store.engine.connect() as conn:
            conn.execute(sa.select(t.c.item).where(t.c.patient_id == "R1", *scope_conditions(t, user))).all()

    assert _scanned(store.engine, read) == set()
