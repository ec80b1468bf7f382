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

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from allotrack.records.schema import TABLES, Column, Records
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
            sa.Column("record_hash", sa.String(16), nullable=False),
            *[sa.Column(c.name, _sa_type(c), nullable=True, index=c.name == "patient_id") for c in spec.columns],
            sa.Column("centre_code", sa.String(50)),
            sa.Column("created_by", sa.String(100), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("deleted", sa.Boolean, nullable=False, default=False),
            sa.Column("deleted_reason", sa.String(500)),
            sa.Index(f"ux_{spec.name}_record_hash", "record_hash", unique=True),
        )  # fmt: skip
    return md


METADATA = build_metadata()


def row_hashes(frame: pd.DataFrame, table: str) -> pd.Series:
    """Content hash of each (typed) row over the table's schema columns (16 hex digits)."""
    parts = {}
    for c in TABLES[table].columns:
        col = frame[c.name] if c.name in frame.columns else pd.Series([None] * len(frame))
        if c.kind in ("number", "integer"):
            col = pd.to_numeric(col, errors="coerce").astype("float64")
        parts[c.name] = col.astype("string").fillna("\x00")
    h = pd.util.hash_pandas_object(pd.DataFrame(parts), index=False)
    return pd.Series([f"{int(v):016x}" for v in h], index=frame.index)


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
        """Create or upgrade the schema with Alembic (``alembic upgrade head``, or to an earlier ``revision``)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(str(files("allotrack.records") / "migrations"))))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def load(self) -> Records:
        """All current (not deleted) records, typed as the schema says."""
        out = {}
        with self.engine.connect() as conn:
            for name, spec in TABLES.items():
                table = METADATA.tables[name]
                cols = [table.c[c.name] for c in spec.columns]
                rows = conn.execute(sa.select(*cols).where(table.c.deleted.is_(False))).all()
                frame = pd.DataFrame(rows, columns=[c.name for c in spec.columns])
                for c in spec.columns:
                    if c.kind == "date":
                        frame[c.name] = pd.to_datetime(frame[c.name])
                out[name] = frame
        return Records(out)

    def _stored_hashes(self) -> dict[str, set[str]]:
        with self.engine.connect() as conn:
            return {name: set(conn.execute(sa.select(METADATA.tables[name].c.record_hash)).scalars())
                    for name in TABLES}  # fmt: skip

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
            hashes = row_hashes(incoming, name)
            stored = stored_hashes[name]
            fresh = (~hashes.isin(stored) & ~hashes.duplicated()).to_numpy()
            present[name] = int((~fresh).sum())
            new_rows[name] = incoming[fresh].assign(record_hash=hashes[fresh].to_numpy())
            parts = [p for p in (existing[name], incoming[fresh]) if len(p)]
            combined[name] = pd.concat(parts, ignore_index=True) if parts else incoming[fresh]
        if not problems:  # cross-table rules on stored + new rows; rows are renumbered to the incoming files
            n_stored = {k: len(v) for k, v in existing.tables.items()}
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
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            for name, frame in new_rows.items():
                if not len(frame):
                    continue
                payload = frame.reset_index(drop=True).assign(centre_code=centre,
                                       created_by=user, created_at=now, deleted=False)  # fmt: skip
                _bulk_insert(conn, name, payload)
        return ImportReport(added, present, False)


def _bulk_insert(conn: sa.Connection, name: str, payload: pd.DataFrame) -> None:
    """executemany through the driver with row tuples (no per-row dicts or statement compilation)."""
    table = METADATA.tables[name]
    cols = [c.name for c in table.columns if c.name != "row_id"]
    frame = payload.reindex(columns=cols)
    sqlite = conn.dialect.name == "sqlite"
    for c in TABLES[name].columns:
        if c.kind == "date":
            if sqlite:  # SQLAlchemy's SQLite Date storage is ISO text: format it vectorised
                iso = frame[c.name].to_numpy(dtype="datetime64[D]").astype(str)
                frame[c.name] = pd.Series(iso, index=frame.index).where(frame[c.name].notna().to_numpy())
            else:
                frame[c.name] = frame[c.name].dt.date
    stamp = payload["created_at"].iloc[0].to_pydatetime()
    if sqlite:  # SQLAlchemy's SQLite DateTime storage format (naive UTC)
        stamp = stamp.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    n = len(frame)
    columns = []  # one Python list per column (C-level tolist), missing values as None, zipped into row tuples
    for column_name in cols:
        if column_name == "created_at":
            columns.append([stamp] * n)
            continue
        col = frame[column_name]
        missing = col.isna().to_numpy()
        values = col.astype(object).to_numpy(copy=True)  # pandas 3 (copy-on-write) hands out read-only views
        values[missing] = None
        columns.append(values.tolist())
    marks = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": ":1"}.get(conn.dialect.paramstyle, "?")
    if conn.dialect.paramstyle == "numeric":
        placeholders = ", ".join(f":{i + 1}" for i in range(len(cols)))
    else:
        placeholders = ", ".join([marks] * len(cols))
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in cols)
    sql = f"INSERT INTO {conn.dialect.identifier_preparer.quote(name)} ({quoted}) VALUES ({placeholders})"
    conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))
