"""Synthetic records of the IL-2-preactivated, HLA-mismatched donor lymphocyte study (IMAK)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from allotrack.records.schema import Records
from allotrack.study.five_studies._common import CENTRES, PREFIXES, _between, _day, _on, _r, _Tables

IMAK_END = date(2022, 12, 31)
IMAK_FIRST = date(2006, 1, 1)
# disease, patients, complete remissions, long-term remissions (> 5 years), dictionary item of its response
IMAK_DISEASES = (("AML", 14, 10, 2, "response_eln"), ("ALL", 6, 4, 1, "disease_response"),
                 ("MM", 5, 3, 1, "response_imwg"), ("NHL", 8, 6, 2, "disease_response"))  # fmt: skip
IMAK_NON_CR = {"response_eln": ("NR", "PR"), "disease_response": ("NR", "PR"), "response_imwg": ("VGPR", "PR", "SD")}
IMAK_CD20_POSITIVE = {"NHL": 7, "ALL": 2}  # the others with the disease are CD20-negative; AML and MM not tested
IMAK_AES = (("Fever", "General disorders and administration site conditions", (1, 2), 1, 0.7),
            ("Nausea", "Gastrointestinal disorders", (1, 2), 2, 0.4),
            ("Neutrophil count decreased", "Investigations", (2, 3), 6, 0.6),
            ("Lung infection", "Infections and infestations", (2, 3), 12, 0.25))  # fmt: skip
LONG_TERM_MONTHS = 5 * 12


def imak_records(rng: np.random.Generator) -> Records:
    """IL-2-preactivated, intentionally HLA-mismatched donor lymphocytes, IMAK (J Cancer Res Clin Oncol
    2023;149:9277).

    Reproduces: 33 patients with multi-drug-resistant AML (14), ALL (6), myeloma (5) and NHL (8) — the split by
    disease is invented; cyclophosphamide-based conditioning then haploidentical or unrelated donor lymphocytes
    activated with IL-2 for 4 days (``infusions`` product IMAK); rituximab (``interventions``) before each IMAK
    infusion in exactly the CD20+ patients (``cd20_status`` attribute); complete remission in 23/33 (AML
    ``response_eln`` CR, myeloma ``response_imwg`` CR, ALL and NHL ``disease_response`` CR at day +30); no adverse
    event above grade 3 (adverse events of grades 1–3 only); no GVHD (every ``agvhd_grade`` is 0); 6 patients in
    continuous remission for more than 5 years; donor chimerism tested by sex-chromosome FISH in the 6 female
    recipients of male donors, detected up to day +6 and below the limit of detection from day +10 on.

    Invented: prior autologous and allogeneic transplants (attributes), donors, cell doses, the times of relapse
    and death, a second IMAK course in some patients.
    """
    t = _Tables()
    prefix, centre = PREFIXES["imak"], CENTRES["imak"][0]
    plans = []
    for disease, n, n_cr, n_long, item in IMAK_DISEASES:
        positive = IMAK_CD20_POSITIVE.get(disease)
        for k in range(n):
            cd20 = "not_tested" if positive is None else "positive" if k < positive else "negative"
            plans.append((disease, item, k < n_cr, k < n_long, cd20))
    sex_mismatched = set(rng.permutation(len(plans))[:6].tolist())  # female recipients of male donors
    relapsing = [i for i, p in enumerate(plans) if p[2] and not p[3]]
    refractory = [i for i, p in enumerate(plans) if not p[2]]
    for i, (disease, item, cr, long_term, cd20) in enumerate(plans):
        pid = f"{prefix}{i + 1:03d}"
        relapse = death = None
        if long_term:
            months = LONG_TERM_MONTHS + 2 + 12 * (i % 5) + float(rng.uniform(0, 6))
            start = IMAK_END - timedelta(days=_day(months))
            last_day = (IMAK_END - start).days
        else:
            if cr:
                j = relapsing.index(i)
                relapse = _day(3 + 2 * j)
                death = relapse + _day(3 + 2 * (j % 5))
            else:
                j = refractory.index(i)
                death = _day(1.6 + 0.8 * j)
                if disease == "MM":
                    relapse = death - 21  # progression three weeks before death
            start = _between(rng, IMAK_FIRST, IMAK_END - timedelta(days=death + 30))
            last_day = death
        at = _on(start)
        female_of_male = i in sex_mismatched
        sex = "F" if female_of_male else str(rng.choice(["F", "M"]))
        donor_sex = "M" if female_of_male else "F" if sex == "F" else str(rng.choice(["F", "M"]))
        t.add("patients", patient_id=pid, centre=centre, sex=sex, age_at_diagnosis=int(rng.integers(19, 72)),
              diagnosis=disease, diagnosis_date=(start - timedelta(days=int(rng.integers(365, 1800)))).isoformat(),
              subtype="multi-drug resistant", ecog=int(rng.integers(0, 3)))  # fmt: skip
        relation = str(rng.choice(["child", "sibling", "parent", "unrelated"], p=[0.4, 0.3, 0.1, 0.2]))
        did = f"{pid}-D1"
        t.add("donors", donor_id=did, patient_id=pid, relation=relation, sex=donor_sex, age=int(rng.integers(18, 60)),
              hla_mismatches=int(rng.integers(2, 5) if relation == "unrelated" else rng.integers(3, 6)),
              hla_out_of=10)  # fmt: skip
        t.add("attributes", patient_id=pid, item="cd20_status", value_text=cd20)
        prior_auto = int(rng.integers(1, 3)) if disease == "MM" else int(rng.integers(0, 2)) if disease == "NHL" else 0
        prior_allo = int(rng.random() < 0.3) if disease in ("AML", "ALL") else 0
        t.add("attributes", patient_id=pid, item="prior_auto_hct", value=prior_auto)
        t.add("attributes", patient_id=pid, item="prior_allo_hct", value=prior_allo)
        next_event = min(d for d in (relapse, death, last_day) if d is not None)
        courses = 2 if next_event > 150 and rng.random() < 0.5 else 1
        for k in range(courses):
            day0 = k * 91
            cid = f"{pid}-C{k + 1}"
            t.add("courses", course_id=cid, patient_id=pid, number=k + 1, kind="conditioning",
                  regimen=str(rng.choice(["cyclophosphamide", "cyclophosphamide + fludarabine"])),
                  start_date=at(day0 - 5), end_date=at(day0 - 2))  # fmt: skip
            if cd20 == "positive":
                t.add("interventions", patient_id=pid, agent="rituximab", start_date=at(day0 - 1), dose=375.0,
                      unit="mg/m2", per_kg=False, route="iv", course_id=cid)  # fmt: skip
            t.add("infusions", infusion_id=f"{pid}-I{k + 1}", patient_id=pid, course_id=cid, donor_id=did,
                  date=at(day0), product="IMAK", mnc_per_kg=_r(rng.uniform(1.0, 3.0)),
                  cd3_per_kg=_r(rng.uniform(0.5, 2.0)))  # fmt: skip
            for term, soc, grades, offset, p in IMAK_AES:
                if rng.random() < p:
                    t.add("adverse_events", patient_id=pid, start_date=at(day0 + offset), term=term, soc=soc,
                          grade=int(rng.integers(grades[0], grades[1] + 1)))  # fmt: skip
            t.add("assessments", patient_id=pid, item="agvhd_grade", date=at(day0 + 30), visit=f"course {k + 1}",
                  value_text="0")  # fmt: skip
        if cr:
            response = "CR"
        else:
            response = str(rng.choice(IMAK_NON_CR[item]))
        t.add("assessments", patient_id=pid, item=item, date=at(30), visit="day +30", value_text=response)
        if female_of_male:  # sex-chromosome FISH of blood: donor cells detectable up to day +6 only
            for d in (1, 3, 6, 10, 14, 28):
                detected = d <= 6
                t.add("observations", patient_id=pid, item="chimerism_pct", date=at(d), visit=f"day +{d}",
                      value=_r(rng.uniform(0.3, 4.0)) if detected else None, unit="%", specimen="peripheral blood",
                      lod=0.1, below_lod=not detected)  # fmt: skip
        if relapse is not None:
            kind = "progression" if disease == "MM" else "extramedullary" if disease == "NHL" else "hematologic"
            t.add("relapses", patient_id=pid, date=at(relapse), kind=kind)
        if death is not None:
            cause = "progression" if disease == "MM" else "relapse" if cr else "refractory disease"
            t.add("deaths", patient_id=pid, date=at(death), cause=cause)
        t.add("follow_up", patient_id=pid, last_contact_date=at(last_day))
    return t.records()
