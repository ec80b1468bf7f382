"""User rights as REDCap names them: what an account may do, on every path (web forms, JSON API, web import, the
CLI commands that act as an account, exports, the audit trail, randomisation, locks).

Each role has documented default rights (:data:`ROLE_RIGHTS`); an administrator grants or revokes single rights
per user (``users.rights_granted`` / ``users.rights_revoked``, migration 0010; ``allotrack user rights NAME --grant
R --revoke R``, audited). A user's effective rights are ``(role defaults | granted) - revoked``; a bearer of an API
token with only the ``read`` scope has only the read rights among them (:data:`READ_RIGHTS`). Every route asks
:func:`require`, which raises :class:`Forbidden` naming the missing right. The centre (data access group) still
bounds every right: a right never reaches another centre's records.

A locked record (REDCap's "Lock/Unlock records"; :mod:`allotrack.web.record_lock`) is not edited, deleted or
corrected by an import until unlocked: every such write asks :func:`ensure_unlocked` (or, for an import's batch of
corrections, :func:`allotrack.records.locks.locked_row_ids`) in its own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from allotrack.errors import AllotrackError, InputError
from allotrack.records.locks import locked_row_ids

if TYPE_CHECKING:
    from allotrack.web.auth import User

RIGHTS: dict[str, str] = {  # name: what it allows (REDCap's user rights)
    "view": "see the records of one's data access group",
    "enter": "create and edit records (forms, API)",
    "import": "import records from files (web import, allotrack import)",
    "export_identified": "download data with identifiers (a study run's analysis dataset as stored)",
    "export_deidentified": "download de-identified data (study codes instead of ids, no calendar dates)",
    "report": "add study plans and run them into reports",
    "delete": "delete records (kept, marked deleted, with a reason)",
    "restore": "restore a deleted patient with the records deleted with it",
    "lock_record": "lock and unlock single records",
    "sign": "e-sign completed assessments (re-entering one's password; signing locks the record)",
    "randomise": "randomise patients",
    "audit": "see the audit trail with its old and new values (without it: who, when, what and why only)",
    "design": "set up a randomisation, read the allocation log, store a study's matched sets",
    "lock_study": "lock and unlock the whole study's data",
    "manage_users": "grant and revoke other users' rights",
}
ROLE_RIGHTS: dict[str, frozenset[str]] = {
    "administrator": frozenset(RIGHTS),
    "data_manager": frozenset({"view", "enter", "import", "export_deidentified", "report", "delete", "lock_record",
                               "randomise", "audit"}),
    "analyst": frozenset({"view", "export_deidentified", "report", "audit"}),
    "viewer": frozenset({"view"}),
}  # fmt: skip
READ_RIGHTS = frozenset({"view", "audit", "export_identified", "export_deidentified", "report"})


class Forbidden(AllotrackError, PermissionError):
    """The user's rights do not allow this."""


class RecordLocked(Forbidden):
    """The record is locked (or signed): unlock it first."""


def parse_rights(text: str | None, column: str = "rights") -> frozenset[str]:
    """Right names from their stored (space-separated) or typed (also comma-separated) form; unknown names are
    refused with the list of rights."""
    names = frozenset((text or "").replace(",", " ").split())
    unknown = sorted(names - set(RIGHTS))
    if unknown:
        raise InputError(f"no right named {', '.join(map(repr, unknown))}: the rights are {', '.join(RIGHTS)}",
                         table="users", column=column)  # fmt: skip
    return names


def stored_rights(text: str | None) -> frozenset[str]:
    """The rights named in a stored override column (names no longer known are ignored: never a failed login)."""
    return frozenset((text or "").split()) & frozenset(RIGHTS)


def effective_rights(role: str, granted: Iterable[str] = (), revoked: Iterable[str] = (),
                     read_only: bool = False) -> frozenset[str]:  # fmt: skip
    """The role's default rights with the user's grants added and revocations taken away; only the read rights
    for a read-only API token."""
    rights = (ROLE_RIGHTS.get(role, frozenset()) | frozenset(granted)) - frozenset(revoked)
    return rights & READ_RIGHTS if read_only else rights


def require(user: User, right: str, what: str | None = None) -> None:
    """Raise :class:`Forbidden` unless ``user`` has ``right``; the message names the right (after ``what``, the
    refused action's own words, when given)."""
    if right not in RIGHTS:
        raise ValueError(f"unknown right {right!r}")
    if right not in user.rights:
        why = f"the right '{right}' ({RIGHTS[right]})"
        if user.read_only and right not in READ_RIGHTS:
            why += ": an API token of scope read carries only the read rights"
        raise Forbidden(f"{what} — your account lacks {why}" if what else f"your account lacks {why}")


def ensure_unlocked(conn: sa.Connection, table: str, row_id: int) -> None:
    """Raise :class:`RecordLocked` when the record ``table`` / ``row_id`` is locked. Asked in the writer's own
    transaction, after taking the record's row lock (PostgreSQL; SQLite's writers run one at a time), so that a
    lock being taken at the same moment is either seen here or waits for this write to end."""
    from allotrack.records.tables import METADATA

    if table in METADATA.tables:
        t = METADATA.tables[table]
        conn.execute(sa.select(t.c.row_id).where(t.c.row_id == row_id).with_for_update())
    if locked_row_ids(conn, table, [row_id]):
        raise RecordLocked(f"this {table} record is locked: a user with the right 'lock_record' unlocks it (with a "
                           "reason) before it can be changed or deleted")  # fmt: skip


def patient_has_locks(conn: sa.Connection, patient_id: str) -> bool:
    """Whether any record of the patient is locked (deleting the patient would delete it)."""
    from allotrack.records.tables import RECORD_LOCKS

    found = conn.execute(sa.select(RECORD_LOCKS.c.lock_id).where(RECORD_LOCKS.c.patient_id == patient_id).limit(1))
    return found.first() is not None


def set_user_rights(engine: sa.Engine, admin: User, username: str, grant: Iterable[str] = (),
                    revoke: Iterable[str] = ()) -> frozenset[str]:  # fmt: skip
    """Grant and revoke single rights of the account ``username`` (``admin`` needs ``manage_users``); a right
    granted is no longer revoked and the other way round; audited (table ``users``, old and new overrides). Returns
    the account's effective rights."""
    from allotrack.records.tables import USERS
    from allotrack.web.audit import record_change

    require(admin, "manage_users", "only an administrator changes user rights")
    add, take = parse_rights(" ".join(grant), "rights_granted"), parse_rights(" ".join(revoke), "rights_revoked")
    if add & take:
        raise InputError(f"{', '.join(sorted(add & take))}: granted and revoked at once", table="users",
                         column="rights")  # fmt: skip
    with engine.begin() as conn:
        row = conn.execute(sa.select(USERS.c.user_id, USERS.c.role, USERS.c.rights_granted, USERS.c.rights_revoked)
                           .where(USERS.c.username == username)).first()  # fmt: skip
        if row is None:
            raise InputError(f"no account {username!r}", table="users", column="username")
        old_granted, old_revoked = stored_rights(row.rights_granted), stored_rights(row.rights_revoked)
        granted, revoked = (old_granted | add) - take, (old_revoked | take) - add
        new = {"rights_granted": " ".join(sorted(granted)), "rights_revoked": " ".join(sorted(revoked))}
        conn.execute(USERS.update().where(USERS.c.user_id == row.user_id).values(**new))
        record_change(conn, admin.username, "rights", "users", int(row.user_id), None, None,
                      {"rights_granted": " ".join(sorted(old_granted)),
                       "rights_revoked": " ".join(sorted(old_revoked))}, new)  # fmt: skip
    return effective_rights(row.role, granted, revoked)
