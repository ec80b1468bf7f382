"""The audit trail: who changed which record, when, from what to what, and why. Rows are only ever added; a
record is never hard-deleted (soft delete with a reason). Values are stored as JSON in the database and never
written to application logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from allotrack.records.importing import is_locked
from allotrack.records.store import AUDIT_LOG, STUDY_LOCK

__all__ = ["is_locked", "patient_audit", "record_change", "set_lock"]


def _json(values: dict[str, Any] | None) -> str | None:
    return None if values is None else json.dumps(values, default=str, sort_keys=True)


def record_change(conn: sa.Connection, username: str, action: str, table: str, row_id: int | None,
                  patient_id: str | None, centre: str | None, old: dict[str, Any] | None = None,
                  new: dict[str, Any] | None = None, reason: str | None = None) -> None:  # fmt: skip
    """Append one audit row in the caller's transaction (so a change and its audit row commit together)."""
    conn.execute(AUDIT_LOG.insert().values(at=datetime.now(UTC), username=username, action=action, table_name=table,
                                           row_id=row_id, patient_id=patient_id, centre_code=centre,
                                           old_values=_json(old), new_values=_json(new), reason=reason))  # fmt: skip


def patient_audit(engine: sa.Engine, patient_id: str) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(AUDIT_LOG).where(AUDIT_LOG.c.patient_id == patient_id)
                            .order_by(AUDIT_LOG.c.audit_id)).mappings().all()  # fmt: skip
    return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in AUDIT_LOG.columns])


def set_lock(engine: sa.Engine, username: str, locked: bool, reason: str) -> None:
    with engine.begin() as conn:
        conn.execute(STUDY_LOCK.insert().values(locked=locked, at=datetime.now(UTC), username=username, reason=reason))
        record_change(conn, username, "lock" if locked else "unlock", "study_lock", None, None, None, reason=reason)
