"""Bounded load test of the web application on loopback: N concurrent users (each logged in, 1 s think time
between requests) open random patient pages and the patient list of a store with 10,000 synthetic patients, for
a fixed time. Anchor measured in the same run: the same users fetching a static file (the server's floor).

    python benchmarks/web_load.py [--patients 10000] [--users 50] [--seconds 60] [--db URL]

Writes p50/p95/max latency, throughput and error counts to benchmarks/results/web_load.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
PASSWORD = "correct horse battery"


def build_store(url: str, n: int) -> list[str]:
    sys.path.insert(0, str(HERE))
    from records import synthetic

    from allotrack.records.store import Store
    from allotrack.web.auth import add_user

    store = Store(url)
    store.init()
    records = synthetic(n, 30)
    store.import_records(records, user="setup", centre="C1")
    add_user(store.engine, "load", PASSWORD, "data_manager", "C1")
    return list(records["patients"]["patient_id"])


async def user_loop(base: str, ids: list[str], deadline: float, static: bool, lat: list[float], errors: list[int],
                    seed: int) -> None:  # fmt: skip
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        await client.post("/login", data={"username": "load", "password": PASSWORD, "csrf_token": token})
        await asyncio.sleep(rng.random())  # spread the users' first requests over a second
        while time.perf_counter() < deadline:
            path = "/static/htmx.min.js" if static else (
                f"/patients/{rng.choice(ids)}" if rng.random() < 0.8 else f"/patients?q=P{rng.randrange(100):02d}")
            t0 = time.perf_counter()
            try:
                res = await client.get(path)
                if res.status_code != 200:
                    errors.append(res.status_code)
            except httpx.HTTPError:
                errors.append(-1)
            lat.append(time.perf_counter() - t0)
            await asyncio.sleep(1.0)


async def run_phase(base: str, ids: list[str], users: int, seconds: float, static: bool) -> dict[str, float]:
    lat: list[float] = []
    errors: list[int] = []
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(user_loop(base, ids, deadline, static, lat, errors, i) for i in range(users)))
    a = np.array(lat) * 1000
    return {"requests": len(a), "rps": len(a) / seconds, "p50": float(np.percentile(a, 50)),
            "p95": float(np.percentile(a, 95)), "max": float(a.max()), "errors": len(errors)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--db", default=None)
    parser.add_argument("--out", default=str(HERE / "results" / "web_load.md"))
    args = parser.parse_args()
    url = args.db or f"sqlite:///{Path(tempfile.mkdtemp()) / 'load.db'}"
    t0 = time.perf_counter()
    ids = build_store(url, args.patients)
    print(f"store built in {time.perf_counter() - t0:.1f} s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "allotrack.cli", "serve", "--db", url, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}/login", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        anchor = asyncio.run(run_phase(base, ids, args.users, min(args.seconds, 20), static=True))
        pages = asyncio.run(run_phase(base, ids, args.users, args.seconds, static=False))
    finally:
        server.terminate()
        server.wait(timeout=10)
    backend = url.split(":", 1)[0]
    rows = [("static file (anchor)", anchor), ("patient pages (80 %) and patient list (20 %)", pages)]
    text = (f"Run {time.strftime('%Y-%m-%d %H:%M')}: {args.patients:,} patients, {args.users} concurrent users "
            f"(1 s think time), {args.seconds:g} s, {backend}, one server worker, loopback.\n\n"
            "| requests to | n | req/s | p50 ms | p95 ms | max ms | errors |\n|---|---|---|---|---|---|---|\n")
    for name, r in rows:
        text += (f"| {name} | {r['requests']:.0f} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                 f"{r['max']:.1f} | {r['errors']:.0f} |\n")
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
