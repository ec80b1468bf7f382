"""Request security: CSRF tokens for every form, login throttling, and error references instead of traces.

CSRF: a random token lives in the signed session cookie and must come back in each POST form (``csrf_token``) or
the ``X-CSRF-Token`` header; API calls with a bearer token carry no cookie and need none. Login throttling: five
failed attempts for one user name, or fifty from one client address (many users may share one), within 15 minutes
block further attempts for the rest of that window. Each attempt is counted before its password is checked (so
parallel attempts cannot outrun the count); a successful login clears that user's count and takes back only its
own attempt from the address's. The throttle keeps at most ``max_keys`` keys (the least recently used go first),
and an administrator's unlock (``allotrack user unlock``) discounts everything before it.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque

from starlette.requests import Request

MAX_FAILURES = 5
ADDRESS_MAX_FAILURES = 50
WINDOW_SECONDS = 15 * 60
MAX_KEYS = 10_000


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
    """Failed logins per key (``user:NAME``, ``addr:ADDRESS``) in a sliding window, in memory, thread-safe.

    ``since`` (wall-clock seconds, an administrator's unlock) discounts the failures recorded before it."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS, *,
                 address_max_failures: int = ADDRESS_MAX_FAILURES, max_keys: int = MAX_KEYS) -> None:  # fmt: skip
        self.max_failures, self.window = max_failures, window
        self.address_max_failures, self.max_keys = address_max_failures, max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._failures)

    def _limit(self, key: str) -> int:
        return self.address_max_failures if key.startswith("addr:") else self.max_failures

    def _count(self, key: str, since: float | None) -> int:
        q = self._failures.get(key)
        if q is None:
            return 0
        now = time.time()
        while q and now - q[0] > self.window:
            q.popleft()
        if not q:
            del self._failures[key]
            return 0
        return len(q) if since is None else sum(1 for t in q if t > since)

    def _blocked(self, keys: tuple[str, ...], since: float | None) -> bool:
        return any(self._count(k, since) >= self._limit(k) for k in keys)

    def _add(self, keys: tuple[str, ...]) -> None:
        now = time.time()
        for k in keys:
            q = self._failures.get(k)
            if q is None:
                q = self._failures[k] = deque(maxlen=self._limit(k))
            q.append(now)
            self._failures.move_to_end(k)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def blocked(self, *keys: str, since: float | None = None) -> bool:
        with self._lock:
            return self._blocked(keys, since)

    def attempt(self, *keys: str, since: float | None = None) -> bool:
        """Count an attempt as failed before checking it (atomically with the check); False when blocked."""
        with self._lock:
            if self._blocked(keys, since):
                return False
            self._add(keys)
            return True

    def failed(self, *keys: str) -> None:
        with self._lock:
            self._add(keys)

    def take_back(self, *keys: str) -> None:
        """Undo the newest counted attempt of each key (an attempt that succeeded after all)."""
        with self._lock:
            for k in keys:
                q = self._failures.get(k)
                if q:
                    q.pop()

    def succeeded(self, *keys: str) -> None:
        """Forget every failure of these keys (a user's own successful login; tests)."""
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)


def reference_id() -> str:
    """A short id shown to the user and logged with the error, so support can find it without any data."""
    return secrets.token_hex(6)
