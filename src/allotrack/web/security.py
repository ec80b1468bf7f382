"""Request security: CSRF tokens for every form, login throttling, and error references instead of traces.

CSRF: a random token lives in the signed session cookie and must come back in each POST form (``csrf_token``) or
the ``X-CSRF-Token`` header; API calls with a bearer token carry no cookie and need none. Login throttling: five
failed attempts for one user name or one client address within 15 minutes block further attempts for the rest
of that window.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import defaultdict, deque

from starlette.requests import Request

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and submitted and hmac.compare_digest(str(expected), submitted))


class LoginThrottle:
    """Failed logins per key (user name, client address) in a sliding window, in memory."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.max_failures, self.window = max_failures, window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        q = self._failures[key]
        now = time.monotonic()
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(k)) >= self.max_failures for k in keys)

    def failed(self, *keys: str) -> None:
        for k in keys:
            self._recent(k).append(time.monotonic())

    def succeeded(self, *keys: str) -> None:
        for k in keys:
            self._failures.pop(k, None)


def reference_id() -> str:
    """A short id shown to the user and logged with the error, so support can find it without any data."""
    return secrets.token_hex(6)
