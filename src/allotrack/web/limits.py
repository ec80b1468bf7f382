"""Limits and the outermost guard of the web application.

Limits (``create_app`` arguments; else environment variables; else the defaults):

- ``max_body_bytes`` (``ALLOTRACK_MAX_BODY_BYTES``, 20 MB): a request body over it is refused with 413 before it is
  read, for anonymous requests too: at once when ``Content-Length`` says so, else (a chunked body) as soon as the
  bytes received pass the limit.
- ``max_xlsx_bytes`` (``ALLOTRACK_MAX_XLSX_BYTES``, 50 MB): an uploaded workbook whose members (the sheets' XML)
  would unpack to more is refused with 422 before it is parsed (the zip directory gives the sizes).
- ``max_csv_rows`` (``ALLOTRACK_MAX_CSV_ROWS``, 1,000,000): an uploaded CSV/TSV file with more lines is refused
  with 422 before it is parsed.
- ``upload_max_age`` (``ALLOTRACK_UPLOAD_MAX_AGE``, 3600 s): checked uploads that were never committed, and report
  folders, older than this are removed from the uploads folder at startup and whenever a new upload arrives.
- ``uploads_dir`` (``ALLOTRACK_UPLOADS_DIR``; default ``allotrack-uploads-<uid>`` in the temporary folder, mode
  0700, shared by the workers of one server so a checked import can be committed by any of them).

The guard (:class:`Guard`, a plain ASGI middleware outside everything else but Starlette's own error middleware)
applies the body limit, adds the security headers to every response (Content-Security-Policy, nosniff,
Referrer-Policy, frame-ancestors 'none'; Strict-Transport-Security over HTTPS or when ``https_only`` is on) and
is the last resort for errors: an unexpected exception becomes a 500 page with a reference id, and only the
exception's type and that id are logged (no message: a database error's message holds the SQL parameters). No
exception goes on to the server, so uvicorn never logs a traceback with values in it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from allotrack.web.security import reference_id

log = logging.getLogger("allotrack.web")
MB = 2**20

# img-src blob: for the charts' "Download plot as a PNG" (plotly.js draws the figure into a blob: image first); the
# charting library needs nothing else: its script and style sheet are ours (allotrack.web.routes.assets)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")  # fmt: skip
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 20 * MB
    max_xlsx_bytes: int = 50 * MB
    max_csv_rows: int = 1_000_000
    upload_max_age: float = 3600.0

    @classmethod
    def configured(cls, **given: Any) -> Limits:
        """The limits given (not None), else from ``ALLOTRACK_<NAME>``, else the defaults."""
        values: dict[str, Any] = {}
        for name, default in ((f, getattr(cls, f)) for f in cls.__dataclass_fields__):
            value = given.get(name)
            if value is None and os.environ.get(f"ALLOTRACK_{name.upper()}"):
                value = type(default)(os.environ[f"ALLOTRACK_{name.upper()}"])
            values[name] = default if value is None else value
        return cls(**values)


def too_large(limit: int) -> str:
    return f"the request is too large: at most {limit / MB:g} MB"


def uploads_folder(configured: str | Path | None) -> Path:
    """The uploads folder: given, ``ALLOTRACK_UPLOADS_DIR``, or ``allotrack-uploads-<uid>`` in the temporary folder
    (refused, for a private fresh one, if someone else owns it or may read it)."""
    chosen = configured or os.environ.get("ALLOTRACK_UPLOADS_DIR")
    folder = Path(chosen) if chosen else Path(tempfile.gettempdir()) / f"allotrack-uploads-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=bool(chosen), exist_ok=True)
    info = folder.lstat()
    if not chosen and (folder.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077):
        log.warning("the shared uploads folder is not private: using a fresh one for this process")
        return Path(tempfile.mkdtemp(prefix="allotrack-uploads-"))
    return folder


def remove_stale_uploads(folder: Path, max_age: float) -> None:
    """Remove what was left in the uploads folder longer than ``max_age`` seconds ago."""
    cutoff = time.time() - max_age
    for entry in folder.iterdir() if folder.is_dir() else ():
        try:
            if entry.lstat().st_mtime < cutoff:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        except OSError:  # removed meanwhile by another worker
            continue


ErrorPage = Callable[[Scope, int, str], Response]


def _page(error_page: ErrorPage, scope: Scope, status: int, message: str) -> Response:
    try:
        return error_page(scope, status, message)
    except Exception:  # the error page itself failed: plain text, still without data
        return PlainTextResponse(message, status_code=status)


class Guard:
    """Body limit, security headers and the last-resort error page (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, https_only: bool, error_page: ErrorPage) -> None:
        self.app, self.max_body_bytes, self.https_only, self.error_page = app, max_body_bytes, https_only, error_page

    def _headers(self, scope: Scope, message: MutableMapping[str, Any]) -> None:
        headers = MutableHeaders(scope=message)
        report = str(scope.get("path", "")).startswith("/report/")
        headers["Content-Security-Policy"] = REPORT_CSP if report else CSP
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "same-origin"
        if self.https_only or scope.get("scheme") == "https":
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = exceeded = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if exceeded and not started:  # the app's answer to a body cut short: replaced by the 413 below
                return
            if message["type"] == "http.response.start":
                started = True
                self._headers(scope, message)
            await send(message)

        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            status = 413 if length.isdigit() else 400
            message = too_large(self.max_body_bytes) if status == 413 else "bad Content-Length"
            await _page(self.error_page, scope, status, message)(scope, receive, send_secured)
            return
        received = 0

        async def limited() -> Message:  # past the limit the app is told the client went away (an exception
            nonlocal received, exceeded  # raised here would reach it wrapped, e.g. as a 400 "error parsing")
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, limited, send_secured)
        except Exception as exc:  # the last resort: nothing goes on to the server's traceback logging
            if not exceeded:
                ref = reference_id()
                route = getattr(scope.get("route"), "path", "(unmatched)")
                log.error("error %s on %s %s: %s", ref, scope.get("method"), route, type(exc).__name__)  # no data
                if not started:
                    page = _page(self.error_page, scope, 500, f"something went wrong (reference {ref})")
                    await page(scope, receive, send_secured)
        if exceeded and not started:
            exceeded = False  # let the 413 through
            await _page(self.error_page, scope, 413, too_large(self.max_body_bytes))(scope, receive, send_secured)
