"""Cytokine release syndrome and ICANS — ASTCT consensus grading (Lee et al., BBMT 2019;25:625–638;
``reference/clinical-definitions.md`` §3).

CRS: fever ≥ 38.0 °C is required (unless masked by antipyretics or anti-cytokine therapy, ``fever_masked``);
the grade is the worse of the hypotension axis (none 1; no vasopressor 2; one vasopressor ± vasopressin 3;
several vasopressors excluding vasopressin 4) and the hypoxia axis (none 1; low-flow ≤ 6 L/min or blow-by 2;
high-flow > 6 L/min, facemask, non-rebreather or Venturi 3; positive pressure 4). ICANS: the worst of the ICE
score, level of consciousness, seizures, motor weakness and cerebral oedema domains (adults and children > 12 y).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from allotrack.clinical import _check
from allotrack.errors import InputError

ASTCT = "ASTCT 2019 (Lee et al., BBMT 2019;25:625-638)"


@dataclass(frozen=True)
class CrsGrade:
    grade: int
    rule: str
    hypotension_grade: int
    hypoxia_grade: int
    reason: str


def astct_crs_grade(
    temperature_c: float | None = None,
    fever: bool | None = None,
    fever_masked: bool = False,
    hypotension: bool = False,
    vasopressors: int = 0,
    vasopressin: bool = False,
    oxygen_l_min: float = 0.0,
    high_flow: bool = False,
    positive_pressure: bool = False,
) -> CrsGrade:
    """ASTCT CRS grade 0–4 from bedside values.

    ``vasopressors`` counts vasopressors other than vasopressin; vasopressin with one vasopressor stays
    grade 3. ``oxygen_l_min`` > 6 or ``high_flow`` (high-flow cannula, facemask, non-rebreather, Venturi) is
    grade 3; ``positive_pressure`` (CPAP, BiPAP, ventilation) grade 4.
    """
    if temperature_c is not None:
        t = _check.number("temperature_c", temperature_c, 25, 45, "°C")
        febrile = t >= 38.0
        if fever is not None and fever != febrile:
            raise InputError(f"fever={fever} contradicts temperature_c={temperature_c}", column="fever")
    elif fever is not None:
        febrile = bool(fever)
    else:
        raise InputError("give temperature_c (°C) or fever (True/False)", column="temperature_c")
    n_press = int(_check.number("vasopressors", vasopressors, 0, 10))
    flow = _check.number("oxygen_l_min", oxygen_l_min, 0, 80, "L/min")
    if n_press >= 2:
        hypo = 4
    elif n_press == 1:
        hypo = 3
    elif hypotension or vasopressin:
        hypo = 3 if vasopressin else 2
    else:
        hypo = 1
    if positive_pressure:
        oxy = 4
    elif high_flow or flow > 6:
        oxy = 3
    elif flow > 0:
        oxy = 2
    else:
        oxy = 1
    if not (febrile or fever_masked):
        return CrsGrade(0, ASTCT, hypo, oxy, "no fever (and fever not masked by treatment): no CRS")
    grade = max(hypo, oxy)
    axis = "hypotension" if hypo >= oxy else "hypoxia"
    return CrsGrade(grade, ASTCT, hypo, oxy, f"fever with grade {grade} {axis}")


def worst_crs_grade(grades: Iterable[CrsGrade]) -> int:
    """Worst CRS grade over the assessments after one infusion (0 when none had CRS)."""
    return max((g.grade for g in grades), default=0)


def ice_score(orientation: int, naming: int, commands: int, writing: int, attention: int) -> int:
    """Immune effector cell encephalopathy score (0–10): orientation to year, month, city, hospital (0–4);
    naming 3 objects (0–3); following simple commands (0–1); writing a standard sentence (0–1); counting
    backwards from 100 by 10 (0–1)."""
    parts = [
        _check.stage("orientation", orientation, range(5)),
        _check.stage("naming", naming, range(4)),
        _check.stage("commands", commands, range(2)),
        _check.stage("writing", writing, range(2)),
        _check.stage("attention", attention, range(2)),
    ]
    return sum(parts)


CONSCIOUSNESS = ("normal", "awakens spontaneously", "awakens to voice", "awakens to touch", "unarousable")
SEIZURE = ("none", "rapidly resolving", "prolonged or repetitive")
EDEMA = ("none", "focal", "diffuse")
_SEIZURE_GRADE = {"none": 0, "rapidly resolving": 3, "prolonged or repetitive": 4}
_EDEMA_GRADE = {"none": 0, "focal": 3, "diffuse": 4}


@dataclass(frozen=True)
class IcansGrade:
    grade: int
    rule: str
    domains: dict[str, int]


def astct_icans_grade(
    ice: int | None,
    consciousness: str = "normal",
    seizure: str = "none",
    motor_weakness: bool = False,
    edema: str = "none",
) -> IcansGrade:
    """ASTCT ICANS grade 0–4 (adults and children > 12 y). ``ice=None`` means the patient could not perform
    the ICE assessment (grade 4 when unarousable); ICE 0 while awake (global aphasia) is grade 3."""
    consciousness = _check.choice("consciousness", consciousness, CONSCIOUSNESS)
    seizure = _check.choice("seizure", seizure, SEIZURE)
    edema = _check.choice("edema", edema, EDEMA)
    if ice is None:
        if consciousness != "unarousable":
            raise InputError("ice=None (ICE not performed) is only valid for an unarousable patient", column="ice")
        ice_grade = 4
    else:
        v = _check.stage("ice", ice, range(11))
        ice_grade = 0 if v == 10 else 1 if v >= 7 else 2 if v >= 3 else 3
    domains = {
        "ice": ice_grade,
        "consciousness": CONSCIOUSNESS.index(consciousness),
        "seizure": _SEIZURE_GRADE[seizure],
        "motor": 4 if motor_weakness else 0,
        "edema": _EDEMA_GRADE[edema],
    }
    return IcansGrade(max(domains.values()), ASTCT, domains)
