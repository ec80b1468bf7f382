"""User accounts, roles and API tokens.

Roles (REDCap-like user rights): ``administrator`` (everything, every centre, user management, study lock),
``data_manager`` (enter, import and correct records of their centre), ``analyst`` (read and run reports for their
centre), ``viewer`` (read their centre). A user with a centre sees only that centre's patients (a data access
group); an administrator without a centre sees all. Passwords are stored as Argon2id hashes; API tokens only as
SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from allotrack.errors import InputError
from allotrack.records.store import API_TOKENS, USERS

ROLES = ("administrator", "data_manager", "analyst", "viewer")
CAN_WRITE = ("administrator", "data_manager")
CAN_ANALYSE = ("administrator", "data_manager", "analyst")
_HASHER = PasswordHasher()


@dataclass(frozen=True)
class User:
    user_id: int
    username: str
    role: str
    centre_code: str | None
    blinded: bool = False  # never sees a randomised arm (pages, API, audit trail, reports)

    @property
    def can_write(self) -> bool:
        return self.role in CAN_WRITE

    @property
    def can_analyse(self) -> bool:
        return self.role in CAN_ANALYSE

    @property
    def is_admin(self) -> bool:
        return self.role == "administrator"


def _row_user(row: sa.Row[Any]) -> User:
    return User(row.user_id, row.username, row.role, row.centre_code, bool(row.blinded))


def add_user(engine: sa.Engine, username: str, password: str, role: str, centre: str | None = None,
             blinded: bool = False) -> User:
    """Create an account (passwords of at least 10 characters)."""
    if role not in ROLES:
        raise InputError(f"role must be one of {ROLES}", table="users", column="role")
    if len(password) < 10:
        raise InputError("a password needs at least 10 characters", table="users", column="password")
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


def authenticate(engine: sa.Engine, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (the same work either way)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(USERS).where(USERS.c.username == username, USERS.c.active.is_(True))).first()
    stored = row.password_hash if row is not None else _HASHER.hash("timing-equaliser-not-a-password")
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return _row_user(row) if row is not None else None


def user_by_id(engine: sa.Engine, user_id: int) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(USERS).where(USERS.c.user_id == user_id, USERS.c.active.is_(True))).first()
    return _row_user(row) if row is not None else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(engine: sa.Engine, user: User) -> str:
    """A new API token for ``user`` (shown once; only its digest is stored)."""
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(API_TOKENS.insert().values(token_hash=_digest(token), user_id=user.user_id,
                                                created_at=datetime.now(UTC), revoked=False))  # fmt: skip
    return token


def user_for_token(engine: sa.Engine, token: str) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(USERS).join(API_TOKENS, API_TOKENS.c.user_id == USERS.c.user_id)
            .where(API_TOKENS.c.token_hash == _digest(token), API_TOKENS.c.revoked.is_(False),
                   USERS.c.active.is_(True))
        ).first()  # fmt: skip
    return _row_user(row) if row is not None else None
