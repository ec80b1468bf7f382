"""Record-level locks and e-signatures (REDCap's "Lock/Unlock records" and "E-signature"), on SQLite and
PostgreSQL: a locked record is not edited, deleted or corrected by an import until unlocked with a reason; an
e-signature needs the signer's password (one verification, counted by the login throttle), locks the record, and
goes with the unlock; every step is audited; another centre's record is answered like a missing one."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from webfixtures import PASSWORD, login, page_csrf, web  # noqa: F401  (web: the fixture)

from allotrack.records.schema import Records
from allotrack.records.store import AUDIT_LOG
from allotrack.records.validate import ValidationError
from allotrack.web.auth import add_user, user_by_id
from allotrack.web.rights import RecordLocked, set_user_rights
from allotrack.web.security import LoginThrottle


@pytest.fixture
def fresh_throttle(web):
    """A throttle of this test's own (the module's app is shared)."""
    kept = web.state.throttle
    web.state.throttle = LoginThrottle()
    yield web.state.throttle
    web.state.throttle = kept


def _bearer(web, username: str) -> dict[str, str]:
    res = TestClient(web).post("/api/token", json={"username": username, "password": PASSWORD})
    assert res.status_code == 200, res.text
    return {"Authorization": f"Bearer {res.json()['token']}"}


def _gvhd(web, auth: dict[str, str], patient: str, day: str) -> int:
    """A GVHD assessment (grade III from bilirubin 4.0) stored through the API; the grade record's row id."""
    res = TestClient(web).post(f"/api/patients/{patient}/gvhd", json={"date": day, "bilirubin": 4.0}, headers=auth)
    assert res.status_code == 201, res.text
    return int(res.json()["row_id"])


def _audit(web, row_id: int, action: str) -> list[dict]:
    with web.state.store.engine.connect() as conn:
        rows = conn.execute(sa.select(AUDIT_LOG).where(AUDIT_LOG.c.table_name == "assessments",
                                                       AUDIT_LOG.c.row_id == row_id, AUDIT_LOG.c.action == action)
                            .order_by(AUDIT_LOG.c.audit_id)).mappings().all()  # fmt: skip
    return [dict(r) for r in rows]


def _correction(patient: str, day: str, grade: str) -> Records:
    """An import row with the stored grade record's natural key and another grade: a correction."""
    return Records.from_frames(assessments=pd.DataFrame({"patient_id": [patient], "item": ["agvhd_grade"],
                                                         "date": [day], "value_text": [grade]}))  # fmt: skip


def _user(web, username: str):
    with web.state.store.engine.connect() as conn:
        user_id = conn.execute(sa.text("SELECT user_id FROM users WHERE username = :u"), {"u": username}).scalar()
    return user_by_id(web.state.store.engine, user_id)


def _grade(web, row_id: int) -> str:
    with web.state.store.engine.connect() as conn:
        return str(conn.execute(sa.text(f"SELECT value_text FROM assessments WHERE row_id = {row_id}")).scalar())


def test_a_locked_record_is_not_deleted_replaced_or_corrected_until_unlocked_with_a_reason(web):
    dm1, client = _bearer(web, "dm1"), TestClient(web)
    row_id = _gvhd(web, dm1, "MST14", "2018-06-01")
    store = web.state.store
    before = store.import_records(_correction("MST14", "2018-06-01", "2"), user="dm1", centre="C1", dry_run=True,
                                  update=True, reason="typo")  # fmt: skip
    assert before.updated == {"assessments": 1}  # unlocked: the import would correct it
    res = client.post(f"/api/records/assessments/{row_id}/lock", json={}, headers=dm1)
    assert res.status_code == 204, res.text
    locked = _audit(web, row_id, "lock")
    assert len(locked) == 1 and locked[0]["username"] == "dm1" and locked[0]["patient_id"] == "MST14"

    res = client.request("DELETE", f"/api/records/assessments/{row_id}", json={"reason": "wrong"}, headers=dm1)
    assert res.status_code == 403 and "locked" in res.json()["detail"]
    res = client.request("DELETE", f"/api/records/assessments/{row_id}", json={"reason": "wrong"},
                         headers=_bearer(web, "admin"))  # fmt: skip
    assert res.status_code == 403  # by anyone
    res = client.post("/api/patients/MST14/gvhd", json={"date": "2018-06-01", "bilirubin": 1.0}, headers=dm1)
    assert res.status_code in (403, 422) and _grade(web, row_id) == "3"  # the same key again: not replaced
    for dry_run in (True, False):
        with pytest.raises(ValidationError) as refused:
            store.import_records(_correction("MST14", "2018-06-01", "2"), user="dm1", centre="C1", dry_run=dry_run,
                                 update=True, reason="typo")  # fmt: skip
        assert [p.rule for p in refused.value.problems] == [
            "the stored record with this (patient_id, item, date, visit) is locked: it is unlocked (with a reason) "
            "before an import corrects it"]
    assert _grade(web, row_id) == "3"
    from allotrack.web.data import update_record  # the edit (another helper's): refused while locked

    with pytest.raises(RecordLocked, match="this assessments record is locked"):
        update_record(store.engine, _user(web, "dm1"), "assessments", row_id, {"value_text": "2"}, reason="re-read")
    assert _grade(web, row_id) == "3"

    for reason in (None, "", "   "):
        res = client.post(f"/api/records/assessments/{row_id}/unlock", json={"reason": reason}, headers=dm1)
        assert res.status_code == 422 and "unlocking a record needs a reason" in res.json()["detail"]
    res = client.post(f"/api/records/assessments/{row_id}/unlock", json={"reason": "grade re-read"}, headers=dm1)
    assert res.status_code == 204
    unlocked = _audit(web, row_id, "unlock")
    assert len(unlocked) == 1 and unlocked[0]["reason"] == "grade re-read"
    assert json.loads(unlocked[0]["old_values"])["locked_by"] == "dm1"
    report = store.import_records(_correction("MST14", "2018-06-01", "2"), user="dm1", centre="C1", update=True,
                                  reason="typo")  # fmt: skip
    assert report.updated == {"assessments": 1} and _grade(web, row_id) == "2"


def test_deleting_a_patient_with_a_locked_record_is_refused(web):
    admin, client = _bearer(web, "admin"), TestClient(web)
    row_id = _gvhd(web, _bearer(web, "dm1"), "MST13", "2018-05-01")
    assert client.post(f"/api/records/assessments/{row_id}/lock", json={}, headers=admin).status_code == 204
    with web.state.store.engine.connect() as conn:
        patient_row = conn.execute(sa.text("SELECT row_id FROM patients WHERE patient_id = 'MST13'")).scalar()
    res = client.request("DELETE", f"/api/records/patients/{patient_row}", json={"reason": "duplicate"}, headers=admin)
    assert res.status_code == 403 and "a record of this patient is locked" in res.json()["detail"]
    assert len(web.state.store.load(patient_id="MST13")["patients"]) == 1


def test_locks_are_per_centre_and_per_right(web):
    client = TestClient(web)
    row_id = _gvhd(web, _bearer(web, "dm1"), "MST12", "2012-04-01")
    for user, status in (("dm2", 404), ("an1", 403), ("vw1", 403)):  # another centre: like a missing record
        res = client.post(f"/api/records/assessments/{row_id}/lock", json={}, headers=_bearer(web, user))
        assert res.status_code == status, (user, res.text)
    assert "lock_record" in client.post(f"/api/records/assessments/{row_id}/lock", json={},
                                        headers=_bearer(web, "an1")).json()["detail"]  # fmt: skip
    assert _audit(web, row_id, "lock") == []
    dm1 = login(web, "dm1")
    res = dm1.post(f"/patients/MST12/locks/assessments/{row_id}/lock", data={"csrf_token": "forged"})
    assert res.status_code == 403 and _audit(web, row_id, "lock") == []
    token = page_csrf(dm1)
    page = dm1.get("/patients/MST12/locks")
    assert page.status_code == 200 and f"/patients/MST12/locks/assessments/{row_id}/lock" in page.text
    res = dm1.post(f"/patients/MST12/locks/assessments/{row_id}/lock", data={"csrf_token": token})
    assert res.status_code == 303 and res.headers["location"] == "/patients/MST12"
    assert "locked by dm1" in dm1.get("/patients/MST12/locks").text
    assert login(web, "dm2").get("/patients/MST12/locks").status_code == 404
    res = dm1.post(f"/patients/MST12/locks/assessments/{row_id}/unlock", data={"csrf_token": token, "reason": " "})
    assert res.status_code == 422
    res = dm1.post(f"/patients/MST12/locks/assessments/{row_id}/unlock", data={"csrf_token": token,
                                                                               "reason": "reopened"})  # fmt: skip
    assert res.status_code == 303 and [r["reason"] for r in _audit(web, row_id, "unlock")] == ["reopened"]


def _signer(web, name: str) -> None:
    """A data manager of C1 granted the right to sign by the administrator."""
    add_user(web.state.store.engine, name, PASSWORD, "data_manager", "C1")
    set_user_rights(web.state.store.engine, _user(web, "admin"), name, grant=["sign"])


def test_signing_needs_the_password_counts_in_the_throttle_locks_and_unlocking_clears_it(web, fresh_throttle,
                                                                                        monkeypatch):  # fmt: skip
    import allotrack.web.app as app_module

    _signer(web, "signer1")
    client, signer, dm1 = TestClient(web), _bearer(web, "signer1"), _bearer(web, "dm1")
    row_id = _gvhd(web, signer, "MST11", "2018-03-01")
    verified = []
    real = app_module.check_password
    monkeypatch.setattr(app_module, "check_password", lambda a, p: verified.append(1) or real(a, p))

    res = client.post(f"/api/records/assessments/{row_id}/sign", json={"password": "not my password"},
                      headers=signer)  # fmt: skip
    assert res.status_code == 403 and res.json()["detail"] == "the password is wrong: not signed"
    assert len(verified) == 1  # one Argon2 verification
    assert fresh_throttle.blocked("user:signer1") is False and fresh_throttle._count("user:signer1", None) == 1
    assert client.get("/api/patients/MST11/locks", headers=signer).json() == []
    assert _audit(web, row_id, "sign") == []
    res = client.post(f"/api/records/assessments/{row_id}/sign", json={"password": "not my password"},
                      headers=dm1)  # fmt: skip
    assert res.status_code == 403 and "'sign'" in res.json()["detail"] and len(verified) == 1  # not even checked

    res = client.post(f"/api/records/assessments/{row_id}/sign", json={"password": PASSWORD}, headers=signer)
    assert res.status_code == 204, res.text
    assert fresh_throttle._count("user:signer1", None) == 0  # the right password clears the user's count
    locks = client.get("/api/patients/MST11/locks", headers=signer).json()
    assert [(k["row_id"], k["locked_by"], k["signed_by"]) for k in locks] == [(row_id, "signer1", "signer1")]
    signed = _audit(web, row_id, "sign")
    assert len(signed) == 1 and json.loads(signed[0]["new_values"])["signed_by"] == "signer1"
    res = client.request("DELETE", f"/api/records/assessments/{row_id}", json={"reason": "x"}, headers=signer)
    assert res.status_code == 403  # signing locked it
    again = client.post(f"/api/records/assessments/{row_id}/sign", json={"password": PASSWORD}, headers=signer)
    assert again.status_code == 422 and "already signed by signer1" in again.json()["detail"]

    res = client.post(f"/api/records/assessments/{row_id}/unlock", json={"reason": "grade corrected"},
                      headers=dm1)  # fmt: skip
    assert res.status_code == 204
    assert client.get("/api/patients/MST11/locks", headers=signer).json() == []  # the signature went with the lock
    old = json.loads(_audit(web, row_id, "unlock")[0]["old_values"])
    assert old["signed_by"] == "signer1" and old["locked_by"] == "signer1" and old["signed_at"]


def test_wrong_signature_passwords_are_throttled_like_logins(web, fresh_throttle):
    _signer(web, "signer2")
    signer = login(web, "signer2")
    row_id = _gvhd(web, _bearer(web, "dm1"), "MST10", "2018-02-01")
    token = page_csrf(signer)
    path = f"/patients/MST10/locks/assessments/{row_id}/sign"
    for _ in range(5):
        res = signer.post(path, data={"csrf_token": token, "password": "guess guess guess"})
        assert res.status_code == 403 and "The password is wrong" in res.text
    res = signer.post(path, data={"csrf_token": token, "password": PASSWORD})  # the right one, too late
    assert res.status_code == 429 and "Too many failed attempts" in res.text
    assert _audit(web, row_id, "sign") == []
    res = TestClient(web).post("/api/token", json={"username": "signer2", "password": PASSWORD})
    assert res.status_code == 403  # the account's logins are throttled too: the same count


def test_only_a_completed_assessment_is_signed(web, fresh_throttle):
    _signer(web, "signer3")
    client, signer = TestClient(web), _bearer(web, "signer3")
    with web.state.store.engine.connect() as conn:
        donor = conn.execute(sa.text("SELECT row_id FROM donors WHERE patient_id = 'MST09'")).scalar()
    res = client.post(f"/api/records/donors/{donor}/sign", json={"password": PASSWORD}, headers=signer)
    assert res.status_code == 422 and "only assessments are e-signed" in res.json()["detail"]
