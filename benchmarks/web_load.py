"""Bounded load test of the web application on loopback: N concurrent users (each logged in, 1 s think time
between requests) open random patient pages and the patient list of a store with 10,000 synthetic patients, for
a fixed time; then W concurrent writers (each logged in, 1 s think time) save acute GVHD assessments through the
form (MAGIC grade, organ stages and raw values: five rows and an audit row per save), each on its own patients and
days, and the store is checked afterwards: every save stored once, no duplicate record. Anchor measured in the
same run: the same users fetching a static file (the server's floor).

    python benchmarks/web_load.py [--patients 10000] [--users 50] [--writers 20] [--seconds 60] [--db URL]

Writes p50/p95/max latency, throughput and error counts to benchmarks/results/web_load.md (or --out).
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
import pandas as pd

HERE = Path(__file__).resolve().parent
PASSWORD = "correct horse battery"


def build_store(url: str, n: int) -> tuple[list[str], list[str]]:
    """The store, and its patients' ids and diagnosis dates."""
    sys.path.insert(0, str(HERE))
    from records import synthetic

    from allotrack.records.store import Store
    from allotrack.web.auth import add_user

    store = Store(url)
    store.init()
    records = synthetic(n, 30)
    store.import_records(records, user="setup", centre="C1")
    add_user(store.engine, "load", PASSWORD, "data_manager", "C1")
    patients = records["patients"]
    return list(patients["patient_id"]), list(patients["diagnosis_date"])


_LOGINS: dict[int, asyncio.Lock] = {}  # per event loop: users sign in one at a time (parallel logins of one
# account are throttled by design: at most five password checks of one user at once)


async def _signed_in(client: httpx.AsyncClient) -> str:
    lock = _LOGINS.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())
    async with lock:
        return await _sign_in(client)


async def _sign_in(client: httpx.AsyncClient) -> str:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    await client.post("/login", data={"username": "load", "password": PASSWORD, "csrf_token": token})
    page = await client.get("/patients")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


async def writer_loop(base: str, mine: list[tuple[str, str]], deadline: float, lat: list[float], errors: list[int],
                      saved: list[tuple[str, str]], seed: int) -> None:  # fmt: skip
    """Save GVHD assessments on this writer's own patients, a new day each round (days 10–59 after diagnosis, when
    every synthetic patient is followed), so that no two saves of the run share a natural key."""
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = await _signed_in(client)
        await asyncio.sleep(rng.random())
        i = 0
        while time.perf_counter() < deadline and i < 50 * len(mine):
            pid, diagnosed = mine[i % len(mine)]
            day = (pd.Timestamp(diagnosed) + pd.Timedelta(days=10 + i // len(mine))).strftime("%Y-%m-%d")
            form = {"csrf_token": token, "date": day, "skin_bsa": str(rng.randrange(0, 60)),
                    "bilirubin": f"{rng.uniform(0, 4):.1f}", "stool_ml": str(rng.randrange(0, 1500, 50))}
            t0 = time.perf_counter()
            try:
                res = await client.post(f"/patients/{pid}/gvhd", data=form)
                if res.status_code == 303:
                    saved.append((pid, day))
                else:
                    errors.append(res.status_code)
            except httpx.HTTPError:
                errors.append(-1)
            lat.append(time.perf_counter() - t0)
            i += 1
            await asyncio.sleep(1.0)


async def run_writers(base: str, ids: list[str], dates: list[str], writers: int,
                      seconds: float) -> tuple[dict[str, float], list[tuple[str, str]]]:  # fmt: skip
    lat: list[float] = []
    errors: list[int] = []
    saved: list[tuple[str, str]] = []
    pairs = list(zip(ids, dates, strict=True))
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(writer_loop(base, pairs[w::writers], deadline, lat, errors, saved, 100 + w)
                           for w in range(writers)))  # fmt: skip
    a = np.array(lat) * 1000
    return ({"requests": len(a), "rps": len(a) / seconds, "p50": float(np.percentile(a, 50)),
             "p95": float(np.percentile(a, 95)), "max": float(a.max()), "errors": len(errors)}, saved)


def check_saves(url: str, saved: list[tuple[str, str]]) -> tuple[int, int]:
    """(GVHD grade records stored by the writers, natural keys stored more than once) — after the run."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM assessments WHERE item = 'agvhd_grade' AND deleted = "
                                      ":f AND created_by = 'load'"), {"f": False}).scalar_one()  # fmt: skip
        twice = conn.execute(sa.text("SELECT count(*) FROM (SELECT patient_id, item, date, visit FROM assessments "
                                     "WHERE deleted = :f GROUP BY patient_id, item, date, visit HAVING count(*) > 1) "
                                     "AS d"), {"f": False}).scalar_one()  # fmt: skip
    engine.dispose()
    return int(stored), int(twice)


async def user_loop(base: str, ids: list[str], deadline: float, static: bool, lat: list[float], errors: list[int],
                    seed: int) -> None:  # fmt: skip
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await _signed_in(client)
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
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--db", default=None)
    parser.add_argument("--out", default=str(HERE / "results" / "web_load.md"))
    args = parser.parse_args()
    url = args.db or f"sqlite:///{Path(tempfile.mkdtemp()) / 'load.db'}"
    t0 = time.perf_counter()
    ids, dates = build_store(url, args.patients)
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
        writes, saved = asyncio.run(run_writers(base, ids, dates, args.writers, args.seconds))
    finally:
        server.terminate()
        server.wait(timeout=10)
    backend = url.split(":", 1)[0]
    stored, twice = check_saves(url, saved)
    rows = [("static file (anchor)", anchor), ("patient pages (80 %) and patient list (20 %)", pages),
            (f"GVHD assessment saves ({args.writers} writers)", writes)]
    text = (f"Run {time.strftime('%Y-%m-%d %H:%M')}: {args.patients:,} patients, {args.users} concurrent readers "
            f"then {args.writers} concurrent writers (1 s think time), {args.seconds:g} s each, {backend}, one server "
            "worker, loopback.\n\n"
            "| requests to | n | req/s | p50 ms | p95 ms | max ms | errors |\n|---|---|---|---|---|---|---|\n")
    for name, r in rows:
        text += (f"| {name} | {r['requests']:.0f} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                 f"{r['max']:.1f} | {r['errors']:.0f} |\n")
    text += (f"\nAfter the writers: {len(saved)} saves answered 303, {stored} GVHD grade records stored by them, "
             f"{twice} natural keys stored more than once.\n")
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
