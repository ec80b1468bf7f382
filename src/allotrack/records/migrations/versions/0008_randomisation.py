"""randomisation: the design of each randomised study, its concealed allocation list and the append-only
allocation log; blinded accounts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

One allocation per patient and study, ever (a unique index); one patient per list position (a unique index); the
log is only ever inserted into (allotrack.web.allocation). A blinded account (``users.blinded``) never sees an
arm.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("blinded", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "randomisation_designs",
        sa.Column("study", sa.String(200), primary_key=True),
        sa.Column("design", sa.Text, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "allocation_lists",
        sa.Column("list_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("study", sa.String(200), nullable=False),
        sa.Column("stratum", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("block", sa.Integer, nullable=False),
        sa.Column("block_size", sa.Integer, nullable=False),
        sa.Column("arm", sa.String(200), nullable=False),
        sa.UniqueConstraint("study", "stratum", "position", name="ux_allocation_lists_position"),
    )
    op.create_table(
        "allocations",
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
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("blinded")
    op.drop_table("allocations")
    op.drop_table("allocation_lists")
    op.drop_table("randomisation_designs")
