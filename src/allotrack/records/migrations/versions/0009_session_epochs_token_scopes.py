"""web accounts: a session epoch per user (sessions revoked by logout, password change and deactivation), an
administrator's login unlock time; scoped, expiring, labelled API tokens

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

A session cookie carries the user's ``session_epoch`` of its login and stops working once the epoch moved on.
Login failures before ``users.unlocked_at`` no longer count (allotrack user unlock). An API token grants only its
``scopes`` (space-separated: ``read``, ``write``) until ``expires_at``; tokens issued before this revision have
no expiry and are refused (issue new ones with POST /api/token).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("unlocked_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("scopes", sa.String(50), nullable=False, server_default="read"))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("label", sa.String(100)))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("label")
        batch.drop_column("expires_at")
        batch.drop_column("scopes")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("unlocked_at")
        batch.drop_column("session_epoch")
