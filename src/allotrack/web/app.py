"""The web application (FastAPI; server-rendered Jinja2 pages with htmx, no front-end build; a JSON API with an
OpenAPI document). ``create_app()`` wires the store, sessions, security and the routes.

Logs name the route template (``/patients/{patient_id}``), status and duration, never a path with an identifier
in it; unexpected errors show and log a reference id, not a trace.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from allotrack.records.store import Store
from allotrack.records.validate import ValidationError
from allotrack.web.auth import User, authenticate, user_by_id, user_for_token
from allotrack.web.data import Forbidden, NotFound
from allotrack.web.security import LoginThrottle, csrf_token, reference_id

log = logging.getLogger("allotrack.web")
HERE = Path(str(files("allotrack.web")))


class NotAuthenticated(Exception):
    pass


class CsrfRejected(Exception):
    pass


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def current_user(request: Request) -> User:
    """The signed-in user (session cookie) or the bearer of an API token."""
    engine = request.app.state.store.engine
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        user = user_for_token(engine, auth[7:].strip())
        request.state.via_token = user is not None
    else:
        uid = request.session.get("user_id")
        user = user_by_id(engine, int(uid)) if uid is not None else None
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
    """Check a password login (pages and API tokens alike) under the login throttle."""
    throttle: LoginThrottle = request.app.state.throttle
    keys = (f"user:{username.lower()}", f"addr:{request.client.host if request.client else '?'}")
    if throttle.blocked(*keys):
        raise LoginRefused(throttled=True)
    user = authenticate(request.app.state.store.engine, username, password)
    if user is None:
        throttle.failed(*keys)
        raise LoginRefused(throttled=False)
    throttle.succeeded(*keys)
    return user


def create_app(url: str | None = None, secret_key: str | None = None, secure_cookies: bool | None = None) -> FastAPI:
    """The application over the store at ``url`` (SQLite default or PostgreSQL). ``secret_key`` signs session
    cookies (``ALLOTRACK_SECRET_KEY``, else a random key per process); ``secure_cookies`` marks them Secure (set it
    behind TLS; ``ALLOTRACK_SECURE_COOKIES=1``)."""
    store = Store(url)
    store.init()
    app = FastAPI(title="allotrack", version="0.1.0", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  redoc_url=None)  # fmt: skip
    app.state.store = store
    app.state.throttle = LoginThrottle()
    app.state.uploads = Path(tempfile.mkdtemp(prefix="allotrack-uploads-"))
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
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

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

    @app.exception_handler(ValidationError)
    async def invalid(request: Request, exc: ValidationError) -> Response:
        problems = [str(p) for p in exc.problems]
        if _is_api(request):
            return JSONResponse({"detail": "validation failed", "problems": problems}, status_code=422)
        return _error(request, 422, "; ".join(problems))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        ref = reference_id()
        route = getattr(request.scope.get("route"), "path", "(unmatched)")
        log.error("error %s on %s %s: %s", ref, request.method, route, type(exc).__name__)  # no message, no data
        return _error(request, 500, f"something went wrong (reference {ref})")

    from allotrack.web.routes.api import router as api_router
    from allotrack.web.routes.pages import router as pages_router

    app.include_router(pages_router)
    app.include_router(api_router)
    return app


def _error(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, "error.html", {"status": status, "message": message, "user": None},
                                      status_code=status)  # fmt: skip


def html(request: Request, template: str, status: int = 200, **context: object) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, template, context, status_code=status)
