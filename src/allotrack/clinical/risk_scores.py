"""Baseline risk scores: HCT-CI, ELN 2022 genetic risk, ISS / R-ISS / R2-ISS, Durie–Salmon, and Karnofsky ↔
ECOG (``reference/clinical-definitions.md`` §9). Each returns a small result with the rule it applied."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from allotrack.clinical import _check
from allotrack.errors import InputError

HCTCI_WEIGHTS: Mapping[str, int] = {
    "arrhythmia": 1, "cardiac": 1, "inflammatory_bowel_disease": 1, "diabetes": 1, "cerebrovascular": 1,
    "psychiatric": 1, "hepatic_mild": 1, "obesity": 1, "infection": 1, "rheumatologic": 2, "peptic_ulcer": 2,
    "renal": 2, "pulmonary_moderate": 2, "prior_solid_tumor": 3, "heart_valve": 3, "pulmonary_severe": 3,
    "hepatic_moderate_severe": 3,
}  # fmt: skip


@dataclass(frozen=True)
class Score:
    value: float
    category: str
    rule: str
    components: Mapping[str, float] = field(default_factory=dict)


def hct_ci(items: Iterable[str]) -> Score:
    """HCT-CI (Sorror et al., Blood 2005;106:2912) from the comorbidities present; hepatic and pulmonary grades
    are mutually exclusive (the worse counts). Risk: 0 low, 1–2 intermediate, ≥ 3 high."""
    present = set(items)
    unknown = present - set(HCTCI_WEIGHTS)
    if unknown:
        raise InputError(f"unknown HCT-CI item(s) {sorted(unknown)}; items are {sorted(HCTCI_WEIGHTS)}", column="items")
    if {"hepatic_mild", "hepatic_moderate_severe"} <= present:
        present.discard("hepatic_mild")
    if {"pulmonary_moderate", "pulmonary_severe"} <= present:
        present.discard("pulmonary_moderate")
    comps = {k: float(HCTCI_WEIGHTS[k]) for k in sorted(present)}
    total = sum(comps.values())
    cat = "low" if total == 0 else "intermediate" if total <= 2 else "high"
    return Score(total, cat, "HCT-CI (Sorror 2005); 0 low, 1-2 intermediate, >=3 high", comps)


ELN_FAVORABLE_CYTO = {"t(8;21)", "inv(16)", "t(16;16)"}
ELN_ADVERSE_CYTO = {"t(6;9)", "KMT2A-rearranged", "t(9;22)", "t(8;16)", "inv(3)", "t(3;3)", "MECOM-rearranged",
                    "-5", "del(5q)", "-7", "-17", "abn(17p)", "complex", "monosomal"}  # fmt: skip
ELN_INTERMEDIATE_CYTO = {"t(9;11)"}
ELN_MR_GENES = {"ASXL1", "BCOR", "EZH2", "RUNX1", "SF3B1", "SRSF2", "STAG2", "U2AF1", "ZRSR2"}


def eln2022_risk(
    cytogenetics: Iterable[str] = (),
    npm1: bool = False,
    flt3_itd: bool = False,
    cebpa_bzip: bool = False,
    mutations: Iterable[str] = (),
    tp53_vaf: float | None = None,
) -> Score:
    """ELN 2022 genetic risk at diagnosis (Döhner et al., Blood 2022;140:1345–77).

    Precedence: adverse cytogenetics override everything (NPM1 with adverse cytogenetics is adverse); TP53 with
    VAF ≥ 10 % is adverse; CBF-AML, NPM1 without FLT3-ITD and in-frame bZIP CEBPA are favourable, and the
    myelodysplasia-related gene mutations do not make them adverse (the 2022 footnote, not the cruder reading
    that every adverse marker overrides); otherwise MR-gene mutations are adverse; everything else, including
    FLT3-ITD and t(9;11), is intermediate. Cytogenetic labels: {fav}, {adv}, t(9;11).
    """
    cyto = set(cytogenetics)
    known = ELN_FAVORABLE_CYTO | ELN_ADVERSE_CYTO | ELN_INTERMEDIATE_CYTO | {"normal", "other"}
    unknown = cyto - known
    if unknown:
        raise InputError(f"unknown cytogenetic label(s) {sorted(unknown)}; use {sorted(known)}", column="cytogenetics")
    muts = {m.upper() for m in mutations}
    unknown_m = muts - ELN_MR_GENES - {"TP53", "KIT", "FLT3", "NPM1", "CEBPA", "DNMT3A", "TET2", "IDH1", "IDH2"}
    if unknown_m:
        raise InputError(f"unknown mutation(s) {sorted(unknown_m)}", column="mutations")
    vaf = None if tp53_vaf is None else _check.number("tp53_vaf", tp53_vaf, 0, 100, "%")
    rule = "ELN 2022 genetic risk (Dohner 2022); MR-gene mutations not adverse with favourable subtypes"
    if cyto & ELN_ADVERSE_CYTO:
        return Score(3, "adverse", rule, {"adverse cytogenetics": 1})
    if vaf is not None and vaf >= 10:
        return Score(3, "adverse", rule, {"TP53 VAF >= 10%": 1})
    if cyto & ELN_FAVORABLE_CYTO:
        return Score(1, "favorable", rule, {"CBF-AML": 1})
    if npm1 and not flt3_itd:
        return Score(1, "favorable", rule, {"NPM1 without FLT3-ITD": 1})
    if cebpa_bzip:
        return Score(1, "favorable", rule, {"CEBPA bZIP": 1})
    if muts & ELN_MR_GENES:
        return Score(3, "adverse", rule, {"MR-gene mutation": 1})
    return Score(2, "intermediate", rule, {})


def iss(beta2m_mg_l: float, albumin_g_dl: float) -> Score:
    """ISS (Greipp 2005): I β2M < 3.5 mg/L and albumin ≥ 3.5 g/dL; III β2M ≥ 5.5 mg/L; II otherwise."""
    b = _check.number("beta2m_mg_l", beta2m_mg_l, 0, 100, "mg/L")
    a = _check.number("albumin_g_dl", albumin_g_dl, 0, 10, "g/dL")
    stage = 1 if b < 3.5 and a >= 3.5 else 3 if b >= 5.5 else 2
    return Score(stage, ["I", "II", "III"][stage - 1], "ISS (Greipp 2005)", {"beta2m": b, "albumin": a})


def r_iss(iss_stage: int, ldh_high: bool, high_risk_fish: bool) -> Score:
    """R-ISS (Palumbo 2015): I ISS I, normal LDH, no del(17p)/t(4;14)/t(14;16); III ISS III with high LDH or
    high-risk FISH; II otherwise."""
    s = _check.stage("iss_stage", iss_stage, range(1, 4))
    stage = 1 if s == 1 and not ldh_high and not high_risk_fish else 3 if s == 3 and (ldh_high or high_risk_fish) else 2
    return Score(stage, ["I", "II", "III"][stage - 1], "R-ISS (Palumbo 2015)")


def r2_iss(iss_stage: int, ldh_high: bool, del17p: bool, t4_14: bool, gain1q: bool) -> Score:
    """R2-ISS (D'Agostino 2022): ISS II 1, ISS III 1.5, high LDH 1, del(17p) 1, t(4;14) 1, 1q gain 0.5;
    total 0 I, 0.5–1 II, 1.5–2.5 III, 3–5 IV."""
    s = _check.stage("iss_stage", iss_stage, range(1, 4))
    comps = {"ISS": {1: 0.0, 2: 1.0, 3: 1.5}[s], "LDH": 1.0 * ldh_high, "del(17p)": 1.0 * del17p,
             "t(4;14)": 1.0 * t4_14, "1q gain": 0.5 * gain1q}  # fmt: skip
    total = sum(comps.values())
    stage = 1 if total == 0 else 2 if total <= 1 else 3 if total <= 2.5 else 4
    return Score(total, ["I", "II", "III", "IV"][stage - 1], "R2-ISS (D'Agostino 2022)", comps)


def durie_salmon(
    hemoglobin_g_dl: float, calcium_mg_dl: float, lytic_lesions: int, igg_g_dl: float = 0.0, iga_g_dl: float = 0.0,
    urine_light_chain_g_24h: float = 0.0, creatinine_mg_dl: float = 1.0,
) -> Score:  # fmt: skip
    """Durie–Salmon (1975) stage I–III with subclass A/B (creatinine < 2.0 / ≥ 2.0 mg/dL). "Advanced lytic
    lesions" is taken as ≥ 3 lesions (the sources give no number); a solitary lesion still allows stage I."""
    hb = _check.number("hemoglobin_g_dl", hemoglobin_g_dl, 0, 25, "g/dL")
    ca = _check.number("calcium_mg_dl", calcium_mg_dl, 0, 25, "mg/dL")
    lesions = int(_check.number("lytic_lesions", lytic_lesions, 0, 1000))
    igg = _check.number("igg_g_dl", igg_g_dl, 0, 20, "g/dL")
    iga = _check.number("iga_g_dl", iga_g_dl, 0, 20, "g/dL")
    ulc = _check.number("urine_light_chain_g_24h", urine_light_chain_g_24h, 0, 50, "g/24h")
    cr = _check.number("creatinine_mg_dl", creatinine_mg_dl, 0, 30, "mg/dL")
    stage3 = hb < 8.5 or ca > 12 or lesions >= 3 or igg > 7 or iga > 5 or ulc > 12
    stage1 = hb > 10 and ca <= 12 and lesions <= 1 and igg < 5 and iga < 3 and ulc < 4
    stage = 3 if stage3 else 1 if stage1 else 2
    sub = "A" if cr < 2.0 else "B"
    return Score(stage, f"{['I', 'II', 'III'][stage - 1]}{sub}", "Durie-Salmon 1975; advanced lytic = >=3 lesions")


_KPS_TO_ECOG = {100: 0, 90: 0, 80: 1, 70: 1, 60: 2, 50: 2, 40: 3, 30: 3, 20: 4, 10: 4, 0: 5}


def kps_to_ecog(kps: int) -> int:
    """Conventional Karnofsky → ECOG mapping (not exact: keep the recorded scale)."""
    if kps not in _KPS_TO_ECOG:
        raise InputError(f"Karnofsky score must be a multiple of 10 from 0 to 100, got {kps!r}", column="kps")
    return _KPS_TO_ECOG[kps]


def ecog_to_kps_range(ecog: int) -> tuple[int, int]:
    """The Karnofsky range a given ECOG corresponds to (e.g. ECOG 1 → 70–80)."""
    e = _check.stage("ecog", ecog, range(6))
    values = [k for k, v in _KPS_TO_ECOG.items() if v == e]
    return min(values), max(values)
