"""Synthetic records of the HLA-mismatched MST study for multiple myeloma."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from allotrack.records.schema import Records
from allotrack.study.five_studies._common import CENTRES, PREFIXES, _between, _day, _on, _r, _Tables

MM_END = date(2025, 6, 30)  # end of follow-up of the synthetic cohort
MM_FIRST = date(2008, 1, 1)
MM_COURSE_GAP = 91  # days between MST courses
MM_LANDMARK_MONTHS = 72  # 6-year OS and PFS


@dataclass(frozen=True)
class MyelomaPlan:
    """One myeloma patient's fixed course, in months from the first MST course."""

    courses: int
    before: str  # IMWG response before MST
    best: str  # best IMWG response after MST
    progression: float | None = None
    death: float | None = None  # every death follows progression (no non-relapse mortality)
    censored: float | None = None  # follow-up of a patient censored early (alive, progression-free)


# fmt: off
MYELOMA: tuple[MyelomaPlan, ...] = (
    # non-responders (IMWG best response MR or SD): 3 of 20
    MyelomaPlan(1, "PR", "SD", 11, 20), MyelomaPlan(1, "MR", "MR", 13, 30), MyelomaPlan(2, "SD", "SD", 14, 80),
    # censored early, before any progression or death (treated in 2024)
    MyelomaPlan(2, "PR", "VGPR", censored=6), MyelomaPlan(2, "VGPR", "CR", censored=8),
    MyelomaPlan(3, "PR", "PR", censored=10),
    # responders who progress within 6 years (4 of them die within 6 years)
    MyelomaPlan(2, "PR", "PR", 15, 28), MyelomaPlan(3, "PR", "PR", 18, 40), MyelomaPlan(2, "VGPR", "VGPR", 22, 50),
    MyelomaPlan(3, "MR", "PR", 26, 66), MyelomaPlan(3, "PR", "VGPR", 31, 84), MyelomaPlan(4, "VGPR", "CR", 37),
    MyelomaPlan(3, "PR", "VGPR", 44), MyelomaPlan(2, "CR", "CR", 63, 90),
    # progression-free at 6 years
    MyelomaPlan(4, "VGPR", "sCR"), MyelomaPlan(4, "CR", "sCR"), MyelomaPlan(3, "PR", "CR", 80),
    MyelomaPlan(2, "VGPR", "CR"), MyelomaPlan(1, "PR", "VGPR", 95), MyelomaPlan(2, "PR", "VGPR"),
)
# fmt: on
MPROT_FRACTION = {"sCR": 0.0, "CR": 0.0, "VGPR": 0.06, "PR": 0.35, "MR": 0.65, "SD": 0.9}  # of the baseline M-protein


@dataclass(frozen=True)
class _Myeloma:
    """A myeloma patient's baseline disease markers (serum M-protein g/L, FLC mg/L, β2M mg/L, albumin g/dL)."""

    pid: str
    at: Callable[[float], str]
    m_protein: float
    chain: str  # involved light chain
    involved: float
    uninvolved: float
    b2m: float
    albumin: float

    def labs(self, t: _Tables, rng: np.random.Generator, day: int, visit: str, fraction: float,
             chemistry: bool = True, baseline: bool = False) -> None:  # fmt: skip
        """M-protein (``fraction`` of the baseline; 0 = not detectable), both free light chains and, with
        ``chemistry``, β2-microglobulin, albumin and calcium (at baseline in g/dL and mg/dL, as reported)."""
        common = {"patient_id": self.pid, "date": self.at(day), "visit": visit, "specimen": "serum"}
        if fraction == 0:
            t.add("observations", **common, item="mprot_serum", below_lod=True, lod=1.0, unit="g/L")
        else:
            t.add("observations", **common, item="mprot_serum", value=_r(self.m_protein * fraction, 1), unit="g/L")
        involved = _r(max(self.involved * fraction, rng.uniform(12, 18)), 1)
        other = _r(self.uninvolved * rng.uniform(0.9, 1.1), 1)
        kappa, lam = (involved, other) if self.chain == "kappa" else (other, involved)
        t.add("observations", **common, item="flc_kappa", value=kappa, unit="mg/L")
        t.add("observations", **common, item="flc_lambda", value=lam, unit="mg/L")
        if not chemistry:
            return
        b2m = self.b2m if baseline else _r(max(1.2, self.b2m * rng.uniform(0.5, 0.9)))
        t.add("observations", **common, item="b2m", value=b2m, unit="mg/L")
        if baseline:
            t.add("observations", **common, item="albumin", value=self.albumin, unit="g/dL")
            t.add("observations", **common, item="calcium", value=_r(rng.uniform(8.6, 11.2), 1), unit="mg/dL")
        else:
            t.add("observations", **common, item="albumin", value=_r(rng.uniform(36, 45), 1), unit="g/L")
            t.add("observations", **common, item="calcium", value=_r(rng.uniform(2.1, 2.55)), unit="mmol/L")


def myeloma_mst_records(rng: np.random.Generator) -> Records:
    """HLA-mismatched MST for multiple myeloma (Lei et al., Front Immunol 2025;16:1509588).

    Reproduces: 20 patients treated 2008–2024; IMWG overall response 17/20 (best ``response_imwg`` sCR, CR, VGPR or
    PR); 6-year OS 64.7 % and PFS 35.3 % (Kaplan–Meier from the first MST course: 3 patients treated in 2024 are
    censored before any event, then 11/17 are alive and 6/17 progression-free at 6 years); no GVHD (every
    ``agvhd_grade`` is 0); no non-relapse mortality (every death follows a progression); fever with grade I CRS in
    40.8 % of courses (20 of 49 MST courses have ``crs_grade`` 1 and a grade-1 fever, the others ``crs_grade`` 0);
    donor microchimerism detected in every available blood sample from day 14 to month 6 after the first infusion.

    Invented: M-protein, free light chains, β2-microglobulin, albumin and calcium at baseline, before each later
    course, at best response and at progression (the M-protein falls as the best response says; at baseline
    calcium is reported in mg/dL and albumin in g/dL, which the store converts); CD3+, CD4+, CD8+, CD4:CD8 ratio,
    Th0, Th1 and Th2 before and after MST in 14 patients (paired); the IMWG response before MST; ISS stage (from the
    baseline β2-microglobulin and albumin), mSMART risk, Durie–Salmon stage and del(17p) as attributes.
    """
    t = _Tables()
    prefix, centre = PREFIXES["myeloma_mst"], CENTRES["myeloma_mst"][0]
    crs_courses = set(rng.permutation(sum(p.courses for p in MYELOMA))[:20].tolist())
    immune = set(rng.permutation(len(MYELOMA))[:14].tolist())
    sampled = set(rng.permutation(len(MYELOMA))[:13].tolist())
    course_no = 0
    for i, plan in enumerate(MYELOMA):
        pid = f"{prefix}{i + 1:03d}"
        if plan.censored is not None:
            last_day = _day(plan.censored)
            start = MM_END - timedelta(days=last_day + int(rng.integers(0, 20)))
        else:
            needed = plan.death if plan.death is not None else max(plan.progression or 0, MM_LANDMARK_MONTHS + 1)
            start = _between(rng, MM_FIRST, MM_END - timedelta(days=_day(needed) + 60))
            last_day = _day(plan.death) if plan.death is not None else (MM_END - start).days - int(rng.integers(0, 30))
        at = _on(start)
        progression = _day(plan.progression) if plan.progression is not None else None
        limit = min(d for d in (progression, last_day) if d is not None)
        diagnosis = (start - timedelta(days=int(rng.integers(120, 430)))).isoformat()
        chain = str(rng.choice(["kappa", "lambda"]))
        t.add("patients", patient_id=pid, centre=centre, sex=str(rng.choice(["F", "M"])), diagnosis="MM",
              age_at_diagnosis=int(rng.integers(45, 71)), diagnosis_date=diagnosis,
              subtype=f"{rng.choice(['IgG', 'IgG', 'IgA'])} {chain}", ecog=int(rng.integers(0, 3)))  # fmt: skip
        did = f"{pid}-D1"
        t.add("donors", donor_id=did, patient_id=pid, relation=str(rng.choice(["child", "sibling"], p=[0.7, 0.3])),
              sex=str(rng.choice(["F", "M"])), age=int(rng.integers(22, 46)),
              hla_mismatches=int(rng.integers(3, 6)), hla_out_of=10)  # fmt: skip
        disease = _Myeloma(pid, at, m_protein=_r(rng.uniform(15, 45), 1), chain=chain,
                           involved=_r(rng.uniform(100, 800), 1), uninvolved=_r(rng.uniform(5, 15), 1),
                           b2m=_r(rng.uniform(1.8, 8.0)), albumin=_r(rng.uniform(2.8, 4.6), 1))  # fmt: skip
        iss = "3" if disease.b2m >= 5.5 else "1" if disease.b2m < 3.5 and disease.albumin >= 3.5 else "2"
        msmart = str(rng.choice(["standard", "high"], p=[0.65, 0.35]))
        stage = str(rng.choice(["IIA", "IIB", "IIIA", "IIIB"], p=[0.3, 0.1, 0.45, 0.15]))
        for item, code in (("iss_stage", iss), ("msmart_risk", msmart), ("ds_stage", stage)):
            t.add("attributes", patient_id=pid, item=item, value_text=code, date=diagnosis)
        t.add("attributes", patient_id=pid, item="del17p", value=float(msmart == "high" and rng.random() < 0.6),
              date=diagnosis)  # fmt: skip
        disease.labs(t, rng, -3, "baseline", 1.0, baseline=True)
        t.add("assessments", patient_id=pid, item="response_imwg", date=at(-3), visit="before MST",
              value_text=plan.before)  # fmt: skip
        infusions = []
        for k in range(plan.courses):
            course_start = k * MM_COURSE_GAP
            if course_start + 35 > limit:
                raise AssertionError(f"myeloma plan {i + 1}: course {k + 1} does not fit before day {limit}")
            cid = f"{pid}-C{k + 1}"
            t.add("courses", course_id=cid, patient_id=pid, number=k + 1, kind="consolidation",
                  regimen="MST (chemotherapy + HLA-mismatched G-PBSC)", start_date=at(course_start),
                  end_date=at(course_start + 4))  # fmt: skip
            infusion = course_start + 5
            infusions.append(infusion)
            t.add("infusions", infusion_id=f"{pid}-I{k + 1}", patient_id=pid, course_id=cid, donor_id=did,
                  date=at(infusion), product="G-PBSC", mnc_per_kg=_r(rng.uniform(1.5, 3.5)),
                  cd34_per_kg=_r(rng.uniform(0.8, 2.8)), cd3_per_kg=_r(rng.uniform(0.6, 1.6)))  # fmt: skip
            if k > 0:
                fraction = 1 - (1 - MPROT_FRACTION[plan.best]) * 0.9 * k / plan.courses
                disease.labs(t, rng, course_start - 2, f"before course {k + 1}", fraction, chemistry=False)
            crs = course_no in crs_courses
            course_no += 1
            t.add("assessments", patient_id=pid, item="crs_grade", date=at(infusion + 1), visit=f"course {k + 1}",
                  value_text="1" if crs else "0")  # fmt: skip
            if crs:
                t.add("adverse_events", patient_id=pid, start_date=at(infusion + 1), term="Fever", grade=1,
                      soc="General disorders and administration site conditions")  # fmt: skip
            if rng.random() < 0.5:
                t.add("adverse_events", patient_id=pid, start_date=at(infusion + 7), term="Neutrophil count decreased",
                      soc="Investigations", grade=int(rng.choice([3, 4])))  # fmt: skip
            t.add("assessments", patient_id=pid, item="agvhd_grade", date=at(infusion + 30), visit=f"course {k + 1}",
                  value_text="0")  # fmt: skip
        best_day = infusions[-1] + 60
        if best_day >= limit:
            raise AssertionError(f"myeloma plan {i + 1}: the best response is not assessed before day {limit}")
        disease.labs(t, rng, best_day, "best response", MPROT_FRACTION[plan.best])
        t.add("assessments", patient_id=pid, item="response_imwg", date=at(best_day), visit="best response",
              value_text=plan.best)  # fmt: skip
        if i in sampled:  # donor microchimerism, day 14 to month 6 after the first infusion (some samples missing)
            for d in (14, 30, 90, 180):
                if infusions[0] + d < last_day and (d == 14 or rng.random() < 0.85):
                    t.add("observations", patient_id=pid, item="chimerism_pct", date=at(infusions[0] + d),
                          visit=f"day {d}", value=_r(rng.uniform(0.01, 0.8), 3), unit="%",
                          specimen="peripheral blood", lod=0.001)  # fmt: skip
        if i in immune:  # immune reconstitution before and after MST (paired samples)
            for visit, day, after in (("before MST", -2, 0.0), ("after MST", infusions[0] + 90, 1.0)):
                if day >= last_day:
                    raise AssertionError(f"myeloma plan {i + 1}: the sample after MST is not before day {last_day}")
                cd4 = _r(rng.uniform(22, 38) + after * rng.uniform(0, 6), 1)
                cd8 = _r(rng.uniform(20, 34) - after * rng.uniform(0, 5), 1)
                th1, th2 = _r(rng.uniform(10, 22), 1), _r(rng.uniform(1, 4), 1)
                values = {"cd3_pct": _r(rng.uniform(55, 75) + after * rng.uniform(0, 8), 1), "cd4_pct": cd4,
                          "cd8_pct": cd8, "cd4_cd8_ratio": _r(cd4 / cd8), "th1_pct": th1, "th2_pct": th2,
                          "th0_pct": _r(rng.uniform(35, 60) - after * rng.uniform(0, 10), 1)}  # fmt: skip
                for item, value in values.items():
                    t.add("observations", patient_id=pid, item=item, date=at(day), visit=visit, value=value,
                          specimen="peripheral blood")  # fmt: skip
        if progression is not None:
            disease.labs(t, rng, progression, "progression", max(MPROT_FRACTION[plan.best], 0.1) * 1.6 + 0.15)
            t.add("relapses", patient_id=pid, date=at(progression), kind="progression")
        if plan.death is not None:
            t.add("deaths", patient_id=pid, date=at(last_day), cause="progression")
        t.add("follow_up", patient_id=pid, last_contact_date=at(last_day),
              last_disease_assessment=at(progression if progression is not None else best_day))  # fmt: skip
    return t.records()
