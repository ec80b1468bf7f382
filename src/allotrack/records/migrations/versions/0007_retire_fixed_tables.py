"""labs, chimerism, gvhd, crs and responses become observations and assessments

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

Observations gain ``method`` (the assay) and ``transfused`` (a count taken after a transfusion); the natural key of
an observation now includes the method (two assays of the same lineage on one day are two findings), so the
key hashes of stored observations are recomputed.

Every row of the five retired tables, current or soft-deleted, moves to its record kind as
:func:`allotrack.records.retired.to_kinds` says (one row in, one row out; nothing dropped) and keeps its centre,
creator, creation time, soft-delete flag and reason. Values given in another unit than the data dictionary's
are converted as an import converts them (the value as stored before is kept in ``reported``). A moved row keeps
its row id shifted by a fixed offset per table, and the audit trail's references to it (corrections, deletions)
are rewritten to the new table and row id; one audit row per retired table records the move. A moved current row
whose natural key is already taken by a current row of the new kind (the same finding recorded twice before
0007) is stored soft-deleted, with a reason naming the row it duplicates, so nothing is lost.

The retired tables are then dropped. There is no downgrade: the records of 0007's kinds have no place in the
retired tables; a copy of the store taken before upgrading is the way back.
"""

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

RETIRED = ("labs", "chimerism", "gvhd", "crs", "responses")
AUDIT = ("centre_code", "created_by", "created_at", "deleted", "deleted_reason")
CURRENT_ROWS: dict[str, Any] = {"sqlite_where": sa.text("deleted = 0"), "postgresql_where": sa.text("deleted = false")}
# the retired tables' own columns as name:type (S text, D date, F number, I integer, B yes/no), frozen here
RETIRED_COLUMNS = {
    "labs": "patient_id:S date:D analyte:S value:F unit:S transfused:B",
    "chimerism": "patient_id:S date:D donor_percent:F assay:S lineage:S lod_percent:F below_lod:B",
    "gvhd": "patient_id:S date:D kind:S grade:I severity:S systemic_therapy:B",
    "crs": "patient_id:S date:D grade:I",
    "responses": "patient_id:S date:D category:S mrd_negative:B",
}


def _read(bind: sa.Connection, table: str, columns: list[str], where: str = "") -> pd.DataFrame:
    names = ["row_id", *columns, *AUDIT]
    rows = bind.execute(sa.text(f"SELECT {', '.join(names)} FROM {table} {where} ORDER BY row_id")).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=names, dtype=object)


def _max_row_id(bind: sa.Connection, table: str) -> int:
    return int(bind.execute(sa.text(f"SELECT COALESCE(MAX(row_id), 0) FROM {table}")).scalar_one())


def _insert(bind: sa.Connection, table: str, frame: pd.DataFrame) -> None:
    """Insert rows with their own row ids (typed schema columns, hashes and audit columns)."""
    from allotrack.records.bulk import python_rows

    if not len(frame):
        return
    values = python_rows(frame, table)
    extras: list[dict[str, Any]] = frame[["row_id", "record_hash", "key_hash", *AUDIT]].to_dict("records")  # type: ignore[assignment]
    for row, extra in zip(values, extras, strict=True):
        row.update({k: (None if v is None or (isinstance(v, float) and np.isnan(v)) else v) for k, v in extra.items()})
        for k in ("row_id", "record_hash", "key_hash"):
            row[k] = int(row[k])
        row["deleted"] = bool(row["deleted"])
    target = sa.table(table, *[sa.column(k) for k in values[0]])
    for start in range(0, len(values), 50_000):
        bind.execute(target.insert(), values[start:start + 50_000])
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'row_id'), "
                             f"(SELECT MAX(row_id) FROM {table}))"))  # fmt: skip


def _typed_kind(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    from allotrack.records.schema import TABLES
    from allotrack.records.tables import typed_frame

    spec = TABLES[kind]
    full = pd.DataFrame({c.name: frame[c.name] if c.name in frame.columns else pd.Series([None] * len(frame),
                         index=frame.index, dtype=object) for c in spec.columns})  # fmt: skip
    for c in spec.columns:
        if c.kind == "bool":  # stored as 0/1 by SQLite, as bool by PostgreSQL
            full[c.name] = full[c.name].map(lambda v: None if v is None or v is pd.NA else bool(v)).astype(object)
    return typed_frame(full, spec)


def _converted(bind: sa.Connection, kind: str, typed: pd.DataFrame) -> pd.DataFrame:
    """Units converted to the dictionary's and choice labels to codes, as an import does; rows the dictionary
    cannot check keep their values."""
    from allotrack.records.dictionary_store import stored_dictionary
    from allotrack.records.validate_items import check_items

    checked = check_items({kind: typed}, stored_dictionary(bind)).tables[kind]
    return checked


def _move(bind: sa.Connection, table: str, now: datetime) -> None:
    from allotrack.records.hashing import content_and_key_values
    from allotrack.records.retired import to_kinds

    columns = [part.split(":")[0] for part in RETIRED_COLUMNS[table].split()]
    rows = _read(bind, table, columns)
    kind, moved = to_kinds(table, rows[columns])
    typed = _converted(bind, kind, _typed_kind(moved, kind))
    content, key = content_and_key_values(typed, kind)
    offset = _max_row_id(bind, kind)
    out = typed.assign(row_id=rows["row_id"].astype("int64") + offset, record_hash=content.view(np.int64),
                       key_hash=key.view(np.int64), **{c: rows[c] for c in AUDIT})  # fmt: skip
    out["deleted"] = out["deleted"].map(bool)
    _retire_taken_keys(bind, kind, out)
    _insert(bind, kind, out)
    mapping = dict(zip(rows["row_id"].astype(int).tolist(), out["row_id"].astype(int).tolist(), strict=True))
    references = bind.execute(sa.text("SELECT audit_id, row_id FROM audit_log WHERE table_name = :t AND row_id IS "
                                      "NOT NULL"), {"t": table}).all()  # fmt: skip
    for audit_id, row_id in references:
        if int(row_id) in mapping:
            bind.execute(sa.text("UPDATE audit_log SET table_name = :k, row_id = :r WHERE audit_id = :a"),
                         {"k": kind, "r": mapping[int(row_id)], "a": audit_id})  # fmt: skip
    summary = {"moved_rows": len(rows), "to": kind,
               "row_ids": f"{table} row id + {offset} = {kind} row id" if len(rows) else None}  # fmt: skip
    bind.execute(sa.text("INSERT INTO audit_log (at, username, action, table_name, row_id, patient_id, centre_code, "
                         "old_values, new_values, reason) VALUES (:at, 'migration 0007', 'migrate', :t, NULL, NULL, "
                         "NULL, NULL, :n, :r)"),
                 {"at": now, "t": table, "n": json.dumps(summary),
                  "r": f"the {table} table is retired: its records are {kind} now"})  # fmt: skip


def _retire_taken_keys(bind: sa.Connection, kind: str, out: pd.DataFrame) -> None:
    """Soft-delete (with a reason) moved current rows whose natural key a current row already holds."""
    stored = _read(bind, kind, ["patient_id", "key_hash"], "WHERE deleted = :f".replace(":f", _false(bind)))
    held = dict(zip(zip(stored["patient_id"], stored["key_hash"].astype("int64")), stored["row_id"], strict=True))
    deleted = out["deleted"].to_numpy(dtype=bool).copy()
    reasons = out["deleted_reason"].to_numpy(dtype=object).copy()
    for position in np.flatnonzero(~deleted):
        key = (out["patient_id"].iloc[position], int(out["key_hash"].iloc[position]))
        if key in held:
            deleted[position] = True
            reasons[position] = f"migration 0007: {kind} row {held[key]} has the same natural key"
        else:
            held[key] = out["row_id"].iloc[position]
    out["deleted"], out["deleted_reason"] = deleted, reasons


def _false(bind: sa.Connection) -> str:
    return "false" if bind.dialect.name == "postgresql" else "0"


def _rehash_observations(bind: sa.Connection) -> None:
    """Recompute stored observations' key hashes: the natural key gained ``method``."""
    from allotrack.records.hashing import content_and_key_values
    from allotrack.records.schema import TABLES

    names = [c.name for c in TABLES["observations"].columns if c.name not in ("method", "transfused")]
    rows = _read(bind, "observations", names)
    if not len(rows):
        return
    typed = _typed_kind(rows[names], "observations")
    content, key = content_and_key_values(typed, "observations")
    updates = [{"c": int(c), "k": int(k), "i": int(i)}
               for c, k, i in zip(content.view(np.int64), key.view(np.int64), rows["row_id"], strict=True)]  # fmt: skip
    bind.execute(sa.text("UPDATE observations SET record_hash = :c, key_hash = :k WHERE row_id = :i"), updates)


def upgrade() -> None:
    bind = op.get_bind()
    op.drop_index("ux_observations_key", table_name="observations")
    op.add_column("observations", sa.Column("method", sa.String(200)))
    op.add_column("observations", sa.Column("transfused", sa.Boolean()))
    _rehash_observations(bind)
    now = datetime.now(UTC)
    for table in RETIRED:
        _move(bind, table, now)
    op.create_index("ux_observations_key", "observations", ["patient_id", "key_hash"], unique=True, **CURRENT_ROWS)
    for table in RETIRED:
        op.drop_index(f"ux_{table}_key", table_name=table)
        op.drop_table(table)


def downgrade() -> None:
    raise NotImplementedError(
        "migration 0007 cannot be undone automatically: restore the copy of the store taken before the upgrade")
