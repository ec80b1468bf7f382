"""Which stored records are locked (the ``record_locks`` table of migration 0010, written by
:mod:`allotrack.web.record_lock`): asked by every write that changes or deletes a stored record, an import's
corrections included, in the writer's own transaction."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from allotrack.records.tables import RECORD_LOCKS

CHUNK = 5_000  # row ids per query (bound parameters stay well under every driver's limit)


def locked_row_ids(conn: sa.Connection, table: str, row_ids: Sequence[int]) -> set[int]:
    """The locked ones among ``row_ids`` of ``table``."""
    ids = [int(r) for r in row_ids]
    found: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        found.update(int(r) for r in conn.execute(sa.select(RECORD_LOCKS.c.row_id).where(
            RECORD_LOCKS.c.table_name == table, RECORD_LOCKS.c.row_id.in_(chunk))).scalars())  # fmt: skip
    return found
