"""The record store: the tables of :mod:`allotrack.records.tables` in an SQLite file by default and PostgreSQL
for multi-user deployments (``ALLOTRACK_DATABASE_URL`` or an explicit URL), created and upgraded by Alembic
migrations.

Every row carries its centre, creator, creation time and a soft-delete flag (with a reason), so the web
application's audit trail and access control need no schema rewrite; nothing is ever hard-deleted.

On SQLite every transaction is opened explicitly (``BEGIN``; an import's ``BEGIN IMMEDIATE``), so schema changes
such as an import's index rebuild are inside it too: Python's ``sqlite3`` driver would otherwise run DDL outside
any transaction. An import (:mod:`allotrack.records.importing`) validates the incoming records against the stored
records of the patients it touches and writes nothing unless all of it is valid.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from allotrack.records.bulk import read_tables
from allotrack.records.dictionary import DataDictionary
from allotrack.records.dictionary_store import save_dictionary, stored_dictionary
from allotrack.records.importing import ImportConflict, ImportReport, import_records
from allotrack.records.schema import TABLES, Records
from allotrack.records.tables import (
    API_TOKENS,
    AUDIT_COLUMNS,
    AUDIT_LOG,
    METADATA,
    STUDY_LOCK,
    STUDY_PLANS,
    USERS,
    build_metadata,
    typed_frame,
)

__all__ = ["API_TOKENS", "AUDIT_COLUMNS", "AUDIT_LOG", "METADATA", "STUDY_LOCK", "STUDY_PLANS", "USERS",
           "ImportConflict", "ImportReport", "Store", "build_metadata", "database_url", "load_records"]  # fmt: skip

DEFAULT_URL = "sqlite:///allotrack.db"
SQLITE_BUSY_SECONDS = 60  # how long a writer waits for another import's lock before giving up
SQLITE_SORT_THREADS = min(4, os.cpu_count() or 1)  # helper threads SQLite may use to sort (an import's index rebuild)


def database_url(url: str | None = None) -> str:
    return url or os.environ.get("ALLOTRACK_DATABASE_URL") or DEFAULT_URL


def load_records(engine: Engine, centre: str | None = None, patient_id: str | None = None,
                 tables: Iterable[str] | None = None) -> Records:  # fmt: skip
    """Current (not deleted) records, optionally only a centre's (its data access group) or one patient's, and
    only the ``tables`` named (the others are empty), typed as the schema says. PostgreSQL is read as Arrow through
    ADBC (one patient's rows through the pooled connection); other databases through the DB-API cursor's plain
    tuples (no SQLAlchemy Row per record)."""
    chosen = {name: TABLES[name] for name in (TABLES if tables is None else tables)}
    queries = {}
    for name, spec in chosen.items():
        table = METADATA.tables[name]
        # ``deleted = false``, not ``IS false``: only the former matches the partial indexes' predicate (both
        # SQLite and PostgreSQL otherwise scan the whole table for one patient's rows)
        conds: list[sa.ColumnElement[bool]] = [table.c.deleted == sa.false()]
        if centre is not None:
            conds.append(table.c.centre_code == centre)
        if patient_id is not None:
            conds.append(table.c.patient_id == patient_id)
        queries[name] = sa.select(*[table.c[c.name] for c in spec.columns]).where(*conds).order_by(table.c.row_id)
    # one patient's few rows: the pooled connection (an ADBC connection is opened per call, ~60 ms)
    arrow = read_tables(engine, queries) if patient_id is None else None
    out = {}
    with engine.connect() as conn:
        for name, spec in chosen.items():
            names = [c.name for c in spec.columns]
            if arrow is not None:
                columns = [arrow[name].column(c).to_numpy(zero_copy_only=False) for c in names]
            else:  # one patient's rows are few: fetching every column beats probing for empty ones first
                columns = _fetch_columns(conn, queries[name], names, probe=patient_id is None)
            if not len(columns[0]):
                out[name] = _empty(name)
                continue
            frame = pd.DataFrame({n: pd.Series(c, dtype=object if c.dtype == object else None)
                                  for n, c in zip(names, columns, strict=True)})  # fmt: skip
            out[name] = typed_frame(frame, spec)  # object columns stay object: no Arrow re-inference
    return Records(out)


@functools.cache
def _typed_empty(name: str) -> pd.DataFrame:
    spec = TABLES[name]
    return typed_frame(pd.DataFrame({c.name: pd.Series([], dtype=object) for c in spec.columns}), spec)


def _empty(name: str) -> pd.DataFrame:
    """A table with no rows, typed as the schema says (made once per table; a copy each time)."""
    return _typed_empty(name).copy()


def _fetch_columns(conn: sa.Connection, query: sa.Select[Any], names: list[str],
                   probe: bool = True) -> list[np.ndarray]:  # fmt: skip
    """The query's columns as object arrays through the DB-API cursor's plain tuples. Columns that are NULL in
    every selected row are found first (one aggregate pass) and not fetched: the long record kinds have many
    optional columns, and building ten million tuples of mostly None is most of the cost of a load."""
    if not probe:
        rows = conn.execute(query).cursor.fetchall()
        if not rows:
            return [np.empty(0, dtype=object) for _ in names]
        return [np.array(col, dtype=object) for col in zip(*rows, strict=True)]
    aggregate = query.with_only_columns(*[sa.func.max(sa.case((c.is_(None), 0), else_=1)) for c in
                                          query.selected_columns]).order_by(None)  # fmt: skip
    filled = [bool(v) for v in conn.execute(aggregate).one()]
    kept = [c for c, f in zip(query.selected_columns, filled, strict=True) if f]
    if not kept:
        n = conn.execute(query.with_only_columns(sa.func.count()).order_by(None)).scalar_one()
        return [np.full(n, None, dtype=object) for _ in names]
    rows = conn.execute(query.with_only_columns(*kept)).cursor.fetchall()  # raw tuples; bound parameters
    fetched = iter(zip(*rows, strict=True)) if rows else iter([() for _ in kept])
    n = len(rows)
    return [np.array(next(fetched), dtype=object) if f else np.full(n, None, dtype=object) for f in filled]


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """WAL journal (readers do not block the writer), NORMAL sync (safe with WAL), a 256 MB page cache for large
    imports, helper threads for SQLite's sorter (index builds); and the driver's own transaction handling off, so
    that the ``begin`` listener opens every transaction (DDL included) — the SQLAlchemy recipe for pysqlite's
    transactions."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-262144", f"threads={SQLITE_SORT_THREADS}",
                   f"busy_timeout={SQLITE_BUSY_SECONDS * 1000}"):  # fmt: skip
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    """``BEGIN`` (or ``BEGIN IMMEDIATE``, taking the write lock at once, when the connection's execution option
    ``sqlite_begin`` says so)."""
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


class Store:
    """Records in a database. ``Store()`` opens the SQLite default; ``Store("postgresql+psycopg://...")``."""

    def __init__(self, url: str | None = None) -> None:
        self.url = database_url(url)
        self.engine: Engine = sa.create_engine(self.url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_connect)
            sa.event.listen(self.engine, "begin", _sqlite_begin)

    def init(self, revision: str = "head") -> None:
        """Create or upgrade the schema with Alembic (``alembic upgrade head``, or up to ``revision``)."""
        self._migrate("upgrade", revision)

    def revision(self) -> str | None:
        """The schema's Alembic revision (None for a store never initialised)."""
        from alembic.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def needs_upgrade(self) -> bool:
        """True when the schema is older than this version of allotrack (``allotrack db init`` upgrades it)."""
        from alembic.script import ScriptDirectory

        return self.revision() != ScriptDirectory.from_config(self._config()).get_current_head()

    def downgrade(self, revision: str) -> None:
        """Take the schema back to an earlier Alembic ``revision`` (stored records are kept and converted)."""
        self._migrate("downgrade", revision)

    def _migrate(self, direction: str, revision: str) -> None:
        from alembic import command

        cfg = self._config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, direction)(cfg, revision)

    def _config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(str(files("allotrack.records") / "migrations"))))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def load(self, centre: str | None = None, patient_id: str | None = None,
             tables: Iterable[str] | None = None) -> Records:  # fmt: skip
        """Current (not deleted) records, typed as the schema says: all of them, or one centre's, or one
        patient's; all tables or only those named (see :func:`load_records`)."""
        return load_records(self.engine, centre=centre, patient_id=patient_id, tables=tables)

    def dictionary(self) -> DataDictionary:
        """The data dictionary in force (the newest saved version, else allotrack's default)."""
        return stored_dictionary(self.engine)

    def save_dictionary(self, dictionary: DataDictionary, user: str, reason: str | None = None) -> int:
        """Save a new version of the data dictionary (audited; see :func:`save_dictionary`)."""
        return save_dictionary(self.engine, dictionary, user, reason)

    def import_records(self, records: Records, user: str = "import", centre: str | None = None,
                       dry_run: bool = False, update: bool = False, reason: str | None = None,
                       drop_duplicates: bool = False) -> ImportReport:  # fmt: skip
        """Validate ``records`` against the stored records they touch and write them in one locked transaction
        (see :func:`allotrack.records.importing.import_records`): new rows are added, rows already stored are
        skipped, corrections of stored records need ``update`` and a ``reason``; with ``dry_run`` nothing is
        written. Raises :class:`~allotrack.records.ValidationError` listing every problem, or
        :class:`ImportConflict` when a concurrent writer won."""
        return import_records(self.engine, records, user=user, centre=centre, dry_run=dry_run, update=update,
                              reason=reason, drop_duplicates=drop_duplicates)  # fmt: skip
