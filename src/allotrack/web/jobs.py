"""Background jobs of the web application (the check of an uploaded import), with their progress readable by every
worker process of the server.

A job runs in a small thread pool of the process that accepted it (``workers`` threads; at most ``per_user``
unfinished jobs of one user across all processes, at most ``max_waiting`` per process), so a request never
parses a large file itself and other users are not kept waiting. Its state lives in the job's folder in the
uploads folder (shared by the workers), as ``status.json`` written atomically (a temporary file, then
``os.replace``): any worker can show the progress, and whoever commits can check the job has finished.

A job's folder is named by an unguessable token; the status holds the application (its store), user id and
centre the job belongs to, and :meth:`JobRunner.status` answers ``None`` (the caller's 404) for another user's or
centre's job exactly as for an unknown token. States: ``queued``, ``reading`` (file k of n; rows read of the
estimated total), ``validating``, ``done`` (with the job's result) and ``failed`` (with the messages). A job
whose process is gone (a restart) reads as failed. Removing the job's folder (discard, stale clean-up) stops it
at its next progress report, and it writes nothing more.

No status file, log line or message holds more than the job's own result: logs name the job's failure type only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from allotrack.errors import AllotrackError

log = logging.getLogger("allotrack.web")

STATUS = "status.json"
FINAL = ("done", "failed")
TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16)
ROWS_EVERY = 0.5  # seconds between two progress writes within one stage


class JobGone(Exception):
    """The job's folder was removed (discarded or stale): the job stops."""


class Busy(AllotrackError):
    """Too many unfinished jobs: of this user, or in this process."""


class Failed(AllotrackError):
    """A job's refusal with its messages (each shown as one problem)."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__(f"{len(messages)} problem(s)")


def _process() -> str:
    """This process, as ``pid:start time`` (a pid alone may be reused after a restart)."""
    return f"{os.getpid()}:{_started(os.getpid())}"


def _started(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def _alive(process: str) -> bool:
    pid_text, _, started = process.partition(":")
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # another user's process: alive
        pass
    return started == "?" or _started(pid) in (started, "?")


class Progress:
    """What a running job tells its status file (files are written at each stage and at most every
    ``ROWS_EVERY`` seconds within one)."""

    def __init__(self, runner: JobRunner, token: str) -> None:
        self.runner, self.token = runner, token
        self.index = self.count = 0
        self.last = 0.0

    def file(self, index: int, count: int, name: str) -> None:
        self.index, self.count = index, count
        self._write("reading", file=index, files=count, name=name, rows=0, total=None)

    def rows(self, read: int, total: int | None) -> None:
        if time.monotonic() - self.last >= ROWS_EVERY:
            self._write("reading", rows=read, total=total)

    def validating(self) -> None:
        self._write("validating")

    def _write(self, state: str, **fields: Any) -> None:
        self.last = time.monotonic()
        self.runner.update(self.token, state, **fields)


Work = Callable[[Progress], dict[str, Any]]


class JobRunner:
    """The pool and the status files of one application (see the module docstring). ``step``, for tests, is
    called in the job's thread with each state written (and once before the work starts, as ``queued``); it may
    block, to hold the job there."""

    def __init__(self, folder: Path, app: str = "", workers: int = 2, per_user: int = 2, max_waiting: int = 16,
                 settle: float = 1.0, step: Callable[[str, dict[str, Any]], None] | None = None) -> None:  # fmt: skip
        self.folder, self.app, self.per_user, self.max_waiting, self.step = folder, app, per_user, max_waiting, step
        self.settle = settle  # seconds a page waits for a quick job to finish before it shows the progress
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="allotrack-job")
        self.waiting = 0  # this process's unfinished jobs
        self.lock = threading.Lock()

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(16)

    def path(self, token: str) -> Path:
        if not TOKEN.fullmatch(token):
            raise JobGone()
        return self.folder / token

    def reserve(self, user_id: int) -> None:
        """Refuse a new job when the user already has ``per_user`` unfinished jobs (in any process) or this
        process has ``max_waiting``."""
        if self.unfinished(user_id) >= self.per_user:
            raise Busy(f"you already have {self.per_user} imports being checked: wait until they have finished")
        if self.waiting >= self.max_waiting:
            raise Busy("the server is checking many imports at the moment: try again in a minute")

    def submit(self, token: str, user_id: int, centre: str | None, work: Work) -> None:
        """Start ``work`` (its result, a JSON-ready dict, is kept with the ``done`` state) for the user's job in
        ``token``'s folder (made by the caller)."""
        self._write(token, {"state": "queued", "app": self.app, "user_id": user_id, "centre": centre,
                            "process": _process(), "created": time.time()})  # fmt: skip
        with self.lock:
            self.waiting += 1
        self.pool.submit(self._run, token, work)

    def _run(self, token: str, work: Work) -> None:
        try:
            if self.step is not None:
                self.step("queued", self.read(token) or {})
            result = work(Progress(self, token))
            self.update(token, "done", result=result)
        except JobGone:
            pass
        except Failed as err:
            self._failed(token, err.messages)
        except AllotrackError as err:
            self._failed(token, [str(err)])
        except Exception as err:  # anything else: a message with a reference, only the type in the log
            from allotrack.web.security import reference_id

            ref = reference_id()
            log.error("background job failed: error %s: %s", ref, type(err).__name__)
            self._failed(token, [f"the check failed unexpectedly (reference {ref}): nothing was imported"])
        finally:
            with self.lock:
                self.waiting -= 1

    def _failed(self, token: str, messages: list[str]) -> None:
        try:
            self.update(token, "failed", problems=messages)
        except JobGone:
            pass

    def update(self, token: str, state: str, **fields: Any) -> None:
        """Write the job's new state (and fields) over its status; :class:`JobGone` when its folder is gone."""
        status = self.read(token)
        if status is None:
            raise JobGone()
        status.update(fields, state=state, updated=time.time())
        self._write(token, status)
        if self.step is not None:
            self.step(state, status)

    def _write(self, token: str, status: dict[str, Any]) -> None:
        folder = self.path(token)
        tmp = folder / f".{STATUS}.{secrets.token_hex(4)}"
        try:
            tmp.write_text(json.dumps(status, default=str), encoding="utf-8")
            os.replace(tmp, folder / STATUS)
        except FileNotFoundError:  # the folder was removed meanwhile
            tmp.unlink(missing_ok=True)
            raise JobGone() from None

    def read(self, token: str) -> dict[str, Any] | None:
        """The job's status as written, or None (unknown token, removed folder)."""
        try:
            status: dict[str, Any] = json.loads((self.path(token) / STATUS).read_text(encoding="utf-8"))
        except (JobGone, OSError, ValueError):
            return None
        if status.get("state") not in FINAL and not _alive(str(status.get("process", ""))):
            status.update(state="failed", problems=["the check was interrupted (the server restarted): upload the "
                                                    "files again"])  # fmt: skip
        return status

    def status(self, token: str, user_id: int, centre: str | None) -> dict[str, Any] | None:
        """The job's status if it is this user's (and, for a user of one centre, that centre's); else None, the
        same answer as for an unknown token."""
        status = self.read(token)
        if status is None or status.get("app") != self.app or status.get("user_id") != user_id:
            return None
        if centre is not None and status.get("centre") != centre:
            return None
        return status

    def unfinished(self, user_id: int) -> int:
        """The user's jobs not done or failed yet, in every process."""
        count = 0
        for entry in self.folder.iterdir() if self.folder.is_dir() else ():
            if TOKEN.fullmatch(entry.name) and (status := self.read(entry.name)) is not None:
                count += (status.get("app"), status.get("user_id")) == (self.app, user_id) and status.get(
                    "state") not in FINAL  # fmt: skip
        return count

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def job_runner(state: Any) -> JobRunner:
    """The application's runner (``app.state.import_jobs``), made at first use over its uploads folder."""
    runner: JobRunner | None = getattr(state, "import_jobs", None)
    if runner is None:
        with _MAKING:
            runner = getattr(state, "import_jobs", None)
            if runner is None:
                runner = state.import_jobs = JobRunner(state.uploads, app_key(state.store.engine.url))
    return runner


_MAKING = threading.Lock()


def app_key(url: Any) -> str:
    """Which application a job belongs to (its store's URL, hashed): two servers sharing one uploads folder have
    user ids in common, not jobs."""
    import hashlib

    shown = url.render_as_string(hide_password=True) if hasattr(url, "render_as_string") else str(url)
    return hashlib.sha256(shown.encode()).hexdigest()[:16]
