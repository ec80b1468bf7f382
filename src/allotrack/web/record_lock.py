"""Record-level locks and e-signatures (REDCap's "Lock/Unlock records" and "E-signature" rights).

* A user with the right ``lock_record`` locks one current record (table, row id) of their data access group; a
  locked record is not edited, deleted or corrected by an import by anyone (:func:`allotrack.web.rights.
  ensure_unlocked`, :func:`allotrack.records.locks.locked_row_ids`) until a user with ``lock_record`` unlocks it,
  giving a non-blank reason.
* A user with the right ``sign`` signs a completed assessment (an ``assessments`` record with a value) after
  re-entering their password — one Argon2 verification under the login throttle, so a signature form cannot be
  used to guess passwords (the routes check it: :func:`allotrack.web.app.sign_in`); signing locks the record, and
  unlocking it removes the signature.
* Every lock, signature and unlock writes its audit row (actions ``lock``, ``sign``, ``unlock``; the unlock's old
  values name the lock's and the signature's author and time) in the same transaction. Another centre's record is
  answered like one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from allotrack.errors import InputError
from allotrack.records.importing import write_transaction
from allotrack.records.schema import TABLES
from allotrack.records.store import METADATA
from allotrack.records.tables import RECORD_LOCKS
from allotrack.web.audit import record_change
from allotrack.web.auth import User
from allotrack.web.data import Conflict, NotFound, given_reason, scope_conditions
from allotrack.web.rights import require

SIGNABLE = "assessments"


@dataclass(frozen=True)
class RecordLock:
    """A locked record: who locked it and when, and who signed it and when (None when locked unsigned)."""

    table: str
    row_id: int
    locked_by: str
    locked_at: datetime
    signed_by: str | None
    signed_at: datetime | None


def _record(conn: sa.Connection, user: User, table: str, row_id: int, patient_id: str | None) -> dict[str, Any]:
    """The current record of the user's data access group, its row locked until the transaction ends (PostgreSQL: a
    concurrent edit waits, and then sees the lock: :func:`allotrack.web.rights.ensure_unlocked`); :class:`NotFound`
    otherwise."""
    if table not in TABLES:
        raise NotFound("no such table")
    t = METADATA.tables[table]
    of_patient = [t.c.patient_id == patient_id] if patient_id is not None else []
    row = conn.execute(sa.select(t).where(t.c.row_id == row_id, *of_patient, *scope_conditions(t, user))
                       .with_for_update()).mappings().first()  # fmt: skip
    if row is None:
        raise NotFound("no such record in your data access group")
    return dict(row)


def _lock_row(conn: sa.Connection, table: str, row_id: int) -> sa.Row[Any] | None:
    return conn.execute(sa.select(RECORD_LOCKS).where(RECORD_LOCKS.c.table_name == table,
                                                      RECORD_LOCKS.c.row_id == row_id)).first()  # fmt: skip


def _insert_lock(conn: sa.Connection, record: dict[str, Any], table: str, user: User, now: datetime,
                 signed: bool) -> None:  # fmt: skip
    try:  # the unique index refuses a second lock of the record (write_transaction serialises them already)
        conn.execute(RECORD_LOCKS.insert().values(
            table_name=table, row_id=int(record["row_id"]), patient_id=str(record["patient_id"]),
            centre_code=record["centre_code"], locked_by=user.username, locked_at=now,
            signed_by=user.username if signed else None, signed_at=now if signed else None))  # fmt: skip
    except sa.exc.IntegrityError:
        raise Conflict("this record was just locked by another request: reload the page") from None


def lock_record(engine: sa.Engine, user: User, table: str, row_id: int, reason: str | None = None,
                patient_id: str | None = None) -> None:  # fmt: skip
    """Lock a record of the user's centre (and of ``patient_id`` when given) (right ``lock_record``); audited."""
    require(user, "lock_record", "your role cannot lock records")
    with write_transaction(engine) as conn:
        record = _record(conn, user, table, row_id, patient_id)
        if _lock_row(conn, table, row_id) is not None:
            raise InputError(f"this {table} record is already locked", table=table, column="row_id")
        now = datetime.now(UTC)
        _insert_lock(conn, record, table, user, now, signed=False)
        record_change(conn, user.username, "lock", table, row_id, str(record["patient_id"]), record["centre_code"],
                      None, {"locked_by": user.username, "locked_at": now}, given_reason(reason))  # fmt: skip


def sign_record(engine: sa.Engine, user: User, table: str, row_id: int, patient_id: str | None = None) -> None:
    """E-sign a completed assessment of the user's centre (right ``sign``; the caller has verified the password);
    a record locked unsigned gets the signature, an unlocked one is locked with it; audited."""
    require(user, "sign", "your role cannot sign records")
    if table != SIGNABLE:
        raise InputError(f"only assessments are e-signed, not {table} records", table=table, column="row_id")
    with write_transaction(engine) as conn:
        record = _record(conn, user, table, row_id, patient_id)
        if record.get("value") is None and record.get("value_text") is None:
            raise InputError("this assessment has no value yet: complete it before signing it", table=table,
                             column="value")  # fmt: skip
        now, lock = datetime.now(UTC), _lock_row(conn, table, row_id)
        if lock is not None and lock.signed_by is not None:
            raise InputError(f"this assessment is already signed by {lock.signed_by}", table=table, column="row_id")
        if lock is None:
            _insert_lock(conn, record, table, user, now, signed=True)
        else:
            conn.execute(RECORD_LOCKS.update().where(RECORD_LOCKS.c.lock_id == lock.lock_id)
                         .values(signed_by=user.username, signed_at=now))  # fmt: skip
        record_change(conn, user.username, "sign", table, row_id, str(record["patient_id"]), record["centre_code"],
                      None, {"signed_by": user.username, "signed_at": now})  # fmt: skip


def unlock_record(engine: sa.Engine, user: User, table: str, row_id: int, reason: str | None,
                  patient_id: str | None = None) -> None:  # fmt: skip
    """Unlock a record of the user's centre (right ``lock_record``, a non-blank reason); its signature, if any, is
    removed with the lock; audited with the lock's and the signature's author and time."""
    require(user, "lock_record", "your role cannot unlock records")
    why = given_reason(reason)
    if why is None:
        raise InputError("unlocking a record needs a reason", table=table, column="reason")
    with write_transaction(engine) as conn:
        record = _record(conn, user, table, row_id, patient_id)
        lock = _lock_row(conn, table, row_id)
        if lock is None:
            raise InputError(f"this {table} record is not locked", table=table, column="row_id")
        conn.execute(RECORD_LOCKS.delete().where(RECORD_LOCKS.c.lock_id == lock.lock_id))
        old = {"locked_by": lock.locked_by, "locked_at": lock.locked_at, "signed_by": lock.signed_by,
               "signed_at": lock.signed_at}  # fmt: skip
        record_change(conn, user.username, "unlock", table, row_id, str(record["patient_id"]),
                      record["centre_code"], old, None, why)  # fmt: skip


def patient_locks(engine: sa.Engine, user: User, patient_id: str) -> dict[tuple[str, int], RecordLock]:
    """The locks of one patient's records in the user's centre, by (table, row id)."""
    require(user, "view")
    conds = [RECORD_LOCKS.c.patient_id == patient_id]
    if user.centre_code is not None:
        conds.append(RECORD_LOCKS.c.centre_code == user.centre_code)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(RECORD_LOCKS).where(*conds)).all()
    return {(r.table_name, int(r.row_id)): RecordLock(r.table_name, int(r.row_id), r.locked_by, r.locked_at,
                                                      r.signed_by, r.signed_at) for r in rows}  # fmt: skip


LISTED_OUT = ("observations",)  # daily values: too many to list (locked ones are listed)


def lockable_records(engine: sa.Engine, user: User, patient_id: str) -> list[dict[str, Any]]:
    """One patient's current records of the user's centre for the lock and signature buttons: table, row id, the
    record named by its natural key (and an assessment's value), and its lock (or None)."""
    locks = patient_locks(engine, user, patient_id)
    out: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for name, spec in TABLES.items():
            t = METADATA.tables[name]
            shown = [c for c in spec.natural_key if c != "patient_id"] + (["value", "value_text"]
                                                                          if name == SIGNABLE else [])  # fmt: skip
            q = sa.select(t.c.row_id, *[t.c[c] for c in shown]).where(t.c.patient_id == patient_id,
                                                                      *scope_conditions(t, user))  # fmt: skip
            if name in LISTED_OUT:
                q = q.where(t.c.row_id.in_([r for (n, r) in locks if n == name] or [-1]))
            for row in conn.execute(q.order_by(t.c.row_id)):
                label = ", ".join(f"{c} {v}" for c, v in zip(shown, row[1:], strict=True) if v is not None)
                out.append({"table": name, "row_id": int(row.row_id), "label": label or "-",
                            "lock": locks.get((name, int(row.row_id))),
                            "signable": name == SIGNABLE and (row[-1] is not None or row[-2] is not None)})
    return out
