"""The SQL tables of the store (SQLAlchemy Core), built from :mod:`allotrack.records.schema`, and the typing of
rows read back from them.

Every record table carries, besides its schema columns: ``row_id``; ``record_hash`` (content hash: a re-import
of the same row adds nothing); ``key_hash`` (hash of the natural key, unique among current rows: the database
itself refuses a second record with the same key); the centre, creator and creation time; and a soft-delete flag
with its reason. Nothing is ever hard-deleted.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa

from allotrack.records.schema import TABLES, Column, Table

AUDIT_COLUMNS = ("row_id", "record_hash", "key_hash", "centre_code", "created_by", "created_at", "deleted",
                 "deleted_reason")  # fmt: skip


def _sa_type(col: Column) -> Any:
    types: dict[str, Any] = {"date": sa.Date(), "number": sa.Float(), "integer": sa.Integer(), "bool": sa.Boolean(),
                             "note": sa.Text()}
    return types.get(col.kind, sa.String(200))


def build_metadata() -> sa.MetaData:
    """One SQL table per record table, plus the audit columns."""
    md = sa.MetaData()
    for spec in TABLES.values():
        sa.Table(
            spec.name, md,
            sa.Column("row_id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("record_hash", sa.BigInteger, nullable=False),
            sa.Column("key_hash", sa.BigInteger, nullable=False),
            *[sa.Column(c.name, _sa_type(c), nullable=True) for c in spec.columns],
            sa.Column("centre_code", sa.String(50)),
            sa.Column("created_by", sa.String(100), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("deleted", sa.Boolean, nullable=False, default=False),
            sa.Column("deleted_reason", sa.String(500)),
            *_indexes(spec),
        )  # fmt: skip
    return md


CURRENT_ROWS: dict[str, Any] = {"sqlite_where": sa.text("deleted = 0"), "postgresql_where": sa.text("deleted = false")}


def _indexes(spec: Table) -> list[sa.Index]:
    """The natural key is unique among a table's current rows (a soft-deleted record frees its key); tables keyed
    by their own id (donors, courses, infusions) get a patient index for per-patient reads. Both lead with what a
    per-patient read filters on."""
    if spec.global_key:
        return [sa.Index(f"ux_{spec.name}_key", "key_hash", unique=True, **CURRENT_ROWS),
                sa.Index(f"ix_{spec.name}_patient", "patient_id")]  # fmt: skip
    return [sa.Index(f"ux_{spec.name}_key", "patient_id", "key_hash", unique=True, **CURRENT_ROWS)]


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
    sa.Column("blinded", sa.Boolean, nullable=False, server_default=sa.false()),  # migration 0008
    sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"),  # migration 0009
    sa.Column("unlocked_at", sa.DateTime(timezone=True)),  # migration 0009
    sa.Column("rights_granted", sa.Text, nullable=False, server_default=""),  # migration 0010 (allotrack.web.rights)
    sa.Column("rights_revoked", sa.Text, nullable=False, server_default=""),  # migration 0010
)  # fmt: skip
API_TOKENS = sa.Table(
    "api_tokens", METADATA,
    sa.Column("token_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
    sa.Column("scopes", sa.String(50), nullable=False, server_default="read"),  # migration 0009
    sa.Column("expires_at", sa.DateTime(timezone=True)),  # migration 0009
    sa.Column("label", sa.String(100)),  # migration 0009
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
DATA_DICTIONARY = sa.Table(
    "data_dictionary", METADATA,
    sa.Column("dictionary_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.String(500)),
)  # fmt: skip
STUDY_LOCK = sa.Table(
    "study_lock", METADATA,
    sa.Column("lock_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("locked", sa.Boolean, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("username", sa.String(100), nullable=False),
    sa.Column("reason", sa.String(500)),
)  # fmt: skip

# Record-level locks and e-signatures (migration 0010; allotrack.web.record_lock): one row per locked record, the
# signature's signer and time when signing locked it; unlocking deletes the row (the audit trail keeps both).
RECORD_LOCKS = sa.Table(
    "record_locks", METADATA,
    sa.Column("lock_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.String(50), nullable=False),
    sa.Column("row_id", sa.Integer, nullable=False),
    sa.Column("patient_id", sa.String(200), nullable=False, index=True),
    sa.Column("centre_code", sa.String(50)),
    sa.Column("locked_by", sa.String(100), nullable=False),
    sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("signed_by", sa.String(100)),
    sa.Column("signed_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("table_name", "row_id", name="ux_record_locks_record"),
)  # fmt: skip

# Randomisation (migration 0008): each randomised study's design, its concealed list, the append-only log.
RANDOMISATION_DESIGNS = sa.Table(
    "randomisation_designs", METADATA,
    sa.Column("study", sa.String(200), primary_key=True),
    sa.Column("design", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)  # fmt: skip
ALLOCATION_LISTS = sa.Table(
    "allocation_lists", METADATA,
    sa.Column("list_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study", sa.String(200), nullable=False),
    sa.Column("stratum", sa.String(200), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("block", sa.Integer, nullable=False),
    sa.Column("block_size", sa.Integer, nullable=False),
    sa.Column("arm", sa.String(200), nullable=False),
    sa.UniqueConstraint("study", "stratum", "position", name="ux_allocation_lists_position"),
)  # fmt: skip
ALLOCATIONS = sa.Table(
    "allocations", METADATA,
    sa.Column("allocation_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study", sa.String(200), nullable=False),
    sa.Column("patient_id", sa.String(200), nullable=False),
    sa.Column("centre_code", sa.String(50)),
    sa.Column("stratum", sa.String(200), nullable=False),
    sa.Column("position", sa.Integer),
    sa.Column("arm", sa.String(200), nullable=False),
    sa.Column("method", sa.String(20), nullable=False),
    sa.Column("details", sa.Text),
    sa.Column("allocated_by", sa.String(100), nullable=False),
    sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("study", "patient_id", name="ux_allocations_patient"),
    sa.UniqueConstraint("study", "stratum", "position", name="ux_allocations_position"),
)  # fmt: skip


def typed_frame(frame: pd.DataFrame, spec: Table, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Stored values as the schema types them: dates as datetime64, numbers as float64, yes/no as boolean, text
    as Python strings with None for missing; ``extra`` store columns are kept as they are."""
    out: dict[str, Any] = {}
    for c in spec.columns:
        values = frame[c.name]
        if c.kind == "date":  # parsed once per distinct date (ISO text from SQLite, date objects from PostgreSQL)
            codes, days = pd.factorize(values, use_na_sentinel=True)
            text = pd.Series(days, dtype=object).map(str)
            parsed = pd.to_datetime(text, format="ISO8601") if len(text) else pd.Series([], dtype="datetime64[ns]")
            out[c.name] = pd.Series(pd.api.extensions.take(parsed.array, codes, allow_fill=True), index=frame.index)
        elif c.kind in ("number", "integer"):
            out[c.name] = pd.to_numeric(values).astype("float64")
        elif c.kind == "bool":
            out[c.name] = values.astype("boolean")
        else:
            out[c.name] = values.astype(object).where(values.notna(), None)
    for name in extra:
        out[name] = frame[name]
    return pd.DataFrame(out, index=frame.index)
