"""User rights as REDCap's (:mod:`allotrack.web.rights`): every role's default rights on every write path — web
forms, the JSON API, the web import, the CLI — with two centres, on SQLite and PostgreSQL; a per-user revocation
takes effect on every path at once (sessions and tokens included); a read token carries only the read rights;
``allotrack user rights`` shows, grants and revokes (administrators only, audited); downloads follow the export
rights (identified / de-identified)."""

from __future__ import annotations

import html
import io
from dataclasses import replace

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from webfixtures import PASSWORD, login, page_csrf, web  # noqa: F401  (web: the fixture)

from allotrack.cli import app as cli
from allotrack.records.store import AUDIT_LOG
from allotrack.web.auth import User, add_user
from allotrack.web.exports import dataset_for
from allotrack.web.rights import READ_RIGHTS, RIGHTS, ROLE_RIGHTS, Forbidden, require

DM_DEFAULTS = {"view", "enter", "import", "export_deidentified", "report", "delete", "lock_record", "randomise",
               "audit"}  # fmt: skip


def test_the_roles_default_rights():
    assert len(RIGHTS) == 15 and ROLE_RIGHTS["administrator"] == set(RIGHTS)
    assert ROLE_RIGHTS["data_manager"] == DM_DEFAULTS
    assert ROLE_RIGHTS["analyst"] == {"view", "export_deidentified", "report", "audit"}
    assert ROLE_RIGHTS["viewer"] == {"view"}
    dm = User(7, "dm", "data_manager", "C1", granted=frozenset({"sign"}), revoked=frozenset({"delete", "import"}))
    assert dm.rights == DM_DEFAULTS - {"delete", "import"} | {"sign"}
    assert dm.can_write and not User(8, "an", "analyst", "C1").can_write
    assert replace(dm, read_only=True).rights == {"view", "export_deidentified", "report", "audit"}
    assert replace(User(1, "a", "administrator", None), read_only=True).rights == READ_RIGHTS
    with pytest.raises(Forbidden, match=r"^your role cannot delete records — your account lacks the right 'delete' "):
        require(dm, "delete", "your role cannot delete records")
    with pytest.raises(Forbidden, match="an API token of scope read carries only the read rights"):
        require(replace(dm, read_only=True), "enter")


def _bearer(web, username: str, scopes: list[str] | None = None) -> dict[str, str]:
    body = {"username": username, "password": PASSWORD} | ({"scopes": scopes} if scopes else {})
    res = TestClient(web).post("/api/token", json=body)
    assert res.status_code == 200, res.text
    return {"Authorization": f"Bearer {res.json()['token']}"}


def _crs(web, auth: dict[str, str], patient: str, day: str) -> TestClient:
    return TestClient(web).post(f"/api/patients/{patient}/crs", json={"date": day, "temperature_c": 38.2},
                                headers=auth)  # fmt: skip


USERS = ("admin", "dm1", "an1", "vw1", "dm2")
# user: status of (form save, API save, API delete, API lock, randomise, study lock) on C1's patient MST20
EXPECTED = {
    "admin": (303, 201, 204, 204, 404, 303), "dm1": (303, 201, 204, 204, 404, 403),
    "an1": (403, 403, 403, 403, 403, 403), "vw1": (403, 403, 403, 403, 403, 403),
    "dm2": (404, 404, 404, 404, 404, 403),  # another centre's patient: like an unknown one
}  # fmt: skip
IMPORT_CSV = b"patient_id,last_contact_date\nMST20,2025-10-31\n"


@pytest.mark.parametrize("username", USERS)
def test_each_role_on_each_write_path(web, username):
    n = USERS.index(username)
    own = _crs(web, _bearer(web, "dm1"), "MST20", f"2016-0{n + 1}-03")  # a record for this user to delete / lock
    victim, locked = own.json()["row_id"], _crs(web, _bearer(web, "dm1"), "MST20", f"2016-0{n + 1}-04").json()["row_id"]
    client, auth = login(web, username), _bearer(web, username)
    token = page_csrf(client)
    got = (
        client.post("/patients/MST20/crs", data={"csrf_token": token, "date": f"2017-0{n + 1}-01",
                                                 "temperature_c": "38.5"}).status_code,
        _crs(web, auth, "MST20", f"2017-0{n + 1}-02").status_code,
        TestClient(web).request("DELETE", f"/api/records/assessments/{victim}", json={"reason": "test"},
                                headers=auth).status_code,
        TestClient(web).post(f"/api/records/assessments/{locked}/lock", json={}, headers=auth).status_code,
        client.post("/randomise", data={"csrf_token": token, "study": "none", "patient_id": "MST20"}).status_code,
        client.post("/admin/lock", data={"csrf_token": token, "locked": "no", "reason": "rights test"}).status_code,
    )  # fmt: skip
    assert got == EXPECTED[username]
    imported = client.post("/import", data={"csrf_token": token, "centre": "C1"},
                           files=[("files", ("follow_up.csv", io.BytesIO(IMPORT_CSV), "text/csv"))])  # fmt: skip
    if username in ("an1", "vw1"):
        assert imported.status_code == 403 and "the right 'import'" in html.unescape(imported.text)
    else:
        assert imported.status_code != 403
    audit = TestClient(web).get("/api/patients/MST20/audit", headers=auth)
    if username == "dm2":
        assert audit.status_code == 404
    else:
        assert audit.status_code == 200 and ("new_values" in audit.json()[0]) == (username != "vw1")


def _cli(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_each_role_on_the_cli_import_and_restore(web, tmp_path):
    db = web.state.store.url
    mine = tmp_path / "follow_up.csv"
    mine.write_bytes(IMPORT_CSV)
    theirs = tmp_path / "c2" / "follow_up.csv"
    theirs.parent.mkdir()
    theirs.write_bytes(b"patient_id,last_contact_date\np1,2020-10-27\n")
    for username, path, code in (("admin", mine, 0), ("dm1", mine, 0), ("dm2", theirs, 0), ("an1", mine, 1),
                                 ("vw1", mine, 1), ("dm2", mine, 1)):  # fmt: skip
        result = _cli("import", str(path), "--dry-run", "--user", username, "--db", db)
        assert result.exit_code == code, (username, result.output)
        if username in ("an1", "vw1"):
            assert "lacks the right 'import'" in result.output
    refused = _cli("import", str(mine), "--dry-run", "--user", "dm2", "--centre", "C1", "--db", db)
    assert refused.exit_code == 1 and "imports records of its own centre only" in refused.output
    refused = _cli("record", "restore", "MST20", "--reason", "x", "--user", "dm1", "--db", db)
    assert refused.exit_code == 1 and "lacks the right 'restore'" in refused.output


def _rights_audit(web, user_id: int) -> list[dict]:
    with web.state.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(AUDIT_LOG).where(
            AUDIT_LOG.c.table_name == "users", AUDIT_LOG.c.row_id == user_id)).mappings()]  # fmt: skip


def test_a_revoked_right_is_gone_from_every_path_at_once(web, tmp_path):
    account = add_user(web.state.store.engine, "dm_rev", PASSWORD, "data_manager", "C1")
    client, auth = login(web, "dm_rev"), _bearer(web, "dm_rev")  # signed in before the change
    row_id = _crs(web, auth, "MST19", "2014-01-01").json()["row_id"]
    db = web.state.store.url
    result = _cli("user", "rights", "dm_rev", "--revoke", "enter", "--revoke", "delete", "--revoke", "import",
                  "--revoke", "lock_record", "--revoke", "audit", "--revoke", "randomise", "--user", "admin", "--db", db)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ("dm_rev (data_manager -audit -delete -enter -import -lock_record -randomise): "
                                     "view export_deidentified report")  # fmt: skip
    token = page_csrf(client)
    form = client.post("/patients/MST19/crs", data={"csrf_token": token, "date": "2014-01-05", "temperature_c": "39"})
    assert form.status_code == 403 and "the right 'enter'" in html.unescape(form.text)
    api = _crs(web, auth, "MST19", "2014-01-06")
    assert api.status_code == 403 and "the right 'enter'" in api.json()["detail"]
    deleted = TestClient(web).request("DELETE", f"/api/records/assessments/{row_id}", json={"reason": "x"},
                                      headers=auth)  # fmt: skip
    assert deleted.status_code == 403 and "the right 'delete'" in deleted.json()["detail"]
    locked = TestClient(web).post(f"/api/records/assessments/{row_id}/lock", json={}, headers=auth)
    assert locked.status_code == 403 and "the right 'lock_record'" in locked.json()["detail"]
    assert client.get("/import").status_code == 403
    imported = client.post("/import", data={"csrf_token": token},
                           files=[("files", ("follow_up.csv", io.BytesIO(IMPORT_CSV), "text/csv"))])  # fmt: skip
    assert imported.status_code == 403 and "the right 'import'" in html.unescape(imported.text)
    path = tmp_path / "follow_up.csv"
    path.write_bytes(IMPORT_CSV)
    cli_import = _cli("import", str(path), "--dry-run", "--user", "dm_rev", "--db", db)
    assert cli_import.exit_code == 1 and "lacks the right 'import'" in cli_import.output
    res = client.post("/randomise", data={"csrf_token": token, "study": "none", "patient_id": "MST19"})
    assert res.status_code == 403 and "the right 'randomise'" in html.unescape(res.text)
    assert "new_values" not in TestClient(web).get("/api/patients/MST19/audit", headers=auth).json()[0]
    assert "Import" not in client.get("/patients").text.split("</header>")[0]
    changes = _rights_audit(web, account.user_id)
    assert [(r["username"], r["action"]) for r in changes] == [("admin", "rights")]
    assert '"rights_revoked": "audit delete enter import lock_record randomise"' in changes[0]["new_values"]

    back = _cli("user", "rights", "dm_rev", "--grant", "enter", "--user", "admin", "--db", db)
    assert back.exit_code == 0 and "-enter" not in back.output
    assert _crs(web, auth, "MST19", "2014-01-07").status_code == 201
    assert len(_rights_audit(web, account.user_id)) == 2


def test_the_rights_command_lists_shows_and_is_for_administrators(web):
    db = web.state.store.url
    listing = _cli("user", "rights", "--db", db)
    lines = listing.output.strip().splitlines()
    assert listing.exit_code == 0 and [line.split()[0] for line in lines] == list(RIGHTS)
    assert lines[list(RIGHTS).index("sign")].endswith("(default: administrator)")
    assert lines[0].endswith("(default: administrator, data_manager, analyst, viewer)")
    shown = _cli("user", "rights", "dm1", "--db", db)
    assert shown.output.strip() == ("dm1 (data_manager): view enter import export_deidentified report delete "
                                    "lock_record randomise audit")  # fmt: skip
    refused = _cli("user", "rights", "vw1", "--grant", "enter", "--user", "dm1", "--db", db)
    assert refused.exit_code == 1 and "only an administrator changes user rights" in refused.output
    assert "the right 'manage_users'" in refused.output
    unknown = _cli("user", "rights", "vw1", "--grant", "fly", "--user", "admin", "--db", db)
    assert unknown.exit_code == 1 and "no right named 'fly': the rights are view, enter," in unknown.output
    assert _cli("user", "rights", "vw1", "--grant", "enter", "--db", db).exit_code == 1  # who grants it?
    assert _cli("user", "rights", "vw1", "--db", db).output.strip() == "vw1 (viewer): view"
    page = login(web, "an1").get("/account/password")
    assert "Your rights (analyst): audit, export_deidentified, report, view." in page.text


def test_a_read_token_has_only_the_read_rights(web):
    read = _bearer(web, "admin", scopes=["read"])
    client = TestClient(web)
    assert client.get("/api/patients/MST18/audit", headers=read).status_code == 200
    row_id = _crs(web, _bearer(web, "dm1"), "MST18", "2013-01-01").json()["row_id"]
    res = client.post(f"/api/records/assessments/{row_id}/lock", json={}, headers=read)
    assert res.status_code == 403 and "scope: read" in res.json()["detail"]
    from allotrack.web.auth import token_access

    user, scopes = token_access(web.state.store.engine, read["Authorization"][7:])
    assert scopes == {"read"} and replace(user, read_only=True).rights == READ_RIGHTS


def test_the_analysis_dataset_follows_the_export_rights(web):
    frame = pd.DataFrame({"patient_id": ["A1", "A1", "B2"], "age_at_diagnosis": [95.0, 95.0, 40.0],
                          "os_time": [10.0, 10.0, 20.0], "death_cause": ["x", "x", None],
                          "transplant_date": pd.to_datetime(["2020-01-01"] * 3)})  # fmt: skip
    admin, analyst = User(1, "a", "administrator", None), User(2, "b", "analyst", "C1")
    assert dataset_for(admin, frame) is frame
    out = dataset_for(analyst, frame)
    assert list(out.columns) == ["patient_id", "age_at_diagnosis", "os_time"]
    assert out["age_at_diagnosis"].tolist() == ["90+", "90+", 40.0] and out["os_time"].tolist() == [10.0, 10.0, 20.0]
    codes = out["patient_id"].tolist()
    assert codes[0] == codes[1] != codes[2] and all(c.startswith("S") and len(c) == 11 for c in codes)
    with pytest.raises(Forbidden, match="export"):
        dataset_for(User(3, "c", "viewer", "C1"), frame)
    an1 = login(web, "an1")
    res = an1.post("/studies/0/run", data={"csrf_token": page_csrf(an1)})
    assert res.status_code == 200 and "dataset.csv</a> (de-identified)" in res.text
    link = res.text.split('href="/report/')[1].split("/")[0]
    dataset = an1.get(f"/report/{link}/dataset.csv")
    assert dataset.status_code == 200 and "MST" not in dataset.text and "patient_id" in dataset.text


def test_accounts_from_before_migration_0010_keep_their_roles_defaults(tmp_path):
    from allotrack.records.store import Store
    from allotrack.web.auth import user_by_id

    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    store.init("0009")
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (username, password_hash, role, centre_code, active, created_at) "
                             "VALUES ('old', 'x', 'analyst', 'C1', 1, '2026-01-01 00:00:00')"))  # fmt: skip
    store.init()
    with store.engine.connect() as conn:
        assert sa.inspect(conn).has_table("record_locks")
    assert user_by_id(store.engine, 1).rights == {"view", "export_deidentified", "report", "audit"}
    store.downgrade("0009")
    with store.engine.connect() as conn:
        assert not sa.inspect(conn).has_table("record_locks")
        assert "rights_granted" not in {c["name"] for c in sa.inspect(conn).get_columns("users")}
