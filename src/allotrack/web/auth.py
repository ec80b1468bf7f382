"""User accounts, roles and API tokens.

Roles and rights (REDCap's user rights, :mod:`allotrack.web.rights`): each role has default rights —
``administrator`` every right (``view``, ``enter``, ``import``, ``export_identified``, ``export_deidentified``,
``report``, ``delete``, ``restore``, ``lock_record``, ``sign``, ``randomise``, ``audit``, ``design``,
``lock_study``, ``manage_users``), ``data_manager`` view, enter, import, export de-identified, report, delete,
lock_record, randomise and audit, ``analyst`` view, export de-identified, report and audit, ``viewer`` view — and
an administrator grants or revokes single rights per user; :attr:`User.rights` are the effective ones. A user
with a centre sees only that centre's patients (a data access group); an administrator without a centre sees
all. Passwords are stored as Argon2id hashes; API tokens only as
SHA-256 digests.

Log-in: names over 200 and passwords over 1024 characters are refused before any work; an unknown name costs one
Argon2 verification, as a wrong password does (against a dummy hash). Sessions: a signed-in browser carries the
user's ``session_epoch`` of its login, and logout, a password change and deactivation move it on (every session of
the user ends). API tokens grant their ``scopes`` (``read``, ``write``: within the role's rights) until they expire
(30 days by default) or are revoked; a password change or deactivation revokes them all; a ``read`` token carries
only the read rights (:data:`allotrack.web.rights.READ_RIGHTS`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from allotrack.errors import InputError
from allotrack.records.store import API_TOKENS, USERS
from allotrack.web.rights import effective_rights, stored_rights

ROLES = ("administrator", "data_manager", "analyst", "viewer")
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))  # what an unknown user name is verified against
MAX_USERNAME = 200  # longer log-in names and passwords are refused before any throttle bookkeeping or hashing
MAX_PASSWORD = 1024
MIN_PASSWORD = 10
SCOPES = ("read", "write")
TOKEN_DAYS = 30
MAX_TOKEN_DAYS = 365


@dataclass(frozen=True)
class User:
    user_id: int
    username: str
    role: str
    centre_code: str | None
    blinded: bool = False  # never sees a randomised arm (pages, API, audit trail, reports)
    session_epoch: int = 0  # sessions signed in under an older epoch are over (logout, password change, deactivation)
    granted: frozenset[str] = frozenset()  # rights added to the role's defaults (allotrack.web.rights)
    revoked: frozenset[str] = frozenset()  # rights taken from them
    read_only: bool = False  # the bearer of an API token of scope read: only the read rights

    @property
    def rights(self) -> frozenset[str]:
        """The effective rights: the role's defaults with this user's grants and revocations."""
        return effective_rights(self.role, self.granted, self.revoked, self.read_only)

    @property
    def can_write(self) -> bool:
        return "enter" in self.rights

    @property
    def can_analyse(self) -> bool:
        return "report" in self.rights

    @property
    def is_admin(self) -> bool:
        return self.role == "administrator"


def _row_user(row: sa.Row[Any]) -> User:
    return User(row.user_id, row.username, row.role, row.centre_code, bool(row.blinded), int(row.session_epoch),
                stored_rights(row.rights_granted), stored_rights(row.rights_revoked))  # fmt: skip


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters", table="users", column="password")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"a password has at most {MAX_PASSWORD} characters", table="users", column="password")


def add_user(engine: sa.Engine, username: str, password: str, role: str, centre: str | None = None,
             blinded: bool = False) -> User:
    """Create an account (passwords of at least 10 characters)."""
    if role not in ROLES:
        raise InputError(f"role must be one of {ROLES}", table="users", column="role")
    if not username or len(username) > 100:
        raise InputError("a user name has 1 to 100 characters", table="users", column="username")
    _check_password(password)
    if role != "administrator" and not centre:
        raise InputError("only administrators may have no centre (data access group)", table="users", column="centre")
    with engine.begin() as conn:
        if conn.execute(sa.select(USERS.c.user_id).where(USERS.c.username == username)).first():
            raise InputError("this user name is taken", table="users", column="username")
        result = conn.execute(USERS.insert().values(username=username, password_hash=_HASHER.hash(password), role=role,
                                                    centre_code=centre, active=True, created_at=datetime.now(UTC),
                                                    blinded=blinded))
        user_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    return User(user_id, username, role, centre, blinded)


def oversized(username: str, password: str) -> bool:
    """Credentials no account can have (refused before any work)."""
    return len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD


def login_account(engine: sa.Engine, username: str) -> sa.Row[Any] | None:
    """The active account of this name (for :func:`check_password`), else None."""
    with engine.connect() as conn:
        return conn.execute(sa.select(USERS).where(USERS.c.username == username, USERS.c.active.is_(True))).first()


def check_password(account: sa.Row[Any] | None, password: str) -> User | None:
    """The user when ``password`` is the account's, else None: one Argon2 verification either way."""
    try:
        _HASHER.verify(account.password_hash if account is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return _row_user(account) if account is not None else None


def unlocked_since(account: sa.Row[Any] | None) -> float | None:
    """When an administrator last unlocked the account (seconds since the epoch), if ever."""
    at = account.unlocked_at if account is not None else None
    return _aware(at).timestamp() if at is not None else None


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite gives back naive UTC


def authenticate(engine: sa.Engine, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (the same work either way)."""
    if oversized(username, password):
        return None
    return check_password(login_account(engine, username), password)


def _next_epoch(conn: sa.Connection, user_id: int) -> int:
    conn.execute(USERS.update().where(USERS.c.user_id == user_id).values(session_epoch=USERS.c.session_epoch + 1))
    return int(conn.execute(sa.select(USERS.c.session_epoch).where(USERS.c.user_id == user_id)).scalar_one())


def end_sessions(engine: sa.Engine, user_id: int) -> None:
    """Every session of the user ends (logout)."""
    with engine.begin() as conn:
        _next_epoch(conn, user_id)


def change_password(engine: sa.Engine, user_id: int, new_password: str) -> int:
    """Set a new password (the rule of :func:`add_user`); every session and API token of the user ends. The new
    session epoch (for the session that made the change)."""
    _check_password(new_password)
    with engine.begin() as conn:
        conn.execute(USERS.update().where(USERS.c.user_id == user_id)
                     .values(password_hash=_HASHER.hash(new_password)))  # fmt: skip
        conn.execute(API_TOKENS.update().where(API_TOKENS.c.user_id == user_id).values(revoked=True))
        return _next_epoch(conn, user_id)


def _user_id(conn: sa.Connection, username: str) -> int | None:
    found = conn.execute(sa.select(USERS.c.user_id).where(USERS.c.username == username)).scalar()
    return int(found) if found is not None else None


def deactivate_user(engine: sa.Engine, username: str) -> bool:
    """Deactivate the account: it can no longer log in, its sessions end, its API tokens are revoked."""
    with engine.begin() as conn:
        user_id = _user_id(conn, username)
        if user_id is None:
            return False
        conn.execute(USERS.update().where(USERS.c.user_id == user_id).values(active=False))
        conn.execute(API_TOKENS.update().where(API_TOKENS.c.user_id == user_id).values(revoked=True))
        _next_epoch(conn, user_id)
    return True


def unlock_user(engine: sa.Engine, username: str) -> bool:
    """An administrator's unlock of a throttled account: its failed logins so far no longer count (in every server
    process, which reads this time at each login). False when there is no such account."""
    with engine.begin() as conn:
        done = conn.execute(USERS.update().where(USERS.c.username == username).values(unlocked_at=datetime.now(UTC)))
    return bool(done.rowcount)


def user_by_id(engine: sa.Engine, user_id: int) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(USERS).where(USERS.c.user_id == user_id, USERS.c.active.is_(True))).first()
    return _row_user(row) if row is not None else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """An API token as its owner sees it (never the token itself)."""

    token_id: int
    label: str | None
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked: bool

    @property
    def usable(self) -> bool:
        return not self.revoked and self.expires_at is not None and self.expires_at > datetime.now(UTC)


def _token_info(row: sa.Row[Any]) -> TokenInfo:
    return TokenInfo(int(row.token_id), row.label, tuple(str(row.scopes).split()), _aware(row.created_at),
                     _aware(row.expires_at) if row.expires_at is not None else None, bool(row.revoked))  # fmt: skip


def new_token(engine: sa.Engine, user: User, scopes: Iterable[str] = SCOPES, days: int = TOKEN_DAYS,
              label: str | None = None) -> tuple[str, TokenInfo]:  # fmt: skip
    """A new API token for ``user`` with these scopes, valid for ``days`` (shown once; only its digest is stored)."""
    chosen = tuple(s for s in SCOPES if s in set(scopes))
    if not chosen or set(scopes) - set(SCOPES):
        raise InputError(f"scopes: one or more of {SCOPES}", table="api_tokens", column="scopes")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise InputError(f"a token lasts 1 to {MAX_TOKEN_DAYS} days", table="api_tokens", column="expires_at")
    token, now = secrets.token_urlsafe(32), datetime.now(UTC)
    with engine.begin() as conn:
        result = conn.execute(API_TOKENS.insert().values(
            token_hash=_digest(token), user_id=user.user_id, created_at=now, revoked=False, scopes=" ".join(chosen),
            expires_at=now + timedelta(days=days), label=label))  # fmt: skip
        token_id = result.inserted_primary_key[0]  # type: ignore[index]
        row = conn.execute(sa.select(API_TOKENS).where(API_TOKENS.c.token_id == token_id)).one()
    return token, _token_info(row)


def issue_token(engine: sa.Engine, user: User, scopes: Iterable[str] = SCOPES, days: int = TOKEN_DAYS) -> str:
    """A new API token for ``user`` (shown once; only its digest is stored)."""
    return new_token(engine, user, scopes, days)[0]


def token_access(engine: sa.Engine, token: str) -> tuple[User, frozenset[str]] | None:
    """The active user a usable (not revoked, not expired) token stands for, and its scopes; else None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(USERS, API_TOKENS.c.scopes, API_TOKENS.c.expires_at)
            .join(API_TOKENS, API_TOKENS.c.user_id == USERS.c.user_id)
            .where(API_TOKENS.c.token_hash == _digest(token), API_TOKENS.c.revoked.is_(False),
                   USERS.c.active.is_(True))
        ).first()  # fmt: skip
    if row is None or row.expires_at is None or _aware(row.expires_at) <= datetime.now(UTC):
        return None  # tokens from before migration 0009 have no expiry: refused
    return _row_user(row), frozenset(str(row.scopes).split())


def user_for_token(engine: sa.Engine, token: str) -> User | None:
    found = token_access(engine, token)
    return found[0] if found is not None else None


def list_tokens(engine: sa.Engine, user_id: int) -> list[TokenInfo]:
    """The user's API tokens, newest first (revoked and expired ones too)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(API_TOKENS).where(API_TOKENS.c.user_id == user_id)
                            .order_by(API_TOKENS.c.token_id.desc())).all()  # fmt: skip
    return [_token_info(r) for r in rows]


def revoke_token(engine: sa.Engine, user_id: int, token_id: int) -> bool:
    """Revoke one of the user's tokens; False when the user has no token of that id."""
    with engine.begin() as conn:
        mine = API_TOKENS.c.token_id == token_id, API_TOKENS.c.user_id == user_id
        done = conn.execute(API_TOKENS.update().where(*mine).values(revoked=True))
    return bool(done.rowcount)
