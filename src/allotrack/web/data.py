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
from allotrack.web.rights import Forbidden, RecordLocked, ensure_unlocked, patient_has_locks, require


class NotFound(AllotrackError, LookupError):
    """No such record in the user's data access group."""


class Conflict(AllotrackError):
    """A concurrent request (a double click) stored the same record first."""


def given_reason(reason: str | None) -> str | None:
    """The reason for a change, or None when it is missing or blank (a space is no reason)."""
    return (reason or "").strip() or None


def scope_conditions(table: sa.Table, user: User) -> list[Any]:
    """WHERE conditions for a record table: current rows of the user's data access group (the right ``view``)."""
    require(user, "view")
    conds: list[Any] = [table.c.deleted == sa.false()]  # = false, not IS false: the partial indexes' predicate
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
    require(user, "view")
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
    """Audit rows as ``user`` may see them: without the right ``audit`` (a viewer's default) who changed what and
    when, and why, but no old or new values (the columns are left out); for a blinded user the arm in old and new
    values, and every value of an allocation, read "concealed"."""
    if "audit" not in user.rights:
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
    from allotrack.records.validate_new import UnknownPatient, validate_new

    require(user, "enter", "your role cannot change records")
    require(user, "view")
    reason = given_reason(reason)
    if table not in TABLES or table == "patients":
        raise Forbidden("records of this table are added by import")
    patient_ids = {str(values.get("patient_id", "")) for values in rows}
    if len(patient_ids) != 1:
        raise ValidationError([Problem(table, None, "patient_id", None, "records added together are of one patient")])
    patient_id = patient_ids.pop()
    frame = pd.DataFrame([{c.name: v.get(c.name) for c in TABLES[table].columns} for v in rows])
    try:  # only the rules the new rows can affect, on the stored rows they read (outside the write lock)
        with engine.connect() as conn:
            checked = validate_new(conn, table, frame, patient_id, stored_dictionary(conn), today, user.centre_code)
    except UnknownPatient:
        raise NotFound("no such patient in your data access group") from None
    except ValidationError as err:  # the form has one record: its problems without row numbers
        raise ValidationError([Problem(p.table, None if p.table == table else p.row, p.column, p.value, p.rule,
                                       stored=p.stored) for p in err.problems]) from None  # fmt: skip
    new, content, key = checked.rows, checked.content, checked.key
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
            duplicate = conn.execute(sa.select(t.c.record_hash, t.c.row_id).where(
                t.c.key_hash == key_hash, t.c.deleted == sa.false(),
                *([t.c.patient_id == patient_id] if not spec.global_key else []))).first()  # fmt: skip
            if duplicate is not None:
                ensure_unlocked(conn, table, int(duplicate.row_id))  # a locked record is not to be changed either
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
    require(user, "delete", "your role cannot delete records")
    if not reason.strip():
        raise Forbidden("deleting a record needs a reason")
    if table not in TABLES:
        raise NotFound("no such table")
    reason = reason.strip()
    t = METADATA.tables[table]
    with write_transaction(engine) as conn:
        row = conn.execute(sa.select(t).where(t.c.row_id == row_id, t.c.deleted == sa.false(),
                                              *scope_conditions(t, user))).mappings().first()  # fmt: skip
        if row is None:
            raise NotFound("no such record in your data access group")
        ensure_unlocked(conn, table, row_id)
        if table == "patients" and patient_has_locks(conn, row["patient_id"]):
            raise RecordLocked("a record of this patient is locked: unlock it before deleting the patient")
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
                                                      other.c.deleted == sa.false())
                                 .values(deleted=True, deleted_reason=PATIENT_DELETED + reason)).rowcount  # fmt: skip
                if n:
                    record_change(conn, user.username, "delete", name, None, row["patient_id"], row["centre_code"],
                                  None, {"records": int(n)}, PATIENT_DELETED + reason)  # fmt: skip


def restore_patient(engine: sa.Engine, user: User, patient_id: str, reason: str) -> dict[str, int]:
    """Undo the deletion of a patient (administrators only): the patient's most recently deleted patient record
    and the records deleted with it come back, audited with ``reason``. Returns the records restored per table.
    Refused while the patient has a current record (an id taken again) or was not deleted."""
    require(user, "restore", "only an administrator restores a deleted patient")
    if not reason.strip():
        raise Forbidden("restoring a patient needs a reason")
    p = METADATA.tables["patients"]
    restored: dict[str, int] = {}
    with write_transaction(engine) as conn:
        if conn.execute(sa.select(p.c.row_id).where(p.c.patient_id == patient_id, p.c.deleted == sa.false())).first():
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
    require(user, "view")
    return conceal(load_records(engine, centre=user.centre_code), user)


# ---- data entry by form (allotrack.web.routes.entry): new patients and edits of stored records ----------------------
DESIGN_TABLES = frozenset({"enrolments", "populations", "matched_sets"})  # randomisation and study design, not forms


def get_record(engine: sa.Engine, user: User, table: str, row_id: int) -> dict[str, Any]:
    """One current record of the user's data access group: its schema columns with ``row_id``, ``record_hash``
    and ``centre_code``; :class:`NotFound` otherwise (another centre's record exactly like a missing one). A
    blinded user gets the arm "concealed"."""
    if table not in TABLES:
        raise NotFound("no such record in your data access group")
    t = METADATA.tables[table]
    with engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.row_id == row_id, *scope_conditions(t, user))).mappings().first()
    if row is None:
        raise NotFound("no such record in your data access group")
    out = dict(row)
    if user.blinded and out.get("arm") is not None:
        out["arm"] = CONCEALED
    return out


def validated_rows(engine: sa.Engine, table: str, rows: list[dict[str, Any]], existing: Records | None = None,
                   replacing: int | None = None, today: date | None = None) -> pd.DataFrame:  # fmt: skip
    """New rows of ``table`` typed and validated together with the patient's ``existing`` records (less the row
    at position ``replacing`` of that table, for an edit) against the store's data dictionary; only the new
    rows' problems are raised (others' only when they have none: e.g. records after a newly entered death)."""
    from allotrack.records.dictionary_store import stored_dictionary

    spec = TABLES[table]
    frames = {n: (existing[n] if existing is not None else Records()[n]) for n in TABLES}
    if replacing is not None:
        frames[table] = frames[table].drop(index=frames[table].index[replacing]).reset_index(drop=True)
    first_new = len(frames[table])
    added = pd.DataFrame([{c.name: v.get(c.name) for c in spec.columns} for v in rows], dtype=object)
    frames[table] = pd.concat([frames[table].astype(object), added], ignore_index=True) if first_new else added
    try:
        typed = validate_records(Records(frames), today, stored_dictionary(engine))
    except ValidationError as err:
        mine = [p for p in err.problems if p.table == table and (p.row is None or p.row >= first_new)] or err.problems
        raise ValidationError([Problem(p.table, None if p.table == table else p.row, p.column, p.value, p.rule)
                               for p in mine]) from None  # fmt: skip
    return typed[table].iloc[first_new:].reset_index(drop=True)


def _payload(typed: pd.DataFrame, table: str) -> dict[str, Any]:
    """The first typed row as plain Python values for the database (dates, whole numbers as int, None)."""
    out: dict[str, Any] = {}
    for col in TABLES[table].columns:
        value = typed[col.name].iloc[0]
        if value is None or value is pd.NA or (not isinstance(value, str) and pd.isna(value)):
            out[col.name] = None
        elif isinstance(value, pd.Timestamp):
            out[col.name] = value.date()
        else:
            value = value.item() if hasattr(value, "item") else value
            out[col.name] = int(value) if col.kind == "integer" else value
    return out


def _hashes(typed: pd.DataFrame, table: str) -> tuple[int, int]:
    content, key = content_and_key_values(typed, table)
    return int(content.view(np.int64)[0]), int(key.view(np.int64)[0])


def _lock_reason_problem(table: str) -> ValidationError:
    return ValidationError([Problem(table, None, "reason", None, "the study data are locked: give a reason for this "
                                    "change")])  # fmt: skip


def add_patient(engine: sa.Engine, user: User, values: dict[str, Any], centre: str | None = None,
                reason: str | None = None, today: date | None = None) -> int:  # fmt: skip
    """Add a patient by form, in the user's centre (an administrator without a centre names one in ``centre``),
    validated as an import would, audited in the same transaction; returns its row id. An id already used, in
    any centre, is answered the same way; a deleted patient's id is to be restored, not entered again."""
    require(user, "enter", "your role cannot add patients")  # the right to enter records (allotrack.web.rights)
    reason = given_reason(reason)
    code = user.centre_code or given_reason(centre)
    problems = []
    if code is None:
        problems.append(Problem("patients", None, "centre", None, "choose the patient's centre (an administrator "
                                "without a centre enters patients for a centre named explicitly)"))  # fmt: skip
    elif len(code) > 50:
        problems.append(Problem("patients", None, "centre", None, "a centre code has at most 50 characters"))
    unknown = sorted(set(values) - {c.name for c in TABLES["patients"].columns})
    problems.extend(Problem("patients", None, str(u), None, "unknown column") for u in unknown)
    if problems:
        raise ValidationError(problems)
    row = {**values, "centre": values.get("centre") or code}
    typed = validated_rows(engine, "patients", [row], today=today)
    payload = _payload(typed, "patients")
    record_hash, key_hash = _hashes(typed, "patients")
    p = METADATA.tables["patients"]
    try:
        with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
            if is_locked(conn) and not reason:
                raise _lock_reason_problem("patients")
            taken = conn.execute(sa.select(p.c.deleted, p.c.centre_code).where(p.c.patient_id == payload["patient_id"])
                                 .order_by(p.c.deleted, p.c.row_id.desc()).limit(1)).first()  # fmt: skip
            if taken is not None:
                mine = bool(taken.deleted) and taken.centre_code == code
                rule = ("this patient was deleted: an administrator restores it (with the records deleted with it) "
                        "instead of entering it again" if mine else "this patient_id is already used (in your "
                        "centre or another): choose another")  # fmt: skip
                raise ValidationError([Problem("patients", None, "patient_id", None, rule)])
            result = conn.execute(p.insert().values(**payload, record_hash=record_hash, key_hash=key_hash,
                                                    centre_code=code, created_by=user.username,
                                                    created_at=datetime.now(UTC), deleted=False))  # fmt: skip
            row_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            record_change(conn, user.username, "create", "patients", row_id, payload["patient_id"], code, None,
                          payload, reason)  # fmt: skip
    except sa.exc.IntegrityError:
        raise Conflict("this patient was just stored by another request (a double click?)") from None
    return row_id


def update_record(engine: sa.Engine, user: User, table: str, row_id: int, values: dict[str, Any], reason: str | None,
                  today: date | None = None,
                  expected_hash: int | None = None) -> dict[str, tuple[Any, Any]]:  # fmt: skip
    """Change fields of one stored record of the user's data access group (another centre's record is
    :class:`NotFound` like a missing one), with a non-blank reason, validated with the patient's other records
    as a new record would be; its content and key hashes are recomputed and the change is audited ("update",
    the changed columns' old and new values) in the same transaction. Identifiers are not changed. With
    ``expected_hash`` (the record's hash when its form was opened) a record changed meanwhile is a
    :class:`Conflict`. Returns the changed columns as {column: (old, new)} (none: nothing written)."""
    require(user, "enter", "your role cannot change records")  # the right to enter records (allotrack.web.rights)
    if table in DESIGN_TABLES:
        raise Forbidden("records of this table are changed by randomisation and the study design")
    current = get_record(engine, user, table, row_id)
    why = given_reason(reason)
    if why is None:
        raise ValidationError([Problem(table, None, "reason", None, "a change of a stored record needs a reason")])
    spec = TABLES[table]
    names = [c.name for c in spec.columns]
    problems = [Problem(table, None, str(c), None, "unknown column") for c in sorted(set(values) - set(names))]
    for c in {"patient_id", *([spec.key] if spec.key else [])}:
        if c in values and values[c] is not None and str(values[c]) != str(current[c]):
            problems.append(Problem(table, None, c, None, "an identifier is not changed by an edit (delete the "
                                    "record and enter it again)"))  # fmt: skip
    if problems:
        raise ValidationError(problems)
    patient_id = str(current["patient_id"])
    t = METADATA.tables[table]
    with engine.connect() as conn:  # the record's position among the patient's rows as patient_records loads them
        order = conn.execute(sa.select(t.c.row_id).where(t.c.patient_id == patient_id, *scope_conditions(t, user))
                             .order_by(t.c.row_id)).scalars().all()  # fmt: skip
    if row_id not in order:
        raise NotFound("no such record in your data access group")
    merged = {n: current[n] for n in names} | {k: v for k, v in values.items() if k in names}
    if user.blinded and "arm" in merged:
        merged.pop("arm")  # concealed: the stored arm is kept below
    existing = patient_records(engine, user, patient_id)
    typed = validated_rows(engine, table, [merged], existing, replacing=order.index(row_id), today=today)
    payload = _payload(typed, table)
    try:
        with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
            if is_locked(conn) and not why:
                raise _lock_reason_problem(table)
            ensure_unlocked(conn, table, row_id)
            row = conn.execute(sa.select(t).where(t.c.row_id == row_id, *scope_conditions(t, user))).mappings().first()
            if row is None:
                raise NotFound("no such record in your data access group")
            if expected_hash is not None and int(row["record_hash"]) != int(expected_hash):
                raise Conflict("this record was changed by someone else since you opened it: reload it to see the "
                               "change, then edit again")  # fmt: skip
            if user.blinded and "arm" in payload:
                payload["arm"] = row["arm"]
            typed_new = typed.assign(**{k: [v] for k, v in payload.items() if k == "arm"})
            record_hash, key_hash = _hashes(typed_new, table)
            changes = {c: (row[c], payload[c]) for c in names if not _same(row[c], payload[c])}
            if not changes:
                return {}
            duplicate = conn.execute(sa.select(t.c.row_id).where(
                t.c.key_hash == key_hash, t.c.deleted == sa.false(), t.c.row_id != row_id,
                *([t.c.patient_id == patient_id] if not spec.global_key else []))).first()  # fmt: skip
            if duplicate is not None:
                raise ValidationError([Problem(table, None, None, None, f"a record with this {key_label(table)} is "
                                               "already stored; change or delete that one")])  # fmt: skip
            conn.execute(t.update().where(t.c.row_id == row_id).values(**payload, record_hash=record_hash,
                                                                        key_hash=key_hash))  # fmt: skip
            hidden = user.blinded and "arm" in changes
            record_change(conn, user.username, "update", table, row_id, patient_id, row["centre_code"],
                          {c: old for c, (old, _) in changes.items() if not (hidden and c == "arm")},
                          {c: new for c, (_, new) in changes.items() if not (hidden and c == "arm")}, why)  # fmt: skip
    except sa.exc.IntegrityError:
        raise Conflict("another request changed or stored a record with the same key at the same moment: reload "
                       "and retry") from None  # fmt: skip
    return changes


def _same(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return old is None and new is None
    if isinstance(old, datetime):
        old = old.date()
    return bool(old == new)
