"""Bulk writing (and reading) of validated record tables, inside the caller's transaction.

Writes go through the import's own SQLAlchemy connection, so they commit or roll back with its validation reads,
its updates and its audit rows. SQLite: the Python ``sqlite3`` driver's ``executemany``, rows built column by
column (C-level ``tolist``), audit values as SQL literals rather than per-row parameters. (A second SQLite library
in the process, such as ADBC's, must never open the same file: two copies of SQLite release each other's POSIX
locks — https://sqlite.org/howtocorrupt.html §2.2.1.) PostgreSQL: ``COPY ... FROM STDIN`` through psycopg, the
rows rendered as CSV by Arrow's C++ writer. Reading a whole store from PostgreSQL uses ADBC's Arrow results.

When an import at least doubles a large table, that table's indexes are dropped first and rebuilt once at the end
of the same transaction (one sort instead of millions of B-tree inserts); a crash before the commit rolls the
drop back with everything else.
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
    arrays: dict[str, pa.Array] = {"record_hash": pa.array(frame["record_hash"].to_numpy(dtype=np.int64)),
                                   "key_hash": pa.array(frame["key_hash"].to_numpy(dtype=np.int64))}
    for col in TABLES[name].columns:
        values = _column(frame, col.name)
        if not col.required and not values.notna().any():
            continue  # missing in every row: left to the database's NULL (as in driver_columns)
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
    as ISO text, yes/no as 1/0, missing as None). Dates are formatted once per distinct value. A column missing in
    every row is left out (the database fills it with NULL): the long kinds have many optional columns, and
    binding ten million NULLs per column is most of the cost of an insert."""
    out: dict[str, list[Any]] = {"record_hash": frame["record_hash"].to_numpy(dtype=np.int64).tolist(),
                                 "key_hash": frame["key_hash"].to_numpy(dtype=np.int64).tolist()}
    for col in TABLES[name].columns:
        values = _column(frame, col.name)
        if not col.required and not values.notna().any():
            continue
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


def python_rows(frame: pd.DataFrame, name: str) -> list[dict[str, Any]]:
    """Typed rows as dictionaries of Python values for SQLAlchemy (dates as ``date``, numbers as float or int,
    yes/no as bool, missing as None)."""
    columns: dict[str, list[Any]] = {}
    for col in TABLES[name].columns:
        values = _column(frame, col.name)
        if col.kind == "date":
            columns[col.name] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in values]
        elif col.kind in ("number", "integer"):
            num = pd.to_numeric(values).astype("float64")
            columns[col.name] = _objects(num.astype("Int64") if col.kind == "integer" else num).tolist()
        elif col.kind == "bool":
            columns[col.name] = _objects(values.astype("boolean")).tolist()
        else:
            columns[col.name] = _objects(values).tolist()
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _rebuilt_indexes(name: str, n_new: int, n_stored: int | None) -> list[sa.Index]:
    if n_stored is None or n_new < REBUILD_MIN_ROWS or n_new < n_stored:
        return []
    from allotrack.records.tables import METADATA

    return sorted(METADATA.tables[name].indexes, key=lambda ix: str(ix.name))


def write_tables(conn: sa.Connection, frames: dict[str, pd.DataFrame], audit: Audit, stored: dict[str, int]) -> None:
    """Insert every frame (typed schema columns, ``record_hash`` and ``key_hash``) in the caller's transaction;
    ``stored`` counts the rows already in each large table written (to decide whether rebuilding its indexes
    pays)."""
    dialect = conn.dialect
    for name, frame in frames.items():
        if not len(frame):
            continue
        rebuilt = _rebuilt_indexes(name, len(frame), stored.get(name))
        for ix in rebuilt:
            conn.exec_driver_sql(str(sa.schema.DropIndex(ix).compile(dialect=dialect)))
        if dialect.name == "postgresql":
            _copy(conn, name, arrow_table(frame, name, audit))
        else:
            _executemany(conn, name, driver_columns(frame, name), audit)
        for ix in rebuilt:
            conn.exec_driver_sql(str(sa.schema.CreateIndex(ix).compile(dialect=dialect)))


def _copy(conn: sa.Connection, name: str, table: pa.Table) -> None:
    """PostgreSQL ``COPY ... FROM STDIN (FORMAT csv)`` on the transaction's own psycopg connection: Arrow writes
    the CSV (missing values as unquoted empty fields, which COPY reads as NULL; text always quoted)."""
    import io

    import pyarrow.csv as pa_csv

    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(c) for c in table.column_names)
    driver = conn.connection.driver_connection
    assert driver is not None
    buffer = io.BytesIO()
    for batch in table.to_batches(max_chunksize=500_000):
        buffer.seek(0)
        buffer.truncate()
        pa_csv.write_csv(pa.Table.from_batches([batch]), buffer, pa_csv.WriteOptions(include_header=False))
        with driver.cursor() as cur, cur.copy(f"COPY {quote(name)} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getbuffer())


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
