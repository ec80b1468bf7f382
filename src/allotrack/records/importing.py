"""One import of records into the store: validated against the stored records it touches, written in one
transaction that either commits whole or leaves the store exactly as it was.

The steps, in order:

1. The incoming rows are typed (column rules) before anything is locked.
2. One transaction starts and takes the store's write lock at once — ``BEGIN IMMEDIATE`` on SQLite, a
   transaction-level advisory lock on PostgreSQL — so validation and writing see the same store and two imports
   run one after the other. Every statement below, index drops and rebuilds included, is inside it.
3. The stored records of the patients the import touches (and stored donors, courses and infusions whose ids it
   uses) are read — not the whole store — through temporary key tables.
4. Each incoming row is classified by its natural key (:attr:`Table.natural_key`): *new*; *already present*
   (same key, same content: skipped, so a re-import adds nothing); a *correction* (same key, other content:
   refused unless ``update``, then applied field by field with a reason, and refused for a locked record:
   :mod:`allotrack.records.locks`); an exact copy of another incoming row
   (refused unless ``drop_duplicates``, then imported once with a warning); or a second incoming row with the same
   key and other content (refused).
5. Cross-table rules (references, chronology) run on the stored and incoming rows of the touched patients
   together. Every problem of every kind is reported in one pass, with the file line of incoming rows and the
   natural key of stored ones.
6. New rows are written in bulk, corrections as updates, and the audit trail gets one row per patient imported
   (naming the tables, row counts and fields) and one row per corrected field (old, new, reason), all in the same
   transaction. The database's unique indexes on the natural keys are the last guard: a concurrent writer that
   slips past them makes this import fail with :class:`ImportConflict`, never a half-written store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from allotrack.errors import AllotrackError
from allotrack.records.bulk import Audit, python_rows, write_tables
from allotrack.records.dictionary import DataDictionary
from allotrack.records.dictionary_store import stored_dictionary
from allotrack.records.hashing import content_and_key_values
from allotrack.records.locks import locked_row_ids
from allotrack.records.schema import TABLES, Records
from allotrack.records.tables import AUDIT_LOG, METADATA, STUDY_LOCK, typed_frame
from allotrack.records.validate import Problem, ValidationError, check_tables, key_label, type_tables
from allotrack.records.validate_items import check_conditions, check_items

IMPORT_LOCK_KEY = 0x616C6C6F74726B  # PostgreSQL advisory lock taken by every import ("allotrk")
STORE_COLUMNS = ("row_id", "record_hash", "key_hash", "centre_code")


class ImportConflict(AllotrackError, RuntimeError):
    """Another writer changed the same records at the same moment, or held the store too long; nothing was
    imported."""


@dataclass(frozen=True)
class FieldChange:
    """One corrected field of a stored record."""

    table: str
    record: str  # the record by its natural key, e.g. "patient_id 'p1'"
    column: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ImportReport:
    added: dict[str, int]
    already_present: dict[str, int]
    dry_run: bool
    updated: dict[str, int] = field(default_factory=dict)
    changes: list[FieldChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    patients: int = 0  # patients whose records the import adds or changes


@contextmanager
def write_transaction(engine: Engine) -> Iterator[sa.Connection]:
    """A transaction holding the store's write lock from its first statement to its end."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        try:
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": IMPORT_LOCK_KEY})
                yield conn
        except sa.exc.IntegrityError:
            raise ImportConflict("another import or form saved records with the same keys at the same moment; "
                                 "nothing was imported: run the import again") from None  # fmt: skip
        except sa.exc.OperationalError as err:
            if "locked" in str(err.orig).lower() or "busy" in str(err.orig).lower():
                raise ImportConflict("the store is busy with another import; nothing was imported: try again when "
                                     "it has finished") from None  # fmt: skip
            raise


def import_records(engine: Engine, records: Records, user: str = "import", centre: str | None = None,
                   dry_run: bool = False, update: bool = False, reason: str | None = None,
                   drop_duplicates: bool = False, dictionary: DataDictionary | None = None,
                   ) -> ImportReport:  # fmt: skip
    """Validate ``records`` against the stored records they touch and write them in one transaction (with
    ``dry_run``, only report). Observations, interventions, assessments and attributes are checked against the
    store's data dictionary (or ``dictionary``) and stored in its units. See the module documentation."""
    typed_in, problems = type_tables(records)
    dictionary = dictionary or stored_dictionary(engine)
    items = check_items(typed_in, dictionary)
    typed_in = items.tables
    problems.extend(items.problems)
    incoming = {name: _Incoming.of(name, frame) for name, frame in typed_in.items() if len(frame)}
    reason = reason.strip() if reason else None
    touched = _patient_ids(incoming)
    with write_transaction(engine) as conn:
        stored = _touched_records(conn, incoming, touched)
        if centre is not None:  # a data access group's import: another centre's patients are not there for it
            stored, taken = _within_centre(stored, centre)
            problems.extend(_taken_ids(incoming, taken))
        problems.extend(_deleted_patients(conn, incoming, stored, centre))
        plans = {name: _classify(inc, stored[name], update, drop_duplicates, centre, _RowNamer(records, name))
                 for name, inc in incoming.items()}  # fmt: skip
        for name, plan in plans.items():
            problems.extend(plan.problems)
            problems.extend(_locked_corrections(conn, name, plan))
        combined, where = _combined(incoming, plans, stored, touched)
        for p in check_tables(combined, keys=False):
            problems.append(where.locate(p))
        conditions = check_conditions(combined, dictionary)
        problems.extend(where.locate(p) for p in conditions.problems)
        warnings = [*records.warnings, *items.warnings, *conditions.warnings,
                    *(w for plan in plans.values() for w in plan.warnings)]
        changes = [c for plan in plans.values() for c in plan.changes]
        if changes and not reason and not dry_run:
            problems.append(Problem("import", None, None, None, "corrections of stored records need a reason"))
        if not dry_run and is_locked(conn) and not reason:
            problems.append(Problem("import", None, None, None, "the study data are locked: give a reason for this "
                                    "import"))  # fmt: skip
        if problems:
            raise ValidationError([p.located(records) for p in problems])
        report = ImportReport(
            added={n: int(p.new.sum()) for n, p in plans.items() if p.new.any()},
            already_present={n: int(p.present.sum()) for n, p in plans.items() if p.present.any()},
            dry_run=dry_run,
            updated={n: len(p.updated_rows) for n, p in plans.items() if len(p.updated_rows)},
            changes=changes, warnings=warnings,
            patients=len(pd.Index(np.concatenate([p.touched_patients(incoming[n]) for n, p in plans.items()]
                                                 or [np.zeros(0, object)])).unique()),
        )  # fmt: skip
        if dry_run or not (report.added or report.updated):
            conn.rollback()
            return report
        audit = Audit(user, centre, datetime.now(UTC))
        new_rows = {n: _rows(incoming[n].frame, p.new).assign(
            record_hash=_rows(incoming[n].hashes, p.new).view(np.int64),
            key_hash=_rows(incoming[n].keys, p.new).view(np.int64)) for n, p in plans.items() if p.new.any()}
        owners = sorted(set(stored["patients"]["centre_code"].dropna().astype(str))) if centre is None else []
        before = {n: _last_row_id(conn, n) for n in new_rows} if owners else {}
        write_tables(conn, new_rows, audit, _row_counts(conn, new_rows))
        for name, last in before.items():
            _inherit_centre(conn, name, last, owners)
        for name, plan in plans.items():
            _apply_updates(conn, name, incoming[name], plan)
        _audit(conn, audit, incoming, plans, reason)
    return report


def _locked_corrections(conn: sa.Connection, name: str, plan: _Plan) -> list[Problem]:
    """Corrections of locked (or signed) records: refused until a user with the right to lock records unlocks
    them (:mod:`allotrack.records.locks`)."""
    if not plan.updated_rows:
        return []
    locked = locked_row_ids(conn, name, [c.row_id for c in plan.updated_rows])
    return [Problem(name, c.position, None, None, f"the stored record with this {key_label(name)} is locked: it is "
                    "unlocked (with a reason) before an import corrects it") for c in plan.updated_rows
            if c.row_id in locked]  # fmt: skip


def _within_centre(stored: dict[str, pd.DataFrame],
                   centre: str) -> tuple[dict[str, pd.DataFrame], dict[str, set[int]]]:  # fmt: skip
    """The stored records an import of ``centre`` may see: those of patients of that centre and of patients not
    stored at all. A patient stored under another centre (or under none) is left out entirely, so that an import
    naming it gets exactly the answer an unknown patient gets (forms answer so too: :mod:`allotrack.web.data`).
    Also returns, per table with a global key (patients, donors, courses, infusions), the key hashes of the
    left-out rows: ids that are taken."""
    owners = stored["patients"]
    foreign = set(owners.loc[owners["centre_code"].ne(centre) | owners["centre_code"].isna(), "patient_id"].astype(str))
    if not foreign:
        return stored, {}
    kept, taken = {}, {}
    for name, frame in stored.items():
        out = frame["patient_id"].astype(str).isin(foreign).to_numpy() if len(frame) else np.zeros(0, bool)
        kept[name] = frame[~out] if out.any() else frame
        if (TABLES[name].global_key or name == "patients") and out.any():  # ids unique across patients
            taken[name] = set(frame.loc[out, "key_hash"].astype(np.int64).tolist())
    return kept, taken


def _taken_ids(incoming: dict[str, _Incoming], taken: dict[str, set[int]]) -> list[Problem]:
    """Incoming rows whose id (patient, donor, course or infusion id) another centre's records hold: refused
    without saying whose."""
    problems = []
    for name, keys in taken.items():
        inc = incoming.get(name)
        if inc is None:
            continue
        column = TABLES[name].natural_key[0]  # the id: patient_id, donor_id, course_id, infusion_id
        for position in np.flatnonzero(np.isin(inc.keys.view(np.int64), list(keys))).tolist():
            problems.append(Problem(name, position, column, inc.frame[column].iloc[position],
                                    f"this {column} is already used by a stored record of another patient or "
                                    "centre"))  # fmt: skip
    return problems


def _deleted_patients(conn: sa.Connection, incoming: dict[str, _Incoming], stored: dict[str, pd.DataFrame],
                      centre: str | None) -> list[Problem]:  # fmt: skip
    """Incoming patient records whose id belongs to a deleted patient (and to no current one): an import must not
    silently re-create a patient someone deleted with a reason. The importer's own centre is told to have it
    restored; another centre's deleted patient is answered like any id another centre holds."""
    inc = incoming.get("patients")
    if inc is None:
        return []
    ids = inc.frame["patient_id"].astype(str)
    current = set(stored["patients"]["patient_id"].astype(str))
    wanted = sorted(set(ids) - current)
    if not wanted:
        return []
    p = METADATA.tables["patients"]
    # deleted patients are few; the import's new ids can be 10⁵ (no IN list of that size)
    rows = conn.execute(sa.select(p.c.patient_id, p.c.centre_code).where(p.c.deleted.is_(True))).all()
    wanted_ids = set(wanted)
    deleted = {str(r.patient_id): r.centre_code for r in rows if str(r.patient_id) in wanted_ids}
    problems = []
    for position in np.flatnonzero(ids.isin(deleted).to_numpy()).tolist():
        pid = ids.iloc[position]
        if centre is None or deleted[pid] == centre:
            rule = (f"patient {pid!r} was deleted; an administrator can restore it with its records (allotrack "
                    "record restore), or give the new patient another id")  # fmt: skip
        else:
            rule = "this patient_id is already used by a stored record of another patient or centre"
        problems.append(Problem("patients", position, "patient_id", pid, rule))
    return problems


def _last_row_id(conn: sa.Connection, name: str) -> int:
    table = METADATA.tables[name]
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.row_id), 0))).scalar_one())


def _inherit_centre(conn: sa.Connection, name: str, after: int, centres: list[str]) -> None:
    """Rows an import without a centre (an administrator's, a single-site CLI's) added after row ``after`` take the
    centre of the patient they belong to, so the patient's centre sees them (as a form entry by an administrator
    does: :func:`allotrack.web.data.add_records`). ``centres``: the centres of the stored patients the import
    touched (none for a first import: nothing to do). One set-based UPDATE per centre."""
    if name == "patients":
        return
    table, patients = METADATA.tables[name], METADATA.tables["patients"]
    for code in centres:
        theirs = sa.select(patients.c.patient_id).where(patients.c.centre_code == code,
                                                        patients.c.deleted == sa.false())
        conn.execute(table.update().where(table.c.row_id > after, table.c.centre_code.is_(None),
                                          table.c.patient_id.in_(theirs)).values(centre_code=code))  # fmt: skip


def _rows(values: Any, mask: np.ndarray) -> Any:
    """``values[mask]``, without a copy when every row is kept (a first import of ten million rows)."""
    return values if mask.all() else values[mask]


@dataclass(frozen=True)
class _Incoming:
    """One table's typed incoming rows with their content and natural-key hashes."""

    name: str
    frame: pd.DataFrame
    hashes: np.ndarray
    keys: np.ndarray

    @classmethod
    def of(cls, name: str, frame: pd.DataFrame) -> _Incoming:
        content, key = content_and_key_values(frame, name)
        return cls(name, frame, content, key)


@dataclass(frozen=True)
class _Correction:
    """An incoming row that corrects a stored one."""

    position: int  # among the incoming rows
    stored: int  # among the stored rows read for this import
    row_id: int
    changes: list[FieldChange]


@dataclass
class _Plan:
    """What an import does with one table's incoming rows (boolean masks over them)."""

    new: np.ndarray
    present: np.ndarray
    checked: np.ndarray  # rows that join the cross-table checks
    updated_rows: list[_Correction] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def touched_patients(self, inc: _Incoming) -> np.ndarray:
        """Ids of the patients whose records this table's rows add or correct."""
        rows = self.new.copy()
        rows[[c.position for c in self.updated_rows]] = True
        return inc.frame["patient_id"][rows].dropna().to_numpy(dtype=object)


@dataclass(frozen=True)
class _RowNamer:
    """Names an incoming row in a message about another row: its file line, or its row number (from 1)."""

    records: Records
    table: str

    def __call__(self, position: int) -> str:
        file, line = self.records.origin(self.table, position)
        return f"row {position + 1}" if file is None else f"{file} line {line}"


def _classify(inc: _Incoming, stored: pd.DataFrame, update: bool, drop_duplicates: bool,
              centre: str | None, row_name: _RowNamer) -> _Plan:  # fmt: skip
    name, n = inc.name, len(inc.frame)
    spec = TABLES[name]
    label = key_label(name)
    plan = _Plan(new=np.zeros(n, bool), present=np.zeros(n, bool), checked=np.ones(n, bool))
    any_same_key = pd.Series(inc.keys).duplicated(keep=False).to_numpy()  # an exact copy has the same key too
    exact = np.zeros(n, bool)
    if any_same_key.any():
        exact[any_same_key] = pd.Series(inc.hashes[any_same_key]).duplicated().to_numpy()
    if exact.any():
        first = _first_positions(inc.hashes)
        if drop_duplicates:
            shown = ", ".join(row_name(r) for r in np.flatnonzero(exact)[:20].tolist())
            more = f" and {int(exact.sum()) - 20} more" if exact.sum() > 20 else ""
            plan.warnings.append(f"{name}: {int(exact.sum())} exact copies of earlier rows were imported once "
                                 f"({shown}{more})")  # fmt: skip
            plan.checked &= ~exact
        else:
            for r in np.flatnonzero(exact).tolist():
                plan.problems.append(Problem(name, r, None, None, f"exact copy of {row_name(int(first[r]))} "
                                             "(remove it, or import with --drop-duplicates to import it once)"))
    unique_rows = ~exact
    same_key = np.zeros(n, bool)
    if any_same_key.any():
        same_key = unique_rows & pd.Series(np.where(unique_rows, inc.keys, 0)).duplicated().to_numpy()
    if same_key.any():
        first_key = _first_positions(np.where(unique_rows, inc.keys, inc.hashes))
        for r in np.flatnonzero(same_key).tolist():
            plan.problems.append(Problem(name, r, spec.key, None, f"same {label} as {row_name(int(first_key[r]))} "
                                         f"with other values (one record per {label})"))  # fmt: skip
    stored_keys = stored["key_hash"].to_numpy(dtype=np.int64).view(np.uint64)
    position = pd.Index(stored_keys).get_indexer(pd.Index(inc.keys)) if len(stored) else np.full(n, -1)
    matched = position >= 0
    stored_hash = stored["record_hash"].to_numpy(dtype=np.int64).view(np.uint64)
    plan.present = matched & unique_rows & (stored_hash[np.maximum(position, 0)] == inc.hashes if len(stored)
                                            else np.zeros(n, bool))  # fmt: skip
    plan.checked &= ~plan.present
    changed = matched & unique_rows & ~plan.present & ~same_key
    for r in np.flatnonzero(changed).tolist():
        s = int(position[r])
        other_patient = spec.global_key and stored["patient_id"].iloc[s] != inc.frame["patient_id"].iloc[r]
        other_centre = centre is not None and stored["centre_code"].iloc[s] not in (centre, None)
        if other_patient or other_centre:
            plan.problems.append(Problem(name, r, spec.key, None, f"this {label} is already used by a stored record "
                                         "of another patient or centre"))  # fmt: skip
            continue
        diffs = _differences(name, stored.iloc[s], inc.frame.iloc[r])
        record = describe(name, inc.frame.iloc[r])
        if not update:
            shown = "; ".join(f"{c}: {_show(o)} → {_show(v)}" for c, o, v in diffs)
            plan.problems.append(Problem(name, r, None, None, f"a stored record has this {label} with other values "
                                         f"({shown}); import with --update and a reason to correct it"))  # fmt: skip
            continue
        correction = _Correction(r, s, int(stored["row_id"].iloc[s]), [FieldChange(name, record, c, o, v)
                                                                        for c, o, v in diffs])  # fmt: skip
        plan.updated_rows.append(correction)
        plan.changes.extend(correction.changes)
    plan.new = unique_rows & ~matched & ~same_key
    return plan


def _first_positions(values: np.ndarray) -> np.ndarray:
    """For each row, the position of the first row with the same value."""
    codes, _ = pd.factorize(values)
    first = np.full(codes.max() + 1 if len(codes) else 0, -1, dtype=np.int64)
    order = np.arange(len(codes))[::-1]
    first[codes[order]] = order  # the last write per code is its smallest position
    return first[codes]


def describe(table: str, row: pd.Series) -> str:
    """A record named by its natural key, e.g. ``patient_id 'p1', date 2020-01-03, analyte 'ANC'``."""
    return ", ".join(f"{c} {_show(row[c])}" for c in TABLES[table].natural_key)


def _show(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "(empty)"
    if isinstance(value, pd.Timestamp | datetime | date):
        return str(pd.Timestamp(value).date())
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def _same(a: Any, b: Any) -> bool:
    a_missing = a is None or (not isinstance(a, str) and bool(pd.isna(a)))
    b_missing = b is None or (not isinstance(b, str) and bool(pd.isna(b)))
    if a_missing or b_missing:
        return a_missing and b_missing
    return bool(a == b)


def _differences(table: str, old: pd.Series, new: pd.Series) -> list[tuple[str, Any, Any]]:
    return [(c.name, _python(old[c.name]), _python(new[c.name])) for c in TABLES[table].columns
            if not _same(old[c.name], new[c.name])]  # fmt: skip


def _python(value: Any) -> Any:
    """A plain Python value (dates as ``date``, missing as None) for reports and the audit trail."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return pd.Timestamp(value).date()
    return value.item() if hasattr(value, "item") else value


def _patient_ids(incoming: dict[str, _Incoming]) -> pd.Index:
    """The distinct patient ids of the incoming rows (as text)."""
    parts = [pd.unique(inc.frame["patient_id"].dropna().to_numpy(dtype=object)).astype(str).astype(object)
             for inc in incoming.values()]  # fmt: skip
    return pd.Index(np.concatenate(parts) if parts else np.zeros(0, dtype=object), dtype=object).unique()


def _insert_many(conn: sa.Connection, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """INSERT of plain tuples through the driver's executemany (no per-row SQLAlchemy parameter processing)."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})",
                         rows)  # fmt: skip


def _touched_records(conn: sa.Connection, incoming: dict[str, _Incoming], touched: pd.Index) -> dict[str, pd.DataFrame]:
    """The current stored rows of every patient the import touches, plus stored rows of global-key tables whose
    key the import uses (typed, with the store columns)."""
    patients = touched.tolist()
    global_keys = np.unique(np.concatenate([inc.keys.view(np.int64) for name, inc in incoming.items()
                                            if TABLES[name].global_key] or [np.zeros(0, np.int64)])).tolist()
    tmp = sa.MetaData()
    pid_table = sa.Table("import_patients", tmp, sa.Column("patient_id", sa.String(200), primary_key=True),
                         prefixes=["TEMPORARY"])  # fmt: skip
    key_table = sa.Table("import_keys", tmp, sa.Column("key_hash", sa.BigInteger, primary_key=True),
                         prefixes=["TEMPORARY"])  # fmt: skip
    tmp.create_all(conn)  # temporary tables: on an error the transaction's rollback removes them too
    _insert_many(conn, "import_patients", ["patient_id"], [(p,) for p in patients])
    _insert_many(conn, "import_keys", ["key_hash"], [(k,) for k in global_keys])
    out = {}
    for name, spec in TABLES.items():
        table = METADATA.tables[name]
        cond: sa.ColumnElement[bool] = table.c.patient_id.in_(sa.select(pid_table.c.patient_id))
        if spec.global_key:
            cond = sa.or_(cond, table.c.key_hash.in_(sa.select(key_table.c.key_hash)))
        columns = [table.c[c] for c in (*(c.name for c in spec.columns), *STORE_COLUMNS)]
        query = sa.select(*columns).where(table.c.deleted == sa.false(), cond).order_by(table.c.row_id)
        rows = conn.execute(query).all() if patients or (spec.global_key and global_keys) else []
        frame = pd.DataFrame([tuple(r) for r in rows], columns=[c.name for c in columns], dtype=object)
        out[name] = typed_frame(frame, spec, extra=STORE_COLUMNS) if rows else Records()[name].assign(
            **{c: pd.Series(dtype=object) for c in STORE_COLUMNS})  # fmt: skip
    tmp.drop_all(conn)
    return out


class _Locator:
    """Maps a row of the combined (stored + incoming) tables back to a stored record or an incoming row."""

    def __init__(self) -> None:
        self.stored: dict[str, pd.DataFrame] = {}
        self.incoming: dict[str, np.ndarray] = {}

    def locate(self, p: Problem) -> Problem:
        if p.row is None:
            return p
        n_stored = len(self.stored.get(p.table, ()))
        if p.row < n_stored:
            return Problem(p.table, None, p.column, p.value, p.rule,
                           stored=describe(p.table, self.stored[p.table].iloc[p.row]))  # fmt: skip
        return Problem(p.table, int(self.incoming[p.table][p.row - n_stored]), p.column, p.value, p.rule)


def _combined(incoming: dict[str, _Incoming], plans: dict[str, _Plan], stored: dict[str, pd.DataFrame],
              touched: pd.Index) -> tuple[dict[str, pd.DataFrame], _Locator]:  # fmt: skip
    """The touched patients' stored rows (less those being corrected) and the incoming rows to check."""
    where = _Locator()
    combined = {}
    for name, spec in TABLES.items():
        names = [c.name for c in spec.columns]
        kept = stored[name]
        keep = np.array(kept["patient_id"].isin(touched), dtype=bool)
        if name in plans:
            replaced = [c.stored for c in plans[name].updated_rows]
            keep[replaced] = False
        kept = kept[keep].reset_index(drop=True)
        where.stored[name] = kept
        if name in incoming:
            rows = np.flatnonzero(plans[name].checked)
            where.incoming[name] = rows
            frame = incoming[name].frame
            fresh = frame if len(rows) == len(frame) else frame.iloc[rows]
            if not len(kept) and list(fresh.columns) == names:
                combined[name] = fresh.reset_index(drop=True)
                continue
            parts = [p for p in (kept[names], fresh[names]) if len(p)]
            combined[name] = pd.concat(parts, ignore_index=True) if len(parts) > 1 else (
                parts[0].reset_index(drop=True) if parts else fresh[names].reset_index(drop=True))  # fmt: skip
        else:
            where.incoming[name] = np.zeros(0, dtype=np.int64)
            combined[name] = kept[names]
    return combined, where


def _row_counts(conn: sa.Connection, frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Rows already in each table an import writes many rows to (whether rebuilding its index pays)."""
    from allotrack.records.bulk import REBUILD_MIN_ROWS

    return {name: int(conn.execute(sa.select(sa.func.count()).select_from(METADATA.tables[name])).scalar_one())
            for name, frame in frames.items() if len(frame) >= REBUILD_MIN_ROWS}  # fmt: skip


def _apply_updates(conn: sa.Connection, name: str, inc: _Incoming, plan: _Plan) -> None:
    if not plan.updated_rows:
        return
    table = METADATA.tables[name]
    positions = [c.position for c in plan.updated_rows]
    values = python_rows(inc.frame.iloc[positions].reset_index(drop=True), name)
    hashes = inc.hashes[positions].view(np.int64)
    statement = table.update().where(table.c.row_id == sa.bindparam("_row_id")).values(
        {c.name: sa.bindparam(c.name) for c in TABLES[name].columns} | {"record_hash": sa.bindparam("_hash")})
    conn.execute(statement, [{**v, "_row_id": c.row_id, "_hash": int(h)}
                             for v, c, h in zip(values, plan.updated_rows, hashes, strict=True)])  # fmt: skip


def is_locked(conn: sa.Connection) -> bool:
    """Whether the study data are locked (the newest row of ``study_lock``); every write path asks this."""
    row = conn.execute(sa.select(STUDY_LOCK.c.locked).order_by(STUDY_LOCK.c.lock_id.desc()).limit(1)).first()
    return bool(row.locked) if row is not None else False


def _json(values: dict[str, Any]) -> str:
    return json.dumps(values, default=str, sort_keys=True)


def _audit(conn: sa.Connection, audit: Audit, incoming: dict[str, _Incoming], plans: dict[str, _Plan],
           reason: str | None) -> None:  # fmt: skip
    """One audit row per patient the import adds records for (tables, row counts, fields given) and one per
    corrected field (old and new value, reason), in the import's transaction."""
    entries: dict[str, pd.Series] = {}  # per table: the JSON entry of each patient it adds rows for
    for name, plan in sorted(plans.items()):
        if not plan.new.any():
            continue
        frame = incoming[name].frame[plan.new]
        fields = json.dumps([c.name for c in TABLES[name].columns if frame[c.name].notna().any()])
        counts = frame["patient_id"].value_counts(sort=False)
        counts.index = counts.index.astype(str)
        entries[name] = f'"{name}": {{"fields": {fields}, "rows": ' + counts.astype(str) + "}"
    if entries:  # one JSON object per patient, assembled column-wise (ten thousands of patients per import)
        table = pd.DataFrame(entries).fillna("")
        joined = table.iloc[:, 0].to_numpy(dtype=object)
        for column in table.columns[1:]:
            part = table[column].to_numpy(dtype=object)
            joined = joined + np.where((joined != "") & (part != ""), ", ", "") + part
        per_patient = dict(zip(table.index.tolist(), ("{" + joined + "}").tolist(), strict=True))
    else:
        per_patient = {}
    at = AUDIT_LOG.c.at.type.bind_processor(conn.dialect)  # the driver's form of the timestamp
    when = at(audit.at) if at is not None else audit.at
    rows: list[tuple[Any, ...]] = [(when, audit.user, "import", "records", None, pid, audit.centre, None,
                                    text, reason) for pid, text in per_patient.items()]  # fmt: skip
    for name, plan in plans.items():
        frame = incoming[name].frame
        for correction in plan.updated_rows:
            pid = str(frame["patient_id"].iloc[correction.position])
            rows.extend((when, audit.user, "update", name, correction.row_id, pid, audit.centre,
                         _json({c.column: _plain(c.old)}), _json({c.column: _plain(c.new)}), reason)
                        for c in correction.changes)  # fmt: skip
    _insert_many(conn, "audit_log", ["at", "username", "action", "table_name", "row_id", "patient_id", "centre_code",
                                     "old_values", "new_values", "reason"], rows)  # fmt: skip


def _plain(value: Any) -> Any:
    value = _python(value)
    return value.isoformat() if isinstance(value, date) else value
