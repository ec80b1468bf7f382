"""schemathesis against the OpenAPI document: generated requests to every operation (as an authenticated data
manager and anonymously) never produce a server error."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from allotrack.study.demo import demo_records
from allotrack.web.app import create_app
from allotrack.web.auth import add_user

PASSWORD = "correct horse battery"
APP = create_app(f"sqlite:///{Path(tempfile.mkdtemp(prefix='allotrack-fuzz-')) / 'web.db'}", secret_key="fuzz")
APP.state.store.import_records(demo_records(), user="setup", centre="C1")
add_user(APP.state.store.engine, "dm1", PASSWORD, "data_manager", "C1")
TOKEN = TestClient(APP).post("/api/token", json={"username": "dm1", "password": PASSWORD}).json()["token"]
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error])
    case.call_and_validate(checks=[not_a_server_error])  # anonymous
