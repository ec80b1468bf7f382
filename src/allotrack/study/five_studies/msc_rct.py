"""Synthetic records of the randomised trial of MSC plus basiliximab for steroid-refractory acute GVHD."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np

from allotrack.clinical.gvhd import magic_grade
from allotrack.records.schema import Records
from allotrack.study.five_studies._common import CENTRES, PREFIXES, _between, _on, _r, _Tables

MSC_STUDY = "NCT04738981"
MSC_ARMS = ("MSC + basiliximab", "basiliximab")
MSC_FIRST, MSC_LAST = date(2021, 3, 1), date(2023, 6, 30)  # randomisation dates
WEEK_52 = 364


@dataclass(frozen=True)
class ArmPlan:
    """What the published counts fix in one arm of 65 patients (DFS in the 60 patients with a malignancy)."""

    week4: dict[str, int]  # gvhd_response at week 4
    dfs_events: int  # relapses or deaths within 52 weeks among the malignant
    relapses: int  # of the DFS events
    censored_after: tuple[int, ...]  # a patient is censored (lost to follow-up) after this many DFS events
    basiliximab_6: int  # patients given >= 6 basiliximab doses
    cgvhd: int  # chronic GVHD within 52 weeks
    cgvhd_3_organs: int  # of them, with >= 3 organs involved
    cytokines: int  # patients with cytokines before, 1 day and 7 days after the first MSC infusion
    not_per_protocol: tuple[str, ...]  # reasons for leaving the per-protocol population
    not_haplo: int  # transplants from an HLA-matched sibling or unrelated donor


MSC_PLANS = {
    "MSC + basiliximab": ArmPlan({"CR": 54, "PR": 5, "NR": 4, "PROG": 2}, 9, 5, (2,), 3, 21, 3, 19,
                                 ("fewer than 4 MSC infusions", "fewer than 4 MSC infusions",
                                  "eligibility criterion not met (found after randomisation)"), 2),
    "basiliximab": ArmPlan({"CR": 36, "PR": 18, "NR": 7, "PROG": 4}, 20, 12, (3, 13), 13, 39, 17, 0,
                           ("second-line GVHD therapy added before week 4",) * 2, 3),
}  # fmt: skip
MSC_MALIGNANT = 60  # per arm; the other 5 patients of each arm have severe aplastic anaemia
MSC_DISEASES = ("AML", "AML", "AML", "ALL", "ALL", "MDS", "CML", "NHL")
GVHD_PATTERNS = ({"skin": 3}, {"skin": 2, "lower_gi": 1}, {"liver": 1, "skin": 1}, {"upper_gi": 1, "skin": 2},
                 {"lower_gi": 2}, {"lower_gi": 3, "skin": 2}, {"liver": 2, "lower_gi": 1}, {"lower_gi": 4},
                 {"skin": 4}, {"liver": 3, "lower_gi": 2})  # fmt: skip
GVHD_ORGAN_ITEMS = {"skin": "agvhd_skin_stage", "liver": "agvhd_liver_stage", "upper_gi": "agvhd_ugi_stage",
                    "lower_gi": "agvhd_lgi_stage"}  # fmt: skip
MAX_STAGE = {"skin": 4, "liver": 4, "upper_gi": 1, "lower_gi": 4}
BASILIXIMAB_DAYS = (0, 3, 7, 14, 21, 28, 35, 42)  # study days (day 0 = randomisation = first MSC infusion)
MSC_DAYS = (0, 7, 14, 21)
# factor: (unit as reported, median before the first MSC infusion, rise by day 7)
MSC_FACTORS = {"ho1": ("ng/mL", 12.0, 1.4), "gal1": ("ng/mL", 18.0, 1.3), "gal9": ("ng/mL", 9.0, 1.5),
               "tnfaip6": ("ng/mL", 4.0, 1.6), "pge2": ("pg/mL", 420.0, 1.5), "pdl1": ("pg/mL", 160.0, 1.3),
               "tgfb1": ("ng/mL", 24.0, 1.2), "hgf": ("ng/mL", 0.9, 1.4)}  # fmt: skip
MSC_AES = (("Cytomegalovirus infection reactivation", "Infections and infestations", (2, 3)),
           ("Lung infection", "Infections and infestations", (2, 4)),
           ("Sepsis", "Infections and infestations", (3, 4)),
           ("Hypertension", "Vascular disorders", (1, 2)),
           ("Platelet count decreased", "Investigations", (2, 4)))  # fmt: skip


def _allocation(rng: np.random.Generator, n: int) -> list[str]:
    """The randomisation list: permuted blocks of 4 (a last block of 2), 1:1."""
    out: list[str] = []
    while len(out) < n:
        size = min(4, n - len(out))
        out += [MSC_ARMS[int(a)] for a in rng.permutation([0, 1] * (size // 2))]
    return out


def _stages_after(stages: dict[str, int], response: str) -> dict[str, int]:
    """Organ stages at week 4 for a response: CR none; PR the worst organ one stage better; NR unchanged; PROG one
    organ one stage worse."""
    if response == "CR":
        return dict.fromkeys(stages, 0)
    out = dict(stages)
    if response == "PR":
        worst = max(out, key=lambda organ: out[organ])
        out[worst] -= 1
    elif response == "PROG":
        organ = next(o for o in ("lower_gi", "liver", "skin", "upper_gi") if out[o] < MAX_STAGE[o])
        out[organ] += 1
    return out


def _gvhd_assessment(t: _Tables, pid: str, at: Callable[[float], str], day: int, visit: str,
                     stages: dict[str, int]) -> None:  # fmt: skip
    grade = magic_grade(**stages)
    for organ, item in GVHD_ORGAN_ITEMS.items():
        t.add("assessments", patient_id=pid, item=item, date=at(day), study_day=day, visit=visit,
              value_text=str(stages[organ]), rule="MAGIC 2016")  # fmt: skip
    t.add("assessments", patient_id=pid, item="agvhd_grade", date=at(day), study_day=day, visit=visit,
          value_text=str(grade.grade), rule="MAGIC 2016", inputs=json.dumps(stages, sort_keys=True))  # fmt: skip


def msc_rct_records(rng: np.random.Generator) -> Records:
    """MSC plus basiliximab vs basiliximab for steroid-refractory acute GVHD (Fu et al., BMC Med 2024;22:85).

    Reproduces: a multicentre randomised trial (5 centres), 130 patients randomised 1:1 (65 + 65; ``enrolments``
    with arm, stratum and allocation number from a permuted-block list); 125/130 (96.2 %) after haploidentical
    HSCT; week-4 complete response of SR-aGVHD (``gvhd_response`` CR at visit "week 4") 54/65 (83.1 %) vs 36/65
    (55.4 %) — overall response (CR + PR) 59/65 vs 54/65, comparable (the PR, NR and progression split is
    invented); ≥ 6 basiliximab doses 3/65 (4.6 %) vs 13/65 (20.0 %); cytokines (HO-1, galectin-1, galectin-9,
    TSG-6, PGE2, sPD-L1, TGF-β1, HGF) before, 1 day and 7 days after the first MSC infusion in 19 patients; chronic
    GVHD with ≥ 3 organs involved in 14.3 % vs 43.6 % of the patients with chronic GVHD within 52 weeks (3/21 vs
    17/39; the denominators are invented); 52-week disease-free survival among the 60 patients per arm with a
    malignancy 84.8 % vs 65.9 % (Kaplan–Meier from randomisation: 9 vs 20 relapses or deaths, 1 vs 2 patients
    lost to follow-up).

    Invented: centres, diagnoses, transplant and GVHD dates, the MAGIC organ stages at randomisation and week 4
    (consistent with the grade, :func:`allotrack.clinical.gvhd.magic_grade`, and with the week-4 response),
    steroids before randomisation, MSC doses, adverse events, analysis populations (ITT and safety all 130,
    per-protocol 125).
    """
    t = _Tables()
    prefix, centres = PREFIXES["msc_rct"], CENTRES["msc_rct"]
    arms = _allocation(rng, 2 * 65)
    for arm, plan in MSC_PLANS.items():
        members = [n for n, a in enumerate(arms) if a == arm]
        order = [members[int(k)] for k in rng.permutation(len(members))]
        malignant = order[:MSC_MALIGNANT]
        # DFS events among the malignant, in time order, and the patients lost to follow-up between them
        dfs = [malignant[int(k)] for k in rng.permutation(MSC_MALIGNANT)]
        events, lost = dfs[: plan.dfs_events], dfs[plan.dfs_events : plan.dfs_events + len(plan.censored_after)]
        event_days = [50 + round(k * 300 / (plan.dfs_events - 1)) for k in range(plan.dfs_events)]
        lost_days = [(event_days[k - 1] + event_days[k]) // 2 + 1 for k in plan.censored_after]
        kinds = ["relapse"] * plan.relapses + ["death"] * (plan.dfs_events - plan.relapses)
        kinds = [kinds[int(k)] for k in rng.permutation(len(kinds))]
        fate: dict[int, tuple[str, int]] = {n: (kinds[k], event_days[k]) for k, n in enumerate(events)}
        fate |= {n: ("lost", d) for n, d in zip(lost, lost_days, strict=True)}
        clean = [n for n in order if n not in fate]
        cgvhd = [clean[int(k)] for k in rng.permutation(len(clean))[: plan.cgvhd]]
        responses = [r for r, count in plan.week4.items() for _ in range(count)]
        response = {n: responses[int(k)] for n, k in zip(order, rng.permutation(len(order)), strict=True)}
        many_doses = set(order[int(k)] for k in rng.permutation(len(order))[: plan.basiliximab_6])
        cytokines = set(order[int(k)] for k in rng.permutation(len(order))[: plan.cytokines])
        excluded = {order[int(k)]: why for k, why in zip(rng.permutation(len(order)), plan.not_per_protocol,
                                                          strict=False)}  # fmt: skip
        not_haplo = set(order[int(k)] for k in rng.permutation(len(order))[: plan.not_haplo])
        for n in order:
            _msc_patient(t, rng, n, arm, f"{prefix}{n + 1:03d}", str(rng.choice(centres)), n in malignant,
                         fate.get(n), response[n], n in many_doses, n in cytokines, excluded.get(n), n in not_haplo,
                         cgvhd.index(n) if n in cgvhd else None, plan.cgvhd_3_organs)  # fmt: skip
    return t.records()


def _msc_patient(t: _Tables, rng: np.random.Generator, n: int, arm: str, pid: str, centre: str, malignant: bool,
                 fate: tuple[str, int] | None, response: str, many_doses: bool, cytokines: bool,
                 excluded: str | None, not_haplo: bool, cgvhd: int | None, cgvhd_3_organs: int) -> None:  # fmt: skip
    """One randomised patient's records (study day 0 = randomisation = the first basiliximab dose and, in the MSC
    arm, the first MSC infusion)."""
    randomised = _between(rng, MSC_FIRST, MSC_LAST)
    at = _on(randomised)
    onset = -int(rng.integers(5, 8))  # steroid-refractory after 5-7 days of methylprednisolone
    hsct = onset - int(rng.integers(18, 61))
    diagnosis = hsct - int(rng.integers(120, 720))
    disease = str(rng.choice(MSC_DISEASES)) if malignant else "SAA"
    t.add("patients", patient_id=pid, centre=centre, sex=str(rng.choice(["F", "M"])), diagnosis=disease,
          age_at_diagnosis=int(rng.integers(14, 61)), diagnosis_date=at(diagnosis),
          subtype=None if malignant else "severe aplastic anaemia", randomization_date=at(0), arm=arm)  # fmt: skip
    if not_haplo:
        relation, mismatches = str(rng.choice(["sibling", "unrelated"])), 0
    else:
        relation, mismatches = str(rng.choice(["child", "sibling", "parent"], p=[0.45, 0.4, 0.15])), int(
            rng.integers(3, 6))  # fmt: skip
    did, cid = f"{pid}-D1", f"{pid}-C1"
    t.add("donors", donor_id=did, patient_id=pid, relation=relation, sex=str(rng.choice(["F", "M"])),
          age=int(rng.integers(18, 55)), hla_mismatches=mismatches, hla_out_of=10)  # fmt: skip
    t.add("courses", course_id=cid, patient_id=pid, number=1, kind="conditioning",
          regimen="BU/CY" if not_haplo else "BU/CY + ATG", start_date=at(hsct - 10), end_date=at(hsct - 1))  # fmt: skip
    t.add("infusions", infusion_id=f"{pid}-I1", patient_id=pid, course_id=cid, donor_id=did, date=at(hsct),
          product="HSCT", mnc_per_kg=_r(rng.uniform(6, 12)), cd34_per_kg=_r(rng.uniform(2, 8)),
          cd3_per_kg=_r(rng.uniform(0.5, 2.5)))  # fmt: skip
    if malignant:  # in remission at transplant
        item = "response_eln" if disease == "AML" else "disease_response"
        t.add("assessments", patient_id=pid, item=item, date=at(hsct - 20), visit="before transplant", value_text="CR")
    t.add("interventions", patient_id=pid, agent="methylprednisolone", start_date=at(onset), end_date=at(14),
          dose=2.0, unit="mg/kg", per_kg=True, route="iv")  # fmt: skip
    stages = {organ: 0 for organ in GVHD_ORGAN_ITEMS} | GVHD_PATTERNS[int(rng.integers(0, len(GVHD_PATTERNS)))]
    grade = magic_grade(**stages).grade
    _gvhd_assessment(t, pid, at, 0, "randomisation", stages)
    _gvhd_assessment(t, pid, at, 28, "week 4", _stages_after(stages, response))
    t.add("assessments", patient_id=pid, item="gvhd_response", date=at(28), study_day=28, visit="week 4",
          value_text=response)  # fmt: skip
    stratum = "grade II" if grade == 2 else "grade III-IV"
    eligible = excluded is None or not excluded.startswith("eligibility")
    t.add("enrolments", patient_id=pid, study=MSC_STUDY, enrolment_date=at(-1), eligible=eligible, arm=arm,
          randomisation_date=at(0), stratum=stratum, allocation_number=n + 1)  # fmt: skip
    for population, included, reason in (("ITT", True, None), ("per-protocol", excluded is None, excluded),
                                         ("safety", True, None)):  # fmt: skip
        t.add("populations", patient_id=pid, study=MSC_STUDY, population=population, included=included, reason=reason)
    doses = int(rng.integers(6, 9)) if many_doses else int(rng.integers(3, 6))
    for d in BASILIXIMAB_DAYS[:doses]:
        t.add("interventions", patient_id=pid, agent="basiliximab", start_date=at(d), dose=20.0, unit="mg",
              route="iv", visit=f"day {d}")  # fmt: skip
    if arm == MSC_ARMS[0]:
        given = MSC_DAYS[:2] if excluded == "fewer than 4 MSC infusions" else MSC_DAYS
        for d in given:
            t.add("interventions", patient_id=pid, agent="msc_infusion", start_date=at(d), dose=1.0,
                  unit="10*6/kg", per_kg=True, route="iv", visit=f"day {d}")  # fmt: skip
    if cytokines:
        for d in (0, 1, 7):
            for item, (unit, median, rise) in MSC_FACTORS.items():
                value = median * (1 + (rise - 1) * min(d, 7) / 7) * float(rng.lognormal(0, 0.25))
                t.add("observations", patient_id=pid, item=item, date=at(d), study_day=d, visit=f"day {d}",
                      value=_r(value, 3), unit=unit, specimen="serum")  # fmt: skip
    for term, soc, grades in (MSC_AES[int(k)] for k in rng.permutation(len(MSC_AES))[: int(rng.integers(1, 4))]):
        t.add("adverse_events", patient_id=pid, start_date=at(int(rng.integers(5, 46))), term=term, soc=soc,
              grade=int(rng.integers(grades[0], grades[1] + 1)))  # fmt: skip
    last = WEEK_52
    if fate is not None:
        kind, day = fate
        if kind == "relapse":
            t.add("relapses", patient_id=pid, date=at(day), kind="hematologic")
            if day + 90 <= WEEK_52 and rng.random() < 0.5:
                last = day + 90
                t.add("deaths", patient_id=pid, date=at(last), cause="relapse")
        elif kind == "death":
            last = day
            t.add("deaths", patient_id=pid, date=at(day), cause=str(rng.choice(["infection", "GVHD", "organ failure"])))
        else:  # lost to follow-up
            last = day
    if cgvhd is not None:
        organs = int(rng.integers(3, 6)) if cgvhd < cgvhd_3_organs else int(rng.integers(1, 3))
        severity = str(rng.choice(["moderate", "severe"] if organs >= 3 else ["mild", "moderate"]))
        onset_day = int(rng.integers(60, 300))
        for item, result in (("cgvhd_severity", {"value_text": severity}), ("cgvhd_organ_count", {"value": organs})):
            t.add("assessments", patient_id=pid, item=item, date=at(onset_day), visit="chronic GVHD onset", **result)
    elif fate is None:
        t.add("assessments", patient_id=pid, item="cgvhd_severity", date=at(WEEK_52), visit="week 52",
              value_text="none")  # fmt: skip
    t.add("follow_up", patient_id=pid, last_contact_date=at(last))
