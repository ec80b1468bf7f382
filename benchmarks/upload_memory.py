"""Peak memory of the web server checking a large CSV upload, and how long another user waits meanwhile.

A real server (uvicorn, one worker, on loopback) over a fresh SQLite store (or ``--db``) with the demo study; a
data manager uploads ``patients.csv`` with ``--rows`` synthetic patients through the import page and waits for
the check's result (following the job page when the server answers with one). The server's peak resident set
(``VmHWM`` in ``/proc/<pid>/status``) is read after a small warm-up upload and after the large one (the store
is seeded by another process, so the server's peak before the upload is its own); while the large file is
checked, a second client fetches the login page every 0.1 s and the slowest answer is kept. Results:
``benchmarks/results/upload_memory.md``.

    python benchmarks/upload_memory.py [--rows 100000] [--db URL]
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

PASSWORD = "correct horse battery"
SEED = """
import sys
from allotrack.records.store import Store
from allotrack.study.demo import demo_records
from allotrack.web.auth import add_user
store = Store(sys.argv[1])
store.init()
store.import_records(demo_records(), user="setup", centre="C1")
add_user(store.engine, "dm1", "correct horse battery", "data_manager", "C1")
"""
SERVER = """
import sys, uvicorn
from allotrack.web.app import create_app
app = create_app(sys.argv[1], secret_key="bench", uploads_dir=sys.argv[3])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def _csv(rows: int) -> bytes:
    lines = ["patient_id,centre,sex,diagnosis,diagnosis_date,age_at_diagnosis"]
    lines += [f"BIG{i:07d},site,{'FM'[i % 2]},AML,2021-{1 + i % 12:02d}-{1 + i % 28:02d},{20 + i % 60}"
              for i in range(rows)]  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


def _vm(pid: int, key: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1)) * 1024  # type: ignore[union-attr]


def _signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=600)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"username": "dm1", "password": PASSWORD, "csrf_token": token})
    return client


def _check(client: httpx.Client, name: str, data: bytes) -> tuple[int, float, float]:
    """Upload and wait for the check's result: (status, seconds until the POST answered, seconds until done)."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/import").text).group(1)  # type: ignore[union-attr]
    start = time.perf_counter()
    res = client.post("/import", data={"csrf_token": token}, files=[("files", (name, data, "text/csv"))])
    answered = time.perf_counter() - start
    while res.status_code == 303 or (res.status_code == 202 and "/import/jobs/" in str(res.url)):
        if res.status_code == 202:
            time.sleep(0.2)
        res = client.get(res.headers["location"] if res.status_code == 303 else str(res.url))
    return res.status_code, answered, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", default=None, help="store URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        url = args.db or f"sqlite:///{tmp}/bench.db"
        subprocess.run([sys.executable, "-c", SEED, url], check=True)  # seeded apart: the server starts small
        server = subprocess.Popen([sys.executable, "-c", SERVER, url, str(port), f"{tmp}/uploads"])
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    httpx.get(f"{base}/login", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            client = _signed_in(base)
            _check(client, "patients.csv", _csv(10))  # warm-up: every module the import needs is loaded
            warm = _vm(server.pid, "VmHWM")
            data = _csv(args.rows)
            waits: list[float] = []
            done = threading.Event()

            def other_user() -> None:
                with httpx.Client(base_url=base, timeout=600) as other:
                    while not done.is_set():
                        t = time.perf_counter()
                        other.get("/login")
                        waits.append(time.perf_counter() - t)
                        time.sleep(0.1)

            watcher = threading.Thread(target=other_user)
            watcher.start()
            status, answered, total = _check(client, "patients.csv", data)
            done.set()
            watcher.join()
            peak = _vm(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait()
    mb = 2**20
    print(f"rows {args.rows:,}, file {len(data) / mb:.1f} MB, result HTTP {status}")
    print(f"POST answered after {answered:.2f} s, check done after {total:.2f} s")
    print(f"server peak RSS: {warm / mb:.0f} MB after warm-up, {peak / mb:.0f} MB after the upload "
          f"(+{(peak - warm) / mb:.0f} MB)")  # fmt: skip
    print(f"another user's GET /login meanwhile: slowest {max(waits):.2f} s over {len(waits)} requests")


if __name__ == "__main__":
    main()
