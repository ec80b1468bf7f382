"""record_hash uniqueness as a named unique index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

0001 made ``record_hash`` unique through an unnamed table constraint, which SQLite cannot drop. A named unique
index (``ux_<table>_record_hash``) enforces the same rule and can be dropped and rebuilt around a bulk import
(building an index once over sorted keys is far faster than ten million random B-tree inserts).
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("adverse_events", "chimerism", "courses", "deaths", "donors", "follow_up", "gvhd", "infusions", "labs",
          "patients", "relapses", "responses", "crs")  # fmt: skip
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _drop_constraint(table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":  # unnamed in SQLite: name it through a convention, then rebuild
        with op.batch_alter_table(table, naming_convention=SQLITE_NAMES, recreate="always") as batch:
            batch.drop_constraint(f"uq_{table}_record_hash", type_="unique")
    else:
        op.drop_constraint(f"{table}_record_hash_key", table, type_="unique")


def upgrade() -> None:
    for table in TABLES:
        _drop_constraint(table)
        op.create_index(f"ux_{table}_record_hash", table, ["record_hash"], unique=True)


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ux_{table}_record_hash", table_name=table)
        if op.get_bind().dialect.name == "sqlite":
            with op.batch_alter_table(table, naming_convention=SQLITE_NAMES, recreate="always") as batch:
                batch.create_unique_constraint(f"uq_{table}_record_hash", ["record_hash"])
        else:
            op.create_unique_constraint(f"{table}_record_hash_key", table, ["record_hash"])
