"""IMWG uniform response criteria for multiple myeloma (Durie et al., Leukemia 2006; Kumar et al., Lancet
Oncol 2016; ``reference/clinical-definitions.md`` §4.2), with confirmation by two consecutive assessments and
progression measured from the nadir.

Per assessment, against baseline (response) and the lowest value so far (progression):

* PD: ≥ 25 % rise from the nadir in serum M-protein (and ≥ 0.5 g/dL absolute; ≥ 1 g/dL when the nadir was
  ≥ 5 g/dL), urine M-protein (≥ 200 mg/24 h absolute), the involved–uninvolved FLC difference (> 10 mg/dL
  absolute; only when serum and urine were not measurable at baseline) or marrow plasma cells (≥ 10 %
  absolute); or new bone lesions / plasmacytomas; or hypercalcaemia > 11.5 mg/dL from myeloma.
* sCR: CR with a normal FLC ratio and no clonal plasma cells in the marrow.
* CR: negative serum and urine immunofixation, no plasmacytoma, < 5 % marrow plasma cells.
* VGPR: M-protein detectable by immunofixation only, or ≥ 90 % serum reduction with urine < 100 mg/24 h.
* PR: ≥ 50 % serum reduction and urine ≥ 90 % lower or < 200 mg/24 h; if serum and urine were not measurable,
  ≥ 50 % fall in the FLC difference; if that was not measurable either, ≥ 50 % fall in marrow plasma cells
  (baseline ≥ 30 %).
* MR: 25–49 % serum reduction and 50–89 % urine reduction; SD otherwise.

Measurable at baseline: serum M ≥ 1 g/dL, urine M ≥ 200 mg/24 h, involved FLC ≥ 10 mg/dL with an abnormal
ratio. A response (or PD) is confirmed when the next assessment, before new therapy, is at the same level or
better (the confirmed level of a pair is the lower of the two: "if only some criteria are met, downgrade").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from allotrack.clinical import _check
from allotrack.errors import InputError

IMWG = "IMWG uniform response criteria (Durie 2006, Kumar 2016)"
LEVELS = ("PD", "SD", "MR", "PR", "VGPR", "CR", "sCR")  # worst to best


@dataclass(frozen=True)
class MyelomaLabs:
    """One assessment. Serum M-protein in g/dL, urine M-protein in mg/24 h, FLC in mg/dL, plasma cells in %;
    None = not done."""

    serum_m: float | None = None
    urine_m: float | None = None
    serum_ife_negative: bool | None = None
    urine_ife_negative: bool | None = None
    flc_involved: float | None = None
    flc_uninvolved: float | None = None
    flc_ratio_normal: bool | None = None
    marrow_plasma_cells: float | None = None
    clonal_plasma_cells: bool | None = None
    plasmacytoma: bool = False
    new_lesions: bool = False
    hypercalcemia: bool = False

    def flc_difference(self) -> float | None:
        if self.flc_involved is None or self.flc_uninvolved is None:
            return None
        return self.flc_involved - self.flc_uninvolved


def _validate(labs: MyelomaLabs, name: str) -> None:
    for field_name, high in (("serum_m", 20), ("urine_m", 50000), ("flc_involved", 100000),
                             ("flc_uninvolved", 100000), ("marrow_plasma_cells", 100)):  # fmt: skip
        v = getattr(labs, field_name)
        if v is not None:
            _check.number(f"{name}.{field_name}", v, 0, high)


def _drop(base: float | None, now: float | None) -> float | None:
    if base is None or now is None or base <= 0:
        return None
    return (base - now) / base


def imwg_assessment(current: MyelomaLabs, baseline: MyelomaLabs, nadir: MyelomaLabs | None = None) -> str:
    """Unconfirmed IMWG category of one assessment (one of ``LEVELS``)."""
    _validate(current, "current")
    _validate(baseline, "baseline")
    nadir = nadir or baseline
    serum_meas = baseline.serum_m is not None and baseline.serum_m >= 1.0
    urine_meas = baseline.urine_m is not None and baseline.urine_m >= 200
    bflc = baseline.flc_difference()
    flc_meas = (not serum_meas and not urine_meas and baseline.flc_involved is not None
                and baseline.flc_involved >= 10 and baseline.flc_ratio_normal is False)  # fmt: skip
    # progression from the nadir
    if current.new_lesions or current.hypercalcemia:
        return "PD"
    if current.serum_m is not None and nadir.serum_m is not None:
        rise = current.serum_m - nadir.serum_m
        need = 1.0 if nadir.serum_m >= 5 else 0.5
        if rise >= need and rise >= 0.25 * nadir.serum_m:
            return "PD"
    if current.urine_m is not None and nadir.urine_m is not None:
        rise = current.urine_m - nadir.urine_m
        if rise >= 200 and rise >= 0.25 * nadir.urine_m:
            return "PD"
    cflc, nflc = current.flc_difference(), nadir.flc_difference()
    if flc_meas and cflc is not None and nflc is not None and cflc - nflc > 10 and cflc - nflc >= 0.25 * nflc:
        return "PD"
    cpc, npc = current.marrow_plasma_cells, nadir.marrow_plasma_cells
    if cpc is not None and npc is not None and cpc - npc >= 10 and cpc - npc >= 0.25 * npc:
        return "PD"
    # response against baseline
    cr = (current.serum_ife_negative is True and current.urine_ife_negative is True and not current.plasmacytoma
          and current.marrow_plasma_cells is not None and current.marrow_plasma_cells < 5)  # fmt: skip
    if cr:
        return "sCR" if current.flc_ratio_normal is True and current.clonal_plasma_cells is False else "CR"
    s_drop = _drop(baseline.serum_m, current.serum_m)
    u_drop = _drop(baseline.urine_m, current.urine_m)
    ife_only = (current.serum_m == 0 and current.serum_ife_negative is False
                and (not urine_meas or current.urine_m == 0))  # fmt: skip
    if ife_only or (serum_meas and s_drop is not None and s_drop >= 0.9 and (current.urine_m or 0) < 100):
        return "VGPR"
    urine_ok = not urine_meas or (u_drop is not None and (u_drop >= 0.9 or (current.urine_m or 0) < 200))
    if serum_meas or urine_meas:
        serum_ok = not serum_meas or (s_drop is not None and s_drop >= 0.5)
        if serum_ok and urine_ok and (serum_meas or u_drop is not None):
            return "PR"
        urine_mr = not urine_meas or (u_drop is not None and 0.5 <= u_drop)
        # MR: serum 25–49 % — or a larger serum fall that misses PR on the urine criterion (downgrade rule)
        if serum_meas and s_drop is not None and s_drop >= 0.25 and urine_mr:
            return "MR"
        return "SD"
    if flc_meas and bflc and cflc is not None:
        return "PR" if (bflc - cflc) / bflc >= 0.5 else "SD"
    bpc = baseline.marrow_plasma_cells
    if bpc is not None and bpc >= 30 and cpc is not None:
        return "PR" if (bpc - cpc) / bpc >= 0.5 else "SD"
    raise InputError("no measurable disease at baseline (serum, urine, FLC or marrow): response not assessable",
                     column="baseline")  # fmt: skip


def _lower_nadir(nadir: MyelomaLabs, labs: MyelomaLabs) -> MyelomaLabs:
    """The lowest value of each marker over the nadir so far and this assessment."""
    changes: dict[str, Any] = {}
    for name in ("serum_m", "urine_m", "marrow_plasma_cells"):
        values = [v for v in (getattr(nadir, name), getattr(labs, name)) if v is not None]
        if values:
            changes[name] = min(values)
    now, low = labs.flc_difference(), nadir.flc_difference()
    if now is not None and (low is None or now < low):
        assert labs.flc_involved is not None and labs.flc_uninvolved is not None
        changes.update(flc_involved=labs.flc_involved, flc_uninvolved=labs.flc_uninvolved)
    return replace(nadir, **changes)


@dataclass(frozen=True)
class MyelomaResponse:
    best_confirmed: str  # best level confirmed by two consecutive assessments ("SD" when none)
    best_date: date | None  # first date of the pair that confirmed it
    progression_date: date | None  # first date of a confirmed PD
    categories: tuple[str, ...]  # unconfirmed category of each assessment, in date order
    rule: str


def imwg_response(baseline: MyelomaLabs, assessments: Sequence[tuple[date, MyelomaLabs]]) -> MyelomaResponse:
    """Best confirmed response and the date of confirmed progression over dated assessments (all before any new
    therapy). The nadir for progression is the lowest value of each marker so far (baseline included)."""
    items = sorted(assessments, key=lambda x: x[0])
    if len({d for d, _ in items}) != len(items):
        raise InputError("two assessments share a date", column="assessments")
    cats: list[str] = []
    nadir = baseline
    for _, labs in items:
        cats.append(imwg_assessment(labs, baseline, nadir))
        nadir = _lower_nadir(nadir, labs)
    best, best_date, pd_date = "SD", None, None
    for i in range(len(items) - 1):
        a, b = cats[i], cats[i + 1]
        if a == "PD" and b == "PD" and pd_date is None:
            pd_date = items[i][0]
        if "PD" in (a, b):
            continue
        level = min(a, b, key=LEVELS.index)
        if LEVELS.index(level) > LEVELS.index(best):
            best, best_date = level, items[i][0]
    return MyelomaResponse(best, best_date, pd_date, tuple(cats), IMWG)
