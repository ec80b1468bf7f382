"""Server-rendered pages. Every route takes the signed-in user (``current_user``), every query goes through the
user's data access group (:mod:`allotrack.web.data`), every form POST checks the CSRF token."""

from __future__ import annotations

import secrets
import shutil
from datetime import date
from pathlib import Path as FilePath
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response

from allotrack.errors import AllotrackError, InputError
from allotrack.records.importers import read_tables
from allotrack.records.importers.files import check_workbook_size
from allotrack.records.safe_csv import csv_text
from allotrack.records.store import ImportConflict
from allotrack.records.validate import ValidationError
from allotrack.study.plan import PlanError
from allotrack.web.alerts import all_alerts
from allotrack.web.allocation import Allocation, allocate, allocation_balance, list_randomisations
from allotrack.web.app import CsrfRejected, LoginRefused, NotAuthenticated, current_user, html, sign_in
from allotrack.web.assessments import ASSESSMENTS, Assessment
from allotrack.web.audit import patient_audit, set_lock
from allotrack.web.auth import User, change_password, end_sessions
from allotrack.web.charts import dashboard_charts, patient_charts
from allotrack.web.dashboard import GROUPINGS, dashboard_figures
from allotrack.web.data import (
    Forbidden,
    NotFound,
    add_records,
    conceal_audit,
    count_patients,
    given_reason,
    list_patients,
    patient_records,
    scoped_records,
)
from allotrack.web.exports import may_export, replace_dataset
from allotrack.web.limits import Limits, remove_stale_uploads
from allotrack.web.record_listing import patient_sections
from allotrack.web.rights import require
from allotrack.web.security import csrf_ok
from allotrack.web.studies import get_plan, list_plans, save_plan
from allotrack.web.timeline import patient_timeline

router = APIRouter(include_in_schema=False)
UserDep = Annotated[User, Depends(current_user)]
Csrf = Annotated[str | None, Form(alias="csrf_token")]


def _check_csrf(request: Request, token: str | None) -> None:
    if not csrf_ok(request, token):
        raise CsrfRejected()


@router.get("/login")
def login_page(request: Request) -> Response:
    return html(request, "login.html", user=None, error=None)


@router.post("/login")
def login(request: Request, username: Annotated[str, Form()], password: Annotated[str, Form()],
          csrf_token: Csrf = None) -> Response:  # fmt: skip
    _check_csrf(request, csrf_token)
    try:
        user = sign_in(request, username, password)
    except LoginRefused as refused:
        return html(request, "login.html", status=429 if refused.throttled else 401, user=None,
                    error=f"{str(refused).capitalize()}.")  # fmt: skip
    request.session.clear()  # a fresh session (and CSRF token) at every login
    request.session["user_id"] = user.user_id
    request.session["epoch"] = user.session_epoch
    return RedirectResponse("/patients", status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token: Csrf = None) -> Response:
    """Sign out: every session of the user ends (a copy of the cookie included)."""
    _check_csrf(request, csrf_token)
    try:
        end_sessions(request.app.state.store.engine, current_user(request).user_id)
    except NotAuthenticated:
        pass  # already over
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/account/password")
def password_page(request: Request, user: UserDep) -> Response:
    return html(request, "password.html", user=user, error=None)


@router.post("/account/password")
def password_change(request: Request, user: UserDep, current_password: Annotated[str, Form()],
                    new_password: Annotated[str, Form()], confirm_password: Annotated[str, Form()],
                    csrf_token: Csrf = None) -> Response:  # fmt: skip
    """Change one's password (the current one required, under the login throttle); every other session and every
    API token of the user ends, this session goes on."""
    _check_csrf(request, csrf_token)
    if new_password != confirm_password:
        return html(request, "password.html", status=422, user=user, error="The new passwords differ.")
    try:
        sign_in(request, user.username, current_password)
    except LoginRefused as refused:
        message = str(refused) if refused.throttled else "the current password is wrong"
        return html(request, "password.html", status=429 if refused.throttled else 403, user=user,
                    error=f"{message.capitalize()}.")  # fmt: skip
    try:
        epoch = change_password(request.app.state.store.engine, user.user_id, new_password)
    except InputError as exc:
        return html(request, "password.html", status=422, user=user, error=f"{str(exc).capitalize()}.")
    request.session["epoch"] = epoch
    return RedirectResponse("/patients", status_code=303)


@router.get("/")
def home(user: UserDep) -> Response:
    return RedirectResponse("/patients", status_code=303)


@router.get("/patients")
def patients_page(request: Request, user: UserDep, q: Annotated[str, Query(max_length=100)] = "",
                  page: Annotated[int, Query(ge=1, le=200_000)] = 1) -> Response:  # fmt: skip
    rows = list_patients(request.app.state.store.engine, user, q, limit=PAGE_SIZE, offset=PAGE_SIZE * (page - 1))
    rows["diagnosis_date"] = pd.to_datetime(rows["diagnosis_date"]).dt.date
    total = count_patients(request.app.state.store.engine, user, q)
    first = PAGE_SIZE * (page - 1) + 1
    template = "patients_rows.html" if request.headers.get("HX-Request") else "patients.html"
    return html(request, template, user=user, rows=rows.to_dict("records"), q=q, page=page, total=total,
                first=first, last=first + len(rows) - 1, more=first + len(rows) - 1 < total)  # fmt: skip


PAGE_SIZE = 50


@router.get("/patients/{patient_id}")
def patient_page(request: Request, patient_id: str, user: UserDep) -> Response:
    t = patient_timeline(request.app.state.store.engine, user, patient_id)
    return html(request, "patient.html", user=user, patient=t.patient, pid=patient_id, tables=t.tables,
                charts=patient_charts(t), windows=t.windows, rule=t.rule,
                sections=patient_sections(request.app.state.store.engine, user, patient_id))  # fmt: skip


def _assessment(kind: str) -> Assessment:
    if kind not in ASSESSMENTS:
        raise NotFound("no such assessment form")
    return ASSESSMENTS[kind]


@router.get("/patients/{patient_id}/{kind}/new")
def assessment_form(request: Request, patient_id: str, kind: str, user: UserDep) -> Response:
    _assessment(kind)
    patient_records(request.app.state.store.engine, user, patient_id)  # 404 outside the user's centre
    require(user, "enter", "your role cannot change records")
    return html(request, f"{kind}_form.html", user=user, pid=patient_id, today=date.today().isoformat(), values={},
                error=None)  # fmt: skip


@router.post("/patients/{patient_id}/{kind}/grade")
async def assessment_preview(request: Request, patient_id: str, kind: str, user: UserDep) -> Response:
    spec = _assessment(kind)
    form = dict(await request.form())
    _check_csrf(request, form.get("csrf_token"))  # type: ignore[arg-type]
    try:
        result = spec.from_form(form)
    except AllotrackError as err:
        return html(request, f"{kind}_grade.html", user=user, result=None, error=str(err))
    return html(request, f"{kind}_grade.html", user=user, result=result, error=None)


@router.post("/patients/{patient_id}/{kind}")
async def assessment_add(request: Request, patient_id: str, kind: str, user: UserDep) -> Response:
    spec = _assessment(kind)
    form = dict(await request.form())
    _check_csrf(request, form.get("csrf_token"))  # type: ignore[arg-type]
    try:
        rows = spec.records(patient_id, str(form.get("date") or ""), spec.validated(form))
        add_records(request.app.state.store.engine, user, spec.table, rows,
                    reason=str(form.get("reason") or "") or None)  # fmt: skip
    except (NotFound, Forbidden):
        raise
    except AllotrackError as err:  # the form again, as entered, with the reason it was not saved next to it
        values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
        return html(request, f"{kind}_form.html", status=422, user=user, pid=patient_id,
                    today=values.get("date") or date.today().isoformat(), values=values, error=str(err))  # fmt: skip
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)


@router.get("/dashboard")
def dashboard(request: Request, user: UserDep, group: str = "age") -> Response:
    key = group if group in GROUPINGS else "age"
    figures = dashboard_figures(request.app.state.store.engine, user, key)
    return html(request, "dashboard.html", user=user, group=key, figures=dashboard_charts(figures),
                groupings=[(k, v[0]) for k, v in GROUPINGS.items()])  # fmt: skip


@router.get("/dashboard/figures")
def dashboard_partial(request: Request, user: UserDep, group: str = "age") -> Response:
    key = group if group in GROUPINGS else "age"
    return html(request, "dashboard_figures.html", user=user,
                figures=dashboard_charts(dashboard_figures(request.app.state.store.engine, user, key)))  # fmt: skip


@router.get("/patients/{patient_id}/audit")
def audit_page(request: Request, patient_id: str, user: UserDep) -> Response:
    engine = request.app.state.store.engine
    patient_records(engine, user, patient_id)
    rows = conceal_audit(patient_audit(engine, patient_id), user)
    if request.query_params.get("format") == "csv":
        return Response(csv_text(rows), media_type="text/csv",
                        headers={"Content-Disposition": "attachment; filename=audit.csv"})  # fmt: skip
    return html(request, "audit.html", user=user, pid=patient_id, rows=rows.astype(object).where(rows.notna(), "")
                .to_dict("records"), values="new_values" in rows.columns)  # fmt: skip


@router.get("/alerts")
def alerts_page(request: Request, user: UserDep) -> Response:
    alerts = all_alerts(scoped_records(request.app.state.store.engine, user))
    return html(request, "alerts.html", user=user, alerts=alerts)


@router.get("/import")
def import_page(request: Request, user: UserDep) -> Response:
    require(user, "import", "your role cannot import records")
    return html(request, "import.html", user=user, report=None, token=None, problems=None)


@router.post("/import")
async def import_check(request: Request, user: UserDep, files: Annotated[list[UploadFile], File()],
                       csrf_token: Csrf = None,
                       centre: Annotated[str | None, Form(max_length=50)] = None) -> Response:  # fmt: skip
    _check_csrf(request, csrf_token)
    require(user, "import", "your role cannot import records")
    scope = user.centre_code or (centre.strip() if centre and centre.strip() else None)
    if scope is None:  # an administrator imports for one centre at a time, named explicitly
        return html(request, "import.html", status=422, user=user, report=None, token=None,
                    problems=["choose the centre the imported records belong to"])  # fmt: skip
    from starlette.concurrency import run_in_threadpool

    from allotrack.web.import_jobs import start_check
    from allotrack.web.jobs import Busy, job_runner

    runner = job_runner(request.app.state)  # the check runs in the background: allotrack.web.import_jobs
    try:
        runner.reserve(user.user_id)
    except Busy as err:
        return html(request, "import.html", status=429, user=user, report=None, token=None, problems=[str(err)])
    token = runner.new_token()
    folder = request.app.state.uploads / token
    (folder / "files").mkdir(parents=True)
    try:
        paths = await run_in_threadpool(_save_uploads, request, folder / "files", files)
    except AllotrackError as err:
        shutil.rmtree(folder, ignore_errors=True)
        return html(request, "import.html", status=422, user=user, report=None, token=None, problems=[str(err)])
    start_check(runner, token, request.app.state.store, paths, user.username, user.user_id, scope,
                request.app.state.limits.max_csv_rows)  # fmt: skip
    request.session["pending_import"] = token
    request.session["pending_import_centre"] = scope
    return RedirectResponse(f"/import/jobs/{token}", status_code=303)


@router.get("/import/jobs/{token}")
async def import_job(request: Request, token: str, user: UserDep) -> Response:
    """The check of an upload: its progress while it runs (polled by htmx; a settled check makes the page reload),
    then the problems found or the report with the commit and discard buttons. Another user's check, or another
    centre's, is answered as an unknown one."""
    require(user, "import", "your role cannot import records")
    from allotrack.web.import_jobs import progress_view, report_of, settled_status
    from allotrack.web.jobs import job_runner

    polled = request.headers.get("HX-Request") == "true"
    status = await settled_status(job_runner(request.app.state), token, user.user_id, user.centre_code, polled)
    if status is None:
        raise NotFound("no such import check: upload the files again")
    state = status["state"]
    if polled:
        if state in ("done", "failed"):
            return Response(status_code=200, headers={"HX-Refresh": "true"})
        return html(request, "import_progress.html", token=token, job=progress_view(status))
    if state == "failed":
        return html(request, "import.html", status=422, user=user, report=None, token=None,
                    problems=status.get("problems") or ["the check failed"])  # fmt: skip
    if state != "done":
        return html(request, "import.html", status=202, user=user, report=None, token=token, problems=None,
                    job=progress_view(status))  # fmt: skip
    if request.session.get("pending_import") != token:  # no commit button that would be refused
        return html(request, "import.html", status=409, user=user, report=None, token=None,
                    problems=["these files passed the check, but only the latest upload of the browser session that "
                              "uploaded them can be committed: upload them again to import them"])  # fmt: skip
    from starlette.concurrency import run_in_threadpool

    return html(request, "import.html", user=user, report=report_of(status["result"]), token=token, problems=None,
                centre=status.get("centre"), locked=await run_in_threadpool(_locked, request))  # fmt: skip


def _locked(request: Request) -> bool:
    from allotrack.records.importing import is_locked

    with request.app.state.store.engine.connect() as conn:
        return is_locked(conn)


MAX_NAME = 120


def upload_name(filename: str | None) -> str:
    """The name an uploaded file is stored under (its stem names the table): refused unless it is a plain name."""
    name = filename or ""
    if any(c in name for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InputError(f"the file name {name[:MAX_NAME]!r} holds a folder separator or a control character")
    if not name.strip(" .") or name.startswith("."):
        raise InputError(f"{name!r} is not a usable file name: name the file after its table (patients.csv)")
    if len(name) > MAX_NAME:
        raise InputError(f"the file name {name[:40]}… is too long: at most {MAX_NAME} characters")
    return name


def _save_uploads(request: Request, folder: FilePath, files: list[UploadFile]) -> list[FilePath]:
    """Store the uploaded files in the upload's folder (stale uploads of others are removed first), refusing odd
    names, workbooks that would unpack to more than the limit and CSV files with too many rows (before parsing)."""
    limits: Limits = request.app.state.limits
    remove_stale_uploads(request.app.state.uploads, limits.upload_max_age)
    paths: list[FilePath] = []
    for f in files:
        target = folder / upload_name(f.filename)
        if target in paths:
            raise InputError(f"two files are named {target.name}")
        f.file.seek(0)
        with target.open("wb") as out:
            shutil.copyfileobj(f.file, out)
        suffix = target.suffix.lower()
        if suffix in (".xlsx", ".xlsm"):
            check_workbook_size(target, limits.max_xlsx_bytes)
        elif suffix in (".csv", ".tsv", ".txt"):
            with target.open("rb") as text:
                lines = sum(block.count(b"\n") for block in iter(lambda: text.read(2**20), b""))
            if lines > limits.max_csv_rows + 1:
                raise InputError(f"{target.name} has more than {limits.max_csv_rows:,} rows: split it into smaller "
                                 "files")  # fmt: skip
        paths.append(target)
    return paths


@router.post("/import/{token}/{decision}")
def import_decide(request: Request, token: str, decision: str, user: UserDep, csrf_token: Csrf = None,
                  reason: Annotated[str | None, Form(max_length=500)] = None) -> Response:  # fmt: skip
    """Commit (or discard) a checked import. Corrections of stored records and imports into a locked study need a
    reason; the import writes its own audit rows (per patient, and per corrected field) in its transaction."""
    _check_csrf(request, csrf_token)
    require(user, "import", "your role cannot import records")
    if request.session.get("pending_import") != token or decision not in ("commit", "discard"):
        raise Forbidden("no such pending import for you")
    folder = request.app.state.uploads / token
    scope = user.centre_code or request.session.get("pending_import_centre")  # the centre chosen at the check
    try:
        if decision == "commit":
            if not folder.is_dir():
                raise InputError("this checked import has expired (uploads are kept for an hour): upload the files "
                                 "again")  # fmt: skip
            from allotrack.web.jobs import job_runner

            job = job_runner(request.app.state).status(token, user.user_id, user.centre_code)
            if job is None or job.get("state") == "failed":
                raise InputError("these files did not pass the check: correct them and upload them again")
            if job.get("state") != "done":
                return html(request, "import.html", status=409, user=user, report=None, token=None,
                            problems=["the check of these files has not finished: commit once its result is "
                                      "shown"])  # fmt: skip
            paths = sorted((folder / "files").iterdir())
            try:
                request.app.state.store.import_records(read_tables(paths), user=user.username, centre=scope,
                                                       update=True, reason=reason)  # fmt: skip
            except ValidationError as err:  # e.g. a correction without a reason: the pending import stays
                report = request.app.state.store.import_records(read_tables(paths), user=user.username,
                                                                centre=scope, dry_run=True, update=True)
                return html(request, "import.html", status=422, user=user, report=report, token=token,
                            problems=[str(p) for p in err.problems], centre=scope,
                            locked=_locked(request))  # fmt: skip
            except ImportConflict as err:
                return html(request, "import.html", status=409, user=user, report=None, token=None, problems=[str(err)])
        request.session.pop("pending_import", None)
        shutil.rmtree(folder, ignore_errors=True)
    except AllotrackError as err:
        request.session.pop("pending_import", None)
        shutil.rmtree(folder, ignore_errors=True)
        return html(request, "import.html", status=422, user=user, report=None, token=None, problems=[str(err)])
    return RedirectResponse("/patients", status_code=303)


@router.get("/studies")
def studies_page(request: Request, user: UserDep) -> Response:
    require(user, "report", "your role cannot run analyses")
    return html(request, "studies.html", user=user, plans=list_plans(request.app.state.store.engine), problems=None)


@router.post("/studies")
async def studies_upload(request: Request, user: UserDep, name: Annotated[str, Form(max_length=200)],
                         plan: Annotated[UploadFile, File()], csrf_token: Csrf = None) -> Response:  # fmt: skip
    _check_csrf(request, csrf_token)
    engine = request.app.state.store.engine
    text = (await plan.read()).decode("utf-8", errors="replace")
    try:
        save_plan(engine, user, name, text)
    except PlanError as err:
        problems = [f"line {line or '?'}: {key}: {msg}" for line, key, msg in err.problems]
        return html(request, "studies.html", status=422, user=user, plans=list_plans(engine), problems=problems)
    return RedirectResponse("/studies", status_code=303)


@router.post("/studies/{plan_id}/run")
def study_run(request: Request, plan_id: Annotated[int, Path(ge=-(2**31), le=2**31 - 1)], user: UserDep,
              csrf_token: Csrf = None) -> Response:  # fmt: skip
    _check_csrf(request, csrf_token)
    require(user, "report", "your role cannot run analyses")
    from allotrack.study.run import run_study, write_report

    engine = request.app.state.store.engine
    plan = get_plan(engine, plan_id)
    result = run_study(plan, records=scoped_records(engine, user), validated=True)
    token = secrets.token_urlsafe(16)
    write_report(result, request.app.state.uploads / f"report-{token}")
    replace_dataset(user, result.dataset, request.app.state.uploads / f"report-{token}" / "dataset.csv")
    request.session["report"] = token
    return html(request, "report.html", user=user, token=token, title=plan.study.title,
                dataset=may_export(user))  # fmt: skip


@router.get("/report/{token}/{name}")
def report_download(request: Request, token: str, name: str, user: UserDep) -> Response:
    if request.session.get("report") != token or name not in ("report.html", "report.docx", "dataset.csv"):
        raise Forbidden("no such report for you")
    require(user, "report", "your role cannot run analyses")
    if name == "dataset.csv" and not may_export(user):
        require(user, "export_deidentified", "downloading the analysis dataset is an export")
    path = request.app.state.uploads / f"report-{token}" / name
    if not path.is_file():  # removed with the stale uploads after an hour
        raise NotFound("this report has expired: run the study again")
    return FileResponse(path, filename=name)


@router.get("/randomise")
def randomise_page(request: Request, user: UserDep) -> Response:
    return _randomise_page(request, user)


def _randomise_page(request: Request, user: User, status: int = 200, result: Allocation | None = None,
                    error: str | None = None) -> Response:  # fmt: skip
    require(user, "randomise", "your role cannot randomise patients")
    engine = request.app.state.store.engine
    studies = list_randomisations(engine)
    shown = "design" in user.rights and not user.blinded
    balance = {s["study"]: allocation_balance(engine, user, s["study"]) for s in studies} if shown else {}
    return html(request, "randomise.html", status=status, user=user, studies=studies, result=result, error=error,
                balance=balance)  # fmt: skip


@router.post("/randomise")
def randomise_patient(request: Request, user: UserDep, study: Annotated[str, Form(max_length=200)],
                      patient_id: Annotated[str, Form(max_length=200)], csrf_token: Csrf = None) -> Response:
    _check_csrf(request, csrf_token)
    try:
        result = allocate(request.app.state.store.engine, user, study, patient_id.strip())
    except (NotFound, AllotrackError) as err:
        if isinstance(err, Forbidden):
            raise
        return _randomise_page(request, user, status=404 if isinstance(err, NotFound) else 422,
                               error=str(err))  # fmt: skip
    return _randomise_page(request, user, result=result)


@router.post("/admin/lock")
def lock(request: Request, user: UserDep, locked: Annotated[str, Form()], reason: Annotated[str, Form()],
         csrf_token: Csrf = None) -> Response:  # fmt: skip
    _check_csrf(request, csrf_token)
    require(user, "lock_study", "only administrators lock study data")
    why = given_reason(reason)
    if why is None:
        raise InputError("locking or unlocking the study data needs a reason")
    set_lock(request.app.state.store.engine, user.username, locked == "yes", why)
    return RedirectResponse("/patients", status_code=303)
