"""Authorization on every route: each role × each route, cross-centre access denied, CSRF-less posts rejected,
audit rows written for every change, throttled logins, error references without identifiers."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from webfixtures import PASSWORD, csrf_of, login, page_csrf, web  # noqa: F401  (web: the fixture)

from allotrack.records.store import AUDIT_LOG

GET_PAGES = ["/patients", "/patients/MST05", "/patients/MST05/audit", "/alerts", "/import", "/studies",
             "/patients/MST05/gvhd/new"]  # fmt: skip
EXPECTED_GET = {  # role -> pages it may open (others: 403)
    "admin": set(GET_PAGES), "dm1": set(GET_PAGES),
    "an1": {"/patients", "/patients/MST05", "/patients/MST05/audit", "/alerts", "/studies"},
    "vw1": {"/patients", "/patients/MST05", "/patients/MST05/audit", "/alerts"},
}  # fmt: skip


@pytest.mark.parametrize("username", list(EXPECTED_GET))
def test_each_role_on_each_page(web, username):
    client = login(web, username)
    for path in GET_PAGES:
        status = client.get(path).status_code
        assert status == (200 if path in EXPECTED_GET[username] else 403), (username, path, status)


def test_anonymous_requests_are_sent_to_login_or_refused(web):
    client = TestClient(web, follow_redirects=False)
    for path in GET_PAGES:
        res = client.get(path)
        assert res.status_code == 303 and res.headers["location"] == "/login"
    for path in ("/api/patients", "/api/patients/MST05", "/api/alerts", "/api/patients/MST05/audit"):
        assert client.get(path).status_code == 401


def test_api_roles_and_tokens(web):
    client = TestClient(web)
    tokens = {u: client.post("/api/token", json={"username": u, "password": PASSWORD}).json()["token"]
              for u in ("dm1", "an1", "vw1", "dm2", "admin")}  # fmt: skip
    auth = {u: {"Authorization": f"Bearer {t}"} for u, t in tokens.items()}
    assert len(client.get("/api/patients", headers=auth["dm1"]).json()) == 29
    assert {p["centre_code"] for p in client.get("/api/patients", headers=auth["dm2"]).json()} == {"C2"}
    assert len(client.get("/api/patients?limit=1000", headers=auth["admin"]).json()) == 34
    body = {"date": "2020-03-01", "bilirubin": 4.0}
    for user in ("an1", "vw1"):
        assert client.post("/api/patients/p1/gvhd", json=body, headers=auth[user]).status_code in (403, 404)
    res = client.post("/api/patients/MST14/gvhd", json={"date": "2018-06-01", "bilirubin": 4.0}, headers=auth["dm1"])
    assert res.status_code == 201 and res.json()["label"] == "III" and res.json()["stages"]["liver"] == 2
    assert client.get("/api/patients/MST14", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_cross_centre_access_is_denied_everywhere(web):
    dm2 = login(web, "dm2")
    assert dm2.get("/patients/MST05").status_code == 404  # answered like a patient that does not exist
    assert dm2.get("/patients/MST05/audit").status_code == 404
    assert "MST05" not in dm2.get("/patients").text
    assert "MST05" not in dm2.get("/alerts").text
    token = csrf_of(dm2.get("/patients/p1/gvhd/new").text)
    res = dm2.post("/patients/MST05/gvhd", data={"csrf_token": token, "date": "2019-01-01", "bilirubin": "1"})
    assert res.status_code == 404
    res = dm2.delete("/api/records/gvhd/1", headers={"X-CSRF-Token": token}, params={}, )
    assert res.status_code in (404, 422)


def test_posts_without_csrf_are_rejected(web):
    dm1 = login(web, "dm1")
    for path, data in (("/patients/MST05/gvhd", {"date": "2019-01-01"}), ("/logout", {}), ("/studies/0/run", {}),
                       ("/patients/MST05/gvhd/grade", {"bilirubin": "2"})):  # fmt: skip
        assert dm1.post(path, data=data).status_code == 403, path
        assert dm1.post(path, data={**data, "csrf_token": "forged"}).status_code == 403, path
    res = dm1.post("/api/patients/MST05/gvhd", json={"date": "2019-01-01"})  # session cookie, no header
    assert res.status_code == 403
    fresh = TestClient(web, follow_redirects=False)
    assert fresh.post("/login", data={"username": "dm1", "password": PASSWORD}).status_code == 403


def _audit_rows(web, **where) -> list[dict]:
    with web.state.store.engine.connect() as conn:
        q = sa.select(AUDIT_LOG).where(*[AUDIT_LOG.c[k] == v for k, v in where.items()])
        return [dict(r) for r in conn.execute(q).mappings()]


def test_every_change_writes_an_audit_row(web):
    dm1 = login(web, "dm1")
    token = page_csrf(dm1)
    before = len(_audit_rows(web, patient_id="MST16"))
    res = dm1.post("/patients/MST16/gvhd", data={"csrf_token": token, "date": "2016-01-10", "skin_bsa": "30"})
    assert res.status_code == 303
    created = _audit_rows(web, patient_id="MST16", action="create")
    # one audit row per record: the MAGIC grade (with the raw values) and the four organ stages
    assert len(_audit_rows(web, patient_id="MST16")) == before + 5
    grade = next(r for r in created if '"item": "agvhd_grade"' in r["new_values"])
    assert '"value_text": "1"' in grade["new_values"] and '\\"skin_bsa\\": 30.0' in grade["new_values"]
    assert grade["username"] == "dm1" and grade["table_name"] == "assessments"
    row_id = grade["row_id"]
    res = dm1.request("DELETE", f"/api/records/assessments/{row_id}", json={"reason": "entered twice"},
                      headers={"X-CSRF-Token": token})  # fmt: skip
    assert res.status_code == 204
    deleted = _audit_rows(web, patient_id="MST16", action="delete")
    assert deleted and deleted[-1]["reason"] == "entered twice" and '"agvhd_grade"' in deleted[-1]["old_values"]
    with web.state.store.engine.connect() as conn:  # soft delete: the row is still there
        rows = web.state.store.load()["assessments"]
        assert ((rows["patient_id"] == "MST16") & (rows["item"] == "agvhd_grade")).sum() == 0
        assert conn.execute(sa.text(f"SELECT deleted FROM assessments WHERE row_id = {int(row_id)}")).scalar() in (
            1, True)
    csv = dm1.get("/patients/MST16/audit?format=csv")
    assert csv.status_code == 200 and "entered twice" in csv.text


def test_locked_study_needs_a_reason(web):
    admin = login(web, "admin")
    token = page_csrf(admin)
    assert admin.post("/admin/lock", data={"csrf_token": token, "locked": "yes", "reason": "analysis"}).status_code == 303
    dm1 = login(web, "dm1")
    t1 = page_csrf(dm1)
    assert dm1.post("/patients/MST17/gvhd", data={"csrf_token": t1, "date": "2015-01-10"}).status_code == 403
    res = dm1.post("/patients/MST17/gvhd", data={"csrf_token": t1, "date": "2015-01-10", "reason": "late entry"})
    assert res.status_code == 303
    assert _audit_rows(web, patient_id="MST17", action="create")[-1]["reason"] == "late entry"
    assert login(web, "dm1").post("/admin/lock", data={"csrf_token": page_csrf(dm1), "locked": "no",
                                                       "reason": "x"}).status_code == 403  # fmt: skip
    admin.post("/admin/lock", data={"csrf_token": token, "locked": "no", "reason": "analysis done"})


def test_login_throttling(web):
    client = TestClient(web, follow_redirects=False)
    token = csrf_of(client.get("/login").text)
    for _ in range(5):
        assert client.post("/login", data={"username": "vw1", "password": "nope", "csrf_token": token}).status_code == 401
    res = client.post("/login", data={"username": "vw1", "password": PASSWORD, "csrf_token": token})
    assert res.status_code == 429
    web.state.throttle.succeeded("user:vw1", "addr:testclient")


def test_errors_show_a_reference_and_logs_hold_no_identifiers(web, monkeypatch, caplog):
    import allotrack.web.routes.pages as pages

    client = login(web, "dm1", raise_server_exceptions=False)
    caplog.set_level(logging.INFO, logger="allotrack.web")
    assert client.get("/patients/MST05").status_code == 200

    def broken(*args, **kwargs):
        raise RuntimeError("patient MST05 broke")

    monkeypatch.setattr(pages, "patient_timeline", broken)
    res = client.get("/patients/MST05")
    assert res.status_code == 500 and "reference" in res.text and "MST05 broke" not in res.text
    assert "Traceback" not in res.text
    text = caplog.text
    assert "/patients/{patient_id}" in text and "MST05" not in text and "RuntimeError" in text


API_CASES = [  # (method, path, body, roles allowed)
    ("GET", "/api/patients", None, {"admin", "dm1", "an1", "vw1"}),
    ("GET", "/api/patients/MST21", None, {"admin", "dm1", "an1", "vw1"}),
    ("GET", "/api/patients/MST21/audit", None, {"admin", "dm1", "an1", "vw1"}),
    ("GET", "/api/alerts", None, {"admin", "dm1", "an1", "vw1"}),
    ("POST", "/api/patients/MST21/gvhd", {"date": "2015-06-01", "skin_bsa": 10}, {"admin", "dm1"}),
    ("POST", "/api/patients/MST21/crs", {"date": "2015-06-02", "temperature_c": 38.2}, {"admin", "dm1"}),
]


@pytest.mark.parametrize(("method", "path", "body", "allowed"), API_CASES)
def test_each_role_on_each_api_route(web, method, path, body, allowed):
    client = TestClient(web)
    for user in ("admin", "dm1", "an1", "vw1", "dm2"):
        token = client.post("/api/token", json={"username": user, "password": PASSWORD}).json()["token"]
        res = client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        if user == "dm2":
            assert res.status_code in (200, 404), (user, path)  # lists are scoped; another centre's patient: 404
            if res.status_code == 200:
                assert "MST21" not in res.text
        elif user in allowed:
            assert res.status_code in (200, 201, 422), (user, path, res.text)  # 422: the same record twice
        else:
            assert res.status_code == 403, (user, path, res.status_code)
    assert client.request(method, path, json=body).status_code == 401


@pytest.mark.parametrize("username", ["an1", "vw1"])
def test_read_only_roles_cannot_post_changes(web, username):
    client = login(web, username)
    token = page_csrf(client)
    posts = [("/patients/MST05/gvhd", {"date": "2019-01-01"}), ("/patients/MST05/crs", {"date": "2019-01-01"}),
             ("/admin/lock", {"locked": "yes", "reason": "x"}), ("/import/abc/commit", {})]  # fmt: skip
    for path, data in posts:
        assert client.post(path, data={"csrf_token": token, **data}).status_code == 403, (username, path)
    res = client.post("/import", data={"csrf_token": token}, files=[("files", ("patients.csv", b"patient_id\n", "text/csv"))])
    assert res.status_code == 403
    expected = 403 if username == "vw1" else 303
    res = client.post("/studies", data={"csrf_token": token, "name": f"p-{username}"},
                      files=[("plan", ("p.toml", b'[study]\ntitle = "t"\n[data]\nsource = "demo"\n', "text/plain"))])
    assert res.status_code == expected
