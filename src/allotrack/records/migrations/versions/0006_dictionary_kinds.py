"""dictionary-driven record kinds: observations, interventions, assessments, attributes; study-design records
(enrolments, populations, matched sets); the stored data dictionary

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

Each new record table has the columns of every record table (row id, content and natural-key hashes, centre,
creator, time, soft delete) around its own columns, and a unique index on its natural key among current rows, as
0005 set up. The data dictionary is kept as versioned TOML documents (the newest row is in force).
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CURRENT_ROWS: dict[str, Any] = {"sqlite_where": sa.text("deleted = 0"), "postgresql_where": sa.text("deleted = false")}
TYPES: dict[str, Any] = {"S": lambda: sa.String(200), "T": sa.Text, "D": sa.Date, "F": sa.Float, "I": sa.Integer, "B": sa.Boolean}
# each table's own columns as name:type (S text, T long text, D date, F number, I integer, B yes/no), frozen here
TABLES = {
    "observations": "patient_id:S item:S date:D study_day:I visit:S value:F value_text:S unit:S specimen:S lod:F below_lod:B above_lod:B reported:S",
    "interventions": "patient_id:S agent:S start_date:D end_date:D dose:F unit:S per_kg:B route:S course_id:S dose_level:S visit:S",
    "assessments": "patient_id:S item:S date:D study_day:I visit:S value:F value_text:S rule:S inputs:T",
    "attributes": "patient_id:S item:S value:F value_text:S date:D",
    "enrolments": "patient_id:S study:S enrolment_date:D eligible:B arm:S randomisation_date:D stratum:S allocation_number:I",
    "populations": "patient_id:S study:S population:S included:B reason:S",
    "matched_sets": "patient_id:S study:S set_id:S role:S weight:F",
}


def _columns(spec: str) -> list[sa.Column[Any]]:
    own = [sa.Column(name, TYPES[kind]()) for name, kind in (part.split(":") for part in spec.split())]
    return [
        sa.Column("row_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_hash", sa.BigInteger(), nullable=False),
        sa.Column("key_hash", sa.BigInteger(), nullable=False),
        *own,
        sa.Column("centre_code", sa.String(50)),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_reason", sa.String(500)),
    ]


def upgrade() -> None:
    for name, spec in TABLES.items():
        op.create_table(name, *_columns(spec))
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
