"""Make ``data/store_0006.json``: every row of a store written by allotrack at schema revision 0006 (the last one
with the separate labs, chimerism, gvhd, crs and responses tables), for the migration tests of 0007.

Run it with the allotrack of commit 4947ad3 (the main branch before 0007), e.g.::

    git worktree add /tmp/main0 4947ad3
    PYTHONPATH=/tmp/main0/src python tests/reference/make_store_0006.py

It imports the first six demo patients, a hand-made patient using every column of the five old tables, and a
correction (so that a soft-deleted row and its audit rows exist), then dumps each table as stored: row ids,
hashes, centre, creator, time and the soft-delete flag included.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from allotrack.records.schema import Records
from allotrack.records.store import Store
from allotrack.study.demo import demo_records

OUT = Path(__file__).parent / "data" / "store_0006.json"
TABLES = ("patients", "donors", "courses", "infusions", "labs", "chimerism", "gvhd", "crs", "responses",
          "adverse_events", "relapses", "deaths", "follow_up", "audit_log")  # fmt: skip


def _records() -> Records:
    demo = demo_records()
    keep = set(demo["patients"]["patient_id"].iloc[:6])
    frames = {name: frame[frame["patient_id"].isin(keep)] for name, frame in demo.tables.items()}
    pid = "X-1"
    extra = {
        "patients": [{"patient_id": pid, "sex": "F", "diagnosis": "MM", "diagnosis_date": "2020-01-10",
                      "centre": "B"}],
        "labs": [
            {"patient_id": pid, "date": "2020-03-01", "analyte": "BILI", "value": 2.5, "unit": "mg/dL"},
            {"patient_id": pid, "date": "2020-03-01", "analyte": "PLT", "value": 15.0, "unit": "10^9/L",
             "transfused": True},
            {"patient_id": pid, "date": "2020-03-02", "analyte": "HB", "value": 8.1, "unit": "g/dL",
             "transfused": False},
            {"patient_id": pid, "date": "2020-03-02", "analyte": "WBC", "value": 0.4, "unit": "10^9/L"},
        ],
        "chimerism": [
            {"patient_id": pid, "date": "2020-03-05", "donor_percent": 0.0, "assay": "qPCR",
             "lineage": "CD3+", "lod_percent": 0.1, "below_lod": True},
            {"patient_id": pid, "date": "2020-03-05", "donor_percent": 12.5, "assay": "STR",
             "lineage": "whole blood", "lod_percent": 5.0, "below_lod": False},
        ],
        "gvhd": [
            {"patient_id": pid, "date": "2020-03-10", "kind": "acute", "grade": 3},
            {"patient_id": pid, "date": "2020-09-10", "kind": "chronic", "severity": "moderate",
             "systemic_therapy": True},
            {"patient_id": pid, "date": "2020-10-10", "kind": "chronic", "severity": "mild",
             "systemic_therapy": False},
        ],
        "crs": [{"patient_id": pid, "date": "2020-03-03", "grade": 2}],
        "responses": [
            {"patient_id": pid, "date": "2020-04-01", "category": "VGPR"},
            {"patient_id": pid, "date": "2020-06-01", "category": "CR", "mrd_negative": True},
        ],
        "follow_up": [{"patient_id": pid, "last_contact_date": "2021-01-01"}],
    }
    for name, rows in extra.items():
        frames[name] = pd.concat([frames.get(name, pd.DataFrame()), pd.DataFrame(rows)], ignore_index=True)
    return Records.from_frames(**frames)


def _plain(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = Store(f"sqlite:///{folder}/old.db")
        store.init()
        assert store.revision() == "0006", store.revision()
        store.import_records(_records(), user="maker", centre="A")
        correction = Records.from_frames(crs=[{"patient_id": "X-1", "date": "2020-03-03", "grade": 3}])
        store.import_records(correction, user="maker", update=True, reason="grade re-read from the chart")
        dump = {}
        with store.engine.connect() as conn:
            for name in TABLES:
                result = conn.execute(sa.text(f"SELECT * FROM {name}"))
                dump[name] = {"columns": list(result.keys()),
                              "rows": [[_plain(v) for v in row] for row in result]}  # fmt: skip
    OUT.write_text(json.dumps(dump, indent=None, separators=(",", ":")) + "\n")
    print(OUT, {k: len(v["rows"]) for k, v in dump.items()})


if __name__ == "__main__":
    main()
