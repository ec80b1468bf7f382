"""The record store: SQLAlchemy 2 tables built from :mod:`allotrack.records.schema`, an SQLite file by default
and PostgreSQL for multi-user deployments (``ALLOTRACK_DATABASE_URL`` or an explicit URL), created and upgraded
by Alembic migrations.

Every row carries its centre, creator, creation time and a soft-delete flag (with a reason), so the web
application's audit trail and access control need no schema rewrite; nothing is ever hard-deleted. Each row
also stores a content hash (unique per table): importing the same records twice adds nothing.

An import validates the stored records together with the new ones (references, duplicate keys, chronology) and
writes nothing unless all of it is valid; a valid import is one transaction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from allotrack.records.bulk import Audit, read_tables, write_tables
from allotrack.records.hashing import hash_values
from allotrack.records.schema import TABLES, Column, Records, Table
from allotrack.records.validate import Problem, ValidationError, check_tables, type_tables

DEFAULT_URL = "sqlite:///allotrack.db"
AUDIT_COLUMNS = ("row_id", "record_hash", "centre_code", "created_by", "created_at", "deleted", "deleted_reason")


def database_url(url: str | None = None) -> str:
    return url or os.environ.get("ALLOTRACK_DATABASE_URL") or DEFAULT_URL


def _sa_type(col: Column) -> Any:
    types: dict[str, Any] = {"date": sa.Date(), "number": sa.Float(), "integer": sa.Integer(), "bool": sa.Boolean()}
    return types.get(col.kind, sa.String(200))


def build_metadata() -> sa.MetaData:
    """One SQL table per record table, plus the audit columns."""
    md = sa.MetaData()
    for spec in TABLES.values():
        sa.Table(
            spec.name, md,
            sa.Column("row_id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("record_hash", sa.BigInteger, nullable=False),
            *[sa.Column(c.name, _sa_type(c), nullable=True) for c in spec.columns],
            sa.Column("centre_code", sa.String(50)),
            sa.Column("created_by", sa.String(100), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("deleted", sa.Boolean, nullable=False, default=False),
            sa.Column("deleted_reason", sa.String(500)),
            sa.Index(f"ux_{spec.name}_patient_record", "patient_id", "record_hash", unique=True),
        )  # fmt: skip
    return md


METADATA = build_metadata()

# The web application's tables (migration 0003): accounts, API tokens, the audit log, the study lock.
USERS = sa.Table(
    "users", METADATA,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("centre_code", sa.String(50)),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)  # fmt: skip
API_TOKENS = sa.Table(
    "api_tokens", METADATA,
    sa.Column("token_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
)  # fmt: skip
AUDIT_LOG = sa.Table(
    "audit_log", METADATA,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("username", sa.String(100), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("table_name", sa.String(50), nullable=False),
    sa.Column("row_id", sa.Integer),
    sa.Column("patient_id", sa.String(200), index=True),
    sa.Column("centre_code", sa.String(50)),
    sa.Column("old_values", sa.Text),
    sa.Column("new_values", sa.Text),
    sa.Column("reason", sa.String(500)),
)  # fmt: skip
STUDY_PLANS = sa.Table(
    "study_plans", METADATA,
    sa.Column("plan_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("plan_toml", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)  # fmt: skip
STUDY_LOCK = sa.Table(
    "study_lock", METADATA,
    sa.Column("lock_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("locked", sa.Boolean, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("username", sa.String(100), nullable=False),
    sa.Column("reason", sa.String(500)),
)  # fmt: skip


def _typed(frame: pd.DataFrame, spec: Table) -> pd.DataFrame:
    """Stored values as the schema types them: dates as datetime64, numbers as float64, yes/no as boolean, text
    as Python strings with None for missing."""
    out = {}
    for c in spec.columns:
        values = frame[c.name]
        if c.kind == "date":  # parsed once per distinct date
            codes, days = pd.factorize(values, use_na_sentinel=True)
            parsed = pd.to_datetime(pd.Series(days, dtype=object), format="ISO8601")
            out[c.name] = pd.Series(pd.api.extensions.take(parsed.array, codes, allow_fill=True), index=frame.index)
        elif c.kind in ("number", "integer"):
            out[c.name] = pd.to_numeric(values).astype("float64")
        elif c.kind == "bool":
            out[c.name] = values.astype("boolean")
        else:
            out[c.name] = values.astype(object).where(values.notna(), None)
    return pd.DataFrame(out, index=frame.index)


def load_records(engine: Engine, centre: str | None = None, patient_id: str | None = None) -> Records:
    """Current (not deleted) records, optionally only a centre's (its data access group) or one patient's, typed
    as the schema says. PostgreSQL is read as Arrow through ADBC; other databases through the DB-API cursor's plain
    tuples (no SQLAlchemy Row per record)."""
    queries = {}
    for name, spec in TABLES.items():
        table = METADATA.tables[name]
        conds: list[sa.ColumnElement[bool]] = [table.c.deleted.is_(False)]
        if centre is not None:
            conds.append(table.c.centre_code == centre)
        if patient_id is not None:
            conds.append(table.c.patient_id == patient_id)
        queries[name] = sa.select(*[table.c[c.name] for c in spec.columns]).where(*conds).order_by(table.c.row_id)
    arrow = read_tables(engine, queries)
    out = {}
    with engine.connect() as conn:
        for name, spec in TABLES.items():
            names = [c.name for c in spec.columns]
            if arrow is not None:
                columns = [arrow[name].column(c).to_numpy(zero_copy_only=False) for c in names]
            else:
                rows = conn.execute(queries[name]).cursor.fetchall()  # raw tuples; bound parameters
                columns = [np.array(c, dtype=object) for c in zip(*rows, strict=True)] if rows else [
                    np.array([], dtype=object) for _ in names]  # fmt: skip
            frame = pd.DataFrame({n: pd.Series(c, dtype=object if c.dtype == object else None)
                                  for n, c in zip(names, columns, strict=True)})  # fmt: skip
            out[name] = _typed(frame, spec)  # object columns stay object: no Arrow re-inference
    return Records(out)


@dataclass(frozen=True)
class ImportReport:
    added: dict[str, int]
    already_present: dict[str, int]
    dry_run: bool


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL journal (readers do not block the writer), NORMAL sync (safe with WAL), and a 256 MB page cache for
    large imports."""
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-262144"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


class Store:
    """Records in a database. ``Store()`` opens the SQLite default; ``Store("postgresql+psycopg://...")``."""

    def __init__(self, url: str | None = None) -> None:
        self.url = database_url(url)
        self.engine: Engine = sa.create_engine(self.url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def init(self, revision: str = "head") -> None:
        """Create or upgrade the schema with Alembic (``alembic upgrade head``, or up to ``revision``)."""
        self._migrate("upgrade", revision)

    def downgrade(self, revision: str) -> None:
        """Take the schema back to an earlier Alembic ``revision`` (stored records are kept and converted)."""
        self._migrate("downgrade", revision)

    def _migrate(self, direction: str, revision: str) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(str(files("allotrack.records") / "migrations"))))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, direction)(cfg, revision)

    def load(self, centre: str | None = None, patient_id: str | None = None) -> Records:
        """Current (not deleted) records, typed as the schema says: all of them, or one centre's, or one
        patient's (see :func:`load_records`)."""
        return load_records(self.engine, centre=centre, patient_id=patient_id)

    def _stored_hashes(self) -> dict[str, np.ndarray]:
        """Every stored row's content hash (unsigned 64-bit; stored as the signed integer with the same bits)."""
        with self.engine.connect() as conn:
            return {name: np.array(conn.execute(sa.select(METADATA.tables[name].c.record_hash)).scalars().all(),
                                   dtype=np.int64).view(np.uint64) for name in TABLES}  # fmt: skip

    def import_records(
        self, records: Records, user: str = "import", centre: str | None = None, dry_run: bool = False
    ) -> ImportReport:
        """Validate the stored and the new records together; insert the new rows in one transaction (or, with
        ``dry_run``, only report). Rows already stored (same content) are skipped."""
        existing = self.load()
        stored_hashes = self._stored_hashes()  # kept in the database: stored rows are never re-hashed
        typed_in, problems = type_tables(records)  # column rules, once, on the incoming rows only
        new_rows: dict[str, pd.DataFrame] = {}
        present: dict[str, int] = {}
        combined: dict[str, pd.DataFrame] = {}
        for name in TABLES:
            incoming = typed_in[name]
            if not len(incoming):
                combined[name] = existing[name]
                continue
            hashes = hash_values(incoming, name)
            fresh = ~np.isin(hashes, stored_hashes[name]) & ~pd.Series(hashes).duplicated().to_numpy()
            present[name] = int((~fresh).sum())
            kept = incoming[fresh]
            new_rows[name] = kept.assign(record_hash=hashes[fresh].view(np.int64))
            parts = [p for p in (existing[name], incoming[fresh]) if len(p)]
            combined[name] = pd.concat(parts, ignore_index=True) if parts else incoming[fresh]
        n_stored = {k: len(v) for k, v in existing.tables.items()}
        if not problems:  # cross-table rules on stored + new rows; rows are renumbered to the incoming files
            for p in check_tables(combined):
                if p.row is not None and p.row >= n_stored.get(p.table, 0):
                    p = Problem(p.table, p.row - n_stored.get(p.table, 0), p.column, p.value, p.rule)
                elif p.row is not None:
                    p = Problem(f"{p.table} (stored)", p.row, p.column, p.value, p.rule)
                problems.append(p)
        if problems:
            raise ValidationError(problems)
        added = {k: len(v) for k, v in new_rows.items() if len(v)}
        if dry_run or not added:
            return ImportReport(added, present, dry_run)
        write_tables(self.engine, new_rows, Audit(user, centre, datetime.now(UTC)), n_stored)
        return ImportReport(added, present, False)
