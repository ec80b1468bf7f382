"""What the browser tests share: Debian's headless Chromium (no browser download) and an application served by
uvicorn on a free loopback port in a background thread. CI installs chromium and sets ALLOTRACK_REQUIRE_CHROMIUM=1,
so there a missing browser fails the test instead of skipping it."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


def chromium() -> str:
    """The path of Debian's chromium; skips (or fails, under ALLOTRACK_REQUIRE_CHROMIUM) when it is missing."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        if os.environ.get("ALLOTRACK_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is required here (ALLOTRACK_REQUIRE_CHROMIUM is set) but not installed")
        pytest.skip("headless chromium not installed (apt-get install chromium)")
    return path


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) until the block ends; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
