"""user rights and record locks: per-user grants and revocations of rights; record-level locks and e-signatures

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

``users.rights_granted`` / ``users.rights_revoked`` hold space-separated right names (allotrack.web.rights) added to
or taken from the role's defaults. ``record_locks`` holds one row per locked record (table, row id), with the
signer and time when an e-signature locked it; a locked record is not edited, deleted or corrected by an import
until unlocked.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("rights_granted", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("rights_revoked", sa.Text, nullable=False, server_default=""))
    op.create_table(
        "record_locks",
        sa.Column("lock_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.String(50), nullable=False),
        sa.Column("row_id", sa.Integer, nullable=False),
        sa.Column("patient_id", sa.String(200), nullable=False),
        sa.Column("centre_code", sa.String(50)),
        sa.Column("locked_by", sa.String(100), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_by", sa.String(100)),
        sa.Column("signed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("table_name", "row_id", name="ux_record_locks_record"),
    )
    op.create_index("ix_record_locks_patient_id", "record_locks", ["patient_id"])


def downgrade() -> None:
    op.drop_index("ix_record_locks_patient_id", table_name="record_locks")
    op.drop_table("record_locks")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("rights_revoked")
        batch.drop_column("rights_granted")
