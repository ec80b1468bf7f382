"""The role × route × centre matrix against the live server (issue 15): every route of the application — the
OpenAPI document's operations and the page routes outside it, every method — is called by every account (each role
in centre C1 and in C2, an administrator without a centre) and anonymously, with its path parameters (and, where
the centre is in the body, the body) naming an object of the caller's own centre, another centre's, and an unknown
one. For every call:

* never a status ≥ 500;
* another centre's object is answered exactly as an unknown one (the same status and the same body once the ids
  are replaced), and neither writes anything;
* a signed-in account without the route's right gets 403 on its own centre's object and nothing is written (row
  counts of every table, deleted rows and audit rows, before and after);
* an account with the right gets the route's success status on its own centre's object;
* anonymous: 401 from the API, a redirect to /login from a page (public routes excepted).

The rights: :data:`ROUTES` names the one right each route needs (or ``SIGNED_IN`` / ``PUBLIC``); who has it comes
from the role defaults of :data:`allotrack.web.rights.ROLE_RIGHTS`. A route the application has and
:data:`ROUTES` does not know fails the test (add it, with its right and how to call it, or a reason to skip it).
"""

from __future__ import annotations

import collections
import itertools
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pandas as pd
import sqlalchemy as sa

from allotrack.design.randomisation import RandomisationDesign
from allotrack.records.schema import Records
from allotrack.web.allocation import set_up
from allotrack.web.assessments import ASSESSMENTS, CrsValues
from allotrack.web.auth import issue_token
from allotrack.web.data import add_records
from allotrack.web.record_lock import lock_record
from allotrack.web.rights import RIGHTS, ROLE_RIGHTS
from allotrack.web.studies import save_plan
from hostile.hostile_live import (
    ACCOUNTS,
    OWN_PATIENT,
    PASSWORD,
    UNKNOWN_PATIENT,
    USERS,
    Browser,
    Live,
    changed,
    fingerprint,
    rows_of,
)

PUBLIC, SIGNED_IN = "(public)", "(signed in)"
UNKNOWN_ROW = 2**31 - 2
UNKNOWN_TOKEN_ID = 2**31 - 3
STUDY = "matrix-rct"
TINY_PLAN = '[study]\ntitle = "matrix"\n[data]\nsource = "demo"\n'
REFUSED = {401, 403, 404}  # and a redirect to /login


@dataclass
class Case:
    """One call: who (None: anonymous), on which centre's object, with the values filled in."""

    live: Live
    username: str | None
    variant: str  # own | foreign | unknown | - (nothing of a centre in the call)
    browser: Browser | None
    state: MatrixState
    values: dict[str, Any] = field(default_factory=dict)  # filled path and body values

    @property
    def role(self) -> str | None:
        return USERS[self.username][0] if self.username else None

    @property
    def centre(self) -> str | None:
        return USERS[self.username][1] if self.username else None

    @property
    def home(self) -> str:
        """The centre whose objects are the caller's own (C1 for the administrator without a centre)."""
        return self.centre or "C1"

    @property
    def target_centre(self) -> str:
        other = {"C1": "C2", "C2": "C1"}[self.home]
        return {"own": self.home, "foreign": other}.get(self.variant, self.home)

    @property
    def patient(self) -> str:
        return UNKNOWN_PATIENT if self.variant == "unknown" else OWN_PATIENT[self.target_centre]

    def counter(self, kind: str = "") -> int:
        """A number of its own for each call of a kind (dates of new records stay within the follow-up)."""
        with self.state.lock:
            return next(self.state.counters[kind])


Body = Callable[[Case], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    """How the matrix calls a route and what it expects.

    ``right``: the right the route needs (a name of :data:`allotrack.web.rights.RIGHTS`), ``SIGNED_IN`` or
    ``PUBLIC``; ``ok``: the statuses of a permitted call on one's own centre's object; ``body``: the request's
    form/json/files; ``target``: what a ``row_id`` names (``observation``, ``locked`` observation or completed
    ``assessment``); ``centred``: the centre is in the body (no id in the path); ``fixed``: path values;
    ``skip``: why the matrix does not call it (then another test does)."""

    right: str
    ok: frozenset[int] = frozenset({200})
    body: Body | None = None
    target: str = "observation"
    centred: bool = False
    fixed: dict[str, str] = field(default_factory=dict)
    anonymous: frozenset[int] | None = None  # a public route's answer to an anonymous caller (default: ok)
    looks_up: bool = True  # False: the path's id is not looked up (answers alike for any id, and must)
    skip: str | None = None
    live_counts: bool = False  # the page shows counts other calls of the matrix change meanwhile: compare its message


def _gvhd_form(case: Case) -> dict[str, Any]:
    day = date(2016, 1, 1) + timedelta(days=case.counter("gvhd form"))
    return {"data": {"date": day.isoformat(), "skin_bsa": "20"}}


def _gvhd_json(case: Case) -> dict[str, Any]:
    day = date(2017, 1, 1) + timedelta(days=case.counter("gvhd api"))
    return {"json": {"date": day.isoformat(), "skin_bsa": 30, "bilirubin": 1.0}}


def _crs_json(case: Case) -> dict[str, Any]:
    day = date(2019, 1, 1) + timedelta(days=case.counter("crs api"))
    return {"json": {"date": day.isoformat(), "temperature_c": 38.5}}


def _import_upload(case: Case) -> dict[str, Any]:
    """A follow-up row for the case's patient (own: already stored, so the check passes; another centre's or an
    unknown patient: 'refers to an unknown patient')."""
    csv = f"patient_id,last_contact_date\n{case.patient},2025-10-31\n".encode()
    data = {"centre": case.home} if case.centre is None else {}
    return {"data": data, "files": [("files", ("follow_up.csv", csv, "text/csv"))]}


def _plan_upload(case: Case) -> dict[str, Any]:
    return {"data": {"name": f"plan-{case.username}-{case.counter()}"},
            "files": [("plan", ("plan.toml", TINY_PLAN.encode(), "text/plain"))]}  # fmt: skip


def _token_request(case: Case) -> dict[str, Any]:
    if case.username is None:
        return {"json": {"username": "nobody-here", "password": PASSWORD}}
    return {"json": {"username": case.username, "password": PASSWORD, "scopes": ["read"], "expires_in_days": 1}}


ROUTES: dict[tuple[str, str], Route | list[Route]] = {
    # pages (not in the OpenAPI document)
    ("GET", "/login"): Route(PUBLIC),
    ("POST", "/login"): Route(PUBLIC, skip="log-in (CSRF, throttle, oversized names): test_sessions_tokens.py, "
                                           "test_throttle_live.py"),
    ("POST", "/logout"): Route(SIGNED_IN, skip="ends every session of the account: test_sessions_tokens.py"),
    ("GET", "/account/password"): Route(SIGNED_IN),
    ("POST", "/account/password"): Route(SIGNED_IN, skip="ends the account's other sessions and tokens: "
                                                         "test_sessions_tokens.py"),
    ("GET", "/"): Route(SIGNED_IN, ok=frozenset({303})),
    ("GET", "/patients"): Route("view"),
    ("GET", "/patients/{patient_id}"): Route("view"),
    ("GET", "/patients/{patient_id}/{kind}/new"): Route("enter", fixed={"kind": "gvhd"}),
    ("POST", "/patients/{patient_id}/{kind}/grade"): Route(SIGNED_IN, fixed={"kind": "gvhd"}, looks_up=False,
                                                           body=lambda c: {"data": {"skin_bsa": "20"}}),
    ("POST", "/patients/{patient_id}/{kind}"): Route("enter", ok=frozenset({303}), fixed={"kind": "gvhd"},
                                                     body=_gvhd_form),
    ("GET", "/dashboard"): Route("view"),
    ("GET", "/dashboard/figures"): Route("view"),
    ("GET", "/patients/{patient_id}/audit"): Route("view"),
    ("GET", "/alerts"): Route("view"),
    ("GET", "/import"): Route("import"),
    ("POST", "/import"): Route("import", ok=frozenset({303}), body=_import_upload),  # checked in the background:
    ("GET", "/import/jobs/{token}"): Route("import"),  # the check's page: another user's or centre's is unknown
    ("POST", "/import/{token}/{decision}"): Route("import", ok=frozenset({303}), fixed={"decision": "discard"}),
    ("GET", "/studies"): Route("report"),
    ("POST", "/studies"): Route("report", ok=frozenset({303}), body=_plan_upload),
    ("POST", "/studies/{plan_id}/run"): Route("report"),
    ("GET", "/report/{token}/{name}"): Route("report", fixed={"name": "report.html"}),
    ("GET", "/randomise"): Route("randomise"),
    ("POST", "/randomise"): Route("randomise", ok=frozenset({200, 422}), centred=True, live_counts=True,
                                  body=lambda c: {"data": {"study": STUDY, "patient_id": c.patient}}),
    ("POST", "/admin/lock"): Route("lock_study", ok=frozenset({303}),
                                   body=lambda c: {"data": {"locked": "no", "reason": "matrix: still unlocked"}}),
    ("GET", "/patients/{patient_id}/locks"): Route("view"),
    ("POST", "/patients/{patient_id}/locks/{table}/{row_id}/{action}"): [
        Route("lock_record", ok=frozenset({303}), fixed={"action": "lock"}, body=lambda c: {"data": {"reason": "m"}}),
        Route("lock_record", ok=frozenset({303}), fixed={"action": "unlock"}, target="locked",
              body=lambda c: {"data": {"reason": "matrix"}}),
        Route("sign", ok=frozenset({303}), fixed={"action": "sign"}, target="assessment",
              body=lambda c: {"data": {"password": PASSWORD}}),
    ],
    # data entry for every record kind (the forms' fields come from the data dictionary: a permitted call may be
    # refused as invalid, 422, with the message next to the field; what they accept: tests/web of data entry)
    ("GET", "/patients/new"): Route("enter"),
    ("POST", "/patients/new"): Route("enter", ok=frozenset({303, 422}), body=lambda c: {"data": {
        "patient_id": f"MX{c.counter()}", "sex": "F", "diagnosis": "AML", "diagnosis_date": "2020-01-02",
        "centre": c.home}}),
    ("GET", "/patients/{patient_id}/records/{table}/new"): Route("enter", fixed={"table": "relapses"}),
    ("POST", "/patients/{patient_id}/records/{table}/new"): Route("enter", ok=frozenset({303, 422}),
                                                                  fixed={"table": "relapses"}, body=lambda c: {
        "data": {"date": (date(2020, 1, 1) + timedelta(days=c.counter("relapse"))).isoformat(), "kind": "hematologic"}}),
    ("GET", "/records/{table}/{row_id}/edit"): Route("enter"),
    ("POST", "/records/{table}/{row_id}/edit"): Route("enter", ok=frozenset({303, 422}),
                                                      body=lambda c: {"data": {"reason": "matrix", "value": "1"}}),
    ("GET", "/static"): Route(PUBLIC, skip="static files (css, js): no data"),
    ("GET", "/assets/{name}"): Route(PUBLIC, skip="the charting library's script and style sheet: no data"),
    ("GET", "/api/openapi.json"): Route(PUBLIC),
    # the JSON API (the OpenAPI document)
    ("POST", "/api/token"): Route(PUBLIC, body=_token_request, anonymous=frozenset({403})),
    ("GET", "/api/tokens"): Route(SIGNED_IN),
    ("DELETE", "/api/tokens/{token_id}"): Route(SIGNED_IN, ok=frozenset({204})),
    ("GET", "/api/patients"): Route("view"),
    ("GET", "/api/patients/{patient_id}"): Route("view"),
    ("POST", "/api/patients/{patient_id}/gvhd"): Route("enter", ok=frozenset({201}), body=_gvhd_json),
    ("POST", "/api/patients/{patient_id}/crs"): Route("enter", ok=frozenset({201}), body=_crs_json),
    ("DELETE", "/api/records/{table}/{row_id}"): Route("delete", ok=frozenset({204}),
                                                       body=lambda c: {"json": {"reason": "matrix"}}),
    ("GET", "/api/patients/{patient_id}/audit"): Route("view"),
    ("GET", "/api/alerts"): Route("view"),
    ("GET", "/api/patients/{patient_id}/locks"): Route("view"),
    ("POST", "/api/records/{table}/{row_id}/lock"): Route("lock_record", ok=frozenset({204}),
                                                          body=lambda c: {"json": {"reason": "matrix"}}),
    ("POST", "/api/records/{table}/{row_id}/unlock"): Route("lock_record", ok=frozenset({204}), target="locked",
                                                            body=lambda c: {"json": {"reason": "matrix"}}),
    ("POST", "/api/records/{table}/{row_id}/sign"): Route("sign", ok=frozenset({204}), target="assessment",
                                                          body=lambda c: {"json": {"password": PASSWORD}}),
}  # fmt: skip
PRINCIPALS: list[str | None] = [*USERS, None]  # None: anonymous


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route: the page routes from ``app.routes`` (through included routers) and every
    operation of the OpenAPI document."""
    try:
        from fastapi.routing import iter_route_contexts

        contexts = [(getattr(c, "methods", None), c.path) for c in iter_route_contexts(app.routes)]
    except ImportError:  # an older FastAPI: routes are flat
        contexts = [(getattr(r, "methods", None), r.path) for r in app.routes]
    found: set[tuple[str, str]] = set()
    for methods, path in contexts:
        for method in sorted(methods or {"GET"}):
            if method != "HEAD":
                found.add((str(method), str(path)))
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            found.add((method.upper(), path))
    return found


def test_the_matrix_knows_every_route(live: Live) -> None:
    """A route added to the application must be added to ROUTES (with its right and how to call it) or skipped
    there with a reason; a route removed from the application must leave ROUTES."""
    routes = app_routes(live.app)
    assert len(routes) >= 40
    unknown = sorted(routes - set(ROUTES))
    assert not unknown, f"routes the matrix does not know how to call: {unknown}"
    assert not sorted(set(ROUTES) - routes), "ROUTES names routes the application no longer has"
    for key, specs in ROUTES.items():
        for spec in specs if isinstance(specs, list) else [specs]:
            assert spec.right in (*RIGHTS, PUBLIC, SIGNED_IN), key
            assert spec.skip is None or len(spec.skip) > 10, key
    params = {p for _, path in routes for p in re.findall(r"{(\w+)}", path)}
    assert params <= set(FILLERS), f"path parameters without a filler: {sorted(params - set(FILLERS))}"


# the state the calls need: pools of records to delete/lock/sign, pending imports, reports, tokens


class Gate:
    """Calls that may write (a permitted change, or filling in values that writes: a new API token) run alone; all
    others run side by side (one thread per account) and must write nothing, so any change of the row counts
    while only they run is a wrong write (attributed to the call that saw it: rerun with HOSTILE_SERIAL=1 to be
    sure which)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.shared = 0
        self.exclusive = False

    def enter(self, exclusive: bool) -> None:
        with self.cond:
            if exclusive:
                self.cond.wait_for(lambda: not self.exclusive)
                self.exclusive = True
                self.cond.wait_for(lambda: self.shared == 0)
            else:
                self.cond.wait_for(lambda: not self.exclusive)
                self.shared += 1

    def leave(self, exclusive: bool) -> None:
        with self.cond:
            if exclusive:
                self.exclusive = False
            else:
                self.shared -= 1
            self.cond.notify_all()


class MatrixState:
    def __init__(self, live: Live) -> None:
        self.live = live
        self.counters: collections.defaultdict[str, itertools.count[int]] = collections.defaultdict(
            lambda: itertools.count(1))
        self.browsers: dict[str, Browser] = {}
        self.pools: dict[tuple[str, str], collections.deque[int]] = {}
        self.lock = threading.Lock()
        self.gate = Gate()
        engine = live.engine
        for centre in ("C1", "C2"):
            observations = [r["row_id"] for r in rows_of(
                engine, "SELECT row_id FROM observations WHERE centre_code = :c AND NOT deleted ORDER BY row_id",
                c=centre)]  # fmt: skip
            half = len(observations) // 2
            self.pools["observation", centre] = collections.deque(observations[:half])
            self.pools["locked", centre] = collections.deque(observations[half:half + 12])
            for row_id in self.pools["locked", centre]:  # locked before the calls (no write while they run)
                lock_record(engine, live.users["admin"], "observations", row_id, "matrix: to be unlocked")
            self.pools["assessment", centre] = collections.deque(  # completed assessments to sign
                add_records(engine, live.users["admin"], "assessments", ASSESSMENTS["crs"].records(
                    OWN_PATIENT[centre], (date(2024, 1, 1) + timedelta(days=i)).isoformat(), CrsValues.model_validate(
                        {"temperature_c": 38.5})))[0] for i in range(8))  # fmt: skip
        admin = live.users["admin"]
        self.plan_id = save_plan(engine, admin, f"matrix-{secrets.token_hex(3)}", TINY_PLAN)
        if not rows_of(engine, "SELECT study FROM randomisation_designs WHERE study = :s", s=STUDY):
            set_up(engine, admin, STUDY, RandomisationDesign({"A": 1, "B": 1}), 7, None, 40)
            enrol = pd.DataFrame({"patient_id": [OWN_PATIENT["C1"]], "study": STUDY, "enrolment_date": "2021-03-01",
                                  "eligible": True})  # fmt: skip
            live.app.state.store.import_records(Records.from_frames(enrolments=enrol), user="setup", centre="C1")
            enrol["patient_id"] = OWN_PATIENT["C2"]
            live.app.state.store.import_records(Records.from_frames(enrolments=enrol), user="setup", centre="C2")

    def browser(self, username: str, donor: bool = False) -> Browser:
        key = f"donor:{username}" if donor else username
        if key not in self.browsers:
            self.browsers[key] = self.live.session(username)
        return self.browsers[key]

    def row(self, target: str, centre: str, consume: bool) -> tuple[str, int, str]:
        """(table, row id, patient id) of a record of ``centre``: a fresh one for a call that changes it
        (``consume``), else the pool's next (a refused call must leave it as it is)."""
        pool = self.pools[target, centre]
        row_id = pool.popleft() if consume else pool[0]
        table = "assessments" if target == "assessment" else "observations"
        engine = self.live.engine
        with engine.connect() as conn:
            pid = conn.execute(sa.text(f"SELECT patient_id FROM {table} WHERE row_id = :r"), {"r": row_id}).scalar_one()
        return table, row_id, str(pid)

    def pending_import(self, username: str, donor: bool = False) -> str:
        """A checked (pending) import of ``username``'s session (an account with the right to import; ``donor``:
        a second session of the account, whose tokens are another user's to the callers)."""
        with self.lock:
            return self._pending_import(username, donor)

    def _pending_import(self, username: str, donor: bool) -> str:
        if donor:  # another account of the same centre and rights (one running check per account)
            username = {"dm1": "dmx1", "dm2": "dmx2"}.get(username, username)
        browser = self.browser(username, donor)
        centre = ACCOUNTS[username][1]  # a correction of the last contact (to today: the randomisation is dated)
        csv = f"patient_id,last_contact_date\n{OWN_PATIENT[centre or 'C1']},{date.today()}\n".encode()
        data = {"centre": "C1"} if centre is None else {}
        return checked_import(browser, data, csv)

    def report(self, username: str, donor: bool = False) -> str:
        with self.lock:
            return self._report(username, donor)

    def _report(self, username: str, donor: bool) -> str:
        res = self.browser(username, donor).post(f"/studies/{self.plan_id}/run")
        assert res.status_code == 200, res.text[:500]
        return re.search(r'/report/([^/"]+)/report.html', res.text).group(1)  # type: ignore[union-attr]


def checked_import(browser: Browser, data: dict[str, str], csv: bytes, table: str = "follow_up") -> str:
    """Upload ``csv`` for a check and wait for it to settle (a background job: the upload answers with a redirect
    to the check's page, 202 while it runs); the pending import's token."""
    for _ in range(200):
        res = browser.post("/import", data=data, files=[("files", (f"{table}.csv", csv, "text/csv"))])
        if res.status_code != 429:  # the account's previous check still runs
            break
        time.sleep(0.05)
    for _ in range(400):
        if res.status_code == 303 and res.headers["location"].startswith("/import/jobs/"):
            res = browser.get(res.headers["location"])
        elif res.status_code == 202:
            time.sleep(0.025)
            res = browser.get(str(res.url.path))
        else:
            break
    assert res.status_code == 200, (res.status_code, re.findall(r"<li>(.*?)</li>", res.text)[:5])
    return re.search(r'action="/import/([^/"]+)/commit"', res.text).group(1)  # type: ignore[union-attr]


def _peer(centre: str, right: str) -> str:
    """An account of ``centre`` with ``right`` (a data manager, else the centre's administrator)."""
    for name in (f"dm{centre[1]}", f"adm{centre[1]}"):
        if right in ROLE_RIGHTS[USERS[name][0]]:
            return name
    raise AssertionError(right)


def _fill_patient(case: Case, spec: Route) -> None:
    case.values["patient_id"] = case.patient


def _fill_row(case: Case, spec: Route) -> None:
    if case.variant == "unknown":
        table = "assessments" if spec.target == "assessment" else "observations"
        row_id, pid = UNKNOWN_ROW, UNKNOWN_PATIENT
    else:
        consume = case.variant == "own" and permitted(case.username, spec)
        table, row_id, pid = case.state.row(spec.target, case.target_centre, consume)
    case.values.update(table=table, row_id=row_id)
    case.values.setdefault("patient_id", pid)
    if case.values["patient_id"] != UNKNOWN_PATIENT:
        case.values["patient_id"] = pid


def _fill_import_token(case: Case, spec: Route) -> None:
    """Own: this session's pending import; another centre's: a pending import of an account there; else random."""
    if case.variant == "unknown" or case.username is None:
        case.values["token"] = secrets.token_urlsafe(16)
    elif case.variant == "own" and "import" in ROLE_RIGHTS[case.role or ""]:
        case.values["token"] = case.state.pending_import(case.username)
    else:
        case.values["token"] = case.state.pending_import(_peer(case.target_centre, "import"), donor=True)


def _fill_report_token(case: Case, spec: Route) -> None:
    if case.variant == "unknown" or case.username is None:
        case.values["token"] = secrets.token_urlsafe(16)
    elif case.variant == "own" and "report" in ROLE_RIGHTS[case.role or ""]:
        case.values["token"] = case.state.report(case.username)
    else:
        case.values["token"] = case.state.report(f"an{case.target_centre[1]}", donor=True)


def _fill_token(case: Case, spec: Route) -> None:
    (_fill_report_token if "/report/" in case.values["_path"] else _fill_import_token)(case, spec)


def _fill_token_id(case: Case, spec: Route) -> None:
    if case.variant == "unknown" or case.username is None:
        case.values["token_id"] = UNKNOWN_TOKEN_ID
        return
    owner = case.username if case.variant == "own" else f"dm{case.target_centre[1]}"
    engine = case.live.engine
    issue_token(engine, case.live.users[owner], days=1)
    with engine.connect() as conn:
        case.values["token_id"] = conn.execute(sa.text("SELECT max(token_id) FROM api_tokens")).scalar_one()


def _fill_plan(case: Case, spec: Route) -> None:
    case.values["plan_id"] = 999_999 if case.variant == "unknown" else case.state.plan_id


FILLERS: dict[str, Callable[[Case, Route], None]] = {
    "patient_id": _fill_patient, "row_id": _fill_row, "table": lambda c, s: None, "token": _fill_token,
    "token_id": _fill_token_id, "plan_id": _fill_plan,
    "kind": lambda c, s: None, "decision": lambda c, s: None, "action": lambda c, s: None, "name": lambda c, s: None,
}  # fmt: skip
CENTRED_PARAMS = {"patient_id", "row_id", "token", "token_id"}  # a path naming one of these: own/foreign/unknown
GLOBAL_PARAMS = {"plan_id"}  # objects of no centre: own (existing) / unknown


def variants(path: str, spec: Route, username: str | None) -> list[str]:
    params = set(re.findall(r"{(\w+)}", path))
    if username is None:
        return ["own"] if params & (CENTRED_PARAMS | GLOBAL_PARAMS) or spec.centred else ["-"]
    if params & CENTRED_PARAMS or spec.centred:
        return ["own", "unknown"] if USERS[username][1] is None else ["own", "foreign", "unknown"]
    if params & GLOBAL_PARAMS:
        return ["own", "unknown"]
    return ["-"]


def permitted(username: str | None, spec: Route) -> bool:
    if spec.right == PUBLIC:
        return True
    if username is None:
        return False
    return spec.right == SIGNED_IN or spec.right in ROLE_RIGHTS[USERS[username][0]]


@dataclass
class Outcome:
    username: str | None
    method: str
    path: str
    variant: str
    status: int
    text: str
    ids: list[str]
    wrote: dict[str, tuple[int, int]]
    url: str
    seconds: float = 0.0


def _call(state: MatrixState, username: str | None, method: str, template: str, spec: Route,
          variant: str) -> Outcome:  # fmt: skip
    exclusive = "{token_id}" in template or template.startswith("/import/") or (method != "GET" and variant in ("own", "-")
                                              and permitted(username, spec))  # fmt: skip
    state.gate.enter(exclusive)
    try:
        return _gated_call(state, username, method, template, spec, variant)
    finally:
        state.gate.leave(exclusive)


def _gated_call(state: MatrixState, username: str | None, method: str, template: str, spec: Route,
                variant: str) -> Outcome:  # fmt: skip
    live = state.live
    browser = state.browser(username) if username is not None and not template.startswith("/api/") else None
    case = Case(live, username, variant, browser, state, {"_path": template, **spec.fixed})
    for param in re.findall(r"{(\w+)}", template):
        if param not in case.values:
            FILLERS[param](case, spec)
    path = re.sub(r"{(\w+)}", lambda m: str(case.values[m.group(1)]), template)
    kwargs = spec.body(case) if spec.body else {}
    if template.startswith("/api/"):
        client = live.bearer(username) if username is not None else live.client()
    else:
        client = browser.http if browser is not None else live.client()
    if method == "POST" and not template.startswith("/api/"):
        csrf = browser.csrf if browser is not None else _anonymous_csrf(client)
        kwargs["data"] = {"csrf_token": csrf, **kwargs.get("data", {})}
    before = fingerprint(live.engine)
    t0 = time.perf_counter()
    try:
        res = client.request(method, path, **kwargs)
    finally:
        if client is not (browser.http if browser else None):
            client.close()
    after = fingerprint(live.engine)
    ids = [str(case.values[k]) for k in ("patient_id", "row_id", "token", "token_id", "plan_id") if k in case.values]
    if spec.centred:
        ids.append(case.patient)
    return Outcome(username, method, template, variant, res.status_code, res.text, ids, changed(before, after),
                   res.headers.get("location", ""), time.perf_counter() - t0)


def _anonymous_csrf(client: httpx.Client) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def _without_ids(text: str, ids: list[str]) -> str:
    for value in sorted(set(ids), key=len, reverse=True):
        text = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", "<ID>", text)
    return text


def test_role_route_centre_matrix(live: Live) -> None:
    started = time.perf_counter()
    state = MatrixState(live)
    calls: list[Outcome] = []
    problems: list[str] = []

    def principal(username: str | None) -> None:
        for (method, template), specs in sorted(ROUTES.items()):
            for spec in specs if isinstance(specs, list) else [specs]:
                if spec.skip:
                    continue
                outcomes = {v: _call(state, username, method, template, spec, v)
                            for v in variants(template, spec, username)}  # fmt: skip
                calls.extend(outcomes.values())
                problems.extend(_judge(spec, username, outcomes))

    with ThreadPoolExecutor(max_workers=1 if os.environ.get("HOSTILE_SERIAL") else len(PRINCIPALS)) as pool:
        for done in [pool.submit(principal, p) for p in PRINCIPALS]:
            done.result()
    counts = collections.Counter((o.status, "wrote" if o.wrote else "no write") for o in calls)
    slow: collections.defaultdict[tuple[str, str], float] = collections.defaultdict(float)  # seconds per route
    for o in calls:
        slow[o.method, o.path] += o.seconds
    print("slowest routes (s, summed over threads):",
          [(f"{m} {p}", round(t, 1)) for (m, p), t in sorted(slow.items(), key=lambda kv: -kv[1])[:8]])
    print(f"\n[{live.backend}] {len(calls)} calls in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{s} {w}: {n}" for (s, w), n in sorted(counts.items())))  # fmt: skip
    assert not problems, "\n".join(problems[:40]) + f"\n({len(problems)} problems)"
    assert len(calls) >= 700
    assert all(o.status < 500 for o in calls)


def _message(page: str) -> str:
    """A page's status or error paragraph (what a refusal says), without the rest of the page."""
    found = re.search(r'<p class="(?:error|ok)" role="(?:alert|status)">.*?</p>', page, re.S)
    return found.group(0) if found else page


def _judge(spec: Route, username: str | None, outcomes: dict[str, Outcome]) -> list[str]:
    problems = []
    api = next(iter(outcomes.values())).path.startswith("/api/")
    for variant, o in outcomes.items():
        where = f"{o.method} {o.path} as {username or 'anonymous'} ({variant}): {o.status}"
        if o.status >= 500:
            problems.append(f"{where}: server error")
        if username is None:
            if spec.right == PUBLIC:
                expected = spec.anonymous if spec.anonymous is not None else spec.ok
                if o.status not in expected:
                    problems.append(f"{where}: expected {sorted(expected)}")
            elif api and o.status != 401:
                problems.append(f"{where}: expected 401")
            elif not api and (o.status != 303 or o.url != "/login"):
                problems.append(f"{where}: expected a redirect to /login, got {o.url!r}")
            if o.wrote and spec.right != PUBLIC:
                problems.append(f"{where}: anonymous wrote {o.wrote}")
            continue
        allowed = permitted(username, spec)
        if variant in ("own", "-"):
            if allowed and o.status not in spec.ok:
                problems.append(f"{where}: permitted, expected {sorted(spec.ok)}: {o.text[:200]!r}")
            if not allowed and o.status != 403:
                problems.append(f"{where}: lacks the right {spec.right!r}, expected 403")
            if not allowed and o.wrote:
                problems.append(f"{where}: refused but wrote {o.wrote}")
        else:
            if o.wrote:
                problems.append(f"{where}: wrote {o.wrote} for {variant} object")
            if spec.looks_up and o.status not in REFUSED | {422}:
                problems.append(f"{where}: {variant} object not refused")
        if o.method == "GET" and o.wrote:
            problems.append(f"{where}: a GET wrote {o.wrote}")
    if "foreign" in outcomes:
        f, u = outcomes["foreign"], outcomes["unknown"]
        if f.status != u.status or _without_ids(f.text, f.ids) != _without_ids(u.text, u.ids):
            ft, ut = _without_ids(f.text, f.ids), _without_ids(u.text, u.ids)
            if spec.live_counts:  # the allocation counts move with the other threads' randomisations
                ft, ut = _message(ft), _message(ut)
            at = next((i for i, (a, b) in enumerate(zip(ft, ut, strict=False)) if a != b), min(len(ft), len(ut)))
            problems.append(f"{f.method} {f.path} as {username}: another centre's object answers {f.status} "
                            f"{ft[max(0, at - 150):at + 150]!r}, an unknown one {u.status} "
                            f"{ut[max(0, at - 150):at + 150]!r} (first difference at character {at})")  # fmt: skip
    return problems
