"""The web application (FastAPI; server-rendered Jinja2 pages with htmx, no front-end build; a JSON API with an
OpenAPI document). ``create_app()`` wires the store, sessions, security and the routes.

Logs name the route template (``/patients/{patient_id}``), status and duration, never a path with an identifier
in it; unexpected errors show and log a reference id, not a trace. Request, upload and workbook size limits,
the uploads folder and its clean-up, the security headers and the last-resort error handler:
:mod:`allotrack.web.limits`. Bad input of any kind answers 4xx with a message (``AllotrackError`` 422, a
conflicting concurrent change 409, request validation 422 without echoing the values sent).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import DataError
from starlette.middleware.sessions import SessionMiddleware

from allotrack.errors import AllotrackError
from allotrack.records.store import Store
from allotrack.records.validate import ValidationError
from allotrack.web.auth import User, check_password, login_account, oversized, token_access, unlocked_since, user_by_id
from allotrack.web.data import Conflict, Forbidden, NotFound
from allotrack.web.limits import Guard, Limits, remove_stale_uploads, uploads_folder
from allotrack.web.security import LoginThrottle, csrf_token

log = logging.getLogger("allotrack.web")
HERE = Path(str(files("allotrack.web")))


class NotAuthenticated(Exception):
    pass


class CsrfRejected(Exception):
    pass


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


READING = ("GET", "HEAD", "OPTIONS")


def current_user(request: Request) -> User:
    """The signed-in user (a session cookie of the user's current session epoch) or the bearer of a usable API
    token (a token without the ``write`` scope may only read)."""
    engine = request.app.state.store.engine
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        found = token_access(engine, auth[7:].strip())
        user = found[0] if found is not None else None
        request.state.via_token = user is not None
        if found is not None and "write" not in found[1]:
            if request.method not in READING:
                raise Forbidden("this API token may only read (scope: read)")
            user = replace(found[0], read_only=True)  # only the read rights (allotrack.web.rights.READ_RIGHTS)
    else:
        uid = request.session.get("user_id")
        user = user_by_id(engine, int(uid)) if uid is not None else None
        if user is not None and request.session.get("epoch") != user.session_epoch:
            user = None  # signed out since (logout, password change, deactivation)
        request.state.via_token = False
    if user is None:
        raise NotAuthenticated()
    return user


class LoginRefused(Exception):
    """Wrong credentials, or (``throttled``) too many recent failures for this user name or address."""

    def __init__(self, throttled: bool) -> None:
        super().__init__("too many failed attempts: wait 15 minutes" if throttled else "wrong user name or password")
        self.throttled = throttled


def sign_in(request: Request, username: str, password: str) -> User:
    """Check a password login (pages and API tokens alike) under the login throttle: oversized credentials are
    refused before any work; the attempt is counted before the password is checked (parallel attempts cannot
    outrun the count); success clears the user's count and takes back only this attempt from the address's."""
    if oversized(username, password):
        raise LoginRefused(throttled=False)
    throttle: LoginThrottle = request.app.state.throttle
    user_key, address_key = f"user:{username.lower()}", f"addr:{request.client.host if request.client else '?'}"
    account = login_account(request.app.state.store.engine, username)
    if not throttle.attempt(user_key, address_key, since=unlocked_since(account)):
        raise LoginRefused(throttled=True)
    user = check_password(account, password)
    if user is None:
        raise LoginRefused(throttled=False)
    throttle.succeeded(user_key)
    throttle.take_back(address_key)
    return user


def create_app(url: str | None = None, secret_key: str | None = None, secure_cookies: bool | None = None, *,
               max_body_bytes: int | None = None, max_xlsx_bytes: int | None = None, max_csv_rows: int | None = None,
               upload_max_age: float | None = None, uploads_dir: str | Path | None = None,
               https_only: bool | None = None) -> FastAPI:  # fmt: skip
    """The application over the store at ``url`` (SQLite default or PostgreSQL). ``secret_key`` signs session
    cookies (``ALLOTRACK_SECRET_KEY``, else a random key per process); ``secure_cookies`` marks them Secure (set it
    behind TLS; ``ALLOTRACK_SECURE_COOKIES=1``). ``https_only`` (``ALLOTRACK_HTTPS_ONLY=1``; default: as
    ``secure_cookies``) sends Strict-Transport-Security on every response, not only on HTTPS requests. The limits
    and ``uploads_dir``: :mod:`allotrack.web.limits`."""
    store = Store(url)
    store.init()
    # no /api/docs: FastAPI's Swagger UI page loads its script from a CDN (the document stays at /api/openapi.json)
    app = FastAPI(title="allotrack", version="0.1.0", docs_url=None, openapi_url="/api/openapi.json",
                  redoc_url=None)  # fmt: skip
    app.state.store = store
    app.state.throttle = LoginThrottle()
    app.state.limits = Limits.configured(max_body_bytes=max_body_bytes, max_xlsx_bytes=max_xlsx_bytes,
                                         max_csv_rows=max_csv_rows, upload_max_age=upload_max_age)  # fmt: skip
    app.state.uploads = uploads_folder(uploads_dir)
    remove_stale_uploads(app.state.uploads, app.state.limits.upload_max_age)
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.state.templates.env.globals["csrf_token"] = csrf_token
    secure = secure_cookies if secure_cookies is not None else os.environ.get("ALLOTRACK_SECURE_COOKIES") == "1"
    app.add_middleware(SessionMiddleware, secret_key=secret_key or os.environ.get("ALLOTRACK_SECRET_KEY")
                       or secrets.token_urlsafe(32), session_cookie="allotrack_session", same_site="strict",
                       https_only=secure, max_age=8 * 3600)  # fmt: skip
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def log_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response: Response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "(unmatched)")
        log.info("%s %s %d %.1f ms", request.method, template, response.status_code,
                 (time.perf_counter() - start) * 1000)  # fmt: skip
        return response  # the security headers: the guard (allotrack.web.limits)

    strict = https_only if https_only is not None else (secure or os.environ.get("ALLOTRACK_HTTPS_ONLY") == "1")
    app.add_middleware(Guard, max_body_bytes=app.state.limits.max_body_bytes, https_only=strict,
                       error_page=_error_page)  # fmt: skip  (added last: the outermost)

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "authentication required"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, exc: CsrfRejected) -> Response:
        return _error(request, 403, "the form's security token is missing or wrong: reload the page and retry")

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _error(request, 403, str(exc))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> Response:
        return _error(request, 409, str(exc))

    @app.exception_handler(AllotrackError)
    async def refused(request: Request, exc: AllotrackError) -> Response:  # bad input the routes did not catch
        return _error(request, 422, str(exc))

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> Response:  # e.g. a NUL character on PostgreSQL
        return _error(request, 422, "a value holds a character the database cannot store (a NUL character?)")

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own answer echoes the input (patient data; NaN/Infinity it then cannot even write as JSON)
        problems = [{"type": e.get("type"), "loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg"))}
                    for e in exc.errors()]  # fmt: skip
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(ValidationError)
    async def invalid(request: Request, exc: ValidationError) -> Response:
        problems = [str(p) for p in exc.problems]
        if _is_api(request):
            return JSONResponse({"detail": "validation failed", "problems": problems}, status_code=422)
        return _error(request, 422, "; ".join(problems))

    from allotrack.web.routes import assets, locks
    from allotrack.web.routes.api import router as api_router
    from allotrack.web.routes.entry import router as entry_router
    from allotrack.web.routes.pages import router as pages_router

    app.include_router(entry_router)  # data entry (before the pages: /patients/new is not a patient id)
    app.include_router(pages_router)
    app.include_router(api_router)
    app.include_router(locks.pages)  # record locks and e-signatures
    app.include_router(locks.api)
    assets.install(app)  # plotly.js and its style sheet from our own origin (charts)
    return app


def _error(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, "error.html", {"status": status, "message": message, "user": None},
                                      status_code=status)  # fmt: skip


def _error_page(scope: Any, status: int, message: str) -> Response:
    return _error(Request(scope), status, message)


def html(request: Request, template: str, status: int = 200, **context: object) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, template, context, status_code=status)
