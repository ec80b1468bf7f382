"""The study lock on every write path of the live server: with the study data locked, a change without a reason —
or with a blank one, " " — is refused and writes nothing, whether it comes from a form, the API, an import commit,
a data-entry form, a delete or a randomisation; with a reason a form change goes through."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hostile.hostile_live import Browser, Live, changed, fingerprint, rows_of
from hostile.test_matrix import checked_import

PID = "MST16"  # alive, followed up to 2025-10-31 (not the matrix's patient, whose randomisation is dated today)


@pytest.fixture
def locked(live: Live) -> Iterator[Browser]:
    admin = live.session("adm1")
    assert admin.post("/admin/lock", data={"locked": "yes", "reason": "   "}).status_code == 422  # no reason: no lock
    assert admin.post("/admin/lock", data={"locked": "yes", "reason": "database lock for analysis"}).status_code == 303
    try:
        yield admin
    finally:
        assert admin.post("/admin/lock", data={"locked": "no", "reason": "analysis done"}).status_code == 303


def _refused(live: Live, res: httpx.Response, what: str, before: dict[str, int]) -> None:
    assert 400 <= res.status_code < 500, (what, res.status_code, res.text[:300])
    assert not changed(before, fingerprint(live.engine)), what


def test_every_write_path_needs_a_reason_under_the_lock(live: Live, locked: Browser) -> None:
    dm = live.session("dm1")
    csv = f"patient_id,date,kind\n{PID},2021-02-03,hematologic\n".encode()
    pending = checked_import(dm, {}, csv, table="relapses")  # checked before the commit (reads only)
    api = live.bearer("dm1")
    row = rows_of(live.engine, "SELECT max(row_id) AS r FROM observations WHERE patient_id = :p AND NOT deleted",
                  p=PID)[0]["r"]  # fmt: skip
    for reason in (None, " ", "\t \n"):
        extra = {} if reason is None else {"reason": reason}
        blank = {"reason": reason if reason is not None else ""}
        attempts: list[tuple[str, httpx.Client, str, str, dict[str, Any]]] = [  # (what, client, method, path, ...)
            ("form", dm.http, "POST", f"/patients/{PID}/gvhd", {"data": {"date": "2016-02-02", "skin_bsa": "10"}}),
            ("api gvhd", api, "POST", f"/api/patients/{PID}/gvhd", {"json": {"date": "2016-02-03", **extra}}),
            ("api crs", api, "POST", f"/api/patients/{PID}/crs", {"json": {"date": "2016-02-04", **extra}}),
            ("entry form", dm.http, "POST", f"/patients/{PID}/records/relapses/new",
             {"data": {"date": "2021-02-04", "kind": "hematologic"}}),
            ("record edit", dm.http, "POST", f"/records/observations/{row}/edit", {"data": {"value": "1"}}),
            ("import commit", dm.http, "POST", f"/import/{pending}/commit", {"data": {}}),
            ("delete", api, "DELETE", f"/api/records/observations/{row}", {"json": blank}),
            ("randomise", dm.http, "POST", "/randomise", {"data": {"study": "matrix-rct", "patient_id": PID}}),
        ]
        for what, client, method, path, kwargs in attempts:
            if "data" in kwargs:  # a form: the session's CSRF token and the reason given
                kwargs["data"] = {"csrf_token": dm.csrf, **kwargs["data"], **extra}
            before = fingerprint(live.engine)
            _refused(live, client.request(method, path, **kwargs), f"{what} with reason {reason!r}", before)
    if re.search(r'action="/import/', dm.get(f"/import/jobs/{pending}").text):  # still pending: commit with reason
        before = fingerprint(live.engine)
        res = dm.post(f"/import/{pending}/commit", data={"reason": "late relapse report"})
        assert res.status_code == 303, res.text[:300]
        assert changed(before, fingerprint(live.engine))
    res = dm.post(f"/patients/{PID}/gvhd", data={"date": "2016-02-02", "skin_bsa": "10", "reason": "late entry"})
    assert res.status_code == 303
    audit = rows_of(live.engine, "SELECT reason FROM audit_log WHERE patient_id = :p AND username = 'dm1' ORDER BY "
                                 "audit_id DESC", p=PID)  # fmt: skip
    assert audit[0]["reason"] == "late entry"
