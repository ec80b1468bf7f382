"""Uploads are checked in a background job with progress (issue 15, limits): the upload answers with the job's page
before the check has run, the page follows the stages in order and ends with the same result as before (the
problems, or the report with commit and discard), a job is its user's and centre's alone, a failing check ends as
"failed" with the problems (never a 500), a discarded or stale job's files go, and the CSV reader keeps to a row
limit while it reads, never holding the file's whole text. SQLite and PostgreSQL (the ``web`` fixture)."""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
from pathlib import Path

import pytest
from webfixtures import login, page_csrf, web  # noqa: F401  (web: the fixture)

from allotrack.errors import InputError
from allotrack.web import jobs
from allotrack.web.jobs import JobRunner, app_key

NEW_PATIENT = b"patient_id,sex,diagnosis,diagnosis_date\nJOB1,F,AML,2020-01-01\n"
COMMITTED = NEW_PATIENT.replace(b"JOB1", b"JOBA")  # the one import a test commits (the store is the module's)


class Stepper:
    """Holds the job at each state it writes until the test lets it go on (``step`` of :class:`JobRunner`)."""

    def __init__(self) -> None:
        self.seen: queue.Queue[tuple[str, dict]] = queue.Queue()
        self.go = threading.Semaphore(0)
        self.open = False

    def __call__(self, state: str, status: dict) -> None:
        self.seen.put((state, dict(status)))
        if not self.open:
            self.go.acquire(timeout=60)

    def next(self) -> tuple[str, dict]:
        return self.seen.get(timeout=60)

    def release(self, everything: bool = False) -> None:
        self.open = self.open or everything
        self.go.release()
        if everything:
            for _ in range(100):
                self.go.release()


@pytest.fixture
def runner(web):
    """A runner of the test's own on the application (settle 0: pages never wait for the job)."""
    made: list[tuple[JobRunner, Stepper | None]] = []

    def make(step: Stepper | None = None, **kw) -> JobRunner:
        r = JobRunner(web.state.uploads, app_key(web.state.store.engine.url), settle=0, step=step, **kw)
        web.state.import_jobs = r
        made.append((r, step))
        return r

    yield make
    for r, step in made:
        if step is not None:
            step.release(everything=True)
        r.pool.shutdown(wait=True)
    del web.state.import_jobs


def _post(client, *files: tuple[str, bytes], **fields: str):
    return client.post("/import", data={"csrf_token": page_csrf(client), **fields},
                       files=[("files", (name, data, "text/csv")) for name, data in files])  # fmt: skip


def _token(answer) -> str:
    assert answer.status_code == 303, answer.text[:300]
    location = answer.headers["location"]
    assert re.fullmatch(r"/import/jobs/[A-Za-z0-9_-]{22}", location), location
    return location.rsplit("/", 1)[1]


def _poll(client, token: str):
    return client.get(f"/import/jobs/{token}", headers={"HX-Request": "true"})


def _label(res) -> str:
    if res.headers.get("HX-Refresh") == "true":
        return "(reload)"
    return re.search(r"<p>(.*?)</p>", res.text).group(1)


def test_the_upload_answers_with_the_job_page_before_the_check_has_run(web, runner):
    held = Stepper()
    runner(held)
    dm2 = login(web, "dm2")
    token = _token(_post(dm2, ("patients.csv", COMMITTED)))
    assert held.next()[0] == "queued"  # the job is held before it reads anything
    page = dm2.get(f"/import/jobs/{token}")
    assert page.status_code == 202 and "Checking the files" in page.text and "Ready to import" not in page.text
    assert f'hx-get="/import/jobs/{token}" hx-trigger="every 1s"' in page.text
    assert "Waiting for its turn" in page.text and 'action="/import"' not in page.text  # no second upload form
    fragment = _poll(dm2, token)
    assert fragment.status_code == 200 and fragment.text.startswith('<div id="import-job"')
    assert "<html" not in fragment.text and 'data-stage="queued"' in fragment.text
    held.release(everything=True)
    deadline = time.monotonic() + 60
    while (res := _poll(dm2, token)).headers.get("HX-Refresh") != "true" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert res.status_code == 200 and res.headers.get("HX-Refresh") == "true"  # htmx reloads the page: the result
    done = dm2.get(f"/import/jobs/{token}")
    assert done.status_code == 200 and "Ready to import" in done.text and "<td>patients</td><td>1</td>" in done.text
    assert f'action="/import/{token}/commit"' in done.text and f'action="/import/{token}/discard"' in done.text
    assert dm2.post(f"/import/{token}/commit", data={"csrf_token": page_csrf(dm2)}).status_code == 303
    assert "/patients/JOBA" in dm2.get("/patients?q=JOBA").text
    assert not (web.state.uploads / token).exists()  # committed: the files and the status are gone


def test_progress_is_reported_stage_by_stage_in_order(web, runner, monkeypatch):
    from allotrack.records.importers import files

    monkeypatch.setattr(jobs, "ROWS_EVERY", 0.0)  # every progress report written (none skipped as too soon)
    monkeypatch.setattr(files, "CHUNK_ROWS", 2)  # rows reported every two rows
    stepper = Stepper()
    runner(stepper)
    dm2 = login(web, "dm2")
    patients = b"patient_id,sex,diagnosis,diagnosis_date\n" + b"".join(
        b"PRG%d,M,MDS,2020-02-0%d\n" % (i, i) for i in range(1, 6))  # 5 rows  # fmt: skip
    follow_up = b"patient_id,last_contact_date\nPRG1,2021-03-04\n"
    token = _token(_post(dm2, ("patients.csv", patients), ("follow_up.csv", follow_up)))
    shown, states = [], []
    while True:
        state, _ = stepper.next()
        res = _poll(dm2, token)
        assert res.status_code == 200
        states.append(state)
        shown.append((_label(res), re.search(r'<progress max="1" value="([0-9.]+)"', res.text)))
        stepper.release()
        if state in ("done", "failed"):
            break
    labels = [label for label, _ in shown]
    assert states == ["queued"] + ["reading"] * 6 + ["validating", "done"], states
    assert labels == [
        "Waiting for its turn (other files are being checked)",
        "Reading file 1 of 2 (patients.csv)",
        "Reading file 1 of 2 (patients.csv): 2 of about 5 rows read",
        "Reading file 1 of 2 (patients.csv): 4 of about 5 rows read",
        "Reading file 1 of 2 (patients.csv): 5 of about 5 rows read",
        "Reading file 2 of 2 (follow_up.csv)",
        "Reading file 2 of 2 (follow_up.csv): 1 of about 1 rows read",
        "Checking the records against the rules and the stored records",
        "(reload)",
    ], labels
    fractions = [float(m.group(1)) if m else None for _, m in shown]
    assert fractions == [None, 0.0, 0.2, 0.4, 0.5, 0.5, 1.0, None, None]  # file k of n, rows read of the total
    result = dm2.get(f"/import/jobs/{token}")
    assert result.status_code == 200 and "<td>patients</td><td>5</td>" in result.text
    assert "<td>follow_up</td><td>1</td>" in result.text


def test_a_job_is_its_users_alone_and_answers_others_as_an_unknown_one(web, runner):
    held = Stepper()
    runner(held)
    dm1 = login(web, "dm1")
    token = _token(_post(dm1, ("patients.csv", NEW_PATIENT.replace(b"JOB1", b"JOBC1"))))
    assert dm1.get(f"/import/jobs/{token}").status_code == 202
    unknown = "A" * 22
    for other in (login(web, "dm2"), login(web, "admin")):  # another centre's data manager; an administrator
        for path in (f"/import/jobs/{token}", f"/import/jobs/{unknown}", "/import/jobs/..%2F..%2Fetc"):
            assert other.get(path).status_code == 404, path
        assert other.get(f"/import/jobs/{token}").text == other.get(f"/import/jobs/{unknown}").text
        assert _poll(other, token).status_code == 404
        assert other.post(f"/import/{token}/commit", data={"csrf_token": page_csrf(other)}).status_code == 403
    viewer = login(web, "vw1")  # of the same centre, without the right to import
    assert viewer.get(f"/import/jobs/{token}").status_code == 403
    held.release(everything=True)
    assert "Ready to import" in _wait(dm1, token).text
    r = web.state.import_jobs  # the status is bound to the application, the user and (for a centre's user) it
    own = _user_id(web, "dm1")
    assert r.status(token, own, "C1")["state"] == "done"
    assert r.status(token, own, "C2") is None and r.status(token, own + 100, "C1") is None
    assert JobRunner(web.state.uploads, "another-app").status(token, own, "C1") is None


def _user_id(web, name: str) -> int:
    import sqlalchemy as sa

    with web.state.store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT user_id FROM users WHERE username = :u"), {"u": name}).scalar_one())


def _wait(client, token: str):
    deadline = time.monotonic() + 60
    while (res := client.get(f"/import/jobs/{token}")).status_code == 202 and time.monotonic() < deadline:
        time.sleep(0.05)
    return res


def test_a_failing_check_ends_as_failed_with_the_problems_and_its_files_removed(web, runner):
    runner()
    dm2 = login(web, "dm2")  # raise_server_exceptions: nothing may escape as a 500
    bad = b"patient_id,sex,diagnosis,diagnosis_date\nJOB7,F,AML,2020-01-01\nJOB8,X,AML,2020-01-01\n"
    token = _token(_post(dm2, ("patients.csv", bad)))
    res = _wait(dm2, token)
    assert res.status_code == 422 and "Nothing was imported: 1 problem(s)" in res.text
    assert ("<li>patients (patients.csv line 3), column &#39;sex&#39; (value &#39;X&#39;): must be one of "
            "[&#39;F&#39;, &#39;M&#39;]</li>") in res.text  # table, line, column, value, rule
    assert 'action="/import/' not in res.text.replace('action="/import"', "")  # no commit button
    assert list((web.state.uploads / token / "files").iterdir()) == []  # refused files are not kept
    status = json.loads((web.state.uploads / token / "status.json").read_text())
    assert status["state"] == "failed" and status["problems"] == [
        "patients (patients.csv line 3), column 'sex' (value 'X'): must be one of ['F', 'M']"]
    refused = dm2.post(f"/import/{token}/commit", data={"csrf_token": page_csrf(dm2)})
    assert refused.status_code == 422 and "did not pass the check" in refused.text
    latin1 = "patient_id,sex,diagnosis,diagnosis_date\nJOB9,F,Lymphome à cellules B,2020-01-01\n".encode("latin-1")
    res = _wait(dm2, _token(_post(dm2, ("patients.csv", latin1))))
    at = latin1.index(b"\xe0")
    assert res.status_code == 422 and f"patients.csv line 2: byte 0xe0 at offset {at} is not valid utf-8" in res.text


def test_an_unexpected_error_in_a_job_is_a_failure_with_a_reference_and_no_data_logged(web, runner, monkeypatch,
                                                                                           caplog):  # fmt: skip
    from allotrack.records import importers

    def broken(*args, **kwargs):
        raise RuntimeError("secret JOB1 value")

    monkeypatch.setattr(importers, "read_tables", broken)
    runner()
    caplog.set_level(logging.DEBUG)
    dm2 = login(web, "dm2")
    res = _wait(dm2, _token(_post(dm2, ("patients.csv", NEW_PATIENT))))
    assert res.status_code == 422 and "the check failed unexpectedly (reference" in res.text
    assert "secret" not in res.text and "secret" not in caplog.text and "RuntimeError" in caplog.text


def test_a_discarded_or_stale_jobs_files_are_removed_and_a_running_one_stops(web, runner):
    held = Stepper()
    runner(held)
    dm2 = login(web, "dm2")
    token = _token(_post(dm2, ("patients.csv", NEW_PATIENT)))
    assert held.next()[0] == "queued"
    folder = web.state.uploads / token
    assert [p.name for p in (folder / "files").iterdir()] == ["patients.csv"]
    assert dm2.post(f"/import/{token}/discard", data={"csrf_token": page_csrf(dm2)}).status_code == 303
    assert not folder.exists()
    held.release(everything=True)  # the job goes on, finds its folder gone and stops, writing nothing
    web.state.import_jobs.pool.shutdown(wait=True)
    assert not folder.exists() and dm2.get(f"/import/jobs/{token}").status_code == 404
    runner()
    stale = _token(_post(dm2, ("patients.csv", NEW_PATIENT)))
    assert _wait(dm2, stale).status_code == 200
    old = time.time() - 2 * web.state.limits.upload_max_age
    os.utime(web.state.uploads / stale, (old, old))
    fresh = _token(_post(dm2, ("patients.csv", NEW_PATIENT)))  # each upload removes the stale ones
    assert not (web.state.uploads / stale).exists() and (web.state.uploads / fresh).exists()
    assert dm2.get(f"/import/jobs/{stale}").status_code == 404
    assert _wait(dm2, fresh).status_code == 200


def test_a_user_has_at_most_two_checks_running(web, runner):
    held = Stepper()
    runner(held)
    dm2 = login(web, "dm2")
    first, second = _token(_post(dm2, ("patients.csv", NEW_PATIENT))), _token(_post(dm2, ("patients.csv", NEW_PATIENT)))
    third = _post(dm2, ("patients.csv", NEW_PATIENT))
    assert third.status_code == 429 and "you already have 2 imports being checked" in third.text
    assert _post(login(web, "dm1"), ("patients.csv", NEW_PATIENT)).status_code == 303  # another user may
    held.release(everything=True)
    assert _wait(dm2, second).status_code == 200
    replaced = _wait(dm2, first)  # passed, but the session's later upload replaced it: no commit button
    assert replaced.status_code == 409 and "only the latest upload of the browser session" in replaced.text
    assert f'action="/import/{first}/commit"' not in replaced.text
    assert _post(dm2, ("patients.csv", NEW_PATIENT)).status_code == 303


def test_a_job_whose_server_process_is_gone_reads_as_failed(tmp_path):
    r = JobRunner(tmp_path, "app")
    (tmp_path / ("B" * 22)).mkdir()
    (tmp_path / ("B" * 22) / "status.json").write_text(json.dumps(
        {"state": "reading", "app": "app", "user_id": 7, "centre": "C1", "process": "999999999:1"}))  # fmt: skip
    status = r.status("B" * 22, 7, "C1")
    assert status["state"] == "failed" and "the server restarted" in status["problems"][0]
    assert r.unfinished(7) == 0
    r.pool.shutdown()


# ------------------------------------------------------------------------------------------ the bounded reader
def test_the_csv_reader_checks_the_row_limit_while_reading_and_never_reads_the_whole_file(tmp_path, monkeypatch):
    from allotrack.records.importers import files, read_tables

    path = tmp_path / "patients.csv"
    path.write_bytes(b"patient_id,sex\n" + b"".join(b"P%d,F\n" % i for i in range(10)))

    def whole(*args, **kwargs):
        raise AssertionError("the whole file was read at once")

    monkeypatch.setattr(Path, "read_bytes", whole)
    monkeypatch.setattr(Path, "read_text", whole)
    monkeypatch.setattr(files, "CHUNK_ROWS", 4)
    monkeypatch.setattr(files, "BLOCK", 16)
    seen: list[tuple[int, int | None]] = []

    class Told:
        def file(self, index, count, name):
            seen.append((index, count))

        def rows(self, read, total):
            seen.append((read, total))

    records = read_tables([path], progress=Told())
    assert records["patients"]["patient_id"].tolist() == [f"P{i}" for i in range(10)]
    assert seen == [(1, 1), (4, 10), (8, 10), (10, 10)]
    with pytest.raises(InputError, match=r"patients.csv has more than 5 rows: split it"):
        read_tables([path], max_rows=5)
    assert read_tables([path], max_rows=10)["patients"].shape == (10, 2)
    quoted = tmp_path / "deaths.csv"  # a quoted line break: the next record's line is still the file's own
    quoted.write_bytes(b'patient_id,date,cause\nP1,2020-01-01,"two\nlines"\n\nP2,2020-01-02,x\n')
    assert read_tables([quoted]).origins["deaths"]["line"].tolist() == [2, 5]
    latin1 = tmp_path / "labs.csv"  # an undecodable byte straddling two blocks: still its true line and offset
    latin1.write_bytes(b"patient_id,date\n" + b"x" * 30 + b"\n\xc3\xa9\xc3" + b"\n")
    with pytest.raises(InputError, match=r"labs.csv line 3: byte 0xc3 at offset 49 is not valid utf-8"):
        read_tables([latin1])
