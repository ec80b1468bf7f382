"""Routes of record-level locks and e-signatures (:mod:`allotrack.web.record_lock`): the patient page's "Locks and
signatures" section (``/patients/{id}/locks``) with a Lock / Unlock / Sign form next to each record (POST forms
with the CSRF token to ``/patients/{id}/locks/{table}/{row_id}/{lock|unlock|sign}``), and
the JSON API's ``/api/patients/{id}/locks`` and ``/api/records/{table}/{row_id}/lock|unlock|sign`` (a browser
session needs the ``X-CSRF-Token`` header). A signature re-enters the password: one verification under the login
throttle (a wrong one counts as a failed login; 403, or 429 once throttled)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from allotrack.web.app import CsrfRejected, LoginRefused, current_user, html, sign_in
from allotrack.web.auth import MAX_PASSWORD, User
from allotrack.web.data import NotFound, patient_records
from allotrack.web.record_lock import lock_record, lockable_records, patient_locks, sign_record, unlock_record
from allotrack.web.rights import require
from allotrack.web.security import csrf_ok

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["api"])
UserDep = Annotated[User, Depends(current_user)]
Csrf = Annotated[str | None, Form(alias="csrf_token")]
Table = Annotated[str, Path(max_length=50)]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _password_verified(request: Request, user: User, password: str) -> None:
    """The signer's own password, checked as a login is (counted by the throttle)."""
    try:
        sign_in(request, user.username, password)
    except LoginRefused as refused:
        raise HTTPException(429 if refused.throttled else 403,
                            str(refused) if refused.throttled else "the password is wrong: not signed") from None


@pages.get("/patients/{patient_id}/locks")
def locks_page(request: Request, patient_id: str, user: UserDep) -> Response:
    """The patient's records with their lock state and the buttons the user's rights allow (an htmx partial on the
    patient page, or a page of its own)."""
    engine = request.app.state.store.engine
    patient_records(engine, user, patient_id)  # 404 outside the user's centre
    template = "locks_rows.html" if request.headers.get("HX-Request") else "locks.html"
    return html(request, template, user=user, pid=patient_id, records=lockable_records(engine, user, patient_id),
                error=None)  # fmt: skip


@pages.post("/patients/{patient_id}/locks/{table}/{row_id}/{action}")
def lock_action(request: Request, patient_id: str, table: Table, row_id: RowId, action: str, user: UserDep,
                csrf_token: Csrf = None, reason: Annotated[str | None, Form(max_length=500)] = None,
                password: Annotated[str | None, Form(max_length=MAX_PASSWORD)] = None) -> Response:  # fmt: skip
    if not csrf_ok(request, csrf_token):
        raise CsrfRejected()
    engine = request.app.state.store.engine
    if action == "lock":
        lock_record(engine, user, table, row_id, reason, patient_id=patient_id)
    elif action == "unlock":
        unlock_record(engine, user, table, row_id, reason, patient_id=patient_id)
    elif action == "sign":
        require(user, "sign", "your role cannot sign records")  # before the password is even looked at
        try:
            _password_verified(request, user, password or "")
        except HTTPException as refused:
            return html(request, "error.html", status=refused.status_code, user=user,
                        message=f"{str(refused.detail).capitalize()}.")  # fmt: skip
        sign_record(engine, user, table, row_id, patient_id=patient_id)
    else:
        raise NotFound("no such action: lock, unlock or sign")
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)


class LockOut(BaseModel):
    table: str
    row_id: int
    locked_by: str
    locked_at: datetime
    signed_by: str | None
    signed_at: datetime | None


class ReasonIn(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


class PasswordIn(BaseModel):
    password: str = Field(max_length=MAX_PASSWORD)


def _changes_allowed(request: Request) -> None:
    if not getattr(request.state, "via_token", False) and not csrf_ok(request, request.headers.get("x-csrf-token")):
        raise CsrfRejected()


@api.get("/patients/{patient_id}/locks", response_model=list[LockOut])
def locks(request: Request, patient_id: str, user: UserDep) -> list[LockOut]:
    """The locked (and signed) records of the patient."""
    engine = request.app.state.store.engine
    patient_records(engine, user, patient_id)
    return [LockOut(table=k.table, row_id=k.row_id, locked_by=k.locked_by, locked_at=k.locked_at,
                    signed_by=k.signed_by, signed_at=k.signed_at)
            for k in patient_locks(engine, user, patient_id).values()]  # fmt: skip


@api.post("/records/{table}/{row_id}/lock", status_code=204)
def lock(request: Request, table: Table, row_id: RowId, body: ReasonIn, user: UserDep) -> None:
    """Lock a record (right ``lock_record``): no edit, delete or import correction until it is unlocked."""
    _changes_allowed(request)
    lock_record(request.app.state.store.engine, user, table, row_id, body.reason)


@api.post("/records/{table}/{row_id}/unlock", status_code=204)
def unlock(request: Request, table: Table, row_id: RowId, body: ReasonIn, user: UserDep) -> None:
    """Unlock a record (right ``lock_record``, a non-blank reason); its e-signature, if any, goes with the lock."""
    _changes_allowed(request)
    unlock_record(request.app.state.store.engine, user, table, row_id, body.reason)


@api.post("/records/{table}/{row_id}/sign", status_code=204)
def sign(request: Request, table: Table, row_id: RowId, body: PasswordIn, user: UserDep) -> None:
    """E-sign a completed assessment (right ``sign``) with one's password; signing locks the record."""
    _changes_allowed(request)
    require(user, "sign", "your role cannot sign records")
    _password_verified(request, user, body.password)
    sign_record(request.app.state.store.engine, user, table, row_id)
