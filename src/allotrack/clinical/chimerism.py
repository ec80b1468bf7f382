"""Donor chimerism from STR peak areas, InDel/SNP qPCR Ct values or XY-FISH counts; reporting categories;
and the microtransplantation GVHD-risk alert (``reference/clinical-definitions.md`` §6, §11).

STR (per informative locus; A = peak area of an allele in the post-infusion sample):
no shared alleles %R = ΣA(R-specific)/[ΣA(R-specific)+ΣA(D-specific)]; one shared allele, both heterozygous
%R = A_b/(A_b + A_c); recipient heterozygous, donor homozygous for the shared allele %R = 2A_b/(A_a + A_b);
donor heterozygous, recipient homozygous for the shared allele %D = 2A_c/(A_a + A_c); identical genotypes are
not informative. Loci where a recipient-specific allele sits in the stutter position (n − 1 repeat) of a donor
allele are excluded (the simple choice of the two the standardisation study allows). The sample value is the mean
over informative loci; loci more than 2 SD from the mean are flagged and left out (as Rchimerism).

qPCR: ΔΔCt = [Ct(marker) − Ct(reference)]_sample − [same]_calibrator; % of the marker's owner = 100·2^(−ΔΔCt)
(≈100 % efficiency); the calibrator is the pre-treatment sample of that owner (recipient for a recipient-specific
marker, donor for a donor-specific one). FISH: donor % = nuclei with the donor's sex chromosomes / all scored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from allotrack.clinical import _check
from allotrack.errors import InputError


@dataclass(frozen=True)
class Chimerism:
    """Percent donor with the assay, lineage and limit of detection it came from."""

    donor_percent: float
    assay: str
    lineage: str = "whole blood"
    lod_percent: float | None = None
    below_lod: bool = False
    detail: Mapping[str, object] = field(default_factory=dict)

    @property
    def recipient_percent(self) -> float:
        return 100.0 - self.donor_percent


@dataclass(frozen=True)
class StrLocus:
    """One STR marker: pre-treatment genotypes and the post-infusion peak areas by allele."""

    name: str
    recipient: Sequence[str]
    donor: Sequence[str]
    areas: Mapping[str, float]


def _repeat(allele: str) -> float | None:
    return float(allele) if re.fullmatch(r"\d+(\.\d)?", allele) else None


def _locus_donor_percent(locus: StrLocus, exclude_stutter: bool) -> tuple[float | None, str]:
    value, why = _locus_formula(locus, exclude_stutter)
    return (None if value is None else min(100.0, max(0.0, value))), why  # rounding can exceed 100 by an ulp


def _locus_formula(locus: StrLocus, exclude_stutter: bool) -> tuple[float | None, str]:
    r = list(locus.recipient) * (2 if len(locus.recipient) == 1 else 1)
    d = list(locus.donor) * (2 if len(locus.donor) == 1 else 1)
    if len(r) != 2 or len(d) != 2:
        raise InputError(f"STR locus {locus.name}: genotypes need one or two alleles", column=locus.name)
    area = {k: _check.number(f"{locus.name} area {k}", v, 0) for k, v in locus.areas.items()}
    r_only = sorted(set(r) - set(d))
    d_only = sorted(set(d) - set(r))
    shared = sorted(set(r) & set(d))
    if not r_only and not d_only:
        return None, "not informative (identical genotypes)"
    if exclude_stutter:
        for ra in r_only:
            for da in set(d):
                rr, dr = _repeat(ra), _repeat(da)
                if rr is not None and dr is not None and abs(dr - rr - 1) < 1e-9:
                    return None, f"excluded: recipient allele {ra} in the stutter position of donor allele {da}"
    a = {k: area.get(k, 0.0) for k in set(r) | set(d)}
    if not shared:
        rs, ds = sum(a[k] for k in r_only), sum(a[k] for k in d_only)
        total = rs + ds
        return (None, "no signal") if total == 0 else (100 * ds / total, "type I: no shared alleles")
    s = shared[0]
    if r_only and d_only:  # both heterozygous, one allele shared
        b, c = a[r_only[0]], a[d_only[0]]
        return (None, "no signal") if b + c == 0 else (100 * c / (b + c), "type II: one shared allele")
    if r_only:  # donor homozygous for the shared allele
        b = a[r_only[0]]
        total = a[s] + b
        if total == 0:
            return None, "no signal"
        return 100 - min(100.0, 100 * 2 * b / total), "type II: donor homozygous"
    c = a[d_only[0]]  # recipient homozygous for the shared allele
    total = a[s] + c
    return (None, "no signal") if total == 0 else (min(100.0, 100 * 2 * c / total), "type II: recipient homozygous")


def str_donor_percent(
    loci: Sequence[StrLocus], exclude_stutter: bool = True, outlier_sd: float = 2.0, lineage: str = "whole blood",
    lod_percent: float = 5.0,
) -> Chimerism:  # fmt: skip
    """Percent donor from STR peak areas averaged over informative loci (outliers beyond ``outlier_sd`` SD out)."""
    per_locus: dict[str, object] = {}
    values: dict[str, float] = {}
    for locus in loci:
        value, why = _locus_donor_percent(locus, exclude_stutter)
        per_locus[locus.name] = {"donor_percent": value, "pattern": why}
        if value is not None:
            values[locus.name] = value
    if not values:
        raise InputError("no informative STR locus: chimerism cannot be computed", column="loci")
    arr = np.array(list(values.values()))
    keep = np.ones(arr.size, dtype=bool)
    if arr.size >= 3 and arr.std(ddof=1) > 0:
        keep = np.abs(arr - arr.mean()) <= outlier_sd * arr.std(ddof=1)
    outliers = [name for name, k in zip(values, keep, strict=True) if not k]
    mean = float(arr[keep].mean())
    sd = float(arr[keep].std(ddof=1)) if keep.sum() > 1 else 0.0
    detail = {"loci": per_locus, "n_informative": int(keep.sum()), "outliers": outliers, "sd": sd,
              "cv": sd / mean if mean else math.nan}  # fmt: skip
    return Chimerism(mean, "STR", lineage, lod_percent, False, detail)


def qpcr_donor_percent(
    ct_marker: float | None,
    ct_reference: float,
    calibrator_ct_marker: float,
    calibrator_ct_reference: float,
    marker_owner: str = "recipient",
    lod_percent: float = 0.1,
    lineage: str = "whole blood",
) -> Chimerism:
    """Percent donor from an InDel/SNP qPCR by ΔΔCt. ``ct_marker=None`` means the marker was not detected
    (the owner's share is then below the limit of detection)."""
    owner = _check.choice("marker_owner", marker_owner, ("recipient", "donor"))
    ref = _check.number("ct_reference", ct_reference, 5, 45, "cycles")
    cal_m = _check.number("calibrator_ct_marker", calibrator_ct_marker, 5, 45, "cycles")
    cal_r = _check.number("calibrator_ct_reference", calibrator_ct_reference, 5, 45, "cycles")
    if ct_marker is None:
        owner_pct, below = 0.0, True
    else:
        m = _check.number("ct_marker", ct_marker, 5, 50, "cycles")
        ddct = (m - ref) - (cal_m - cal_r)
        owner_pct = min(100.0, 100.0 * 2.0 ** (-ddct))
        below = owner_pct < lod_percent
    donor = owner_pct if owner == "donor" else 100.0 - owner_pct
    detail = {"marker_owner": owner, "owner_percent": owner_pct, "formula": "100 * 2^-ddCt"}
    # below the LoD the donor share is reported as the LoD bound, never as an exact 0 %
    below_lod = below and owner == "donor"
    return Chimerism(donor, "qPCR", lineage, lod_percent, below_lod, detail)


def fish_donor_percent(
    xx_nuclei: int, xy_nuclei: int, recipient_sex: str, donor_sex: str, lineage: str = "whole blood"
) -> Chimerism:
    """Percent donor from XY-FISH interphase counts in a sex-mismatched pair; LoD from the nuclei scored
    (about 3/n: 0.6 % at 500 nuclei, Dewald 1993)."""
    rs = _check.choice("recipient_sex", recipient_sex, ("F", "M"))
    ds = _check.choice("donor_sex", donor_sex, ("F", "M"))
    if rs == ds:
        raise InputError("XY-FISH chimerism needs a sex-mismatched donor and recipient", column="donor_sex")
    xx = int(_check.number("xx_nuclei", xx_nuclei, 0))
    xy = int(_check.number("xy_nuclei", xy_nuclei, 0))
    total = xx + xy
    if total < 100:
        raise InputError(f"only {total} nuclei scored; at least 100 are needed", column="xx_nuclei")
    donor_cells = xy if ds == "M" else xx
    lod = 100 * 3.0 / total
    pct = 100.0 * donor_cells / total
    return Chimerism(pct, "XY-FISH", lineage, lod, pct < lod, {"nuclei": total})


CATEGORIES = ("full", "mixed", "low-level", "not detected")


def classify_chimerism(
    result: Chimerism, full_percent: float = 95.0, full_inclusive: bool = True, mixed_low: float = 5.0
) -> str:
    """Full (≥ 95 %, CIBMTR; ``full_inclusive=False`` for ASTCT's > 95 %), mixed (5–95 %), low-level (from the
    LoD to 5 %, "microchimerism" in microtransplant reports), not detected (below the LoD)."""
    p = _check.number("donor_percent", result.donor_percent, 0, 100, "%")
    if result.below_lod or (result.lod_percent is not None and p < result.lod_percent):
        return "not detected"
    if p > full_percent or (full_inclusive and p == full_percent):
        return "full"
    return "mixed" if p >= mixed_low else "low-level"


MST_SYMPTOMS = ("fever", "rash", "diarrhoea", "liver injury")


@dataclass(frozen=True)
class GvhdAlert:
    alert: bool
    reason: str


def mst_gvhd_alert(
    donor_percent: float, days_after_infusion: float, symptoms: Sequence[str], threshold: float = 1.0,
    window_days: tuple[float, float] = (5, 10),
) -> GvhdAlert:  # fmt: skip
    """Microtransplantation GVHD-risk alert (Liu et al., Front Oncol 2026; Guo et al., Blood 2011): donor
    chimerism above ``threshold`` % about a week after the infusion together with persistent fever, rash,
    diarrhoea or liver injury."""
    p = _check.number("donor_percent", donor_percent, 0, 100, "%")
    day = _check.number("days_after_infusion", days_after_infusion, 0)
    unknown = [s for s in symptoms if s not in MST_SYMPTOMS]
    if unknown:
        raise InputError(f"unknown symptom(s) {unknown}; use {MST_SYMPTOMS}", column="symptoms")
    lo, hi = window_days
    if not lo <= day <= hi:
        return GvhdAlert(False, f"day {day:g} is outside the {lo:g}-{hi:g} day window")
    if p <= threshold:
        return GvhdAlert(False, f"donor chimerism {p:g}% ≤ {threshold:g}%")
    if not symptoms:
        return GvhdAlert(False, f"donor chimerism {p:g}% without symptoms: repeat testing")
    return GvhdAlert(True, f"donor chimerism {p:g}% > {threshold:g}% on day {day:g} with {', '.join(symptoms)}")


def chimerism_kinetics(
    results: Sequence[tuple[object, Chimerism]], origin: object | None = None, **category_options: object
) -> list[dict[str, object]]:
    """One patient's chimerism over time: rows in date order with day (from ``origin`` when dates are given),
    donor %, assay, lineage, LoD, category and the change from the previous result of the same lineage. Results
    below the LoD keep ``below_lod=True`` and are never shown as an exact 0 %."""
    from datetime import date as _date

    rows: list[dict[str, object]] = []
    last: dict[str, float] = {}
    for when, res in sorted(results, key=lambda x: x[0]):  # type: ignore[arg-type, return-value]
        if isinstance(when, _date):
            if not isinstance(origin, _date):
                raise InputError("dated results need an origin date (e.g. the first infusion)", column="origin")
            day: float = float((when - origin).days)
        else:
            day = _check.number("day", when)
        previous = last.get(res.lineage)
        rows.append({
            "day": day, "donor_percent": res.donor_percent, "assay": res.assay, "lineage": res.lineage,
            "lod_percent": res.lod_percent, "below_lod": res.below_lod,
            "category": classify_chimerism(res, **category_options),  # type: ignore[arg-type]
            "change": None if previous is None else res.donor_percent - previous,
        })  # fmt: skip
        last[res.lineage] = res.donor_percent
    return rows
