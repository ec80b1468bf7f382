"""Deleting records (issue 15): a record is deleted once (a second delete of it is refused and writes no audit row);
deleting a patient deletes the patient's records with it, so nothing of the patient is left half-visible and later
imports of other patients go on; an import cannot silently re-create a deleted patient; an administrator restores
a deleted patient with everything deleted with it, audited."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from webfixtures import _reset, empty_store_url

from allotrack.records.schema import Records
from allotrack.records.store import Store
from allotrack.records.validate import ValidationError
from allotrack.web.auth import User
from allotrack.web.data import Forbidden, NotFound, restore_patient, soft_delete

ADMIN, DM1, DM2 = User(1, "admin", "administrator", None), User(2, "dm1", "data_manager", "C1"), \
    User(3, "dm2", "data_manager", "C2")  # fmt: skip


def _patient(pid: str) -> Records:
    return Records.from_frames(
        patients=pd.DataFrame({"patient_id": [pid], "centre": ["site"], "sex": ["F"], "diagnosis": ["AML"],
                               "diagnosis_date": ["2021-01-04"], "age_at_diagnosis": [50]}),
        donors=pd.DataFrame({"donor_id": [f"{pid}-D1"], "patient_id": [pid], "relation": ["sibling"]}),
        follow_up=pd.DataFrame({"patient_id": [pid], "last_contact_date": ["2022-01-01"]}))  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = empty_store_url(request.param, tmp_path)
    s = Store(url)
    s.init()
    for pid in ("A1", "A2"):
        s.import_records(_patient(pid), user="dm1", centre="C1")
    s.import_records(_patient("B1"), user="dm2", centre="C2")
    yield s
    s.engine.dispose()
    if request.param == "postgresql":
        _reset(url)


def _row_id(store: Store, table: str, pid: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT row_id FROM {table} WHERE patient_id = :p AND deleted = :f"),
                                {"p": pid, "f": False}).scalar_one())  # fmt: skip


def _audit(store: Store, action: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = :a"), {"a": action}).scalar())


def test_a_record_is_deleted_once(store):
    row = _row_id(store, "follow_up", "A1")
    soft_delete(store.engine, DM1, "follow_up", row, "entered for the wrong patient")
    with pytest.raises(NotFound):
        soft_delete(store.engine, DM1, "follow_up", row, "entered for the wrong patient")
    assert _audit(store, "delete") == 1


def test_a_deleted_patient_takes_its_records_along_and_cannot_be_re_imported_until_restored(store):
    soft_delete(store.engine, DM1, "patients", _row_id(store, "patients", "A1"), "not a study patient")
    stored = store.load()
    assert "A1" not in set(stored["patients"]["patient_id"]) | set(stored["donors"]["patient_id"]) | set(
        stored["follow_up"]["patient_id"])  # fmt: skip
    store.import_records(_patient("A3"), user="dm1", centre="C1")  # other patients' imports go on
    with pytest.raises(ValidationError) as err:
        store.import_records(_patient("A1"), user="dm1", centre="C1")
    said = str(err.value)
    assert "patient 'A1' was deleted" in said and "restore" in said
    with pytest.raises(ValidationError) as err:  # another centre's deleted patient: its id is simply taken
        store.import_records(_patient("A1").tables["patients"].pipe(lambda f: Records.from_frames(patients=f)),
                             user="dm2", centre="C2")  # fmt: skip
    assert "was deleted" not in str(err.value) and "already used" in str(err.value)
    with pytest.raises(Forbidden):
        restore_patient(store.engine, DM1, "A1", "was a study patient after all")
    restored = restore_patient(store.engine, ADMIN, "A1", "was a study patient after all")
    assert restored == {"patients": 1, "donors": 1, "follow_up": 1}
    assert store.import_records(_patient("A1"), user="dm1", centre="C1").added == {}
    assert _audit(store, "restore") == 1
    with pytest.raises(NotFound):
        restore_patient(store.engine, ADMIN, "A1", "again")


def test_the_cli_restores_a_deleted_patient_for_an_administrator_only(tmp_path):
    from typer.testing import CliRunner

    from allotrack.cli import app
    from allotrack.web.auth import add_user

    url = f"sqlite:///{tmp_path / 'c.db'}"
    store = Store(url)
    store.init()
    store.import_records(_patient("A1"), user="dm1", centre="C1")
    admin = add_user(store.engine, "admin", "a long password", "administrator")
    add_user(store.engine, "dm1", "a long password", "data_manager", "C1")
    soft_delete(store.engine, admin, "patients", _row_id(store, "patients", "A1"), "duplicate")
    runner = CliRunner()
    args = ["record", "restore", "A1", "--reason", "not a duplicate", "--db", url]
    refused = runner.invoke(app, [*args, "--user", "dm1"])
    assert refused.exit_code == 1 and "only an administrator restores a deleted patient" in refused.output
    done = runner.invoke(app, [*args, "--user", "admin"])
    assert done.exit_code == 0 and "A1 restored: 1 patients, 1 donors, 1 follow_up" in done.output
    assert store.load()["patients"]["patient_id"].tolist() == ["A1"]
