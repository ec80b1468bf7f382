"""The JSON API (OpenAPI at ``/api/openapi.json``). Scripts authenticate with a bearer token from
``POST /api/token`` (scopes ``read`` and/or ``write``, 30 days by default; ``GET /api/tokens`` lists one's own,
``DELETE /api/tokens/{id}`` revokes one); a browser session may call it too, but then every change needs the
``X-CSRF-Token`` header."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from allotrack.web.alerts import all_alerts
from allotrack.web.app import CsrfRejected, LoginRefused, current_user, sign_in
from allotrack.web.assessments import ASSESSMENTS, CrsIn, CrsValues, GvhdIn, GvhdValues, grade_crs, grade_gvhd
from allotrack.web.audit import patient_audit
from allotrack.web.auth import (
    MAX_PASSWORD,
    MAX_TOKEN_DAYS,
    MAX_USERNAME,
    TOKEN_DAYS,
    User,
    list_tokens,
    new_token,
    revoke_token,
)
from allotrack.web.data import (
    Forbidden,
    NotFound,
    add_records,
    conceal_audit,
    list_patients,
    patient_records,
    scoped_records,
    soft_delete,
)
from allotrack.web.security import csrf_ok

router = APIRouter(prefix="/api", tags=["api"])
UserDep = Annotated[User, Depends(current_user)]


def _changes_allowed(request: Request) -> None:
    if not getattr(request.state, "via_token", False) and not csrf_ok(request, request.headers.get("x-csrf-token")):
        raise CsrfRejected()


class Credentials(BaseModel):
    username: str = Field(max_length=MAX_USERNAME)
    password: str = Field(max_length=MAX_PASSWORD)
    scopes: list[Literal["read", "write"]] = Field(default=["read", "write"], min_length=1, max_length=2)
    expires_in_days: int = Field(default=TOKEN_DAYS, ge=1, le=MAX_TOKEN_DAYS)
    label: str | None = Field(default=None, max_length=100)


class TokenInfoOut(BaseModel):
    token_id: int
    label: str | None
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked: bool
    usable: bool


class TokenOut(BaseModel):
    token: str
    token_type: str = "bearer"
    token_id: int
    scopes: list[str]
    expires_at: datetime


class PatientOut(BaseModel):
    patient_id: str
    sex: str | None
    diagnosis: str | None
    diagnosis_date: date | None
    age_at_diagnosis: float | None
    centre_code: str | None


class GvhdOut(BaseModel):
    row_id: int
    grade: int
    label: str
    stages: dict[str, int]


class DeleteIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class AlertOut(BaseModel):
    patient_id: str
    kind: str
    severity: str
    date: date | None
    message: str


def _records_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    return out.astype(object).where(out.notna(), None).to_dict("records")  # type: ignore[return-value]


@router.post("/token", response_model=TokenOut)
def token(request: Request, body: Credentials) -> TokenOut:
    try:
        user = sign_in(request, body.username, body.password)
    except LoginRefused as refused:
        raise Forbidden(str(refused)) from None
    secret, info = new_token(request.app.state.store.engine, user, body.scopes, body.expires_in_days, body.label)
    assert info.expires_at is not None
    return TokenOut(token=secret, token_id=info.token_id, scopes=list(info.scopes), expires_at=info.expires_at)


@router.get("/tokens", response_model=list[TokenInfoOut])
def tokens(request: Request, user: UserDep) -> list[TokenInfoOut]:
    """One's own API tokens, newest first (never the tokens themselves)."""
    return [TokenInfoOut(token_id=t.token_id, label=t.label, scopes=list(t.scopes), created_at=t.created_at,
                         expires_at=t.expires_at, revoked=t.revoked, usable=t.usable)
            for t in list_tokens(request.app.state.store.engine, user.user_id)]  # fmt: skip


@router.delete("/tokens/{token_id}", status_code=204)
def revoke(request: Request, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], user: UserDep) -> None:
    """Revoke one of one's own API tokens."""
    _changes_allowed(request)
    if not revoke_token(request.app.state.store.engine, user.user_id, token_id):
        raise NotFound("no such token")


@router.get("/patients", response_model=list[PatientOut])
def patients(request: Request, user: UserDep, q: Annotated[str, Query(max_length=100)] = "",
             limit: Annotated[int, Query(ge=1, le=1000)] = 100,
             offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> list[PatientOut]:  # fmt: skip
    rows = list_patients(request.app.state.store.engine, user, q, limit=limit, offset=offset)
    return [PatientOut.model_validate({str(k): (None if pd.isna(v) else v) for k, v in r.items()})
            for r in rows.to_dict("records")]  # fmt: skip


@router.get("/patients/{patient_id}")
def patient(request: Request, patient_id: str, user: UserDep) -> dict[str, list[dict[str, Any]]]:
    """Every current record of the patient, table by table."""
    r = patient_records(request.app.state.store.engine, user, patient_id)
    return {name: _records_json(frame) for name, frame in r.tables.items()}


@router.post("/patients/{patient_id}/gvhd", response_model=GvhdOut, status_code=201)
def add_gvhd(request: Request, patient_id: str, body: GvhdIn, user: UserDep) -> GvhdOut:
    """An acute GVHD assessment from raw organ values; the MAGIC stages and grade are computed and stored."""
    _changes_allowed(request)
    grade = grade_gvhd(body)
    rows = ASSESSMENTS["gvhd"].records(patient_id, body.date.isoformat(), GvhdValues.model_validate(body.model_dump()))
    row_id = add_records(request.app.state.store.engine, user, "assessments", rows, reason=body.reason)[0]
    return GvhdOut(row_id=row_id, grade=grade.grade, label=grade.label, stages=dict(grade.stages))


class CrsOut(BaseModel):
    row_id: int
    grade: int
    reason: str


@router.post("/patients/{patient_id}/crs", response_model=CrsOut, status_code=201)
def add_crs(request: Request, patient_id: str, body: CrsIn, user: UserDep) -> CrsOut:
    """A CRS assessment from bedside values; the ASTCT grade is computed and stored."""
    _changes_allowed(request)
    grade = grade_crs(body)
    rows = ASSESSMENTS["crs"].records(patient_id, body.date.isoformat(), CrsValues.model_validate(body.model_dump()))
    row_id = add_records(request.app.state.store.engine, user, "assessments", rows, reason=body.reason)[0]
    return CrsOut(row_id=row_id, grade=grade.grade, reason=grade.reason)


@router.delete("/records/{table}/{row_id}", status_code=204)
def delete_record(request: Request, table: Annotated[str, Path(max_length=50)],
                  row_id: Annotated[int, Path(ge=1, le=2**31 - 1)], body: DeleteIn, user: UserDep) -> None:
    """Soft-delete a record (kept, marked deleted, with the reason in the audit trail)."""
    _changes_allowed(request)
    soft_delete(request.app.state.store.engine, user, table, row_id, body.reason)


@router.get("/patients/{patient_id}/audit")
def audit(request: Request, patient_id: str, user: UserDep) -> list[dict[str, Any]]:
    engine = request.app.state.store.engine
    patient_records(engine, user, patient_id)
    return _records_json(conceal_audit(patient_audit(engine, patient_id), user))


@router.get("/alerts", response_model=list[AlertOut])
def alerts(request: Request, user: UserDep) -> list[AlertOut]:
    found = all_alerts(scoped_records(request.app.state.store.engine, user))
    return [AlertOut(patient_id=a.patient_id, kind=a.kind, severity=a.severity, date=a.date, message=a.message)
            for a in found]  # fmt: skip
