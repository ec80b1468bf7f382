"""Response assessment: ELN 2022 AML response and best response over a series (``reference/
clinical-definitions.md`` §4.1). Categories are mutually exclusive, derived in the order
CR > CRh > CRi > MLFS > PR > no response; non-evaluable when the marrow is not adequate.

CR: marrow blasts < 5 %, no circulating blasts, no extramedullary disease, ANC ≥ 1.0 and platelets ≥ 100 × 10⁹/L.
CRh: the same with ANC ≥ 0.5 and platelets ≥ 50. CRi: the marrow criteria with one of ANC ≥ 1.0 or platelets
≥ 100 (the other not recovered, and not CRh). MLFS: the marrow criteria without count recovery. PR: counts as CR,
blasts 5–25 % and ≥ 50 % below the pre-treatment value. With ``mrd_negative`` the CR/CRh/CRi categories carry
the "MRD−" suffix (report the assay and its sensitivity with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from allotrack.clinical import _check
from allotrack.errors import InputError

ELN2022 = "ELN 2022 (Dohner et al., Blood 2022;140:1345-1377)"
ORDER = ("CR", "CRh", "CRi", "MLFS", "PR", "no response", "non-evaluable")


@dataclass(frozen=True)
class AmlResponse:
    category: str  # one of ORDER
    mrd_negative: bool | None
    rule: str

    @property
    def label(self) -> str:
        return f"{self.category} MRD-" if self.mrd_negative and self.category in ("CR", "CRh", "CRi") else self.category

    @property
    def is_remission(self) -> bool:
        return self.category in ("CR", "CRh", "CRi")


def eln2022_response(
    marrow_blasts: float | None,
    circulating_blasts: bool,
    extramedullary: bool,
    anc: float,
    platelets: float,
    baseline_marrow_blasts: float | None = None,
    mrd_negative: bool | None = None,
) -> AmlResponse:
    """ELN 2022 response category. ``marrow_blasts=None`` = no adequate marrow (non-evaluable).
    Counts in 10⁹/L (values that look like cells/µL are refused)."""
    a = _check.number("anc", anc, 0, None, "x10^9/L")
    p = _check.number("platelets", platelets, 0, 3000, "x10^9/L")
    if a > 100:
        raise InputError(f"anc {anc!r} looks like cells/µL; give 10^9/L (divide by 1,000)", column="anc")
    if marrow_blasts is None:
        return AmlResponse("non-evaluable", mrd_negative, ELN2022)
    b = _check.number("marrow_blasts", marrow_blasts, 0, 100, "%")
    marrow_clear = b < 5 and not circulating_blasts and not extramedullary
    if marrow_clear:
        if a >= 1.0 and p >= 100:
            cat = "CR"
        elif a >= 0.5 and p >= 50:
            cat = "CRh"
        elif a >= 1.0 or p >= 100:
            cat = "CRi"
        else:
            cat = "MLFS"
    else:
        cat = "no response"
        if baseline_marrow_blasts is not None and a >= 1.0 and p >= 100 and not circulating_blasts:
            base = _check.number("baseline_marrow_blasts", baseline_marrow_blasts, 0, 100, "%")
            if 5 <= b <= 25 and b <= 0.5 * base:
                cat = "PR"
    return AmlResponse(cat, mrd_negative, ELN2022)


@dataclass(frozen=True)
class BestResponse:
    best: AmlResponse
    first_remission_date: date | None  # first CR, CRh or CRi
    first_cr_date: date | None


def best_response(assessments: Sequence[tuple[date, AmlResponse]]) -> BestResponse:
    """Best response over dated assessments (order CR > CRh > CRi > MLFS > PR > NR > non-evaluable) and the
    dates of first remission and first CR."""
    if not assessments:
        raise InputError("best_response needs at least one dated assessment", column="assessments")
    items = sorted(assessments, key=lambda x: x[0])
    best = min(items, key=lambda x: (ORDER.index(x[1].category), not x[1].mrd_negative))[1]
    first_rem = next((d for d, r in items if r.is_remission), None)
    first_cr = next((d for d, r in items if r.category == "CR"), None)
    return BestResponse(best, first_rem, first_cr)
