"""The hostile-user suite's live servers (the fixtures :func:`live` and :func:`fresh_throttle`, imported by this
folder's conftest.py) — issue 15, "Must show": one uvicorn server on 127.0.0.1 (a free port) per
backend (SQLite, and PostgreSQL at ``ALLOTRACK_TEST_POSTGRES``) for the whole test session, driven over HTTP with
httpx as a browser or a script would. The server runs in a thread of this process, so a test can also look at the
application's state (the login throttle) and the database directly.

The store: the demo study in centre C1 (29 patients, ``MST01``..; every tenth daily observation) and a copy of eight of its patients, ids renamed
(``CTW13``..), in centre C2. Accounts: for each centre one user per role (``adm1 dm1 an1 vw1``, ``adm2 dm2 an2
vw2``) and an administrator without a centre (``admin``); each has a read-and-write API token.
"""

from __future__ import annotations

import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/web: webfixtures (the PostgreSQL reset)

from webfixtures import empty_store_url

from allotrack.records.schema import Records
from allotrack.study.demo import demo_records
from allotrack.web.auth import User, add_user, issue_token, user_by_id
from allotrack.web.security import LoginThrottle

PASSWORD = "correct horse battery"
USERS: dict[str, tuple[str, str | None]] = {  # name: (role, centre)
    "admin": ("administrator", None),
    "adm1": ("administrator", "C1"), "dm1": ("data_manager", "C1"), "an1": ("analyst", "C1"), "vw1": ("viewer", "C1"),
    "adm2": ("administrator", "C2"), "dm2": ("data_manager", "C2"), "an2": ("analyst", "C2"), "vw2": ("viewer", "C2"),
}  # fmt: skip
DONORS: dict[str, tuple[str, str | None]] = {"dmx1": ("data_manager", "C1"), "dmx2": ("data_manager", "C2")}
ACCOUNTS = USERS | DONORS  # the donors: second accounts whose pending imports are another user's to the callers
C2_SOURCE = [f"MST{i}" for i in range(13, 21)]  # copied (renamed CTW13..CTW20) into centre C2
OWN_PATIENT = {"C1": "MST15", "C2": "CTW15"}  # alive, transplanted 2015-01-10, followed up to 2025-10-31
UNKNOWN_PATIENT = "NOPE99"
LIMITS = {"max_body_bytes": 2 * 2**20, "max_xlsx_bytes": 2 * 2**20, "max_csv_rows": 2000}
CHEAP = PasswordHasher(time_cost=1, memory_cost=16384, parallelism=1)  # ~20 ms a verification here, not ~0.5 s
CHEAP_DUMMY = CHEAP.hash(secrets.token_urlsafe(16))
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def c1_records() -> Records:
    """The demo study with every tenth daily observation (8,035 → 804: the matrix calls the pages that read all of
    a centre's records hundreds of times)."""
    tables = dict(demo_records().tables)
    tables["observations"] = tables["observations"].iloc[::10].reset_index(drop=True)
    return Records.from_frames(**tables)


def c2_records() -> Records:
    """Eight demo patients with every id renamed (MST → CTW, D → CTWD), for centre C2."""
    keep = set(C2_SOURCE)
    tables = {}
    for name, frame in c1_records().tables.items():
        f = frame[frame["patient_id"].isin(keep)].copy() if "patient_id" in frame.columns else frame.iloc[:0].copy()
        for column in [c for c in f.columns if c.endswith("_id")]:
            f[column] = f[column].astype(str).str.replace("MST", "CTW").str.replace(r"^D(\d)", r"CTWD\1", regex=True)
        tables[name] = f
    return Records.from_frames(**tables)


@dataclass
class Live:
    """A running server and what the tests need of it."""

    backend: str
    base: str
    app: Any
    tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    @property
    def engine(self) -> sa.Engine:
        engine: sa.Engine = self.app.state.store.engine
        return engine

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=False, timeout=60, **kw)

    def bearer(self, username: str) -> httpx.Client:
        return self.client(headers={"Authorization": f"Bearer {self.tokens[username]}"})

    def session(self, username: str, password: str = PASSWORD) -> Browser:
        browser = Browser(self.client())
        res = browser.login(username, password)
        assert res.status_code == 303, (username, res.status_code, res.text[:300])
        return browser

    def user(self, username: str) -> User:
        with self.engine.connect() as conn:
            uid = conn.execute(sa.text("SELECT user_id FROM users WHERE username = :u"), {"u": username}).scalar_one()
        found = user_by_id(self.engine, int(uid))
        assert found is not None
        return found


class Browser:
    """An httpx client with a session cookie and the session's CSRF token."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.csrf = ""

    def login(self, username: str, password: str) -> httpx.Response:
        page = self.http.get("/login")
        res = self.http.post("/login", data={"username": username, "password": password,
                                             "csrf_token": csrf_of(page.text)})  # fmt: skip
        if res.status_code == 303:
            self.refresh()
        return res

    def refresh(self) -> str:
        """The CSRF token of this session (from a page every signed-in user may open)."""
        page = self.http.get("/account/password")
        assert page.status_code == 200, page.status_code
        self.csrf = csrf_of(page.text)
        return self.csrf

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        """A form POST with this session's CSRF token (unless ``data`` names one)."""
        return self.http.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kw)

    def close(self) -> None:
        self.http.close()


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html[:300]
    return found.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def cheap_hashing() -> Iterator[None]:
    """Argon2id at a test cost while the suite's tests run (hundreds of logins and token requests): accounts are
    hashed, and unknown names verified against a dummy hash, at the same cost, so the log-in does the same work as
    in production, only less of it. Restored after each test (other test files see the production hasher)."""
    from allotrack.web import auth

    kept = auth._HASHER, auth._DUMMY_HASH
    auth._HASHER, auth._DUMMY_HASH = CHEAP, CHEAP_DUMMY
    try:
        yield
    finally:
        auth._HASHER, auth._DUMMY_HASH = kept


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    import uvicorn
    from webfixtures import _reset

    from allotrack.web.app import create_app

    folder = tmp_path_factory.mktemp(f"hostile-{request.param}")
    url = empty_store_url(request.param, folder)
    app = create_app(url, secret_key="hostile-live", uploads_dir=folder / "uploads", **LIMITS)  # type: ignore[arg-type]
    store = app.state.store
    store.import_records(c1_records(), user="setup", centre="C1")
    store.import_records(c2_records(), user="setup", centre="C2")
    live = Live(request.param, "", app)
    with cheap_hashing():
        for name, (role, centre) in ACCOUNTS.items():
            add_user(store.engine, name, PASSWORD, role, centre)
            live.users[name] = live.user(name)
            live.tokens[name] = issue_token(store.engine, live.users[name])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.025)
    assert server.started, "the server did not start"
    live.base = f"http://127.0.0.1:{port}"
    yield live
    server.should_exit = True
    thread.join(timeout=10)
    store.engine.dispose()
    if request.param == "postgresql":
        _reset(url)


@pytest.fixture(autouse=True)
def fresh_throttle(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with a login throttle of its own (all requests come from 127.0.0.1: one test's failed
    logins must not block the next test's), and with the test cost of password hashing."""
    if "live" not in request.fixturenames:
        yield
        return
    live: Live = request.getfixturevalue("live")
    live.app.state.throttle = LoginThrottle()
    with cheap_hashing():
        yield


TABLE_COUNTS: dict[str, str] = {}


def fingerprint(engine: sa.Engine) -> dict[str, int]:
    """Row counts of every table of the store and, for the record tables, of their deleted rows: any write
    (insert, soft delete, lock, audit row, token, plan, study lock) changes it."""
    if not TABLE_COUNTS.get(str(engine.url)):
        meta = sa.MetaData()
        meta.reflect(engine)
        parts = []
        for name, table in sorted(meta.tables.items()):
            if name == "alembic_version":
                continue
            parts.append(f"(SELECT count(*) FROM {name}) AS n_{name}")
            if "deleted" in table.c:
                parts.append(f"(SELECT count(*) FROM {name} WHERE deleted) AS d_{name}")
        TABLE_COUNTS[str(engine.url)] = "SELECT " + ", ".join(parts)
    with engine.connect() as conn:
        row = conn.execute(sa.text(TABLE_COUNTS[str(engine.url)])).mappings().one()
    return {k: int(v) for k, v in row.items()}


def changed(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {k: (before[k], after[k]) for k in before if before[k] != after.get(k)}


def rows_of(engine: sa.Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def frame_of(engine: sa.Engine, sql: str, **params: Any) -> pd.DataFrame:
    return pd.DataFrame(rows_of(engine, sql, **params))
