"""dictionary-driven record kinds: observations, interventions, assessments, attributes; study-design records
(enrolments, populations, matched sets); the stored data dictionary

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

Each new record table has the columns of every record table (row id, content and natural-key hashes, centre,
creator, time, soft delete) and a unique index on its natural key among current rows, as 0005 set up. The data
dictionary is kept as versioned TOML documents (the newest row is in force).
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CURRENT_ROWS: dict[str, Any] = {"sqlite_where": sa.text("deleted = 0"), "postgresql_where": sa.text("deleted = false")}
TABLES: dict[str, Any] = {
    "observations": lambda: [
        sa.Column("row_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_hash", sa.BigInteger(), nullable=False),
        sa.Column("key_hash", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.String(200)),
        sa.Column("item", sa.String(200)),
        sa.Column("date", sa.Date()),
        sa.Column("study_day", sa.Integer()),
        sa.Column("visit", sa.String(200)),
        sa.Column("value", sa.Float()),
        sa.Column("value_text", sa.String(200)),
        sa.Column("unit", sa.String(200)),
        sa.Column("specimen", sa.String(200)),
        sa.Column("lod", sa.Float()),
        sa.Column("below_lod", sa.Boolean()),
        sa.Column("above_lod", sa.Boolean()),
        sa.Column("reported", sa.String(200)),
        sa.Column("centre_code", sa.String(50)),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_reason", sa.String(500)),
    ],
    "interventions": lambda: [
        sa.Column("row_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_hash", sa.BigInteger(), nullable=False),
        sa.Column("key_hash", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.String(200)),
        sa.Column("agent", sa.String(200)),
        sa.Column("start_date", sa.Date()),
        sa.Column("end_date", sa.Date()),
        sa.Column("dose", sa.Float()),
        sa.Column("unit", sa.String(200)),
        sa.Column("per_kg", sa.Boolean()),
        sa.Column("route", sa.String(200)),
        sa.Column("course_id", sa.String(200)),
        sa.Column("dose_level", sa.String(200)),
        sa.Column("visit", sa.String(200)),
        sa.Column("centre_code", sa.String(50)),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_reason", sa.String(500)),
    ],
    "assessments": lambda: [
        sa.Column("row_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_hash", sa.BigInteger(), nullable=False),
        sa.Column("key_hash", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.String(200)),
        sa.Column("item", sa.String(200)),
        sa.Column("date", sa.Date()),
        sa.Column("study_day", sa.Integer()),
        sa.Column("visit", sa.String(200)),
        sa.Column("value", sa.Float()),
        sa.Column("value_text", sa.String(200)),
        sa.Column("rule", sa.String(200)),
        sa.Column("inputs", sa.Text()),
        sa.Column("centre_code", sa.String(50)),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_reason", sa.String(500)),
    ],
    "attributes": lambda: [
        sa.Column("row_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_hash", sa.BigInteger(), nullable=False),
        sa.Column("key_hash", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.String(200)),
        sa.Column("item", sa.String(200)),
        sa.Column("value", sa.Float()),
        sa.Column("value_text", sa.String(200)),
        sa.Column("date", sa.Date()),
        sa.Column("centre_code", sa.String(50)),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_reason", sa.String(500)),
    ],
    "enrolments": lambda: [
        sa.Column("row_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_hash", sa.BigInteger(), nullable=False),
        sa.Column("key_hash", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.String(200)),
        sa.Column("study", sa.String(200)),
        sa.Column("enrolment_date", sa.Date()),
        sa.Column("eligible", sa.Boolean()),
        sa.Column("arm", sa.String(200)),
        sa.Column("randomisation_date", sa.Date()),
        sa.Column("stratum", sa.String(200)),
        sa.Column("allocation_number", sa.Integer()),
        sa.Column("centre_code", sa.String(50)),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_reason", sa.String(500)),
    ],
    "populations": lambda: [
        sa.Column("row_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_hash", sa.BigInteger(), nullable=False),
        sa.Column("key_hash", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.String(200)),
        sa.Column("study", sa.String(200)),
        sa.Column("population", sa.String(200)),
        sa.Column("included", sa.Boolean()),
        sa.Column("reason", sa.String(200)),
        sa.Column("centre_code", sa.String(50)),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_reason", sa.String(500)),
    ],
    "matched_sets": lambda: [
        sa.Column("row_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_hash", sa.BigInteger(), nullable=False),
        sa.Column("key_hash", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.String(200)),
        sa.Column("study", sa.String(200)),
        sa.Column("set_id", sa.String(200)),
        sa.Column("role", sa.String(200)),
        sa.Column("weight", sa.Float()),
        sa.Column("centre_code", sa.String(50)),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_reason", sa.String(500)),
    ],
}


def upgrade() -> None:
    for name, columns in TABLES.items():
        op.create_table(name, *columns())
        op.create_index(f"ux_{name}_key", name, ["patient_id", "key_hash"], unique=True, **CURRENT_ROWS)
    op.create_table(
        "data_dictionary",
        sa.Column("dictionary_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(500)),
    )


def downgrade() -> None:
    op.drop_table("data_dictionary")
    for name in reversed(list(TABLES)):
        op.drop_index(f"ux_{name}_key", table_name=name)
        op.drop_table(name)
