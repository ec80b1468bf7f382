"""Sessions and API tokens against the live server: every POST page route refuses a missing or wrong CSRF token
(403, nothing written), a session cookie copied before /logout is refused after it, a password change ends the
account's other sessions and its tokens, deactivation ends both, a read-scope token writes on no API route, and
revoked or expired tokens are refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from allotrack.web.auth import add_user, deactivate_user
from hostile.hostile_live import OWN_PATIENT, PASSWORD, Live, changed, fingerprint, rows_of
from hostile.test_matrix import app_routes

SAMPLE = {"patient_id": OWN_PATIENT["C1"], "kind": "gvhd", "table": "observations", "action": "lock",
          "decision": "commit", "plan_id": "0", "name": "report.html"}  # fmt: skip


def _fill(live: Live, template: str) -> str:
    values = dict(SAMPLE, token="t" * 22, row_id=_c1_row(live), token_id="1")
    return re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), template)


def _c1_row(live: Live) -> int:
    return int(rows_of(live.engine, "SELECT min(row_id) AS r FROM observations WHERE centre_code = 'C1' AND NOT "
                                    "deleted")[0]["r"])  # fmt: skip


def _account(live: Live, name: str, role: str = "data_manager") -> str:
    add_user(live.engine, name, PASSWORD, role, "C1")
    return name


def test_every_post_page_route_refuses_a_missing_or_wrong_csrf_token(live: Live) -> None:
    posts = sorted(p for m, p in app_routes(live.app) if m == "POST" and not p.startswith("/api/"))
    assert len(posts) >= 12
    admin = live.session("adm1")  # every right: only the CSRF token is missing
    body = {"date": "2016-05-05", "skin_bsa": "10", "reason": "r", "locked": "yes", "study": "s", "name": "n",
            "patient_id": "CSRF1", "username": "adm1", "password": PASSWORD, "current_password": PASSWORD,
            "new_password": "x" * 12, "confirm_password": "x" * 12}  # fmt: skip
    files = [("files", ("follow_up.csv", b"patient_id,last_contact_date\nMST15,2025-10-31\n", "text/csv")),
             ("plan", ("p.toml", b'[study]\ntitle = "t"\n', "text/plain"))]  # fmt: skip
    for template in posts:
        path = _fill(live, template)
        for token in (None, "forged-token", ""):
            before = fingerprint(live.engine)
            data = dict(body) if token is None else {**body, "csrf_token": token}
            res = admin.http.post(path, data=data, files=files if template in ("/import", "/studies") else None)
            assert res.status_code == 403, (template, token, res.status_code, res.text[:200])
            assert not changed(before, fingerprint(live.engine)), template
    assert admin.get("/patients").status_code == 200  # not even /logout went through
    api = admin.http.post(f"/api/patients/{OWN_PATIENT['C1']}/gvhd", json={"date": "2016-05-06"})
    assert api.status_code == 403  # a session on the API: the X-CSRF-Token header is needed too
    res = admin.http.post(f"/api/patients/{OWN_PATIENT['C1']}/gvhd", json={"date": "2016-05-06"},
                          headers={"X-CSRF-Token": admin.csrf})  # fmt: skip
    assert res.status_code == 201


def test_a_cookie_copied_before_logout_is_refused_after(live: Live) -> None:
    name = _account(live, "copier")
    browser = live.session(name)
    stolen = dict(browser.http.cookies)
    assert browser.post("/logout").status_code == 303
    with live.client(cookies=stolen) as thief:
        res = thief.get("/patients")
        assert res.status_code == 303 and res.headers["location"] == "/login"
        assert thief.get("/api/patients").status_code == 401
    assert live.session(name).get("/patients").status_code == 200


def test_a_password_change_ends_the_other_sessions_and_every_token(live: Live) -> None:
    name = _account(live, "changer")
    me, other = live.session(name), live.session(name)
    with live.client() as c:
        token = c.post("/api/token", json={"username": name, "password": PASSWORD}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    with live.client() as c:
        assert c.get("/api/alerts", headers=auth).status_code == 200
    new = "another long passphrase"
    res = me.post("/account/password", data={"current_password": PASSWORD, "new_password": new,
                                             "confirm_password": new})  # fmt: skip
    assert res.status_code == 303
    assert me.get("/patients").status_code == 200
    assert other.get("/patients").status_code == 303
    with live.client() as c:
        assert c.get("/api/alerts", headers=auth).status_code == 401
    fresh = live.client()
    assert live.session(name, new).get("/patients").status_code == 200
    fresh.close()


def test_deactivation_ends_sessions_and_tokens(live: Live) -> None:
    name = _account(live, "leaver")
    browser = live.session(name)
    with live.client() as c:
        token = c.post("/api/token", json={"username": name, "password": PASSWORD}).json()["token"]
    assert deactivate_user(live.engine, name)
    assert browser.get("/patients").status_code == 303
    with live.client() as c:
        assert c.get("/api/patients", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    from hostile.hostile_live import Browser

    assert Browser(live.client()).login(name, PASSWORD).status_code == 401


def test_a_read_token_writes_on_no_api_route(live: Live) -> None:
    with live.client() as c:
        issued = c.post("/api/token", json={"username": "adm1", "password": PASSWORD, "scopes": ["read"]}).json()
    assert issued["scopes"] == ["read"]
    writes = sorted((m, p) for m, p in app_routes(live.app) if p.startswith("/api/") and m in ("POST", "DELETE",
                                                                                                "PUT", "PATCH"))
    writes = [(m, p) for m, p in writes if p != "/api/token"]
    assert len(writes) >= 6
    values = {"patient_id": OWN_PATIENT["C1"], "table": "observations", "row_id": _c1_row(live),
              "token_id": issued["token_id"]}  # fmt: skip
    body = {"date": "2016-07-07", "reason": "read token", "password": PASSWORD}
    with live.client(headers={"Authorization": f"Bearer {issued['token']}"}) as c:
        for method, template in writes:
            path = re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), template)
            before = fingerprint(live.engine)
            res = c.request(method, path, json=body)
            assert res.status_code == 403, (method, template, res.status_code)
            assert not changed(before, fingerprint(live.engine)), template
        assert c.get(f"/api/patients/{OWN_PATIENT['C1']}").status_code == 200  # it reads


def test_revoked_and_expired_tokens_are_refused(live: Live) -> None:
    name = _account(live, "scripter")
    with live.client() as c:
        first = c.post("/api/token", json={"username": name, "password": PASSWORD}).json()
        second = c.post("/api/token", json={"username": name, "password": PASSWORD}).json()
        auth1, auth2 = ({"Authorization": f"Bearer {t['token']}"} for t in (first, second))
        assert c.get("/api/alerts", headers=auth2).status_code == 200
        assert c.delete(f"/api/tokens/{second['token_id']}", headers=auth1).status_code == 204
        assert c.get("/api/alerts", headers=auth2).status_code == 401
        assert c.delete(f"/api/tokens/{second['token_id']}", headers=auth2).status_code == 401
        with live.engine.begin() as conn:
            conn.execute(sa.text("UPDATE api_tokens SET expires_at = :t WHERE token_id = :i"),
                         {"t": datetime.now(UTC) - timedelta(seconds=1), "i": first["token_id"]})  # fmt: skip
        assert c.get("/api/alerts", headers=auth1).status_code == 401
        assert c.get("/api/alerts", headers={"Authorization": "Bearer " + "x" * 43}).status_code == 401
