"""Time record import into the embedded SQLite store and endpoint derivation on a synthetic registry.

    python benchmarks/records.py [--patients 100000] [--observations-per-patient 100]

Synthetic cohort: one diagnosis per patient, 1–4 courses, one infusion, a response (70 % CR, an ELN response
assessment), relapses, deaths and follow-up, plus daily ANC/platelet values (observations of the items anc and
plt, in the long observations table). Reports wall-clock seconds for validation + import (one
transaction), for adding 100 new patients to the full store (validated against the records they touch only), and
for deriving OS, LFS, CIR, NRM, GRFS and EFS. Results go to benchmarks/results/records.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from allotrack.endpoints import derive_endpoints
from allotrack.records import Records
from allotrack.records.store import Store

HERE = Path(__file__).resolve().parent


def synthetic(n: int, labs_per_patient: int, seed: int = 1, first: int = 0) -> Records:
    """``n`` patients numbered from ``first``, each with ``labs_per_patient`` ANC / platelet observations (one of
    each per day: an observation's natural key is patient, item, day, visit, specimen and method)."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"P{i:07d}" for i in range(first, first + n)])
    diag = pd.Timestamp("2010-01-01") + pd.to_timedelta(rng.integers(0, 3000, n), unit="D")
    fu_days = rng.integers(60, 3000, n)
    death = rng.random(n) < 0.5
    cr_day = rng.integers(20, 50, n)
    has_cr = (rng.random(n) < 0.7) & (cr_day < fu_days)
    rel_day = cr_day + rng.integers(10, 2000, n)
    has_rel = has_cr & (rng.random(n) < 0.4) & (rel_day < fu_days)
    n_courses = rng.integers(1, 5, n)
    course_pid = np.repeat(np.arange(n), n_courses)
    course_no = np.concatenate([np.arange(1, k + 1) for k in n_courses])
    course_day = np.minimum((course_no - 1) * 90 + 1, fu_days[course_pid] - 1)
    lab_pid = np.repeat(np.arange(n), labs_per_patient)
    lab_day = np.minimum(np.tile(np.arange(labs_per_patient) // 2, n), fu_days[lab_pid] - 1)
    d = lambda days, who: (diag[who] + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d")  # noqa: E731
    return Records.from_frames(
        patients=pd.DataFrame({"patient_id": ids, "sex": rng.choice(["F", "M"], n), "diagnosis": "AML",
                               "diagnosis_date": diag.strftime("%Y-%m-%d")}),
        courses=pd.DataFrame({"course_id": [f"C{first:07d}-{i:08d}" for i in range(course_pid.size)],
                              "patient_id": ids[course_pid],
                              "number": course_no, "kind": np.where(course_no == 1, "induction", "consolidation"),
                              "start_date": d(course_day, course_pid)}),
        infusions=pd.DataFrame({"infusion_id": [f"I{i:07d}" for i in range(first, first + n)], "patient_id": ids,
                                "date": d(np.minimum(3, fu_days - 1), np.arange(n)), "product": "G-PBSC"}),
        assessments=pd.DataFrame({"patient_id": ids[has_cr], "item": "response_eln",
                                  "date": d(cr_day[has_cr], np.flatnonzero(has_cr)), "value_text": "CR"}),
        relapses=pd.DataFrame({"patient_id": ids[has_rel], "date": d(rel_day[has_rel], np.flatnonzero(has_rel))}),
        deaths=pd.DataFrame({"patient_id": ids[death], "date": d(fu_days[death], np.flatnonzero(death))}),
        follow_up=pd.DataFrame({"patient_id": ids, "last_contact_date": d(fu_days, np.arange(n))}),
        observations=pd.DataFrame({"patient_id": ids[lab_pid], "item": np.where(
                                       np.tile(np.arange(labs_per_patient) % 2, n), "plt", "anc"),
                                   "date": d(lab_day, lab_pid), "value": rng.gamma(2, 1, lab_pid.size).round(2),
                                   "unit": "10^9/L"}),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--observations-per-patient", type=int, default=100)
    parser.add_argument("--out", default=str(HERE / "results" / "records.md"))
    args = parser.parse_args()
    records = synthetic(args.patients, args.observations_per_patient)
    n_labs = len(records["observations"])
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.init()
        t0 = time.perf_counter()
        store.import_records(records)
        t_import = time.perf_counter() - t0
        extra = synthetic(100, args.observations_per_patient, seed=2, first=args.patients)
        t0 = time.perf_counter()
        added = store.import_records(extra).added
        t_incremental = time.perf_counter() - t0
        assert added["patients"] == 100, added
        t0 = time.perf_counter()
        loaded = store.load()
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        derive_endpoints(loaded, endpoints=("os", "lfs", "cir", "nrm", "grfs", "efs"))
        t_derive = time.perf_counter() - t0
        t0 = time.perf_counter()  # records from the store were validated when imported
        derive_endpoints(loaded, endpoints=("os", "lfs", "cir", "nrm", "grfs", "efs"), validate=False)
        t_derive_stored = time.perf_counter() - t0
    text = (
        f"Run {time.strftime('%Y-%m-%d %H:%M')}: {args.patients:,} patients, {n_labs:,} observations (ANC and "
        "platelets), SQLite.\n\n"
        "| step | seconds | target |\n|---|---|---|\n"
        f"| validate + import (one transaction) | {t_import:.1f} | ≤ 60 at 10⁵ patients / 10⁷ observations |\n"
        f"| import 100 new patients ({100 * args.observations_per_patient:,} observations) into that store | "
        f"{t_incremental:.2f} | "
        "≤ 5 |\n"
        f"| load all records | {t_load:.1f} | |\n"
        f"| derive 6 endpoints, re-validating every record | {t_derive:.1f} | |\n"
        f"| derive 6 endpoints from stored (validated) records | {t_derive_stored:.1f} | ≤ 10 at 10⁵ patients |\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
