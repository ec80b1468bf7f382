"""natural keys: a key_hash column per record table, unique among current rows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Until 0004 the database refused only exact copies of a row (unique (patient_id, record_hash)); two rows with the
same patient id, or the same patient, day and analyte, with different content could both be stored (two
concurrent imports did exactly that). 0005 stores the hash of each row's natural key (``key_hash``, computed by
``allotrack.records.hashing.key_values``, the same definition as the content hash restricted to the key columns)
and makes it unique among current (not deleted) rows: per patient for event tables, across patients for donor,
course and infusion ids. The content-hash index is no longer needed for uniqueness and is dropped; tables keyed by
their own id get a patient index for per-patient reads.

Stores that already hold two current records with the same natural key (the bug above) keep both: the later one
(larger row_id) is soft-deleted with a reason, and the audit trail gets a row naming it, so nothing is lost and
the choice can be reversed by hand.

Downgrade drops the key column and its indexes and restores 0002's content-hash index (it fails if a soft-deleted
row and a current one have the same content, which 0004 could not store).
"""

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NATURAL_KEYS = {
    "patients": ("patient_id",), "donors": ("donor_id",), "courses": ("course_id",), "infusions": ("infusion_id",),
    "labs": ("patient_id", "date", "analyte"), "chimerism": ("patient_id", "date", "assay", "lineage"),
    "gvhd": ("patient_id", "date", "kind"), "crs": ("patient_id", "date"), "responses": ("patient_id", "date"),
    "adverse_events": ("patient_id", "start_date", "term"), "relapses": ("patient_id", "date"),
    "deaths": ("patient_id",), "follow_up": ("patient_id",),
}  # fmt: skip
CURRENT_ROWS: dict[str, Any] = {"sqlite_where": sa.text("deleted = 0"), "postgresql_where": sa.text("deleted = false")}


def _key_hashes(bind: sa.Connection, table: str) -> pd.DataFrame:
    """row_id, deleted and key_hash (signed 64-bit) of every row of a table."""
    from allotrack.records.hashing import key_values
    from allotrack.records.schema import table_spec
    from allotrack.records.tables import typed_frame

    spec = table_spec(table)
    names = [c.name for c in spec.columns]
    rows = bind.execute(sa.text(f"SELECT row_id, deleted, {', '.join(names)} FROM {table} ORDER BY row_id")).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["row_id", "deleted", *names], dtype=object)
    typed = typed_frame(frame, spec)
    return pd.DataFrame({"row_id": frame["row_id"].astype("int64"), "deleted": frame["deleted"].astype(bool),
                         "key_hash": key_values(typed, table).view(np.int64) if len(frame) else []})  # fmt: skip


def _retire_duplicates(bind: sa.Connection, table: str, keys: pd.DataFrame) -> None:
    """Soft-delete the later of current rows sharing a natural key, with an audit row each."""
    current = keys[~keys["deleted"]]
    later = current[current.duplicated("key_hash", keep="first")]
    if later.empty:
        return
    first = current.drop_duplicates("key_hash").set_index("key_hash")["row_id"]
    reason = "migration 0005: another current record (row {}) has the same natural key ({})"
    now = datetime.now(UTC)
    for row_id, key in zip(later["row_id"].tolist(), later["key_hash"].tolist(), strict=True):
        text = reason.format(int(first[key]), ", ".join(NATURAL_KEYS[table]))
        bind.execute(sa.text(f"UPDATE {table} SET deleted = :d, deleted_reason = :r WHERE row_id = :i"),
                     {"d": True, "r": text, "i": int(row_id)})  # fmt: skip
        pid = bind.execute(sa.text(f"SELECT patient_id, centre_code FROM {table} WHERE row_id = :i"),
                           {"i": int(row_id)}).first()  # fmt: skip
        bind.execute(sa.text("INSERT INTO audit_log (at, username, action, table_name, row_id, patient_id, "
                             "centre_code, old_values, new_values, reason) VALUES (:at, 'migration 0005', 'delete', "
                             ":t, :i, :p, :c, NULL, :n, :r)"),
                     {"at": now, "t": table, "i": int(row_id), "p": pid[0] if pid else None,
                      "c": pid[1] if pid else None, "n": json.dumps({"deleted": True}), "r": text})  # fmt: skip


def upgrade() -> None:
    bind = op.get_bind()
    for table, key in NATURAL_KEYS.items():
        op.add_column(table, sa.Column("key_hash", sa.BigInteger(), nullable=True))
        keys = _key_hashes(bind, table)
        if len(keys):
            bind.execute(sa.text(f"UPDATE {table} SET key_hash = :k WHERE row_id = :i"),
                         [{"k": int(k), "i": int(i)} for k, i in zip(keys["key_hash"], keys["row_id"], strict=True)])
        _retire_duplicates(bind, table, keys)
        op.drop_index(f"ux_{table}_patient_record", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.alter_column("key_hash", existing_type=sa.BigInteger(), nullable=False)
        if "patient_id" in key:
            op.create_index(f"ux_{table}_key", table, ["patient_id", "key_hash"], unique=True, **CURRENT_ROWS)
        else:
            op.create_index(f"ux_{table}_key", table, ["key_hash"], unique=True, **CURRENT_ROWS)
            op.create_index(f"ix_{table}_patient", table, ["patient_id"], unique=False)


def downgrade() -> None:
    for table, key in NATURAL_KEYS.items():
        op.drop_index(f"ux_{table}_key", table_name=table)
        if "patient_id" not in key:
            op.drop_index(f"ix_{table}_patient", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("key_hash")
        op.create_index(f"ux_{table}_patient_record", table, ["patient_id", "record_hash"], unique=True)
