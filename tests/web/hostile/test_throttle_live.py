"""The login throttle against the live server: 30 parallel wrong logins for one account evaluate at most five
(the rest refused without a password check, seen in the throttle's state and in the time they take), the right
password is then refused until an administrator's unlock (``allotrack user unlock``), one typist cannot lock out
the other accounts behind the same address, and an unknown name answers in the time a wrong password takes."""

from __future__ import annotations

import statistics
import threading
import time

from typer.testing import CliRunner

from allotrack.web.auth import add_user
from allotrack.web.security import ADDRESS_MAX_FAILURES, MAX_FAILURES, LoginThrottle
from hostile.hostile_live import PASSWORD, Browser, Live


def _attempt(live: Live, username: str, password: str) -> tuple[int, float]:
    browser = Browser(live.client())
    try:
        start = time.perf_counter()
        status = browser.login(username, password).status_code
        return status, time.perf_counter() - start
    finally:
        browser.close()


def test_thirty_parallel_wrong_logins_evaluate_at_most_five(live: Live) -> None:
    from allotrack.cli import app as cli

    name = "racer"
    add_user(live.engine, name, PASSWORD, "viewer", "C1")
    browsers = [Browser(live.client()) for _ in range(30)]
    tokens = [b.http.get("/login").text for b in browsers]
    start = threading.Barrier(30)
    results: list[tuple[int, float]] = []

    def attempt(browser: Browser, page: str) -> None:
        from hostile.hostile_live import csrf_of

        form = {"username": name, "password": "not the password", "csrf_token": csrf_of(page)}
        start.wait()
        t0 = time.perf_counter()
        status = browser.http.post("/login", data=form).status_code
        results.append((status, time.perf_counter() - t0))

    threads = [threading.Thread(target=attempt, args=pair) for pair in zip(browsers, tokens, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = [s for s, _ in results]
    assert len(statuses) == 30 and set(statuses) == {401, 429}, statuses
    assert statuses.count(401) <= MAX_FAILURES == 5  # evaluated (a password check each) ...
    throttle: LoginThrottle = live.app.state.throttle
    assert throttle._count(f"user:{name}", None) == statuses.count(401)  # ... the others never counted, never checked
    assert throttle._count("addr:127.0.0.1", None) <= MAX_FAILURES
    assert _attempt(live, name, PASSWORD)[0] == 429  # the right password too, until the window ends or an unlock
    res = CliRunner().invoke(cli, ["user", "unlock", name, "--db", live.url])
    assert res.exit_code == 0 and "unlocked" in res.output, res.output
    assert _attempt(live, name, PASSWORD)[0] == 303
    for b in browsers:
        b.close()


def test_one_typist_cannot_lock_out_the_other_accounts_of_the_address(live: Live) -> None:
    assert LoginThrottle().address_max_failures == ADDRESS_MAX_FAILURES == 50  # the documented per-address limit
    live.app.state.throttle = LoginThrottle(address_max_failures=12)  # the same rule, reached sooner
    for _ in range(20):  # one account mistyped over and over: five count, for the account and the address
        _attempt(live, "vw1", "typo typo")
    assert _attempt(live, "vw1", PASSWORD)[0] == 429
    assert _attempt(live, "an1", PASSWORD)[0] == 303  # another account behind the address still logs in
    for i in range(6):  # own successful logins do not reset the address's count
        assert _attempt(live, f"ghost{i}", "guess")[0] == 401
        assert _attempt(live, "dm1", PASSWORD)[0] == 303
    assert _attempt(live, "ghost7", "guess")[0] == 401  # the 12th failure of the address
    assert _attempt(live, "an1", PASSWORD)[0] == 429  # the documented limit: then the address waits


def test_an_unknown_name_costs_what_a_wrong_password_costs(live: Live) -> None:
    live.app.state.throttle = LoginThrottle(max_failures=100, address_max_failures=100)
    unknown, wrong = [], []
    _attempt(live, "dm1", "warm up")
    for i in range(15):  # interleaved, so that a slow moment of the machine hits both alike
        status, seconds = _attempt(live, f"nobody{i}", "wrong password")
        assert status == 401
        unknown.append(seconds)
        status, seconds = _attempt(live, "dm2", "wrong password")
        assert status == 401
        wrong.append(seconds)
    a, b = statistics.median(unknown), statistics.median(wrong)
    assert abs(a - b) <= 0.3 * max(a, b), (a, b)
