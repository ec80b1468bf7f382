"""Fuzzing the live server: schemathesis generates requests to every operation of the OpenAPI document (loaded
from the running server) as a data manager with an API token and anonymously, and a fixed list of the bad inputs
of issue 15 follows (NaN and 1e309 in JSON, huge ids, 1 MB user names, Latin-1 and binary uploads, a double-click
duplicate post, two deletes of one record): not one response ≥ 500. (This file runs last of the folder: the fuzz
writes at random into centre C1's records.)"""

from __future__ import annotations

import collections
import threading

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from allotrack.web.auth import add_user, issue_token
from hostile.hostile_live import PASSWORD, Live, csrf_of, rows_of

MB = 2**20


@pytest.fixture(scope="session")
def fuzz_token(live: Live) -> str:
    user = add_user(live.engine, "fuzzer", PASSWORD, "data_manager", "C1")
    return issue_token(live.engine, user, days=1)


def test_schemathesis_finds_no_server_error(live: Live, fuzz_token: str) -> None:
    """Every operation of the document the live server serves, a few generated requests each (hypothesis), sent
    with the data manager's token and again anonymously."""
    schema = schemathesis.openapi.from_url(f"{live.base}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 13
    calls: list[tuple[str, int]] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: schemathesis.Case) -> None:
            for headers in ({"Authorization": f"Bearer {fuzz_token}"}, {}):
                res = case.call(headers=headers, timeout=30)
                calls.append((f"{case.method} {case.formatted_path}", res.status_code))
                assert res.status_code < 500, (case.method, case.formatted_path, res.status_code, res.text[:300])

        fuzz()
    assert len(calls) >= 2 * len(operations)
    print(f"\n[{live.backend}] schemathesis: {len(calls)} requests, statuses "
          f"{dict(sorted(collections.Counter(s for _, s in calls).items()))}")


def test_the_bad_inputs_of_the_issue_get_no_500(live: Live) -> None:
    statuses: list[tuple[str, int]] = []
    token = {"Authorization": f"Bearer {live.tokens['dm1']}", "Content-Type": "application/json"}
    with live.client(headers=token) as api:
        for value in ("NaN", "Infinity", "-Infinity", "1e309", "-1e309"):
            for path, field in (("gvhd", "skin_bsa"), ("gvhd", "bilirubin"), ("crs", "temperature_c"),
                                ("crs", "vasopressors"), ("gvhd", "reason"), ("gvhd", "date")):  # fmt: skip
                res = api.post(f"/api/patients/MST05/{path}", content=f'{{"date": "2019-01-01", "{field}": {value}}}')
                statuses.append((f"{path} {field}={value}", res.status_code))
                assert res.status_code == 422, statuses[-1]
        res = api.request("DELETE", "/api/records/assessments/1", content='{"reason": NaN}')
        assert res.status_code == 422
        huge = ["x" * 10_000, "9" * 40, "-1", "0", "%00", "..%2F..%2Fetc", "MST05%27%20OR%201%3D1--"]
        for value in huge:
            for path in (f"/api/patients/{value}", f"/api/patients/{value}/audit", f"/api/patients/{value}/locks",
                         f"/api/records/assessments/{value}/lock", f"/api/tokens/{value}"):  # fmt: skip
                method = "POST" if path.endswith("/lock") else "DELETE" if "/tokens/" in path else "GET"
                res = api.request(method, path, json={"reason": "fuzz"})
                statuses.append((f"{method} {path[:60]}", res.status_code))
                assert 400 <= res.status_code < 500, statuses[-1]
        res = api.get("/api/patients", params={"offset": "9" * 30, "limit": "-5"})
        assert res.status_code == 422
        for params in ({"q": "\x00"}, {"q": "%\x00_"}):  # a NUL character: PostgreSQL cannot even compare it
            res = api.get("/api/patients", params=params)
            statuses.append((f"GET /api/patients {params}", res.status_code))
            assert res.status_code in (200, 422), statuses[-1]
        res = api.post("/api/patients/MST05/crs", json={"date": "2019-01-05", "reason": "nul \x00 in the reason"})
        statuses.append(("crs reason with NUL", res.status_code))
        assert res.status_code in (201, 422), statuses[-1]
    dm = live.session("dm1")
    for res in (dm.post("/studies/" + "9" * 40 + "/run"), dm.get("/patients/" + "x" * 10_000),
                dm.get("/patients", params={"page": "9" * 30}), dm.get("/dashboard", params={"group": "\x00" * 50}),
                dm.get("/patients", params={"q": "\x00"}), dm.get("/patients/%00/audit"),
                dm.post("/patients/MST05/gvhd", data={"date": "2019-01-06", "reason": "\x00"}),
                dm.post("/randomise", data={"study": "\x00", "patient_id": "\x00"})):
        statuses.append((str(res.url)[:60], res.status_code))
        assert res.status_code < 500, statuses[-1]
    with live.client() as anonymous:  # 1 MB user names: refused before any work, and remembered nowhere
        throttle = live.app.state.throttle
        keys = len(throttle)
        page = anonymous.get("/login")

        for _ in range(3):
            res = anonymous.post("/login", data={"username": "u" * MB, "password": "x", "csrf_token": csrf_of(page.text)})
            assert res.status_code in (400, 401), res.status_code  # 400: a form field over Starlette's 1 MB
            res = anonymous.post("/api/token", json={"username": "u" * MB, "password": "x"})
            assert res.status_code == 422, res.status_code
        assert len(throttle) == keys
    for name, data in (("patients.csv", "patient_id,diagnosis\nA1,é\n".encode("latin-1")),
                       ("patients.csv", bytes(range(256)) * 64)):  # fmt: skip
        res = dm.post("/import", files=[("files", (name, data, "text/csv"))])
        assert res.status_code < 500
    assert all(status < 500 for _, status in statuses)


def test_a_double_click_gets_a_conflict_or_a_refusal_not_a_500(live: Live) -> None:
    clients = [live.session("dm1"), live.session("dm1")]
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    form = {"date": "2014-02-03", "skin_bsa": "20"}

    def post(i: int) -> None:
        barrier.wait()
        statuses.append(clients[i].post("/patients/MST18/gvhd", data=form).status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) in ([303, 409], [303, 422]), statuses
    stored = rows_of(live.engine, "SELECT count(*) AS n FROM assessments WHERE patient_id = 'MST18' AND item = "
                                  "'agvhd_grade' AND date = '2014-02-03' AND NOT deleted")  # fmt: skip
    assert stored[0]["n"] == 1


def test_two_deletes_of_one_record_delete_it_once(live: Live) -> None:
    row_id = rows_of(live.engine, "SELECT max(row_id) AS r FROM observations WHERE patient_id = 'MST19' AND NOT "
                                  "deleted")[0]["r"]  # fmt: skip
    clients = [live.bearer("dm1"), live.bearer("dm1")]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def delete(client: httpx.Client) -> None:
        barrier.wait()
        statuses.append(client.request("DELETE", f"/api/records/observations/{row_id}",
                                       json={"reason": "entered twice"}).status_code)  # fmt: skip

    threads = [threading.Thread(target=delete, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [204, 404], statuses
    audit = rows_of(live.engine, "SELECT count(*) AS n FROM audit_log WHERE table_name = 'observations' AND row_id = "
                                 ":r AND action = 'delete'", r=row_id)  # fmt: skip
    assert audit[0]["n"] == 1
    res = clients[0].request("DELETE", f"/api/records/observations/{row_id}", json={"reason": "again"})
    assert res.status_code == 404
