"""Bulk writing (and reading) of validated record tables, each import in one transaction.

SQLite goes through the Python ``sqlite3`` driver behind SQLAlchemy: rows are built column by column (C-level
``tolist``), audit values are SQL literals rather than per-row parameters, and ``executemany`` runs in chunks.
(A second SQLite library in the process, such as ADBC's, must never open the same file: two copies of SQLite
release each other's POSIX locks — https://sqlite.org/howtocorrupt.html §2.2.1.) PostgreSQL gets Arrow tables
through ADBC's binary ``COPY`` and is read back as Arrow the same way.

When an import at least doubles a large table, that table's index is dropped first and rebuilt once at the end of
the same transaction (one sort instead of millions of B-tree inserts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from allotrack.records.schema import TABLES

REBUILD_MIN_ROWS = 100_000


@dataclass(frozen=True)
class Audit:
    """Audit columns written with every imported row."""

    user: str
    centre: str | None
    at: datetime  # timezone-aware (UTC)


def _constant(value: Any, n: int, type_: pa.DataType) -> pa.Array:
    if value is None:
        return pa.nulls(n, type_)
    return pc.take(pa.array([value], type_), pa.array(np.zeros(n, dtype=np.int32)))


def arrow_table(frame: pd.DataFrame, name: str, audit: Audit) -> pa.Table:
    """The SQL table's columns (all but ``row_id``) as Arrow arrays typed for PostgreSQL's binary COPY. ``frame``
    holds the typed schema columns and ``record_hash`` (signed 64-bit)."""
    n = len(frame)
    arrays: dict[str, pa.Array] = {"record_hash": pa.array(frame["record_hash"].to_numpy(dtype=np.int64))}
    for col in TABLES[name].columns:
        values = _column(frame, col.name)
        if col.kind == "date":
            days = pd.to_datetime(values).to_numpy(dtype="datetime64[D]")
            arrays[col.name] = pa.array(days, pa.date32(), mask=np.isnat(days))
        elif col.kind in ("number", "integer"):
            num = pa.array(pd.to_numeric(values).to_numpy(dtype="float64", na_value=np.nan), pa.float64(),
                           from_pandas=True)  # fmt: skip
            arrays[col.name] = num.cast(pa.int32()) if col.kind == "integer" else num
        elif col.kind == "bool":
            arrays[col.name] = pa.array(_objects(values.astype("boolean")), pa.bool_())
        else:
            arrays[col.name] = pa.array(_objects(values), pa.string(), from_pandas=True)
    arrays["centre_code"] = _constant(audit.centre, n, pa.string())
    arrays["created_by"] = _constant(audit.user, n, pa.string())
    arrays["created_at"] = _constant(audit.at, n, pa.timestamp("us", tz="UTC"))
    arrays["deleted"] = _constant(False, n, pa.bool_())
    arrays["deleted_reason"] = _constant(None, n, pa.string())
    return pa.table(arrays)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series([None] * len(frame), dtype=object, index=frame.index)


def _objects(values: pd.Series) -> np.ndarray:
    """Python objects with None for missing (what DB-API drivers and ``pa.array`` take)."""
    return np.asarray(values.astype(object).where(values.notna(), None))


def driver_columns(frame: pd.DataFrame, name: str) -> dict[str, list[Any]]:
    """The record columns as Python lists for a DB-API driver, stored as SQLAlchemy stores them on SQLite (dates
    as ISO text, yes/no as 1/0, missing as None). Dates are formatted once per distinct value."""
    out: dict[str, list[Any]] = {"record_hash": frame["record_hash"].to_numpy(dtype=np.int64).tolist()}
    for col in TABLES[name].columns:
        values = _column(frame, col.name)
        if col.kind == "date":
            codes, days = pd.factorize(pd.to_datetime(values), use_na_sentinel=True)
            text = np.array([*pd.DatetimeIndex(days).strftime("%Y-%m-%d"), None], dtype=object)
            out[col.name] = text[codes].tolist()  # code -1 picks the trailing None
        elif col.kind in ("number", "integer"):
            num = pd.to_numeric(values).astype("float64")
            cast = num.astype("Int64") if col.kind == "integer" else num
            out[col.name] = _objects(cast).tolist()
        elif col.kind == "bool":
            out[col.name] = _objects(values.astype("boolean").astype("Int64")).tolist()
        else:
            out[col.name] = _objects(values).tolist()
    return out


def _adbc_postgresql(url: sa.URL) -> Any:
    import adbc_driver_postgresql.dbapi

    return adbc_driver_postgresql.dbapi.connect(url.set(drivername="postgresql").render_as_string(False))


def read_tables(engine: Engine, queries: dict[str, sa.Select[Any]]) -> dict[str, pa.Table] | None:
    """PostgreSQL: run each query through ADBC and return Arrow tables. Other databases: None (read them
    through SQLAlchemy)."""
    if engine.dialect.name != "postgresql":
        return None
    conn = _adbc_postgresql(engine.url)
    try:
        with conn.cursor() as cur:
            out = {}
            for name, query in queries.items():
                cur.execute(str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})))
                out[name] = cur.fetch_arrow_table()
            return out
    finally:
        conn.close()


def _rebuilt_indexes(name: str, n_new: int, n_stored: int) -> list[sa.Index]:
    if n_new < REBUILD_MIN_ROWS or n_new < n_stored:
        return []
    from allotrack.records.store import METADATA

    return sorted(METADATA.tables[name].indexes, key=lambda ix: str(ix.name))


def write_tables(engine: Engine, frames: dict[str, pd.DataFrame], audit: Audit, stored: dict[str, int]) -> None:
    """Insert every frame (typed schema columns + ``record_hash``) in one transaction; ``stored`` counts the rows
    already in each table (to decide whether rebuilding its index pays)."""
    frames = {name: frame for name, frame in frames.items() if len(frame)}
    dialect = engine.dialect
    ddl = {name: _rebuilt_indexes(name, len(frame), stored.get(name, 0)) for name, frame in frames.items()}

    def drop(execute: Any, name: str) -> None:
        for ix in ddl[name]:
            execute(str(sa.schema.DropIndex(ix).compile(dialect=dialect)))

    def create(execute: Any, name: str) -> None:
        for ix in ddl[name]:
            execute(str(sa.schema.CreateIndex(ix).compile(dialect=dialect)))

    if dialect.name == "postgresql":
        conn = _adbc_postgresql(engine.url)
        try:
            with conn.cursor() as cur:
                for name, frame in frames.items():
                    drop(cur.execute, name)
                    cur.adbc_ingest(name, arrow_table(frame, name, audit), mode="append")
                    create(cur.execute, name)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
        return
    with engine.begin() as sa_conn:
        for name, frame in frames.items():
            drop(sa_conn.exec_driver_sql, name)
            _executemany(sa_conn, name, driver_columns(frame, name), audit)
            create(sa_conn.exec_driver_sql, name)


def _executemany(conn: sa.Connection, name: str, columns: dict[str, list[Any]], audit: Audit) -> None:
    """INSERT through the DB-API driver: one parameter per record column, the audit columns as SQL literals."""
    dialect = conn.dialect
    literal: dict[str, sa.BindParameter[Any]] = {
        "centre_code": sa.literal(audit.centre, sa.String()),
        "created_by": sa.literal(audit.user, sa.String()),
        "created_at": sa.literal(audit.at, sa.DateTime(timezone=True)),
        "deleted": sa.literal(False, sa.Boolean()),
    }
    rendered = {k: str(v.compile(dialect=dialect, compile_kwargs={"literal_binds": True})) for k, v in literal.items()}
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    names = [*columns, *rendered]
    values = [mark] * len(columns) + list(rendered.values())
    sql = f"INSERT INTO {quote(name)} ({', '.join(quote(c) for c in names)}) VALUES ({', '.join(values)})"
    rows = zip(*columns.values(), strict=True)  # tuples made lazily, one at a time, as the driver binds them
    if dialect.name == "sqlite":
        driver = conn.connection.driver_connection  # same connection, same transaction
        assert driver is not None
        driver.cursor().executemany(sql, rows)
    else:
        conn.exec_driver_sql(sql, list(rows))
