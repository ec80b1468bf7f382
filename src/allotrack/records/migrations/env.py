"""Alembic environment for the allotrack record store (run through :meth:`allotrack.records.store.Store.init`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from allotrack.records.store import METADATA

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    engine = engine_from_config(config.get_section(config.config_ini_section) or {"sqlalchemy.url":
                                config.get_main_option("sqlalchemy.url")}, prefix="sqlalchemy.",
                                poolclass=pool.NullPool)  # fmt: skip
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=METADATA)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=METADATA)
    with context.begin_transaction():
        context.run_migrations()
