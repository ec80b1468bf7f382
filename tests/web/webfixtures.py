"""A web application over a store with the demo study in centre C1 and a second study in centre C2, on SQLite and
on the PostgreSQL test server; accounts of every role."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from allotrack.records.store import Store
from allotrack.study.demo import demo_records
from allotrack.web.app import create_app
from allotrack.web.auth import add_user

PG_URL = os.environ.get("ALLOTRACK_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "correct horse battery"
USERS = {  # name: (role, centre)
    "admin": ("administrator", None), "dm1": ("data_manager", "C1"), "an1": ("analyst", "C1"),
    "vw1": ("viewer", "C1"), "dm2": ("data_manager", "C2"),
}  # fmt: skip


def _reset(url: str) -> None:
    engine = sa.create_engine(url)
    found = sa.MetaData()
    found.reflect(engine)  # every table: today's, retired ones and alembic's
    found.drop_all(engine)
    engine.dispose()


def empty_store_url(backend: str, folder: Path) -> str:
    """A URL of an empty store: a new SQLite file in ``folder``, or the PostgreSQL test database emptied (the test
    is skipped when no server answers)."""
    if backend == "sqlite":
        return f"sqlite:///{folder / 'store.db'}"
    try:
        sa.create_engine(PG_URL).connect().close()
    except Exception:
        pytest.skip("no PostgreSQL server at 127.0.0.1:5432")
    _reset(PG_URL)
    return PG_URL


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def web(request, tmp_path_factory):
    url = empty_store_url(request.param, tmp_path_factory.mktemp("web"))
    app = create_app(url, secret_key="test-secret")
    store: Store = app.state.store
    store.import_records(demo_records(), user="setup", centre="C1")
    sys.path.insert(0, str(Path(__file__).parents[1] / "endpoints"))
    from test_derive import history  # the hand-built histories of the endpoint tests: five patients p1..p5

    store.import_records(history(), user="setup", centre="C2")
    for name, (role, centre) in USERS.items():
        add_user(store.engine, name, PASSWORD, role, centre)
    yield app
    store.engine.dispose()
    if request.param == "postgresql":
        _reset(url)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(app, username: str, raise_server_exceptions: bool = True) -> TestClient:
    client = TestClient(app, follow_redirects=False, raise_server_exceptions=raise_server_exceptions)
    token = csrf_of(client.get("/login").text)
    res = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert res.status_code == 303, res.text
    return client


def page_csrf(client: TestClient) -> str:
    return csrf_of(client.get("/patients").text)


def import_result(client: TestClient, answer, timeout: float = 120.0):
    """The result page of an upload's check: ``answer`` (the POST /import response) followed to its job page and
    polled until the background check has finished (any other answer is returned as it is)."""
    import time

    if answer.status_code != 303 or not answer.headers.get("location", "").startswith("/import/jobs/"):
        return answer
    url, deadline = answer.headers["location"], time.monotonic() + timeout
    while True:
        res = client.get(url)
        if res.status_code != 202 or time.monotonic() > deadline:
            return res
        time.sleep(0.05)
