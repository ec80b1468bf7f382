"""Graft-versus-host disease: acute organ staging and grading (MAGIC 2016, Keystone/modified Glucksberg,
IBMTR index), maximum grade over a series, day-28 response, and NIH 2014 chronic GVHD global severity.

Sources (``reference/clinical-definitions.md`` §1–2): Harris et al., BBMT 2016;22:4–10 (MAGIC staging and the
top-down grade); Przepiorka et al., BMT 1995;15:825 (Keystone); Rowlings et al., BJH 1997;97:855 (IBMTR);
Jagasia et al., BBMT 2015;21:389–401 (NIH 2014). Choices where the sources leave a gap are parameters and are
written into each result's ``rule``:

* bilirubin bands: 0 if < 2.0; 1 if 2.0–3.0; 2 if > 3.0–6.0; 3 if > 6.0–15.0; 4 if > 15.0 mg/dL;
* lower GI: the measured stool volume decides when given (unmeasured episodes add 200 mL each, 3 mL/kg for a
  child), the episode count only when no volume was measured; a child is a patient of ≤ 50 kg;
* Keystone grade IV from gut stage 4 is off by default (Przepiorka 1995; some reproductions put it in IV).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from allotrack.clinical import _check
from allotrack.errors import InputError

MAGIC = "MAGIC 2016 (Harris et al., BBMT 2016;22:4-10)"
KEYSTONE = "Keystone / modified Glucksberg (Przepiorka et al., BMT 1995;15:825)"
IBMTR = "IBMTR severity index (Rowlings et al., BJH 1997;97:855)"
NIH2014 = "NIH 2014 consensus (Jagasia et al., BBMT 2015;21:389-401)"
BILIRUBIN_UMOL_PER_MG_DL = 17.1
ORGANS = ("skin", "liver", "upper_gi", "lower_gi")
ROMAN = {0: "0", 1: "I", 2: "II", 3: "III", 4: "IV"}


@dataclass(frozen=True)
class OrganStage:
    """An organ stage with the values that produced it and the rule applied."""

    organ: str
    stage: int
    rule: str
    inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GvhdGrade:
    """An overall grade (0–4; ``label`` as 0/I–IV or IBMTR A–D) with the organ stages and the rule that fired."""

    grade: int
    label: str
    system: str
    stages: Mapping[str, int]
    reason: str


# ----------------------------------------------------------------------------------------------- staging
def _skin(bsa_percent: float, bullae: bool = False, desquamation_percent: float = 0.0) -> OrganStage:
    bsa = _check.number("skin bsa_percent", bsa_percent, 0, 100, "% BSA")
    desq = _check.number("skin desquamation_percent", desquamation_percent, 0, 100, "% BSA")
    if bsa > 50 and bullae and desq > 5:
        s = 4
    elif bsa > 50:
        s = 3
    elif bsa >= 25:
        s = 2
    elif bsa > 0:
        s = 1
    else:
        s = 0
    return OrganStage("skin", s, MAGIC, {"bsa_percent": bsa, "bullae": bullae, "desquamation_percent": desq})


def _liver(bilirubin: float, unit: str = "mg/dL") -> OrganStage:
    unit = _check.choice("liver bilirubin unit", unit, ("mg/dL", "umol/L", "µmol/L"))
    value = _check.number("liver bilirubin", bilirubin, 0, None, unit)
    mg = value if unit == "mg/dL" else value / BILIRUBIN_UMOL_PER_MG_DL
    if mg > 100:
        raise InputError(
            f"liver bilirubin {value!r} {unit} is {mg:.0f} mg/dL, beyond any plausible value: check the unit",
            column="bilirubin",
        )
    s = 0 if mg < 2.0 else 1 if mg <= 3.0 else 2 if mg <= 6.0 else 3 if mg <= 15.0 else 4
    return OrganStage("liver", s, MAGIC + "; bands <2, 2-3, >3-6, >6-15, >15 mg/dL", {"bilirubin_mg_dl": mg})


def _upper_gi(persistent_symptoms: bool) -> OrganStage:
    if not isinstance(persistent_symptoms, bool):
        raise InputError(f"upper_gi persistent_symptoms must be True or False, got {persistent_symptoms!r}")
    return OrganStage("upper_gi", int(persistent_symptoms), MAGIC, {"persistent_symptoms": persistent_symptoms})


def _lower_gi(
    stool_ml: float | None = None,
    episodes: int | None = None,
    unmeasured_episodes: int = 0,
    weight_kg: float | None = None,
    severe_pain: bool = False,
    bloody_stool: bool = False,
    ileus: bool = False,
) -> OrganStage:
    child = False
    if weight_kg is not None:
        child = _check.number("lower_gi weight_kg", weight_kg, 0.5, 400, "kg") <= 50
    inputs: dict[str, Any] = {"stool_ml": stool_ml, "episodes": episodes, "unmeasured_episodes": unmeasured_episodes,
                              "weight_kg": weight_kg, "severe_pain": severe_pain, "bloody_stool": bloody_stool,
                              "ileus": ileus, "child": child}  # fmt: skip
    if severe_pain or bloody_stool:
        return OrganStage("lower_gi", 4, MAGIC + "; severe pain (± ileus) or grossly bloody stool", inputs)
    extra = _check.number("lower_gi unmeasured_episodes", unmeasured_episodes, 0, 100)
    if stool_ml is not None or extra:
        volume = 0.0 if stool_ml is None else _check.number("lower_gi stool_ml", stool_ml, 0, 20000, "mL/day")
        if child:
            assert weight_kg is not None
            per_kg = volume / weight_kg + 3.0 * extra
            s = 0 if per_kg < 10 else 1 if per_kg < 20 else 2 if per_kg <= 30 else 3
            return OrganStage("lower_gi", s, MAGIC + "; child volume mL/kg/day (3 mL/kg per unmeasured episode)",
                              {**inputs, "ml_per_kg": per_kg})  # fmt: skip
        volume += 200.0 * extra
        s = 0 if volume < 500 else 1 if volume < 1000 else 2 if volume <= 1500 else 3
        return OrganStage("lower_gi", s, MAGIC + "; adult volume mL/day (200 mL per unmeasured episode)",
                          {**inputs, "ml": volume})  # fmt: skip
    if episodes is None:
        raise InputError("lower_gi needs stool_ml (measured volume) or episodes (count per day)", column="lower_gi")
    n = _check.number("lower_gi episodes", episodes, 0, 100)
    if child:
        s = 0 if n < 4 else 1 if n <= 6 else 2 if n <= 10 else 3
    else:
        s = 0 if n < 3 else 1 if n <= 4 else 2 if n <= 7 else 3
    return OrganStage("lower_gi", s, MAGIC + "; episodes per day (no measured volume)", inputs)


_STAGERS = {"skin": _skin, "liver": _liver, "upper_gi": _upper_gi, "lower_gi": _lower_gi}


def magic_stage(organ: str, **values: Any) -> OrganStage:
    """MAGIC organ stage from raw values.

    ``skin``: bsa_percent, bullae, desquamation_percent; ``liver``: bilirubin, unit ("mg/dL" or "umol/L");
    ``upper_gi``: persistent_symptoms; ``lower_gi``: stool_ml and/or unmeasured_episodes, or episodes, with
    weight_kg (≤ 50 kg stages as a child), severe_pain, bloody_stool, ileus.
    """
    organ = _check.choice("organ", organ, ORGANS)
    try:
        return _STAGERS[organ](**values)  # type: ignore[operator]
    except TypeError as err:
        raise InputError(f"unexpected values for organ {organ!r}: {err}", column=organ) from err


# ----------------------------------------------------------------------------------------------- grading
def magic_grade(skin: int = 0, liver: int = 0, upper_gi: int = 0, lower_gi: int = 0) -> GvhdGrade:
    """MAGIC overall grade, checked top-down (not the maximum stage): IV if skin, liver or lower GI stage 4;
    III if liver or lower GI 2–3; II if skin 3 or liver, upper GI or lower GI 1; I if skin 1–2 only."""
    st = {
        "skin": _check.stage("skin", skin, range(5)),
        "liver": _check.stage("liver", liver, range(5)),
        "upper_gi": _check.stage("upper_gi", upper_gi, range(2)),
        "lower_gi": _check.stage("lower_gi", lower_gi, range(5)),
    }
    if st["skin"] == 4 or st["liver"] == 4 or st["lower_gi"] == 4:
        g, why = 4, "stage 4 skin, liver or lower GI"
    elif st["liver"] in (2, 3) or st["lower_gi"] in (2, 3):
        g, why = 3, "stage 2-3 liver or lower GI"
    elif st["skin"] == 3 or st["liver"] == 1 or st["upper_gi"] == 1 or st["lower_gi"] == 1:
        g, why = 2, "stage 3 skin or stage 1 liver, upper GI or lower GI"
    elif st["skin"] in (1, 2):
        g, why = 1, "stage 1-2 skin without other organ involvement"
    else:
        g, why = 0, "no organ involvement"
    return GvhdGrade(g, ROMAN[g], MAGIC, st, why)


def glucksberg_grade(skin: int = 0, liver: int = 0, gut: int = 0, gut_stage4_is_grade_iv: bool = False) -> GvhdGrade:
    """Keystone / modified Glucksberg grade: I skin 1–2 only; II skin 3 or liver 1 or gut 1; III liver 2–3 or
    gut 2–4; IV skin 4 or liver 4 (gut 4 too with ``gut_stage4_is_grade_iv``)."""
    st = {
        "skin": _check.stage("skin", skin, range(5)),
        "liver": _check.stage("liver", liver, range(5)),
        "gut": _check.stage("gut", gut, range(5)),
    }
    if st["skin"] == 4 or st["liver"] == 4 or (gut_stage4_is_grade_iv and st["gut"] == 4):
        g, why = 4, "stage 4 skin or liver" + (" or gut" if gut_stage4_is_grade_iv else "")
    elif st["liver"] in (2, 3) or st["gut"] >= 2:
        g, why = 3, "stage 2-3 liver or stage 2-4 gut"
    elif st["skin"] == 3 or st["liver"] == 1 or st["gut"] == 1:
        g, why = 2, "stage 3 skin or stage 1 liver or gut"
    elif st["skin"] in (1, 2):
        g, why = 1, "stage 1-2 skin only"
    else:
        g, why = 0, "no organ involvement"
    rule = KEYSTONE + ("; gut stage 4 counted as grade IV" if gut_stage4_is_grade_iv else "")
    return GvhdGrade(g, ROMAN[g], rule, st, why)


def ibmtr_index(skin: int = 0, liver: int = 0, gut: int = 0) -> GvhdGrade:
    """IBMTR severity index: D any stage 4; C any stage 3; B skin 2 or liver/gut 1–2; A skin 1 only."""
    st = {
        "skin": _check.stage("skin", skin, range(5)),
        "liver": _check.stage("liver", liver, range(5)),
        "gut": _check.stage("gut", gut, range(5)),
    }
    top = max(st.values())
    if top == 4:
        g, label, why = 4, "D", "stage 4 in any organ"
    elif top == 3:
        g, label, why = 3, "C", "stage 3 in any organ"
    elif st["skin"] == 2 or st["liver"] >= 1 or st["gut"] >= 1:
        g, label, why = 2, "B", "skin 2 or liver/gut 1-2"
    elif st["skin"] == 1:
        g, label, why = 1, "A", "skin 1 only"
    else:
        g, label, why = 0, "0", "no organ involvement"
    return GvhdGrade(g, label, IBMTR, st, why)


@dataclass(frozen=True)
class MaximumGrade:
    """Highest grade over a series and the first date it was reached (None when no assessment had GVHD)."""

    grade: int
    label: str
    first_date: date | None
    n_assessments: int


def maximum_grade(assessments: Iterable[tuple[date, GvhdGrade]]) -> MaximumGrade:
    """Maximum overall grade over dated assessments — the usual registry outcome ("maximum grade of aGVHD")."""
    items = sorted(assessments, key=lambda a: a[0])
    if not items:
        raise InputError("maximum_grade needs at least one dated assessment", column="assessments")
    best = max(items, key=lambda a: a[1].grade)[1]
    first = next(d for d, g in items if g.grade == best.grade) if best.grade > 0 else None
    return MaximumGrade(best.grade, best.label, first, len(items))


# ----------------------------------------------------------------------------------------------- response
@dataclass(frozen=True)
class GvhdResponse:
    category: str  # CR, PR, mixed, no response, progression
    rule: str
    changes: Mapping[str, int]


def day28_response(
    baseline: Mapping[str, int], day28: Mapping[str, int], new_systemic_therapy: bool = False
) -> GvhdResponse:
    """aGVHD treatment response at day 28 (MAGIC/ASBMT convention): CR all organs 0; PR ≥ 1 organ improved by ≥ 1
    stage and none worse; mixed improvement and worsening; progression worse without improvement; otherwise no
    response. New systemic therapy before day 28 counts as no response (intention-to-treat)."""
    organs = sorted(set(baseline) | set(day28))
    for o in organs:
        if o not in ORGANS:
            raise InputError(f"unknown organ {o!r}; organs are {ORGANS}", column="organ")
    change = {o: _check.stage(o, day28.get(o, 0), range(5)) - _check.stage(o, baseline.get(o, 0), range(5))
              for o in organs}  # fmt: skip
    rule = "day-28 response (MAGIC/ASBMT); new systemic therapy = no response"
    if new_systemic_therapy:
        return GvhdResponse("no response", rule, change)
    better = any(c < 0 for c in change.values())
    worse = any(c > 0 for c in change.values())
    if all(day28.get(o, 0) == 0 for o in organs) and any(baseline.get(o, 0) > 0 for o in organs):
        cat = "CR"
    elif better and worse:
        cat = "mixed"
    elif better:
        cat = "PR"
    elif worse:
        cat = "progression"
    else:
        cat = "no response"
    return GvhdResponse(cat, rule, change)


# ----------------------------------------------------------------------------------------------- chronic
NIH_ORGANS = ("skin", "mouth", "eyes", "gi", "liver", "lungs", "joints", "genital")


@dataclass(frozen=True)
class CgvhdSeverity:
    severity: str  # none, mild, moderate, severe
    rule: str
    scores: Mapping[str, int]


def nih_cgvhd_severity(scores: Mapping[str, int], excluded: Sequence[str] = ()) -> CgvhdSeverity:
    """NIH 2014 global severity from organ scores 0–3 (skin = max of BSA and sclerosis scores; lungs = FEV1
    score). Severe: any score 3 or lung ≥ 2; moderate: ≥ 3 organs scoring 1, any non-lung organ 2, or lung 1;
    mild: 1–2 organs scoring 1 and lung 0. Organs whose abnormality is wholly explained by another documented
    cause are passed in ``excluded``."""
    for organ in scores:
        if organ not in NIH_ORGANS:
            raise InputError(f"unknown NIH organ {organ!r}; organs are {NIH_ORGANS}", column="organ")
    s = {o: _check.stage(o, v, range(4)) for o, v in scores.items() if o not in excluded}
    lung = s.get("lungs", 0)
    others = {o: v for o, v in s.items() if o != "lungs"}
    involved = [o for o, v in s.items() if v > 0]
    if any(v == 3 for v in s.values()) or lung >= 2:
        sev = "severe"
    elif sum(1 for v in s.values() if v >= 1) >= 3 or any(v == 2 for v in others.values()) or lung == 1:
        sev = "moderate"
    elif 1 <= len(involved) <= 2:
        sev = "mild"
    else:
        sev = "none"
    return CgvhdSeverity(sev, NIH2014, s)


# ----------------------------------------------------------------------------------------------- steroid response
@dataclass(frozen=True)
class SteroidResponse:
    category: str  # steroid-refractory, steroid-dependent, steroid-sensitive, not evaluable
    reason: str
    rule: str


def steroid_response(
    steroid_start: date,
    grades: Sequence[tuple[date, int]],
    doses_mg_per_kg: Sequence[tuple[date, float]] = (),
    steroid_dose_mg_per_kg: float = 2.0,
    progression_window_days: int = 3,
    no_response_window_days: int = 7,
    incomplete_response_window_days: int = 28,
) -> SteroidResponse:
    """Steroid-refractory / -dependent acute GVHD (EBMT–NIH–CIBMTR task force, Schoemans et al., BMT 2018;
    windows are protocol parameters).

    Refractory: progression within ``progression_window_days`` of starting ≥ ``steroid_dose_mg_per_kg``; no
    improvement by ``no_response_window_days``; or GVHD still present after ``incomplete_response_window_days``.
    Dependent: improvement first, then a flare while the dose is tapered below the starting dose. ``grades`` are
    dated overall grades (0–4) including the one at the start.
    """
    if not grades:
        raise InputError("steroid_response needs dated GVHD grades", column="grades")
    items = sorted((d, _check.stage("grade", g, range(5))) for d, g in grades)
    base = [g for d, g in items if d <= steroid_start]
    if not base or base[-1] == 0:
        return SteroidResponse("not evaluable", "no active GVHD at the start of steroids", "")
    baseline = base[-1]
    rule = (f"Schoemans 2018: >= {steroid_dose_mg_per_kg:g} mg/kg; progression by day {progression_window_days}, "
            f"no improvement by day {no_response_window_days}, incomplete response at day "
            f"{incomplete_response_window_days}")  # fmt: skip
    after = [((d - steroid_start).days, g) for d, g in items if d > steroid_start]
    for day, g in after:
        if day <= progression_window_days and g > baseline:
            return SteroidResponse("steroid-refractory", f"progression to grade {g} on day {day}", rule)
    by_window = [g for day, g in after if day <= no_response_window_days]
    later = [(day, g) for day, g in after if day >= no_response_window_days]
    if later and min([*by_window, later[0][1]]) >= baseline:
        return SteroidResponse("steroid-refractory", f"no improvement by day {no_response_window_days}", rule)
    if not later and (not by_window or min(by_window) >= baseline):
        reason = f"no improvement yet and no assessment from day {no_response_window_days}"
        return SteroidResponse("not evaluable", reason, rule)
    start_dose = _check.number("steroid_dose_mg_per_kg", steroid_dose_mg_per_kg, 0.1, 10, "mg/kg")
    doses = sorted(doses_mg_per_kg)

    def dose_on(day_date: date) -> float:
        current = start_dose
        for d, v in doses:
            if d <= day_date:
                current = _check.number("dose", v, 0, 20, "mg/kg")
        return current

    best = baseline
    for day, g in after:
        when = steroid_start.fromordinal(steroid_start.toordinal() + day)
        if g < best:
            best = g
        elif g > best and best < baseline and dose_on(when) < start_dose:
            return SteroidResponse("steroid-dependent", f"flare to grade {g} on day {day} during the taper", rule)
    final = [(day, g) for day, g in after if day >= incomplete_response_window_days]
    if final and final[0][1] > 0 and dose_on(steroid_start.fromordinal(steroid_start.toordinal() + final[0][0])) > 0:
        return SteroidResponse("steroid-refractory", f"incomplete response on day {final[0][0]}", rule)
    return SteroidResponse("steroid-sensitive", "improved without flare during the taper", rule)
