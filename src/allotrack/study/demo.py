"""The bundled demo study: a synthetic cohort modelled on the published HLA-mismatched microtransplantation (MST)
study in older AML (Liu et al., Front Oncol 2026;16:1736302; the published counts are in
``shared/reference/studies.md``).

Twenty-nine patients as dated records — patients, donors, courses, infusions, daily blood counts around each
course, chimerism tests, responses, relapses, deaths, adverse events, follow-up — whose baseline table reproduces
every published count by age group (60–70 y, n = 20; > 70 y, n = 9): patient and donor sex, donor/patient sex
pairs, unrelated donors, 5/10 vs 6/10 HLA-mismatched loci, > 3 MST courses, donor age mean ± SD, CR, deaths, early
deaths (≤ 4 weeks from the first chemotherapy), patients alive and leukaemia-free at 1, 3 and 5 years, relapse /
infection / organ-failure deaths; the overall median OS is 20 months and the median follow-up (reverse
Kaplan–Meier) 148.5 months, follow-up ending 31 Oct 2025.

Where the paper contradicts itself the demo follows ``studies.md``: sex pairs in the 60–70 y group are
F→F 5, F→M 4, M→F 6, M→M 5 (keeping the patient- and donor-sex rows); overall CR is 18 + 6 = 24 (not 25); causes
of death are relapse 6 + 5, infection 2 + 2, organ failure 4 + 2.

Clinical event times are fixed below (one row per patient, in months from diagnosis); everything else —
calendar dates, ages, cell doses, blood counts, chimerism values, adverse events — comes from a seeded generator,
so the cohort is the same on every machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from allotrack.records.dates import DAYS_PER_MONTH
from allotrack.records.schema import Records

END_OF_FOLLOW_UP = date(2025, 10, 31)
SEED = 20261125


@dataclass(frozen=True)
class PatientPlan:
    """One patient's fixed clinical course (months from diagnosis unless said otherwise)."""

    group: str  # "60–70" or "> 70"
    sex: str
    donor_sex: str
    unrelated: bool
    hla_mismatches: int  # of 10 loci
    donor_age: int
    courses: int
    cr: bool
    relapse: float | None = None
    death: float | None = None  # months; early deaths use death_day
    death_day: int | None = None  # days from diagnosis, for deaths within weeks
    cause: str | None = None
    follow_up: float | None = None  # months of follow-up of a patient alive at the end


A, B = "60–70", "> 70"
# fmt: off
COHORT: tuple[PatientPlan, ...] = (
    # 60–70 y: 12 deaths (1 early), 8 alive; donor→patient pairs F→F 5, F→M 4, M→F 6, M→M 5 (fields: patient
    # sex, then donor sex)
    PatientPlan(A, "F", "F", False, 5, 35, 1, False, death_day=20, cause="infection"),
    PatientPlan(A, "F", "M", False, 5, 38, 2, False, death=7, cause="organ failure"),
    PatientPlan(A, "M", "F", False, 6, 29, 4, True, death=9, cause="infection"),
    PatientPlan(A, "M", "M", True, 5, 40, 4, True, death=11, cause="organ failure"),
    PatientPlan(A, "F", "F", False, 5, 33, 4, True, relapse=14, death=18, cause="relapse"),
    PatientPlan(A, "F", "M", False, 5, 43, 4, True, relapse=16, death=20, cause="relapse"),
    PatientPlan(A, "M", "F", False, 6, 31, 5, True, relapse=13, death=30, cause="relapse"),
    PatientPlan(A, "M", "M", False, 5, 36, 5, True, relapse=20, death=40, cause="relapse"),
    PatientPlan(A, "F", "F", True, 5, 34, 5, True, relapse=28, death=45, cause="relapse"),
    PatientPlan(A, "F", "M", False, 6, 39, 5, True, relapse=33, death=55, cause="relapse"),
    PatientPlan(A, "M", "F", False, 5, 30, 6, True, death=50, cause="organ failure"),
    PatientPlan(A, "M", "M", False, 5, 40, 6, True, death=80, cause="organ failure"),
    PatientPlan(A, "F", "F", False, 5, 28, 6, True, follow_up=85),
    PatientPlan(A, "F", "M", True, 6, 38, 5, True, follow_up=95),
    PatientPlan(A, "M", "F", False, 5, 32, 6, True, follow_up=130),
    PatientPlan(A, "M", "M", False, 5, 39, 5, True, follow_up=148),
    PatientPlan(A, "F", "F", False, 6, 34, 6, True, follow_up=149),
    PatientPlan(A, "F", "M", True, 5, 43, 5, True, follow_up=160),
    PatientPlan(A, "F", "M", True, 5, 33, 6, True, follow_up=175),
    PatientPlan(A, "M", "M", False, 6, 40, 5, True, follow_up=200),
    # > 70 y: all 9 died (3 early); sex pairs F→F 5, M→F 2, M→M 2 (patient sex, then donor sex)
    PatientPlan(B, "F", "F", False, 5, 36, 1, False, death_day=10, cause="infection"),
    PatientPlan(B, "F", "F", False, 5, 48, 1, False, death_day=18, cause="organ failure"),
    PatientPlan(B, "F", "F", False, 5, 43, 1, False, death_day=25, cause="infection"),
    PatientPlan(B, "F", "M", False, 5, 39, 2, True, relapse=5, death=8, cause="relapse"),
    PatientPlan(B, "F", "F", False, 6, 52, 2, True, relapse=6, death=10, cause="relapse"),
    PatientPlan(B, "F", "M", False, 5, 44, 3, True, death=11, cause="organ failure"),
    PatientPlan(B, "M", "M", False, 5, 46, 3, True, relapse=9, death=14, cause="relapse"),
    PatientPlan(B, "M", "M", False, 5, 50, 4, True, relapse=11, death=17, cause="relapse"),
    PatientPlan(B, "F", "F", False, 5, 36, 4, True, relapse=15, death=19, cause="relapse"),
)
# fmt: on

PUBLISHED = {  # (60–70 y, > 70 y), from studies.md
    "n": (20, 9), "male_patients": (9, 2), "male_donors": (11, 4), "unrelated": (5, 0), "hla_5_of_10": (14, 8),
    "more_than_3_courses": (18, 2), "donor_age_mean": (35.75, 43.78), "donor_age_sd": (4.52, 5.85), "cr": (18, 6),
    "deaths": (12, 9), "early_deaths": (1, 3), "alive_1y": (16, 3), "alive_3y": (13, 0), "alive_5y": (9, 0),
    "leukaemia_free_1y": (16, 1), "leukaemia_free_3y": (10, 0), "leukaemia_free_5y": (9, 0),
    "relapse_deaths": (6, 5), "infection_deaths": (2, 2), "organ_failure_deaths": (4, 2),
    "sex_pairs": ({"F→F": 5, "F→M": 4, "M→F": 6, "M→M": 5}, {"F→F": 5, "F→M": 0, "M→F": 2, "M→M": 2}),
    "median_os_months": 20.0, "median_follow_up_months": 148.5,
}  # fmt: skip

COURSE_GAP_DAYS = 91  # consolidation courses about three months apart


def _day(months: float) -> int:
    return round(months * DAYS_PER_MONTH)


def _course_days(plan: PatientPlan, last_day: int) -> list[int]:
    """Course start days from diagnosis: induction on day 3, the first consolidation 5 weeks later, then every
    ~3 months; every course starts before relapse and death."""
    starts = [3, 38] + [38 + COURSE_GAP_DAYS * k for k in range(1, 10)]
    days = starts[: plan.courses]
    limit = min(d for d in (last_day, _day(plan.relapse) if plan.relapse else None) if d is not None)
    if days[-1] + 30 > limit and plan.courses > 1:
        raise AssertionError(f"demo cohort: {plan.courses} courses do not fit before day {limit}")
    return days


def demo_records(seed: int = SEED) -> Records:
    """The demo cohort as validated-ready records (see the module docstring)."""
    rng = np.random.default_rng(seed)
    t: dict[str, list[dict[str, object]]] = {name: [] for name in (
        "patients", "donors", "courses", "infusions", "observations", "assessments", "relapses", "deaths",
        "follow_up", "adverse_events")}  # fmt: skip
    for i, plan in enumerate(COHORT, start=1):
        pid, did = f"MST{i:02d}", f"D{i:02d}"
        if plan.follow_up is not None:
            diagnosis = END_OF_FOLLOW_UP - timedelta(days=_day(plan.follow_up))
            last_day = _day(plan.follow_up)
        else:
            last_day = plan.death_day if plan.death_day is not None else _day(plan.death or 0)
            latest = (END_OF_FOLLOW_UP - date(2008, 1, 1)).days - last_day - 30
            diagnosis = date(2008, 1, 1) + timedelta(days=int(rng.integers(0, min(latest, 14 * 365))))
        at = lambda d, dx=diagnosis: (dx + timedelta(days=int(d))).isoformat()  # noqa: E731
        age = int(rng.integers(60, 71)) if plan.group == A else int(rng.integers(71, 81))
        t["patients"].append({"patient_id": pid, "centre": "demo", "sex": plan.sex, "age_at_diagnosis": age,
                              "diagnosis": "AML", "diagnosis_date": diagnosis.isoformat(), "subtype": "non-APL AML",
                              "eln2022_risk": rng.choice(["favorable", "intermediate", "adverse"], p=[.2, .45, .35]),
                              "ecog": int(rng.integers(0, 3))})  # fmt: skip
        t["donors"].append({"donor_id": did, "patient_id": pid, "relation": "unrelated" if plan.unrelated else "child",
                            "sex": plan.donor_sex, "age": plan.donor_age, "hla_mismatches": plan.hla_mismatches,
                            "hla_out_of": 10})  # fmt: skip
        for k, start in enumerate(_course_days(plan, last_day), start=1):
            induction = k == 1
            cid = f"{pid}-C{k}"
            end = start + (6 if induction else 2)
            t["courses"].append({"course_id": cid, "patient_id": pid, "number": k,
                                 "kind": "induction" if induction else "consolidation",
                                 "regimen": "IA 3+7" if induction else "ID-Ara-C", "start_date": at(start),
                                 "end_date": at(end)})  # fmt: skip
            infusion = end + 1  # 24 h after the last cytarabine
            if infusion >= last_day:
                continue
            t["infusions"].append({"infusion_id": f"{cid}-I", "patient_id": pid, "course_id": cid, "donor_id": did,
                                   "date": at(infusion), "product": "G-PBSC",
                                   "mnc_per_kg": round(float(rng.uniform(1.5, 3.5)), 2),
                                   "cd34_per_kg": round(float(rng.uniform(0.8, 2.8)), 2),
                                   "cd3_per_kg": round(float(rng.uniform(0.6, 1.6)), 2)})  # fmt: skip
            _counts(t["observations"], rng, pid, at, start, infusion, last_day)
            if k > 1:
                t["observations"].append({"patient_id": pid, "item": "chimerism_pct", "date": at(start - 1),
                                          "method": "qPCR", "value": round(float(rng.uniform(0.01, 0.9)), 3),
                                          "unit": "%", "specimen": "peripheral blood", "lod": 0.01})  # fmt: skip
            if rng.random() < 0.55 and infusion + 6 < last_day:
                t["adverse_events"].append({"patient_id": pid, "start_date": at(infusion + 5), "grade": 3,
                                            "term": "Febrile neutropenia",
                                            "soc": "Blood and lymphatic system disorders"})  # fmt: skip
            if rng.random() < 0.25 and infusion + 9 < last_day:
                t["adverse_events"].append({"patient_id": pid, "start_date": at(infusion + 8),
                                            "term": "Lung infection", "soc": "Infections and infestations",
                                            "grade": int(rng.choice([2, 3]))})  # fmt: skip
        if plan.cr:
            t["assessments"].append({"patient_id": pid, "item": "response_eln", "date": at(33), "value_text": "CR"})
        elif plan.death_day is None:
            t["assessments"].append({"patient_id": pid, "item": "response_eln", "date": at(33), "value_text": "NR"})
        if plan.relapse is not None:
            t["relapses"].append({"patient_id": pid, "date": at(_day(plan.relapse)), "kind": "hematologic"})
        if plan.follow_up is None:
            t["deaths"].append({"patient_id": pid, "date": at(last_day), "cause": plan.cause})
            if plan.death_day is not None:
                t["adverse_events"].append({"patient_id": pid, "start_date": at(last_day - 2),
                                            "term": "Sepsis" if plan.cause == "infection" else "Multi-organ failure",
                                            "soc": "Infections and infestations" if plan.cause == "infection"
                                            else "General disorders", "grade": 5})  # fmt: skip
        t["follow_up"].append({"patient_id": pid, "last_contact_date": at(last_day)})
    return Records.from_frames(**{name: pd.DataFrame(rows) for name, rows in t.items()})


def _counts(labs: list[dict[str, object]], rng: np.random.Generator, pid: str, at: Callable[[int], str], start: int,
            infusion: int, last_day: int) -> None:  # fmt: skip
    """Daily ANC and platelets from the course start for up to five weeks: the nadir begins two days after the
    infusion; ANC ≥ 0.5 for good on infusion day + 9–15 and platelets ≥ 20 (untransfused) on day + 11–17 (medians
    12 and 14 over the cohort's courses)."""
    n_rec = infusion + int(rng.integers(9, 16))
    p_rec = infusion + int(rng.integers(11, 18))
    for d in range(start, min(start + 35, last_day)):
        if d < infusion + 2:
            anc, plt = 2.0 + rng.uniform(0, 1.5) - 0.15 * (d - start), 120 + rng.uniform(0, 60) - 8 * (d - start)
        else:
            anc = rng.uniform(0.05, 0.45) if d < n_rec else 0.6 + 0.25 * (d - n_rec) + rng.uniform(0, 0.3)
            plt = rng.uniform(5, 18) if d < p_rec else 22 + 6 * (d - p_rec) + rng.uniform(0, 5)
        labs.append({"patient_id": pid, "item": "anc", "date": at(d), "value": round(max(anc, 0.01), 2),
                     "unit": "10*9/L"})  # fmt: skip
        labs.append({"patient_id": pid, "item": "plt", "date": at(d), "value": round(max(plt, 1.0), 0),
                     "unit": "10*9/L", "transfused": False})  # fmt: skip
