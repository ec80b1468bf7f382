"""Hostile use of the log-in, session and API token machinery: oversized credentials refused before any work, a
bounded and atomic login throttle that one typist cannot turn against the other users of an address, no user
enumeration by timing, an administrator's unlock; sessions revoked by logout, password change and deactivation;
the password-change page; scoped, expiring, listable and revocable API tokens."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import argon2
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from webfixtures import PASSWORD, csrf_of, login, page_csrf, web  # noqa: F401  (web: the fixture)

from allotrack.records.store import API_TOKENS
from allotrack.web.auth import add_user
from allotrack.web.security import LoginThrottle


@pytest.fixture
def hashing(monkeypatch):
    """Counts Argon2 verifications and hashes (each one slowed a little, to widen any race)."""
    counts = {"verify": 0, "hash": 0}
    lock = threading.Lock()
    verify, hash_ = argon2.PasswordHasher.verify, argon2.PasswordHasher.hash

    def counting_verify(self, stored, password):
        with lock:
            counts["verify"] += 1
        return verify(self, stored, password)

    def counting_hash(self, password, **kw):
        with lock:
            counts["hash"] += 1
        return hash_(self, password, **kw)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting_verify)
    monkeypatch.setattr(argon2.PasswordHasher, "hash", counting_hash)
    return counts


@pytest.fixture
def fresh_throttle(web):
    """A throttle of this test's own (the module's app is shared)."""
    kept = web.state.throttle
    web.state.throttle = LoginThrottle()
    yield web.state.throttle
    web.state.throttle = kept


def _login_form(app) -> tuple[TestClient, str]:
    client = TestClient(app, follow_redirects=False)
    return client, csrf_of(client.get("/login").text)


def _try(client: TestClient, token: str, username: str, password: str) -> int:
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token}).status_code


def _account(web, name: str, role: str = "data_manager", centre: str | None = "C1") -> str:
    add_user(web.state.store.engine, name, PASSWORD, role, centre)
    return name


# 1. login


def test_oversized_credentials_are_refused_before_any_work(web, fresh_throttle, hashing):
    client, token = _login_form(web)
    wrong = client.post("/login", data={"username": "dm1", "password": "wrong", "csrf_token": token})
    hashing["verify"] = hashing["hash"] = 0
    for username, password in (("u" * 201, "x"), ("x" * 100_000, "x"), ("dm1", "p" * 1025)):
        res = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        assert res.status_code == wrong.status_code == 401
        assert "Wrong user name or password" in res.text
    assert hashing == {"verify": 0, "hash": 0}
    assert len(fresh_throttle) == 2  # only the wrong password's two keys (user, address): nothing of the big ones
    assert len(TestClient(web).post("/api/token", json={"username": "u" * 201, "password": "x"}).content) < 2000


def test_the_throttle_memory_is_bounded():
    throttle = LoginThrottle(max_keys=100)
    for i in range(1000):
        throttle.failed(f"user:ghost{i}", "addr:10.0.0.1")
    assert len(throttle) <= 100
    assert throttle.blocked("addr:10.0.0.1")  # the newest keys are kept


def test_parallel_wrong_logins_check_at_most_five_passwords(web, fresh_throttle, hashing):
    name = _account(web, "racer")
    forms = [_login_form(web) for _ in range(30)]
    hashing["verify"] = hashing["hash"] = 0
    start = threading.Barrier(30)
    statuses: list[int] = []

    def attempt(client: TestClient, token: str) -> None:
        start.wait()
        statuses.append(_try(client, token, name, "not the password"))

    threads = [threading.Thread(target=attempt, args=form) for form in forms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(statuses)) == [401, 429] and statuses.count(401) <= 5
    assert hashing["verify"] <= 5


def test_one_typist_locks_out_neither_the_address_nor_is_reset_by_their_own_login(web, fresh_throttle):
    web.state.throttle = LoginThrottle(max_failures=5, address_max_failures=8)
    client, token = _login_form(web)
    for _ in range(5):
        assert _try(client, token, "vw1", "typo typo") == 401
    assert _try(client, token, "vw1", PASSWORD) == 429  # this user is locked ...
    assert _try(client, token, "an1", PASSWORD) == 303  # ... but not another user behind the same address
    client, token = _login_form(web)
    for i in range(2):  # an attacker's own successful login does not reset the address counter (now 7 failures)
        assert _try(client, token, f"ghost{i}", "guess") == 401
        assert _try(client, token, "dm1", PASSWORD) == 303
        client, token = _login_form(web)
    assert _try(client, token, "ghost9", "guess") == 401  # the 8th
    assert _try(client, token, "ghost10", "guess") == 429


def test_unknown_users_cost_what_a_wrong_password_costs(web, fresh_throttle, hashing):
    client, token = _login_form(web)
    hashing["verify"] = hashing["hash"] = 0
    assert _try(client, token, "vw1", "wrong password") == 401
    known = dict(hashing)
    hashing["verify"] = hashing["hash"] = 0
    assert _try(client, token, "nobody-at-all", "wrong password") == 401
    assert hashing == known == {"verify": 1, "hash": 0}


def test_an_administrator_unlocks_an_account(web, fresh_throttle):
    from allotrack.cli import app as cli
    from allotrack.web.auth import unlock_user

    name = _account(web, "locked1")
    client, token = _login_form(web)
    for _ in range(5):
        _try(client, token, name, "wrong")
    assert _try(client, token, name, PASSWORD) == 429
    assert unlock_user(web.state.store.engine, name)
    assert _try(client, token, name, PASSWORD) == 303
    assert not unlock_user(web.state.store.engine, "nobody-at-all")
    client, token = _login_form(web)
    for _ in range(5):
        _try(client, token, name, "wrong")
    assert _try(client, token, name, PASSWORD) == 429
    url = web.state.store.engine.url.render_as_string(hide_password=False)
    res = CliRunner().invoke(cli, ["user", "unlock", name, "--db", url])
    assert res.exit_code == 0, res.output
    assert "unlocked" in res.output
    assert _try(client, token, name, PASSWORD) == 303
    assert CliRunner().invoke(cli, ["user", "unlock", "nobody-at-all", "--db", url]).exit_code != 0


# 2. sessions revoked


def test_a_cookie_copied_before_logout_stops_working(web, fresh_throttle):
    name = _account(web, "copier")
    client = login(web, name)
    stolen = dict(client.cookies)
    assert client.post("/logout", data={"csrf_token": page_csrf(client)}).status_code == 303
    thief = TestClient(web, follow_redirects=False, cookies=stolen)
    res = thief.get("/patients")
    assert res.status_code == 303 and res.headers["location"] == "/login"
    assert thief.get("/api/patients").status_code == 401
    assert login(web, name).get("/patients").status_code == 200  # a new login works


def test_deactivation_ends_sessions_and_tokens(web, fresh_throttle):
    from allotrack.web.auth import deactivate_user

    name = _account(web, "leaver")
    client = login(web, name)
    token = TestClient(web).post("/api/token", json={"username": name, "password": PASSWORD}).json()["token"]
    assert deactivate_user(web.state.store.engine, name)
    assert client.get("/patients").status_code == 303
    assert TestClient(web).get("/api/patients", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    client, form = _login_form(web)
    assert _try(client, form, name, PASSWORD) == 401
    from allotrack.cli import app as cli

    other = _account(web, "leaver2")
    client = login(web, other)
    url = web.state.store.engine.url.render_as_string(hide_password=False)
    res = CliRunner().invoke(cli, ["user", "deactivate", other, "--db", url])
    assert res.exit_code == 0 and "deactivated" in res.output, res.output
    assert client.get("/patients").status_code == 303


# 3. password change


def test_password_change_page(web, fresh_throttle):
    name = _account(web, "changer")
    client = login(web, name)
    other = login(web, name)  # another browser of the same user
    page = client.get("/account/password")
    assert page.status_code == 200 and 'name="current_password"' in page.text
    token = csrf_of(page.text)
    new = "a brand new passphrase"

    def change(current: str, password: str, confirm: str | None = None, csrf: str = token) -> int:
        return client.post("/account/password", data={"csrf_token": csrf, "current_password": current,
                                                      "new_password": password,
                                                      "confirm_password": confirm or password}).status_code  # fmt: skip

    assert change(PASSWORD, new, csrf="forged") == 403
    assert change("not my password", new) == 403
    assert change(PASSWORD, "short") == 422
    assert change(PASSWORD, new, "a different passphrase") == 422
    assert change(PASSWORD, new) == 303
    assert client.get("/patients").status_code == 200  # the changer stays signed in ...
    assert other.get("/patients").status_code == 303  # ... every other session ends
    fresh, form = _login_form(web)
    assert _try(fresh, form, name, PASSWORD) == 401
    assert _try(fresh, form, name, new) == 303
    assert TestClient(web, follow_redirects=False).get("/account/password").status_code == 303


# 4. API tokens


def _token(web, name: str, **extra) -> dict:
    res = TestClient(web).post("/api/token", json={"username": name, "password": PASSWORD, **extra})
    assert res.status_code == 200, res.text
    return res.json()


def test_a_read_token_cannot_write(web, fresh_throttle):
    issued = _token(web, "dm1", scopes=["read"])
    assert issued["scopes"] == ["read"]
    auth = {"Authorization": f"Bearer {issued['token']}"}
    client = TestClient(web)
    assert client.get("/api/patients/MST14", headers=auth).status_code == 200
    res = client.post("/api/patients/MST14/gvhd", json={"date": "2018-06-01", "bilirubin": 4.0}, headers=auth)
    assert res.status_code == 403
    assert client.request("DELETE", "/api/records/gvhd/1", json={"reason": "x"}, headers=auth).status_code == 403
    both = {"Authorization": f"Bearer {_token(web, 'dm1')['token']}"}  # the default: read and write
    res = client.post("/api/patients/MST14/gvhd", json={"date": "2018-06-02", "bilirubin": 1.0}, headers=both)
    assert res.status_code == 201


def test_tokens_expire_and_are_stored_hashed(web, fresh_throttle):
    issued = _token(web, "vw1")
    expires = datetime.fromisoformat(issued["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert _token(web, "vw1", expires_in_days=2)["expires_at"] < issued["expires_at"]
    assert TestClient(web).post("/api/token", json={"username": "vw1", "password": PASSWORD,
                                                     "expires_in_days": 10_000}).status_code == 422  # fmt: skip
    auth = {"Authorization": f"Bearer {issued['token']}"}
    client = TestClient(web)
    assert client.get("/api/alerts", headers=auth).status_code == 200
    engine = web.state.store.engine
    with engine.begin() as conn:
        stored = conn.execute(sa.select(API_TOKENS.c.token_hash)).scalars().all()
        assert issued["token"] not in stored
        conn.execute(API_TOKENS.update().where(API_TOKENS.c.token_id == issued["token_id"])
                     .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
    assert client.get("/api/alerts", headers=auth).status_code == 401


def test_tokens_are_listed_and_revoked_by_their_owner(web, fresh_throttle):
    name = _account(web, "scripter")
    first, second = _token(web, name, label="nightly export"), _token(web, name, scopes=["read"])
    foreign = _token(web, "dm1")
    client = TestClient(web)
    auth = {"Authorization": f"Bearer {first['token']}"}
    listed = client.get("/api/tokens", headers=auth).json()
    assert {t["token_id"] for t in listed} == {first["token_id"], second["token_id"]}
    assert {t["label"] for t in listed} == {"nightly export", None}
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert client.delete(f"/api/tokens/{foreign['token_id']}", headers=auth).status_code == 404
    assert client.get("/api/alerts", headers={"Authorization": f"Bearer {foreign['token']}"}).status_code == 200
    assert client.delete(f"/api/tokens/{second['token_id']}", headers=auth).status_code == 204
    assert client.get("/api/alerts", headers={"Authorization": f"Bearer {second['token']}"}).status_code == 401
    listed = {t["token_id"]: t for t in client.get("/api/tokens", headers=auth).json()}
    assert listed[second["token_id"]]["revoked"] is True
    browser = login(web, name)  # a browser session lists and revokes too (with its CSRF header)
    assert len(browser.get("/api/tokens").json()) == 2
    assert browser.delete(f"/api/tokens/{first['token_id']}").status_code == 403
    res = browser.delete(f"/api/tokens/{first['token_id']}", headers={"X-CSRF-Token": page_csrf(browser)})
    assert res.status_code == 204
    assert client.get("/api/alerts", headers=auth).status_code == 401


def test_cli_lists_and_revokes_a_users_tokens(web, fresh_throttle):
    from allotrack.cli import app as cli

    name = _account(web, "cliuser")
    issued = _token(web, name, label="lab laptop")
    url = web.state.store.engine.url.render_as_string(hide_password=False)
    res = CliRunner().invoke(cli, ["user", "tokens", name, "--db", url])
    assert res.exit_code == 0, res.output
    assert "lab laptop" in res.output and issued["token"] not in res.output
    res = CliRunner().invoke(cli, ["user", "tokens", name, "--db", url, "--revoke", str(issued["token_id"])])
    assert res.exit_code == 0, res.output
    assert TestClient(web).get("/api/alerts", headers={"Authorization": f"Bearer {issued['token']}"}).status_code == 401
