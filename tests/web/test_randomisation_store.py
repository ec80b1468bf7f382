"""Randomisation in the store (allotrack.web.allocation), on SQLite and PostgreSQL: concealed until enrolled and
eligible, one allocation per patient ever (also for concurrent enrolments), lists followed in order per stratum,
centre scope, roles, lock and audit."""

from __future__ import annotations

import threading
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa
from webfixtures import _reset, empty_store_url

from allotrack.design.randomisation import RandomisationDesign, randomisation_list
from allotrack.errors import InputError
from allotrack.records.schema import Records
from allotrack.records.store import Store
from allotrack.web.allocation import allocate, allocation_balance, allocation_log, set_up
from allotrack.web.audit import set_lock
from allotrack.web.auth import User
from allotrack.web.data import Forbidden, NotFound

ADMIN = User(1, "admin", "administrator", None)
DM1, DM2 = User(2, "dm1", "data_manager", "C1"), User(3, "dm2", "data_manager", "C2")
ANALYST = User(4, "an1", "analyst", "C1")
STUDY = "NCT04738981"
DESIGN = RandomisationDesign({"MSC + basiliximab": 1, "basiliximab": 1}, stratify_by=("centre",))
SEED = 20210201


def _records(n: int = 40) -> Records:
    ids = [f"R{k:03d}" for k in range(1, n + 1)]
    centre = ["C1" if k % 2 else "C2" for k in range(1, n + 1)]
    patients = pd.DataFrame({"patient_id": ids, "centre": centre, "sex": ["F", "M"] * (n // 2),
                             "diagnosis": "AML", "diagnosis_date": "2021-01-04", "age_at_diagnosis": 40})
    eligible = [k % 10 != 0 for k in range(1, n + 1)]  # R010, R020, ... are not eligible
    enrolments = pd.DataFrame({"patient_id": ids[:-2], "study": STUDY, "enrolment_date": "2021-03-01",
                               "eligible": eligible[:-2]})  # the last two are not enrolled
    return Records.from_frames(patients=patients, enrolments=enrolments)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = empty_store_url(request.param, tmp_path)
    s = Store(url)
    s.init()
    recs = _records()
    for centre in ("C1", "C2"):
        ids = set(recs["patients"].loc[recs["patients"]["centre"] == centre, "patient_id"])
        s.import_records(Records({n: f[f["patient_id"].isin(ids)] for n, f in recs.tables.items()}), user="setup",
                         centre=centre)  # fmt: skip
    yield s
    s.engine.dispose()
    if request.param == "postgresql":
        _reset(url)


def test_allocations_follow_each_strata_list_in_order_and_set_the_enrolment(store):
    assert set_up(store.engine, ADMIN, STUDY, DESIGN, SEED, ["centre=C1", "centre=C2"], 30) >= 60
    expected = randomisation_list(DESIGN, ["centre=C1", "centre=C2"], 30, SEED).table
    got = [allocate(store.engine, DM1 if k % 2 else DM2, STUDY, f"R{k:03d}", date(2021, 3, 2))
           for k in range(1, 39) if k % 10]  # fmt: skip
    for centre in ("C1", "C2"):
        mine = [a for a in got if a.stratum == f"centre={centre}"]
        listed = expected[expected["stratum"] == f"centre={centre}"]["arm"].tolist()
        assert [a.position for a in mine] == list(range(1, len(mine) + 1))
        assert [a.arm for a in mine] == listed[: len(mine)]
    assert [a.number for a in got] == list(range(1, len(got) + 1))
    enrolments = store.load()["enrolments"].set_index("patient_id")
    assert enrolments.loc["R001", "arm"] == got[0].arm and enrolments.loc["R001", "allocation_number"] == 1
    assert enrolments.loc["R001", "randomisation_date"] == pd.Timestamp("2021-03-02")
    log = allocation_log(store.engine, ADMIN, STUDY)
    assert list(log.columns[:4]) == ["number", "study", "patient_id", "centre_code"] and len(log) == len(got)
    balance = allocation_balance(store.engine, ADMIN, STUDY).set_index("stratum")
    assert int(balance.loc["Total", "Total"]) == len(got)
    with store.engine.connect() as conn:
        audit = conn.execute(sa.text("SELECT action, table_name FROM audit_log WHERE patient_id = 'R001' AND "
                                     "action IN ('randomise', 'update') ORDER BY audit_id")).all()  # fmt: skip
    assert [tuple(r) for r in audit] == [("update", "enrolments"), ("randomise", "allocations")]


def test_concealed_until_enrolled_and_eligible_once_ever_and_within_the_centre(store):
    set_up(store.engine, ADMIN, STUDY, DESIGN, SEED, ["centre=C1", "centre=C2"], 10)
    with pytest.raises(InputError, match="must be enrolled in 'NCT04738981' with eligible = yes"):
        allocate(store.engine, DM2, STUDY, "R010")  # enrolled, not eligible
    with pytest.raises(InputError, match="must be enrolled"):
        allocate(store.engine, DM1, STUDY, "R039")  # not enrolled
    first = allocate(store.engine, DM1, STUDY, "R001")
    with pytest.raises(InputError, match="already randomised"):
        allocate(store.engine, DM1, STUDY, "R001")
    with pytest.raises(NotFound, match="no such patient in your data access group"):
        allocate(store.engine, DM2, STUDY, "R003")  # C1's patient, answered like an unknown one
    with pytest.raises(NotFound, match="no such patient in your data access group"):
        allocate(store.engine, DM2, STUDY, "R999")
    with pytest.raises(Forbidden):
        allocate(store.engine, ANALYST, STUDY, "R003")
    for reader in (DM1, ANALYST):
        with pytest.raises(Forbidden):
            allocation_log(store.engine, reader, STUDY)
    with pytest.raises(Forbidden):
        set_up(store.engine, DM1, "other", DESIGN, 1, ["centre=C1"], 4)
    with pytest.raises(InputError, match="already has a randomisation"):
        set_up(store.engine, ADMIN, STUDY, DESIGN, 2, ["centre=C1"], 4)
    set_lock(store.engine, "admin", True, "database lock")
    with pytest.raises(Forbidden, match="locked"):
        allocate(store.engine, DM1, STUDY, "R003")
    assert len(allocation_log(store.engine, ADMIN, STUDY)) == 1 and first.position == 1


def test_two_concurrent_randomisations_of_one_patient_allocate_once(store):
    set_up(store.engine, ADMIN, STUDY, DESIGN, SEED, ["centre=C1", "centre=C2"], 10)
    results: list[object] = []
    barrier = threading.Barrier(4)

    def enrol(patient: str) -> None:
        barrier.wait()
        try:
            results.append(allocate(store.engine, DM1, STUDY, patient))
        except (InputError, Forbidden, NotFound) as err:
            results.append(err)

    threads = [threading.Thread(target=enrol, args=(p,)) for p in ("R001", "R001", "R003", "R003")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = allocation_log(store.engine, ADMIN, STUDY)
    assert sorted(log["patient_id"]) == ["R001", "R003"]
    assert sorted(log["position"]) == [1, 2]  # one list position each, none skipped
    assert sum(isinstance(r, InputError) for r in results) == 2


def test_minimisation_allocates_from_the_stored_history_reproducibly(store):
    design = RandomisationDesign({"A": 1, "B": 1}, stratify_by=("centre", "sex"), method="minimisation")
    set_up(store.engine, ADMIN, "MIN", design, 11)
    recs = store.load()
    enrol = recs["enrolments"].assign(study="MIN")[["patient_id", "study", "enrolment_date", "eligible"]]
    store.import_records(Records.from_frames(enrolments=enrol[enrol["patient_id"].isin(
        recs["patients"].loc[recs["patients"]["centre"] == "C1", "patient_id"])]), user="setup", centre="C1")
    arms = [allocate(store.engine, DM1, "MIN", f"R{k:03d}").arm for k in range(1, 20, 2) if k % 10]
    from allotrack.design.randomisation import minimisation

    history = pd.DataFrame(columns=["centre", "sex", "arm"])
    patients = recs["patients"].set_index("patient_id")
    for number, k in enumerate([k for k in range(1, 20, 2) if k % 10], start=1):
        levels = {"centre": "C1", "sex": patients.loc[f"R{k:03d}", "sex"]}
        arm = minimisation(design, history, levels, 11, number).arm
        history = pd.concat([history, pd.DataFrame([{**levels, "arm": arm}])], ignore_index=True)
    assert arms == history["arm"].tolist()


def test_the_randomise_page_allocates_and_shows_errors_next_to_the_form(store):
    """The web page calls the same allocate(): a data manager randomises their own patient and sees the arm; an
    ineligible patient gets the message on the page (422), not a 500; a viewer may not open the page."""
    from fastapi.testclient import TestClient
    from webfixtures import PASSWORD, csrf_of

    from allotrack.web.app import create_app
    from allotrack.web.auth import add_user

    set_up(store.engine, ADMIN, STUDY, DESIGN, SEED, ["centre=C1", "centre=C2"], 10)
    app = create_app(str(store.engine.url.render_as_string(hide_password=False)), secret_key="k")
    add_user(store.engine, "dm1", PASSWORD, "data_manager", "C1")
    add_user(store.engine, "vw1", PASSWORD, "viewer", "C1")

    def client(name: str) -> TestClient:
        return _signed_in(app, name)

    dm = client("dm1")
    page = dm.get("/randomise")
    assert page.status_code == 200 and STUDY in page.text
    done = dm.post("/randomise", data={"study": STUDY, "patient_id": "R001", "csrf_token": csrf_of(page.text)})
    expected = randomisation_list(DESIGN, ["centre=C1", "centre=C2"], 10, SEED).table["arm"].iloc[0]
    assert done.status_code == 200 and f"<strong>{expected}</strong>" in done.text
    bad = dm.post("/randomise", data={"study": STUDY, "patient_id": "R039", "csrf_token": csrf_of(page.text)})
    assert bad.status_code == 422 and "must be enrolled" in bad.text  # R039: never enrolled
    other = dm.post("/randomise", data={"study": STUDY, "patient_id": "R002", "csrf_token": csrf_of(page.text)})
    assert other.status_code == 404 and "no such patient in your data access group" in other.text
    assert client("vw1").get("/randomise").status_code == 403


def test_a_blinded_account_gets_no_arm_from_any_page_or_api_route(store):
    """After randomisation, a blinded data manager and a blinded viewer of the patient's centre read the patient
    page, the timeline, the audit trail (page, CSV and API), the patient's records from the API, the dashboard and
    the alerts: no arm appears anywhere; the blinded data manager randomising sees only the allocation number; an
    unblinded data manager sees the arm."""
    from fastapi.testclient import TestClient
    from webfixtures import PASSWORD, csrf_of

    from allotrack.web.app import create_app
    from allotrack.web.auth import add_user

    set_up(store.engine, ADMIN, STUDY, DESIGN, SEED, ["centre=C1", "centre=C2"], 10)
    first = allocate(store.engine, DM1, STUDY, "R001")
    app = create_app(str(store.engine.url.render_as_string(hide_password=False)), secret_key="k")
    add_user(store.engine, "bdm", PASSWORD, "data_manager", "C1", blinded=True)
    add_user(store.engine, "bvw", PASSWORD, "viewer", "C1", blinded=True)
    add_user(store.engine, "udm", PASSWORD, "data_manager", "C1")

    def client(name: str) -> TestClient:
        return _signed_in(app, name)

    arms = list(DESIGN.arms)
    routes = ["/patients/R001", "/patients/R001/audit", "/patients/R001/audit?format=csv", "/dashboard",
              "/dashboard/figures", "/alerts", "/patients"]  # fmt: skip
    for name in ("bdm", "bvw"):
        c = client(name)
        token = (TestClient(app).post("/api/token", json={"username": name, "password": PASSWORD}).json()["token"]
                 if name == "bdm" else None)
        for route in routes:
            res = c.get(route)
            assert res.status_code in (200, 403), (name, route, res.status_code)
            assert not any(arm in res.text for arm in arms), (name, route)
        if token:
            for route in ("/api/patients/R001", "/api/patients/R001/audit"):
                res = c.get(route, headers={"Authorization": f"Bearer {token}"})
                assert res.status_code == 200 and not any(arm in res.text for arm in arms), route
    blinded = client("bdm")
    page = blinded.get("/randomise")
    done = blinded.post("/randomise", data={"study": STUDY, "patient_id": "R003", "csrf_token": csrf_of(page.text)})
    assert done.status_code == 200 and "the arm is concealed" in done.text
    status = done.text.split('role="status">', 1)[1].split("</p>", 1)[0]  # the arm names of the study are public
    assert not any(arm in status for arm in arms)
    udm = TestClient(app).post("/api/token", json={"username": "udm", "password": PASSWORD}).json()["token"]
    seen = client("udm").get("/api/patients/R001", headers={"Authorization": f"Bearer {udm}"})
    assert first.arm in seen.text  # the unblinded data manager's API answer has the arm


def _signed_in(app, name: str):
    """A browser session of account ``name`` (server errors answered as responses, not raised)."""
    from fastapi.testclient import TestClient
    from webfixtures import PASSWORD, csrf_of

    c = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
    token = csrf_of(c.get("/login").text)
    assert c.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token}).status_code == 303
    return c


KILLED_ALLOCATOR = """
import sys
from datetime import date
from allotrack.records.store import Store
from allotrack.web.allocation import allocate
from allotrack.web.auth import User

store = Store(sys.argv[1])
for k in range(1, 39):
    if k % 10:
        allocate(store.engine, User(2, "dm1", "data_manager", "C1") if k % 2 else User(3, "dm2", "data_manager", "C2"),
                 "NCT04738981", f"R{k:03d}", date(2021, 3, 2))
        print("ALLOCATED", flush=True)
"""


def test_sigkill_while_randomising_leaves_every_allocation_whole(store, tmp_path):
    """A real SIGKILL while a process randomises patient after patient: every allocation stored has its enrolment
    update and its audit rows, no enrolment has an arm without an allocation, each stratum's list positions stay
    a prefix, and randomising goes on from where the list stopped."""
    import os
    import signal
    import subprocess
    import sys
    import time

    set_up(store.engine, ADMIN, STUDY, DESIGN, SEED, ["centre=C1", "centre=C2"], 30)
    script = tmp_path / "killed_allocator.py"
    script.write_text(KILLED_ALLOCATOR)
    proc = subprocess.Popen([sys.executable, str(script), store.url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(3):  # a few allocations are committed before the kill
        assert proc.stdout.readline().strip() == "ALLOCATED"
    time.sleep(0.01)
    assert proc.poll() is None, "the allocations finished before they could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store.engine.dispose()
    log = allocation_log(store.engine, ADMIN, STUDY)
    assert 3 <= len(log) < 34, len(log)
    enrolments = store.load()["enrolments"].set_index("patient_id")
    with_arm = set(enrolments.index[enrolments["arm"].notna()])
    assert with_arm == set(log["patient_id"])
    for row in log.itertuples():
        assert enrolments.loc[row.patient_id, "arm"] == row.arm
        assert enrolments.loc[row.patient_id, "allocation_number"] == row.number
    for stratum, part in log.groupby("stratum"):
        assert sorted(part["position"]) == list(range(1, len(part) + 1)), stratum
    with store.engine.connect() as conn:
        audited = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'randomise'")).scalar()
    assert audited == len(log)
    nxt = next(f"R{k:03d}" for k in range(1, 39) if k % 10 and f"R{k:03d}" not in with_arm)
    done = allocate(store.engine, DM1 if int(nxt[1:]) % 2 else DM2, STUDY, nxt, date(2021, 3, 3))
    assert done.number == len(log) + 1
