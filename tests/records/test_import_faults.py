"""Imports under faults: a real SIGKILL during the write phase of a large import, and two processes importing the
same new patient at the same moment — on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parents[1] / "endpoints"))
sys.path.insert(0, str(Path(__file__).parent))
from test_derive import history
from test_store_import import PG_URL, _drop_everything, _fresh_postgres_store

from allotrack.records import Records, ValidationError
from allotrack.records.store import ImportConflict, Store

BIG = textwrap.dedent("""
    import numpy as np, pandas as pd
    from allotrack.records import Records

    def big_records(n_patients=10_000, days=50):
        ids = np.array([f"B{i:06d}" for i in range(n_patients)])
        diag = pd.Timestamp("2015-01-01") + pd.to_timedelta(np.arange(n_patients) % 1000, unit="D")
        pid = np.repeat(np.arange(n_patients), 2 * days)
        day = np.tile(np.repeat(np.arange(days), 2), n_patients)
        dates = (diag[pid] + pd.to_timedelta(day, unit="D")).strftime("%Y-%m-%d")
        rng = np.random.default_rng(7)
        return Records.from_frames(
            patients=pd.DataFrame({"patient_id": ids, "sex": "F", "diagnosis": "AML",
                                   "diagnosis_date": diag.strftime("%Y-%m-%d")}),
            observations=pd.DataFrame({"patient_id": ids[pid], "date": dates,
                                       "item": np.tile(["anc", "plt"], n_patients * days),
                                       "value": rng.gamma(2, 1, pid.size).round(2), "unit": "10^9/L"}))
""")


def _big_records() -> Records:
    namespace: dict = {}
    exec(BIG, namespace)
    return namespace["big_records"]()


def schema_objects(engine: sa.Engine) -> list[tuple]:
    """Every table, index and constraint definition of the store, as the database describes it."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                "ORDER BY type, name"))]  # fmt: skip
        indexes = conn.execute(sa.text("SELECT tablename, indexname, indexdef FROM pg_indexes "
                                       "WHERE schemaname = 'public' ORDER BY 1, 2")).all()  # fmt: skip
        columns = conn.execute(sa.text("SELECT table_name, column_name, data_type, is_nullable FROM "
                                       "information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2")).all()
        constraints = conn.execute(sa.text("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                                           "connamespace = 'public'::regnamespace ORDER BY 1")).all()  # fmt: skip
        return [tuple(r) for r in (*indexes, *columns, *constraints)]


def _row_counts(store: Store) -> dict[str, int]:
    return {name: len(frame) for name, frame in store.load().tables.items()}


KILLER = textwrap.dedent("""
    import sys
    from allotrack.records import importing
    from allotrack.records.store import Store

    real = importing.write_tables

    def announced(*args, **kwargs):
        print("WRITING", flush=True)  # the rows are validated; the write phase (index drops first) begins
        return real(*args, **kwargs)

    importing.write_tables = announced
    Store(sys.argv[1]).import_records(big_records(), user="killed")
    print("COMMITTED", flush=True)
""")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'faults.db'}"
        return
    s = _fresh_postgres_store()
    s.engine.dispose()
    yield PG_URL
    _drop_everything(Store(PG_URL))


@pytest.mark.parametrize("delay", [0.3, 2.0])
def test_sigkill_during_a_large_import_leaves_the_store_as_it_was(store_url, delay, tmp_path):
    store = Store(store_url)
    store.init()
    fresh_schema = schema_objects(store.engine)
    store.import_records(history(), user="before")
    counts = _row_counts(store)
    script = tmp_path / "killed_import.py"
    script.write_text(BIG + KILLER)
    proc = subprocess.Popen([sys.executable, str(script), store_url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "WRITING"  # validation of 10⁶ lab rows is done; writing has begun
    time.sleep(delay)
    assert proc.poll() is None, "the import finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store.engine.dispose()
    after = Store(store_url)
    assert schema_objects(after.engine) == fresh_schema  # no index lost, nothing half-built
    assert _row_counts(after) == counts
    report = after.import_records(_big_records(), user="again")
    assert report.added == {"patients": 10_000, "observations": 1_000_000}
    assert schema_objects(after.engine) == fresh_schema
    after.engine.dispose()


def _one_patient(pid: str, sex: str) -> Records:
    return Records.from_frames(
        patients=pd.DataFrame({"patient_id": [pid], "sex": [sex], "diagnosis": ["AML"],
                               "diagnosis_date": ["2020-01-01"]}),
        follow_up=pd.DataFrame({"patient_id": [pid], "last_contact_date": ["2020-06-01"]}),
    )  # fmt: skip


def _racer(url: str, sex: str, rounds: int, same_from: int, barrier, results) -> None:
    store = Store(url)
    for i in range(rounds):
        records = _one_patient(f"race{i:02d}", sex if i < same_from else "F")
        barrier.wait()
        try:
            report = store.import_records(records, user=sex)
            results.put((i, "added" if report.added else "present"))
        except (ValidationError, ImportConflict) as err:
            results.put((i, f"refused: {err}"))
        except Exception as err:  # anything else is a failure of the test, reported with its type
            results.put((i, f"CRASH {type(err).__name__}: {err}"))
    store.engine.dispose()


def test_two_concurrent_imports_of_one_new_patient_store_it_once(store_url):
    store = Store(store_url)
    store.init()
    store.engine.dispose()
    rounds, same_from = 25, 20  # 20 rounds with different content, then 5 with the same file twice
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_racer, args=(store_url, sex, rounds, same_from, barrier, results))
               for sex in ("F", "M")]  # fmt: skip
    for w in workers:
        w.start()
    outcomes: dict[int, list[str]] = {}
    for _ in range(2 * rounds):
        i, outcome = results.get(timeout=300)
        outcomes.setdefault(i, []).append(outcome)
    for w in workers:
        w.join(timeout=60)
    for i, pair in sorted(outcomes.items()):
        assert not any(o.startswith("CRASH") for o in pair), pair
        assert sorted(o.split(":")[0] for o in pair) == (["added", "refused"] if i < same_from else ["added", "present"])
        if i < same_from:
            refusal = next(o for o in pair if o.startswith("refused"))
            assert "a stored record has this patient_id with other values" in refusal or "at the same moment" in refusal
            assert "Traceback" not in refusal
    stored = Store(store_url)
    with stored.engine.connect() as conn:
        per_patient = conn.execute(sa.text("SELECT patient_id, COUNT(*) FROM patients GROUP BY patient_id")).all()
    assert sorted(per_patient) == [(f"race{i:02d}", 1) for i in range(rounds)]
    stored.engine.dispose()
