"""Hostile and odd inputs: request size limits (413 before reading), workbook and CSV size limits, stale uploads
removed, no 500 for any bad input, a last-resort error handler that logs no data, double-click posts, blank
reasons, what a viewer sees of the audit trail, spreadsheet-safe audit CSV, security headers."""

from __future__ import annotations

import io
import logging
import os
import shutil
import threading
import time
import zipfile
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from webfixtures import PASSWORD, csrf_of, import_result, login, page_csrf, web  # noqa: F401  (web: the fixture)

from allotrack.study.demo import demo_records
from allotrack.web.app import create_app
from allotrack.web.audit import is_locked
from allotrack.web.auth import add_user

TEMPLATES = Path(__file__).parents[2] / "src" / "allotrack" / "web" / "templates"


def _small_app(tmp_path: Path, **limits) -> TestClient:
    app = create_app(f"sqlite:///{tmp_path / 'web.db'}", secret_key="hostile", uploads_dir=tmp_path / "uploads",
                     **limits)  # fmt: skip
    app.state.store.import_records(demo_records(), user="setup", centre="C1")
    add_user(app.state.store.engine, "dm1", PASSWORD, "data_manager", "C1")
    return app


def _upload(client: TestClient, name: str, data: bytes, kind: str = "text/csv"):
    """The upload's answer, or (the check runs in the background) the result of its check."""
    answer = client.post("/import", data={"csrf_token": page_csrf(client)}, files=[("files", (name, data, kind))])
    return import_result(client, answer)


def _bearer(app, user: str) -> dict[str, str]:
    token = TestClient(app).post("/api/token", json={"username": user, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


# 1. limits


def _chunks_read(app, path: str) -> int:
    """How many 1000-byte chunks of an endless chunked (anonymous) POST the application reads before it answers."""
    read, sent = [0], []

    async def receive():
        read[0] += 1
        return {"type": "http.request", "body": b"y" * 1000, "more_body": read[0] < 1000}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                         (b"transfer-encoding", b"chunked")], "client": ("127.0.0.1", 1), "server": ("testserver", 80)}

    async def call():
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)

    anyio.run(call)
    assert sent[0]["status"] in (303, 401, 413), sent[0]
    return read[0]


def test_request_bodies_over_the_limit_get_413_before_being_read(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLOTRACK_MAX_BODY_BYTES", "5000")
    app = _small_app(tmp_path)
    assert app.state.limits.max_body_bytes == 5000
    anonymous = TestClient(app, follow_redirects=False)
    res = anonymous.post("/login", content=b"x" * 6000, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert res.status_code == 413 and "too large" in res.text
    res = anonymous.post("/api/token", content=iter([b"y" * 1000] * 100), headers={"Content-Type": "application/json"})
    assert res.status_code == 413
    assert _chunks_read(app, "/api/token") < 20 and _chunks_read(app, "/patients/MST05/gvhd") < 20
    dm1 = login(app, "dm1")
    assert _upload(dm1, "patients.csv", b"patient_id\n" + b"A\n" * 4000).status_code == 413
    assert login(app, "dm1").get("/patients").status_code == 200  # small requests still pass
    monkeypatch.delenv("ALLOTRACK_MAX_BODY_BYTES")
    defaults = create_app(f"sqlite:///{tmp_path / 'd.db'}", uploads_dir=tmp_path / "d").state.limits
    assert (defaults.max_body_bytes, defaults.max_xlsx_bytes, defaults.max_csv_rows) == (
        20 * 2**20, 50 * 2**20, 1_000_000)


def _workbook(sheet_xml_bytes: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", "<worksheet>" + " " * sheet_xml_bytes + "</worksheet>")
    return buffer.getvalue()


def test_workbooks_and_csv_files_over_the_limits_are_refused_before_parsing(tmp_path, monkeypatch):
    import pandas as pd

    from allotrack.records.importers import files

    app = _small_app(tmp_path, max_xlsx_bytes=100_000, max_csv_rows=10)
    dm1 = login(app, "dm1", raise_server_exceptions=False)

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed")

    monkeypatch.setattr(pd, "read_excel", no_parsing)
    res = _upload(dm1, "study.xlsx", _workbook(200_000), "application/octet-stream")
    assert res.status_code == 422 and "uncompressed" in res.text, res.text
    res = _upload(dm1, "patients.csv", b"patient_id\n" + b"".join(b"P%d\n" % i for i in range(20)))
    assert res.status_code == 422 and "rows" in res.text, res.text
    monkeypatch.setattr(files, "MAX_XLSX_BYTES", 100_000)  # the CLI's reader has the same check
    (tmp_path / "bomb.xlsx").write_bytes(_workbook(200_000))
    with pytest.raises(files.InputError, match="uncompressed"):
        files.read_source(tmp_path / "bomb.xlsx")


def test_stale_uploads_are_removed_at_startup_and_at_each_upload(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    old, fresh = uploads / "old-token", uploads / "fresh-token"
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "patients.csv").write_text("patient_id\n")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    app = _small_app(tmp_path)
    assert not old.exists() and fresh.exists()
    os.utime(fresh, (two_hours_ago, two_hours_ago))
    dm1 = login(app, "dm1")
    res = _upload(dm1, "patients.csv", b"patient_id,sex,diagnosis,diagnosis_date\nNEW1,F,AML,2020-01-01\n")
    assert res.status_code == 200 and not fresh.exists(), res.text
    token = res.text.split('action="/import/')[1].split("/")[0]
    for child in uploads.iterdir():  # the checked import expired before it was committed: 422, not 500
        shutil.rmtree(child)
    res = dm1.post(f"/import/{token}/commit", data={"csrf_token": page_csrf(dm1)})
    assert res.status_code == 422 and "upload the files again" in res.text


# 2. no 500s


def test_bad_inputs_answer_4xx_with_a_message(web):
    dm1 = login(web, "dm1", raise_server_exceptions=False)
    token = page_csrf(dm1)
    res = dm1.post("/patients/MST05/gvhd", data={"csrf_token": token, "date": "2019-01-01", "skin_bsa": "abc"})
    assert res.status_code == 422 and "must be a number" in res.text
    api = _bearer(web, "dm1")
    for value in ("NaN", "Infinity", "-Infinity", "1e309"):
        for path, field in (("gvhd", "skin_bsa"), ("crs", "temperature_c"), ("gvhd", "reason")):
            body = f'{{"date": "2019-01-01", "{field}": {value}}}'
            res = dm1.post(f"/api/patients/MST05/{path}", content=body, headers=api)
            assert res.status_code == 422, (path, field, value, res.status_code)
    res = dm1.request("DELETE", "/api/records/assessments/1", content='{"reason": NaN}', headers=api)
    assert res.status_code == 422
    assert dm1.post("/studies/" + "9" * 40 + "/run", data={"csrf_token": token}).status_code in (404, 422)
    long_id = "x" * 10_000
    for path in (f"/patients/{long_id}", f"/patients/{long_id}/audit", f"/patients/{long_id}/gvhd/new",
                 f"/patients?q={long_id}"):  # fmt: skip
        assert dm1.get(path).status_code in (404, 422), path
    for path in (f"/api/patients/{long_id}", f"/api/patients/{long_id}/audit", f"/api/patients?q={long_id}"):
        assert dm1.get(path, headers=api).status_code in (404, 422), path
    uploads = [("patients.csv", b""), ("patients.csv", "patient_id,diagnosis\nA1,é\n".encode("latin-1")),
               ("patients.csv", bytes(range(256)) * 8), ("study.xlsx", b"PK\x03\x04 not a workbook"),
               ("../x.csv", b"patient_id\nA\n"), ("a" * 300 + ".csv", b"patient_id\nA\n"),
               ("pat\x00ients.csv", b"patient_id\nA\n"), ("..", b"patient_id\nA\n"), (".", b"patient_id\nA\n"),
               ("patients", b"patient_id\nA\n"), ("/etc/passwd", b"root:x:0:0\n")]  # fmt: skip
    for name, data in uploads:
        res = _upload(dm1, name, data)
        assert res.status_code == 422 and "problem" in res.text, (name[:20], res.status_code)


def test_unexpected_errors_stop_in_the_app_and_log_no_data(web, monkeypatch, caplog):
    import allotrack.web.routes.pages as pages

    client = login(web, "dm1")  # raise_server_exceptions: nothing may reach the server (uvicorn logs tracebacks)

    def broken(*args, **kwargs):
        raise sa.exc.IntegrityError("INSERT INTO patients VALUES (?)", {"patient_id": "MST05-secret"},
                                    Exception("duplicate MST05-secret"))  # fmt: skip

    monkeypatch.setattr(pages, "patient_timeline", broken)
    caplog.set_level(logging.DEBUG)
    res = client.get("/patients/MST05")
    assert res.status_code == 500 and "reference" in res.text and "secret" not in res.text
    ref = res.text.split("reference ")[1][:12]
    assert ref in caplog.text and "IntegrityError" in caplog.text and "secret" not in caplog.text
    assert "Traceback" not in caplog.text


def test_a_double_click_gets_a_conflict_not_a_500(web, monkeypatch):
    import allotrack.web.data as data

    barrier = threading.Barrier(2)
    original = data.is_locked

    def in_step(conn):  # both requests in their transaction before either checks for the record (unless the
        locked = original(conn)  # database makes the second wait, as SQLite's write lock does)
        try:
            barrier.wait(timeout=1)
        except threading.BrokenBarrierError:
            pass
        return locked

    monkeypatch.setattr(data, "is_locked", in_step)
    form = {"date": "2014-02-03", "skin_bsa": "20"}
    clients = [login(web, "dm1", raise_server_exceptions=False) for _ in range(2)]
    tokens = [page_csrf(c) for c in clients]
    statuses: list[int] = []

    def post(i: int) -> None:
        statuses.append(clients[i].post("/patients/MST18/gvhd", data={**form, "csrf_token": tokens[i]}).status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) in ([303, 409], [303, 422]), statuses


# 3. reasons


def test_a_blank_reason_is_no_reason(web):
    admin = login(web, "admin", raise_server_exceptions=False)
    token = page_csrf(admin)
    res = admin.post("/admin/lock", data={"csrf_token": token, "locked": "yes", "reason": " \t "})
    assert res.status_code == 422 and "reason" in res.text
    with web.state.store.engine.connect() as conn:
        assert not is_locked(conn)
    assert admin.post("/admin/lock", data={"csrf_token": token, "locked": "yes", "reason": "analysis"}).status_code == 303
    try:
        dm1 = login(web, "dm1", raise_server_exceptions=False)
        res = dm1.post("/patients/MST19/gvhd", data={"csrf_token": page_csrf(dm1), "date": "2015-01-10", "reason": "  "})
        assert res.status_code == 403
        res = dm1.post("/api/patients/MST19/crs", json={"date": "2015-01-11", "reason": "   "}, headers=_bearer(web, "dm1"))
        assert res.status_code == 403
    finally:
        admin.post("/admin/lock", data={"csrf_token": token, "locked": "no", "reason": "analysis done"})


# 4. audit


def test_a_viewer_sees_who_when_and_what_but_no_values_and_the_csv_is_spreadsheet_safe(web):
    dm1 = login(web, "dm1")
    res = dm1.post("/patients/MST20/gvhd", data={"csrf_token": page_csrf(dm1), "date": "2016-03-01", "skin_bsa": "40",
                                                 "reason": "=HYPERLINK(\"http://evil\")"})  # fmt: skip
    assert res.status_code == 303
    assert "agvhd_grade" in dm1.get("/patients/MST20/audit").text
    csv = dm1.get("/patients/MST20/audit?format=csv").text
    assert "'=HYPERLINK" in csv and ",=HYPERLINK" not in csv and "\n=" not in csv
    viewer = login(web, "vw1")
    page = viewer.get("/patients/MST20/audit")
    assert page.status_code == 200 and "dm1" in page.text and "create" in page.text
    assert "agvhd_grade" not in page.text and "skin_bsa" not in page.text
    csv = viewer.get("/patients/MST20/audit?format=csv").text
    assert "dm1" in csv and "agvhd_grade" not in csv and "new_values" not in csv
    rows = viewer.get("/api/patients/MST20/audit", headers=_bearer(web, "vw1")).json()
    assert rows and all("new_values" not in r and "old_values" not in r for r in rows)
    assert {r["action"] for r in rows} >= {"create"} and all(r["username"] for r in rows)
    rows = dm1.get("/api/patients/MST20/audit", headers=_bearer(web, "dm1")).json()
    assert any("agvhd_grade" in (r["new_values"] or "") for r in rows)


# 5. headers


def test_security_headers_and_no_third_party_scripts(web):
    client = TestClient(web, follow_redirects=False)
    for res in (client.get("/login"), client.get("/static/htmx.min.js"), client.get("/no/such/page")):
        csp = res.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert res.headers["x-content-type-options"] == "nosniff" and res.headers["referrer-policy"]
        assert "strict-transport-security" not in res.headers
    secure = TestClient(web, base_url="https://testserver", follow_redirects=False)
    assert "max-age=" in secure.get("/login").headers["strict-transport-security"]
    assert client.get("/api/docs").status_code == 404 and client.get("/api/openapi.json").status_code == 200
    for template in TEMPLATES.glob("*.html"):  # the policy allows no inline script or style
        text = template.read_text()
        assert "<style" not in text and "style=" not in text and "<script>" not in text, template.name
        assert " onclick=" not in text and "hx-on" not in text, template.name
