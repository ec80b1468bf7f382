"""The check of an uploaded import as a background job (:mod:`allotrack.web.jobs`): read the files (bounded
memory, progress per file and rows), then the dry run of the import (validation against the store, within the
importer's centre), and keep its report for the page that shows it, with the commit and discard buttons.

A failed check keeps every problem as the import states it (table, file line, column, value and rule); a file
that cannot be read keeps the reader's message (file, line, byte or row limit). The files of a failed check are
removed at once; those of a passed one stay until they are committed or discarded (or go stale).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from allotrack.records.importing import FieldChange, ImportReport
from allotrack.web.jobs import FINAL, Failed, JobRunner, Progress


def start_check(runner: JobRunner, token: str, store: Any, paths: list[Path], username: str, user_id: int,
                centre: str, max_rows: int | None) -> None:  # fmt: skip
    """Queue the check of the saved ``paths`` (the files of the job ``token``) for the user and centre."""

    def check(progress: Progress) -> dict[str, Any]:
        from allotrack.records.importers import read_tables
        from allotrack.records.validate import ValidationError

        try:
            records = read_tables(paths, progress=progress, max_rows=max_rows)
            progress.validating()
            try:  # the preview shows corrections of stored records (old → new) before anything is written
                report = store.import_records(records, user=username, centre=centre, dry_run=True, update=True)
            except ValidationError as err:
                raise Failed([str(p) for p in err.problems]) from None
        except BaseException:  # refused files are not kept (the status keeps the problems for the page)
            for path in paths:
                path.unlink(missing_ok=True)
            raise
        return report_json(report)

    runner.submit(token, user_id, centre, check)


async def settled_status(runner: JobRunner, token: str, user_id: int, centre: str | None,
                         polled: bool) -> dict[str, Any] | None:  # fmt: skip
    """The job's status for the user (None: not theirs, or unknown). A page load (not a poll) waits up to
    ``runner.settle`` seconds for the job to finish, without holding a thread, so a quick check shows its result
    at once."""
    import asyncio

    from starlette.concurrency import run_in_threadpool

    deadline = asyncio.get_running_loop().time() + (0 if polled else runner.settle)
    while True:
        status = await run_in_threadpool(runner.status, token, user_id, centre)
        if status is None or status.get("state") in FINAL or asyncio.get_running_loop().time() >= deadline:
            return status
        await asyncio.sleep(0.05)


def report_json(report: ImportReport) -> dict[str, Any]:
    """The report as JSON values (a corrected field's old and new values as the page shows them)."""
    data = asdict(report)
    data["changes"] = [{**c, "old": _shown(c["old"]), "new": _shown(c["new"])} for c in data["changes"]]
    return data


def _shown(value: Any) -> str | None:
    return None if value is None else str(value)


def report_of(data: dict[str, Any]) -> ImportReport:
    return ImportReport(**{**data, "changes": [FieldChange(**c) for c in data.get("changes", [])]})


def progress_view(status: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of an unfinished job: a sentence and the fraction done (None: not known)."""
    state = status.get("state")
    if state == "reading":
        index, count, rows, total = (status.get(k) or 0 for k in ("file", "files", "rows", "total"))
        part = min(rows / total, 1.0) if total else 0.0
        counted = f": {rows:,} of about {total:,} rows read" if total else ""
        return {"stage": "reading", "label": f"Reading file {index} of {count} ({status.get('name')}){counted}",
                "fraction": (index - 1 + part) / count if count else None}  # fmt: skip
    if state == "validating":
        return {"stage": "validating", "label": "Checking the records against the rules and the stored records",
                "fraction": None}  # fmt: skip
    return {"stage": "queued", "label": "Waiting for its turn (other files are being checked)", "fraction": None}
