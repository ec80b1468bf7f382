"""Synthetic records for the design phase of the NK-cell study: the 25 treated patients and a transplant registry
of candidate controls, from which the plan's ``[matching]`` chooses the controls (``example:nk_registry``; the
bundled plan ``nk_registry``).

The published study (NCT01904136; ``nk_cells``) reports 160 controls matched on disease, disease status and
conditioning intensity exactly and on age within ±10 years, up to 7 per case, from the CIBMTR registry. Here the
registry is simulated so that this matching can be run rather than assumed: ``n_registry`` haploidentical
transplants (800 by default) with the matching variables recorded as attributes (``disease_status_hct``,
``conditioning_intensity``) and outcomes drawn from proportional cause-specific hazards in which relapse depends
on disease status and intensity, non-relapse death on age and intensity, and the NK cells lower the relapse hazard.

Invented (nothing here is published): the registry, every hazard below, and the cases' matching variables and
outcomes (the cases' transplants, NK doses, DSA and day +30 counts are those of :mod:`.nk_cells`).
"""

from __future__ import annotations

from datetime import date

import numpy as np

from allotrack.records.schema import Records
from allotrack.study.five_studies._common import CENTRES, PREFIXES, _between, _on, _Tables
from allotrack.study.five_studies.nk_cells import (
    NK_DISEASES,
    NK_DSA_POSITIVE,
    NK_END,
    NK_FIRST,
    NK_LAST,
    NK_LEVELS,
    TWO_YEARS,
    _nk_case,
    _nk_control,
)

REGISTRY_FIRST, REGISTRY_LAST = date(2010, 1, 1), date(2018, 6, 30)  # the registry's transplants
# (values, probabilities): the registry's case mix, and the treated patients' (fitter, earlier in their disease)
REGISTRY_MIX = {"diagnosis": (("AML", "MDS", "CML"), (0.70, 0.22, 0.08)),
                "status": (("cr1", "cr2", "active"), (0.45, 0.30, 0.25)),
                "intensity": (("mac", "ric"), (0.55, 0.45))}  # fmt: skip
CASE_MIX = {"status": (("cr1", "cr2", "active"), (0.60, 0.28, 0.12)), "intensity": (("mac", "ric"), (0.72, 0.28))}
REGISTRY_AGES, CASE_AGES = (18, 76), (20, 66)  # years at diagnosis, uniform on [low, high)
# Cause-specific hazards per year: relapse 0.14 × status × intensity × (NK cells); non-relapse death
# 0.09 × exp(0.03 (age − 50)) × intensity. Events start at day 35 (after the day +28 response assessment).
RELAPSE_BASE, RELAPSE_STATUS, RELAPSE_RIC, RELAPSE_NK = 0.14, {"cr1": 1.0, "cr2": 1.7, "active": 3.2}, 1.4, 0.35
NRM_BASE, NRM_AGE, NRM_MAC = 0.09, 0.03, 1.3
EVENT_DELAY = 35
GVHD_II_IV = {"case": 0.25, "registry": 0.35}  # probability of acute GVHD grade II–IV by day +100
DLT_CASES = {"DL4": 1}  # dose-limiting toxicities (invented: the paper reports none attributed to the NK cells)


def nk_registry_records(rng: np.random.Generator, n_registry: int = 800) -> Records:
    """The 25 NK-cell cases (dose levels DL1–DL4 with 3, 3, 3 and 16 patients; ``enrolments`` in NCT01904136)
    with a DLT assessment by day +28 (one DLT, at DL4), and ``n_registry`` registry transplants (centre
    ``CIBMTR``); everyone with disease, age, disease status and conditioning intensity at the transplant, acute
    GVHD grade by day +100, relapse, death and follow-up; no matched sets."""
    t = _Tables()
    prefix, (centre, registry) = PREFIXES["nk_cells"], CENTRES["nk_cells"]
    levels = [(code, dose) for code, dose, n in NK_LEVELS for _ in range(n)]
    n_cases = len(levels)
    diseases = [NK_DISEASES[int(k)] for k in rng.permutation(n_cases)]
    with_dsa = set(int(k) for k in rng.permutation(n_cases)[:NK_DSA_POSITIVE])
    for k in range(n_cases):
        pid = f"{prefix}{k + 1:03d}"
        hsct = _between(rng, NK_FIRST, NK_LAST)
        age = int(rng.integers(*CASE_AGES))
        status, intensity = _draw(rng, CASE_MIX["status"]), _draw(rng, CASE_MIX["intensity"])
        fate = _fate(rng, status, intensity, age, treated=True, available=(NK_END - hsct).days)
        _nk_case(t, rng, pid, centre, hsct, levels[k], diseases[k], k in with_dsa, fate, None)
        t.rows["patients"][-1]["age_at_diagnosis"] = age
        _transplant_record(t, rng, pid, hsct, status, intensity, fate, GVHD_II_IV["case"])
        code = levels[k][0]
        first_at_level = levels.index(levels[k])
        dlt = k - first_at_level < DLT_CASES.get(code, 0)  # the first patients of a level carry its DLTs
        t.add("assessments", patient_id=pid, item="dlt", date=_on(hsct)(28), visit="day +28", value=float(dlt))
    for k in range(n_registry):
        pid = f"{prefix}G{k + 1:04d}"
        hsct = _between(rng, REGISTRY_FIRST, REGISTRY_LAST)
        disease = _draw(rng, REGISTRY_MIX["diagnosis"])
        age = int(rng.integers(*REGISTRY_AGES))
        status, intensity = _draw(rng, REGISTRY_MIX["status"]), _draw(rng, REGISTRY_MIX["intensity"])
        fate = _fate(rng, status, intensity, age, treated=False, available=(NK_END - hsct).days)
        _nk_control(t, rng, pid, registry, hsct, disease, fate, None, 0.0)
        t.rows["patients"][-1]["age_at_diagnosis"] = age
        _transplant_record(t, rng, pid, hsct, status, intensity, fate, GVHD_II_IV["registry"])
    return t.records()


def _draw(rng: np.random.Generator, mix: tuple[tuple[str, ...], tuple[float, ...]]) -> str:
    values, p = mix
    return str(values[int(rng.choice(len(values), p=p))])


def _fate(rng: np.random.Generator, status: str, intensity: str, age: int, treated: bool,
          available: int) -> tuple[str, int] | None:  # fmt: skip
    """The first of relapse and non-relapse death (kind, day from the transplant) from exponential cause-specific
    hazards starting at day 35, or None when neither happens within the first 2 years + 30 days (everyone is
    followed that long, when the data cut-off allows)."""
    relapse = RELAPSE_BASE * RELAPSE_STATUS[status] * (RELAPSE_RIC if intensity == "ric" else 1.0)
    relapse *= RELAPSE_NK if treated else 1.0
    nrm = NRM_BASE * float(np.exp(NRM_AGE * (age - 50))) * (NRM_MAC if intensity == "mac" else 1.0)
    day = EVENT_DELAY + rng.exponential(365.25 / (relapse + nrm))
    if day >= min(available, TWO_YEARS + 30):  # followed for at least 2 years + 30 days (see _nk_outcome)
        return None
    return ("relapse" if rng.random() < relapse / (relapse + nrm) else "death", int(day))


def _transplant_record(t: _Tables, rng: np.random.Generator, pid: str, hsct: date, status: str, intensity: str,
                       fate: tuple[str, int] | None, p_gvhd: float) -> None:  # fmt: skip
    """The matching attributes (known the day before the transplant) and the acute GVHD grade by day +100 (for
    patients seen alive and event-free at day +100)."""
    at = _on(hsct)
    t.add("attributes", patient_id=pid, item="disease_status_hct", value_text=status, date=at(-1))
    t.add("attributes", patient_id=pid, item="conditioning_intensity", value_text=intensity, date=at(-1))
    last = (date.fromisoformat(t.rows["follow_up"][-1]["last_contact_date"]) - hsct).days  # the patient's own
    if (fate is None or fate[1] > 100) and last >= 100:
        grade = int(rng.choice([2, 3, 4], p=[0.6, 0.3, 0.1])) if rng.random() < p_gvhd else int(rng.integers(0, 2))
        t.add("assessments", patient_id=pid, item="agvhd_grade", date=at(100), visit="day +100", value_text=str(grade))
