"""Record access for the web application, always through the user's data access group: every query is filtered
by the row's ``centre_code`` (unless the user is an administrator without a centre), and a patient of another
centre is answered exactly like a patient that does not exist. Every change writes its audit row in the same
transaction; nothing is hard-deleted."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from allotrack.errors import AllotrackError
from allotrack.records.hashing import content_and_key_values
from allotrack.records.importing import write_transaction
from allotrack.records.schema import TABLES, Records
from allotrack.records.store import METADATA, load_records
from allotrack.records.validate import Problem, ValidationError, key_label, validate_records
from allotrack.web.audit import is_locked, record_change
from allotrack.web.auth import User


class NotFound(AllotrackError, LookupError):
    """No such record in the user's data access group."""


class Forbidden(AllotrackError, PermissionError):
    """The user's role does not allow this."""


class Conflict(AllotrackError):
    """A concurrent request (a double click) stored the same record first."""


def given_reason(reason: str | None) -> str | None:
    """The reason for a change, or None when it is missing or blank (a space is no reason)."""
    return (reason or "").strip() or None


def scope_conditions(table: sa.Table, user: User) -> list[Any]:
    """WHERE conditions for a record table: current rows of the user's data access group."""
    conds: list[Any] = [table.c.deleted.is_(False)]
    if user.centre_code is not None:
        conds.append(table.c.centre_code == user.centre_code)
    return conds


def list_patients(engine: sa.Engine, user: User, search: str = "", limit: int = 200, offset: int = 0) -> pd.DataFrame:
    """Patients the user may see (id, sex, diagnosis, diagnosis date, age, centre), optionally filtered by a
    case-insensitive id / diagnosis search."""
    p = METADATA.tables["patients"]
    q = sa.select(p.c.patient_id, p.c.sex, p.c.diagnosis, p.c.diagnosis_date, p.c.age_at_diagnosis,
                  p.c.centre_code).where(*scope_conditions(p, user))  # fmt: skip
    if search:
        like = f"%{search.lower()}%"
        q = q.where(sa.or_(sa.func.lower(p.c.patient_id).like(like), sa.func.lower(p.c.diagnosis).like(like)))
    q = q.order_by(p.c.patient_id).limit(limit).offset(offset)
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=["patient_id", "sex", "diagnosis", "diagnosis_date",
                                                          "age_at_diagnosis", "centre_code"])  # fmt: skip


def count_patients(engine: sa.Engine, user: User, search: str = "") -> int:
    """How many patients :func:`list_patients` finds in all (for paging)."""
    p = METADATA.tables["patients"]
    q = sa.select(sa.func.count()).select_from(p).where(*scope_conditions(p, user))
    if search:
        like = f"%{search.lower()}%"
        q = q.where(sa.or_(sa.func.lower(p.c.patient_id).like(like), sa.func.lower(p.c.diagnosis).like(like)))
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def patient_records(engine: sa.Engine, user: User, patient_id: str) -> Records:
    """Every current record of one patient of the user's centre, typed; :class:`NotFound` otherwise."""
    records = load_records(engine, centre=user.centre_code, patient_id=patient_id)
    if records["patients"].empty:
        raise NotFound("no such patient in your data access group")
    return conceal(records, user)


CONCEALED = "concealed"


def conceal(records: Records, user: User) -> Records:
    """The records as ``user`` may see them: a blinded user gets no randomised arm (the patient's and the
    enrolment's ``arm`` read "concealed")."""
    if not user.blinded:
        return records
    tables = dict(records.tables)
    for name in ("patients", "enrolments"):
        frame = tables[name]
        if "arm" in frame.columns:
            tables[name] = frame.assign(arm=frame["arm"].where(frame["arm"].isna(), CONCEALED))
    return Records(tables)


VALUE_COLUMNS = ("old_values", "new_values")


def conceal_audit(rows: pd.DataFrame, user: User) -> pd.DataFrame:
    """Audit rows as ``user`` may see them: a viewer sees who changed what and when, and why, but no old or new
    values (the columns are left out); for a blinded user the arm in old and new values, and every value of an
    allocation, read "concealed"."""
    if user.role == "viewer":
        return rows.drop(columns=[c for c in VALUE_COLUMNS if c in rows.columns])
    if not user.blinded or rows.empty:
        return rows
    import json

    def hide(text: object, table: str) -> object:
        if not isinstance(text, str):
            return text
        values = json.loads(text)
        if not isinstance(values, dict):
            return text
        hidden = {k: (CONCEALED if k == "arm" or (table == "allocations" and v is not None) else v)
                  for k, v in values.items()}  # fmt: skip
        return json.dumps(hidden, ensure_ascii=False)

    out = rows.copy()
    for column in ("old_values", "new_values"):
        out[column] = pd.Series([hide(v, t) for v, t in zip(out[column], out["table_name"], strict=True)],
                                index=out.index, dtype=object)  # fmt: skip
    return out


def add_record(engine: sa.Engine, user: User, table: str, values: dict[str, Any], reason: str | None = None,
               today: date | None = None) -> int:  # fmt: skip
    """Validate one new record against the patient's other records, insert it and audit it; returns its row id.
    Changes to locked study data need a reason."""
    return add_records(engine, user, table, [values], reason, today)[0]


def add_records(engine: sa.Engine, user: User, table: str, rows: list[dict[str, Any]], reason: str | None = None,
                today: date | None = None) -> list[int]:  # fmt: skip
    """Validate new records of one patient (e.g. a GVHD grade and its organ stages) against the patient's other
    records and the store's data dictionary, insert them all or none, with an audit row each; returns their row
    ids. Changes to locked study data need a reason."""
    from allotrack.records.dictionary_store import stored_dictionary

    if not user.can_write:
        raise Forbidden("your role cannot change records")
    reason = given_reason(reason)
    if table not in TABLES or table == "patients":
        raise Forbidden("records of this table are added by import")
    patient_ids = {str(values.get("patient_id", "")) for values in rows}
    if len(patient_ids) != 1:
        raise ValidationError([Problem(table, None, "patient_id", None, "records added together are of one patient")])
    patient_id = patient_ids.pop()
    existing = patient_records(engine, user, patient_id)  # NotFound for another centre's patient
    spec = TABLES[table]
    frames = {n: existing[n] for n in TABLES}
    first_new = len(frames[table])
    frames[table] = pd.concat([frames[table], pd.DataFrame([{c.name: v.get(c.name) for c in spec.columns}
                                                            for v in rows])], ignore_index=True)  # fmt: skip
    try:
        typed = validate_records(Records(frames), today, stored_dictionary(engine))
    except ValidationError as err:  # only the new rows' problems matter to the form (the rest was valid before)
        mine = [p for p in err.problems if p.table == table and (p.row is None or p.row >= first_new)] or err.problems
        raise ValidationError([Problem(p.table, None if p.table == table else p.row, p.column, p.value, p.rule)
                               for p in mine]) from None  # fmt: skip
    new = typed[table].iloc[first_new:].reset_index(drop=True)
    content, key = content_and_key_values(new, table)
    try:  # SQLite: the write lock from the start, so a double click waits and then finds the record stored
        return _insert(engine.execution_options(sqlite_begin="IMMEDIATE"), user, table, patient_id, new, content,
                       key, reason)  # fmt: skip
    except sa.exc.IntegrityError:  # PostgreSQL: the unique key of current rows caught a concurrent twin
        raise Conflict("this record was just stored by another request (a double click?): reload the patient's "
                       "page to see it") from None  # fmt: skip


def _insert(engine: sa.Engine, user: User, table: str, patient_id: str, new: pd.DataFrame, content: np.ndarray,
            key: np.ndarray, reason: str | None) -> list[int]:  # fmt: skip
    spec = TABLES[table]
    t = METADATA.tables[table]
    row_ids = []
    with engine.begin() as conn:
        if is_locked(conn) and not reason:
            raise Forbidden("the study data are locked: give a reason for this change")
        centre = user.centre_code or _patient_centre(conn, patient_id)
        for position in range(len(new)):
            record_hash, key_hash = int(content.view(np.int64)[position]), int(key.view(np.int64)[position])
            payload: dict[str, Any] = {str(c): (None if pd.isna(v) else (v.date() if isinstance(v, pd.Timestamp)
                                                                          else v))
                                       for c, v in new.iloc[position].items()}  # fmt: skip
            duplicate = conn.execute(sa.select(t.c.record_hash).where(
                t.c.key_hash == key_hash, t.c.deleted.is_(False),
                *([t.c.patient_id == patient_id] if not spec.global_key else []))).first()  # fmt: skip
            if duplicate is not None:
                rule = ("this record is already stored" if duplicate.record_hash == record_hash else
                        f"a record with this {key_label(table)} is already stored; change or delete that one")
                raise ValidationError([Problem(table, None, None, None, rule)])
            result = conn.execute(t.insert().values(**payload, record_hash=record_hash, key_hash=key_hash,
                                                    centre_code=centre, created_by=user.username,
                                                    created_at=datetime.now(UTC), deleted=False))  # fmt: skip
            row_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            record_change(conn, user.username, "create", table, row_id, patient_id, user.centre_code, None, payload,
                          reason)  # fmt: skip
            row_ids.append(row_id)
    return row_ids


def _patient_centre(conn: sa.Connection, patient_id: str) -> str | None:
    p = METADATA.tables["patients"]
    row = conn.execute(sa.select(p.c.centre_code).where(p.c.patient_id == patient_id)).first()
    return row.centre_code if row is not None else None


PATIENT_DELETED = "patient deleted: "  # the deleted_reason prefix of the records deleted with their patient


def soft_delete(engine: sa.Engine, user: User, table: str, row_id: int, reason: str) -> None:
    """Mark a record deleted (it stays in the database), with the reason, in the audit trail. A record is deleted
    once: a second delete (a double click, a stale page) finds nothing. Deleting a patient deletes the patient's
    current records in every table with it (their reason ``"patient deleted: <reason>"``; one audit row per table)
    so that nothing of the patient stays half-visible; :func:`restore_patient` brings them back."""
    if not user.can_write:
        raise Forbidden("your role cannot change records")
    if not reason.strip():
        raise Forbidden("deleting a record needs a reason")
    if table not in TABLES:
        raise NotFound("no such table")
    reason = reason.strip()
    t = METADATA.tables[table]
    with write_transaction(engine) as conn:
        row = conn.execute(sa.select(t).where(t.c.row_id == row_id, t.c.deleted.is_(False),
                                              *scope_conditions(t, user))).mappings().first()  # fmt: skip
        if row is None:
            raise NotFound("no such record in your data access group")
        conn.execute(t.update().where(t.c.row_id == row_id).values(deleted=True, deleted_reason=reason))
        old = {k: v for k, v in row.items() if k in {c.name for c in TABLES[table].columns}}
        record_change(conn, user.username, "delete", table, row_id, row["patient_id"], row["centre_code"], old, None,
                      reason)  # fmt: skip
        if table == "patients":
            for name in TABLES:
                if name == "patients":
                    continue
                other = METADATA.tables[name]
                n = conn.execute(other.update().where(other.c.patient_id == row["patient_id"],
                                                      other.c.deleted.is_(False))
                                 .values(deleted=True, deleted_reason=PATIENT_DELETED + reason)).rowcount  # fmt: skip
                if n:
                    record_change(conn, user.username, "delete", name, None, row["patient_id"], row["centre_code"],
                                  None, {"records": int(n)}, PATIENT_DELETED + reason)  # fmt: skip


def restore_patient(engine: sa.Engine, user: User, patient_id: str, reason: str) -> dict[str, int]:
    """Undo the deletion of a patient (administrators only): the patient's most recently deleted patient record
    and the records deleted with it come back, audited with ``reason``. Returns the records restored per table.
    Refused while the patient has a current record (an id taken again) or was not deleted."""
    if not user.is_admin:
        raise Forbidden("only an administrator restores a deleted patient")
    if not reason.strip():
        raise Forbidden("restoring a patient needs a reason")
    p = METADATA.tables["patients"]
    restored: dict[str, int] = {}
    with write_transaction(engine) as conn:
        if conn.execute(sa.select(p.c.row_id).where(p.c.patient_id == patient_id, p.c.deleted.is_(False))).first():
            raise NotFound("this patient is not deleted")
        row = conn.execute(sa.select(p.c.row_id, p.c.deleted_reason, p.c.centre_code)
                           .where(p.c.patient_id == patient_id, p.c.deleted.is_(True))
                           .order_by(p.c.row_id.desc()).limit(1)).first()  # fmt: skip
        if row is None:
            raise NotFound("no deleted patient with this id")
        conn.execute(p.update().where(p.c.row_id == row.row_id).values(deleted=False, deleted_reason=None))
        restored["patients"] = 1
        for name in TABLES:
            if name == "patients":
                continue
            t = METADATA.tables[name]
            n = conn.execute(t.update().where(t.c.patient_id == patient_id, t.c.deleted.is_(True),
                                              t.c.deleted_reason == PATIENT_DELETED + (row.deleted_reason or ""))
                             .values(deleted=False, deleted_reason=None)).rowcount  # fmt: skip
            if n:
                restored[name] = int(n)
        record_change(conn, user.username, "restore", "patients", row.row_id, patient_id, row.centre_code, None,
                      restored, reason.strip())  # fmt: skip
    return restored


def scoped_records(engine: sa.Engine, user: User) -> Records:
    """Every current record of the user's data access group, typed (for alerts, dashboards and reports)."""
    return conceal(load_records(engine, centre=user.centre_code), user)
