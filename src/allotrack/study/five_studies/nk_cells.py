"""Synthetic records of the donor-derived mb-IL21 NK-cell study after haploidentical HSCT, with its registry
controls."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np

from allotrack.records.schema import Records
from allotrack.study.five_studies._common import CENTRES, PREFIXES, _between, _on, _r, _Tables

NK_STUDY = "NCT01904136"
NK_END = date(2020, 12, 31)
NK_FIRST, NK_LAST = date(2013, 7, 1), date(2017, 12, 31)  # transplants of the cases
NK_LEVELS = (("DL1", 0.1, 3), ("DL2", 1.0, 3), ("DL3", 10.0, 3), ("DL4", 100.0, 16))  # 10^6 NK cells/kg, patients
NK_DAYS = (-2, 7, 28)  # NK infusions, days from the transplant
NK_DAY30 = {"DL1": 60.0, "DL2": 120.0, "DL3": 240.0, "DL4": 480.0}  # NK cells/uL at day +30 (dose-response)
NK_DISEASES = ("AML",) * 19 + ("MDS",) * 4 + ("CML",) * 2
NK_DSA_POSITIVE = 7
TWO_YEARS = 730
# Days from the transplant. Cases without DSA: 5 deaths without relapse, no relapse; these times (with the
# controls' below) make the Cox hazard ratio of DFS, controls vs cases, 2.64 in this subgroup.
NK_NO_DSA_DEATHS = (140, 275, 410, 545, 680)
# Cases with DSA: a relapse, two deaths without relapse, two lost to follow-up (after the first 3 DFS events of all
# cases and before the other 5: Kaplan–Meier DFS at 2 years (22/25)·(15/20) = 66 %), two event-free.
NK_DSA_FATES = (("relapse", 95), ("death", 120), ("death", 330), ("lost", 150), ("lost", 170))
# Registry controls per subgroup of their case: controls per set (sets with 7, sets with 6), relapses and deaths
# without relapse within 2 years (the rest are alive and disease-free at 2 years; nobody is lost before). The
# events fall on days 35 + 680·(k / (n − 1))², most of them early, as relapses after a transplant do.
NK_CONTROLS = {False: ((7, 11), 46, 18), True: ((3, 4), 15, 11)}
HLA_ANTIGENS = ("A*02:01", "A*24:02", "B*07:02", "B*44:02", "DRB1*15:01", "DQ7")


def nk_cells_records(rng: np.random.Generator) -> Records:
    """Donor-derived mb-IL21-expanded NK cells after haploidentical HSCT (phase I/II, NCT01904136).

    Reproduces: 25 patients with myeloid malignancies (AML 19, MDS 4, CML 2; the split is invented); NK-cell doses
    of 1×10⁵, 1×10⁶, 1×10⁷ and 1×10⁸ cells/kg (``nk_infusion`` 0.1–100 ×10⁶/kg, ``dose_level`` DL1–DL4 with 3, 3,
    3 and 16 patients) on days −2, +7 and +28; 160 case-matched registry controls (CIBMTR; ``matched_sets``, 6 or 7
    per case); 2-year relapse 4 % vs 38 % (1/25 vs 61/160, cumulative incidence with death competing) and
    disease-free survival 66 % vs 44 % (Kaplan–Meier; 2 cases lost to follow-up); in the cases without
    donor-specific anti-HLA antibodies (18; DSA = any ``dsa_mfi`` ≥ 1000) and their 115 controls: relapse 0 % vs
    40 %, DFS 72 % vs 44 %, and the Cox hazard ratio of DFS of the controls vs the cases 2.64; NK-cell counts
    (``nk_abs``) at day +30 that rise with the dose level.

    Invented: the dose-level sizes, DSA MFI per HLA antigen, T-cell and NK counts at days +30 and +90, the times of
    relapse and death, the registry controls' records (transplant, donor, response, relapse, death, follow-up).
    """
    t = _Tables()
    prefix, (centre, registry) = PREFIXES["nk_cells"], CENTRES["nk_cells"]
    n_cases = sum(n for _, _, n in NK_LEVELS)
    levels = [(code, dose) for code, dose, n in NK_LEVELS for _ in range(n)]
    diseases = [NK_DISEASES[int(k)] for k in rng.permutation(n_cases)]
    order = [int(k) for k in rng.permutation(n_cases)]
    with_dsa, without = order[:NK_DSA_POSITIVE], order[NK_DSA_POSITIVE:]
    fates: dict[int, tuple[str, int]] = dict(zip(without, (("death", d) for d in NK_NO_DSA_DEATHS), strict=False))
    fates |= dict(zip(with_dsa, NK_DSA_FATES, strict=False))
    control_no = 0
    for group, cases in ((False, without), (True, with_dsa)):
        (sevens, sixes), relapses, deaths = NK_CONTROLS[group]
        sizes = [7] * sevens + [6] * sixes
        n_controls = sum(sizes)
        n_events = relapses + deaths
        kinds = ["relapse"] * relapses + ["death"] * deaths
        kinds = [kinds[int(k)] for k in rng.permutation(n_events)]
        events = [(kinds[k], 35 + round(680 * (k / (n_events - 1)) ** 2)) for k in range(n_events)]
        control_fates = [events[int(k)] if k < n_events else None for k in rng.permutation(n_controls)]
        for case, size in zip(cases, sizes, strict=True):
            set_id = f"S{case + 1:02d}"
            hsct = _between(rng, NK_FIRST, NK_LAST)
            _nk_case(t, rng, f"{prefix}{case + 1:03d}", centre, hsct, levels[case], diseases[case], group,
                     fates.get(case), set_id)  # fmt: skip
            for _ in range(size):
                control_no += 1
                when = min(max(hsct + timedelta(days=int(rng.integers(-365, 366))), date(2012, 7, 1)),
                           date(2018, 6, 30))  # fmt: skip
                _nk_control(t, rng, f"{prefix}R{control_no:03d}", registry, when, diseases[case],
                            control_fates.pop(), set_id, 1 / size)  # fmt: skip
    return t.records()


def _nk_outcome(t: _Tables, rng: np.random.Generator, pid: str, at: Callable[[float], str], available: int,
                fate: tuple[str, int] | None) -> None:  # fmt: skip
    """Relapse, death and follow-up from the fate (kind, day from the transplant); ``available`` is the last day a
    patient alive and event-free can have been seen."""
    kind, day = fate if fate is not None else ("free", 0)
    last = min(TWO_YEARS + int(rng.integers(30, 1100)), available)
    if kind == "relapse":
        t.add("relapses", patient_id=pid, date=at(day), kind="hematologic")
        death = day + int(rng.integers(60, 400))
        if death <= available and rng.random() < 0.6:
            t.add("deaths", patient_id=pid, date=at(death), cause="relapse")
            last = death
    elif kind == "death":
        t.add("deaths", patient_id=pid, date=at(day), cause=str(rng.choice(["infection", "GVHD", "organ failure"])))
        last = day
    elif kind == "lost":
        last = day
    t.add("follow_up", patient_id=pid, last_contact_date=at(last))


def _nk_case(t: _Tables, rng: np.random.Generator, pid: str, centre: str, hsct: date, level: tuple[str, float],
             disease: str, dsa: bool, fate: tuple[str, int] | None, set_id: str | None) -> None:  # fmt: skip
    """A treated patient: transplant, NK infusions at their dose level, DSA, day +30 response and lymphocytes,
    outcome; a row of ``matched_sets`` when ``set_id`` is given (the published controls)."""
    at = _on(hsct)
    code, dose = level
    t.add("patients", patient_id=pid, centre=centre, sex=str(rng.choice(["F", "M"])), diagnosis=disease,
          age_at_diagnosis=int(rng.integers(20, 66)), diagnosis_date=at(-int(rng.integers(90, 500))))  # fmt: skip
    did, cid = f"{pid}-D1", f"{pid}-C1"
    t.add("donors", donor_id=did, patient_id=pid, relation=str(rng.choice(["child", "sibling", "parent"])),
          sex=str(rng.choice(["F", "M"])), age=int(rng.integers(18, 60)), hla_mismatches=int(rng.integers(4, 6)),
          hla_out_of=10)  # fmt: skip
    t.add("courses", course_id=cid, patient_id=pid, number=1, kind="conditioning", regimen="Flu/Mel/TBI + PTCy",
          start_date=at(-7), end_date=at(-3))  # fmt: skip
    t.add("infusions", infusion_id=f"{pid}-I1", patient_id=pid, course_id=cid, donor_id=did, date=at(0),
          product="HSCT", cd34_per_kg=_r(rng.uniform(2, 8)), cd3_per_kg=_r(rng.uniform(1, 4)))  # fmt: skip
    t.add("enrolments", patient_id=pid, study=NK_STUDY, enrolment_date=at(-21), eligible=True, arm=code)
    if set_id is not None:
        t.add("matched_sets", patient_id=pid, study=NK_STUDY, set_id=set_id, role="case", weight=1.0)
    for d in NK_DAYS:
        t.add("interventions", patient_id=pid, agent="nk_infusion", start_date=at(d), dose=dose, unit="10*6/kg",
              per_kg=True, route="iv", course_id=cid, dose_level=code, visit=f"day {d:+d}")  # fmt: skip
    antigens = [HLA_ANTIGENS[int(k)] for k in rng.permutation(len(HLA_ANTIGENS))[: 2 if dsa else 1]]
    for antigen in antigens:
        mfi = rng.uniform(1500, 15000) if dsa else rng.uniform(50, 800)
        t.add("observations", patient_id=pid, item="dsa_mfi", date=at(-14), visit="before transplant",
              value=float(round(mfi)), unit="{MFI}", specimen=antigen)  # fmt: skip
    item = "response_eln" if disease == "AML" else "disease_response"
    t.add("assessments", patient_id=pid, item=item, date=at(30), visit="day +30", value_text="CR")
    last_seen = fate[1] if fate is not None and fate[0] in ("death", "lost") else TWO_YEARS
    for d in (30, 90):
        if d >= last_seen:
            continue
        nk = NK_DAY30[code] * float(np.exp(rng.uniform(-0.3, 0.3))) if d == 30 else float(rng.uniform(150, 450))
        cd3 = float(rng.uniform(50, 400) if d == 30 else rng.uniform(200, 800))
        for obs, value in (("nk_abs", _r(nk, 0)), ("cd3_abs", _r(cd3, 0)), ("nk_pct", _r(rng.uniform(20, 70), 1))):
            t.add("observations", patient_id=pid, item=obs, date=at(d), visit=f"day +{d}", value=value,
                  specimen="peripheral blood")  # fmt: skip
    _nk_outcome(t, rng, pid, at, (NK_END - hsct).days, fate)


def _nk_control(t: _Tables, rng: np.random.Generator, pid: str, centre: str, hsct: date, disease: str,
                fate: tuple[str, int] | None, set_id: str | None, weight: float) -> None:  # fmt: skip
    at = _on(hsct)
    t.add("patients", patient_id=pid, centre=centre, sex=str(rng.choice(["F", "M"])), diagnosis=disease,
          age_at_diagnosis=int(rng.integers(20, 66)), diagnosis_date=at(-int(rng.integers(90, 500))))  # fmt: skip
    did = f"{pid}-D1"
    t.add("donors", donor_id=did, patient_id=pid, relation=str(rng.choice(["child", "sibling", "parent"])),
          sex=str(rng.choice(["F", "M"])), hla_mismatches=int(rng.integers(4, 6)), hla_out_of=10)  # fmt: skip
    t.add("infusions", infusion_id=f"{pid}-I1", patient_id=pid, donor_id=did, date=at(0), product="HSCT")
    if set_id is not None:
        t.add("matched_sets", patient_id=pid, study=NK_STUDY, set_id=set_id, role="control", weight=_r(weight, 4))
    item = "response_eln" if disease == "AML" else "disease_response"
    t.add("assessments", patient_id=pid, item=item, date=at(28), visit="day +28", value_text="CR")
    _nk_outcome(t, rng, pid, at, (NK_END - hsct).days, fate)
