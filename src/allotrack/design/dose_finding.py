"""Dose finding: the 3 + 3 rules, the BOIN design, isotonic estimates of the DLT rates, MTD selection, and the
dose–response of a measured quantity.

* :func:`three_plus_three` — the classic 3 + 3 rules for the cohort at the current dose (Storer 1989; Le Tourneau,
  Lee & Siu 2009): 0/3 DLTs escalate, 1/3 expand the dose to 6 patients, ≥ 2 DLTs (of 3 or of 6) de-escalate (the
  MTD is exceeded), ≤ 1/6 escalate; an incomplete cohort (fewer than 3, or 4–5 during the expansion) with at most
  one DLT stays at the dose. More than 6 patients at one dose is not a 3 + 3 trial.
* :func:`boin_boundaries` — the BOIN design of Liu & Yuan (2015, J R Stat Soc C 64:507), exactly as
  ``BOIN::get.boundary`` (version 2.7.2) computes it: with φ₁ = ``p_saf`` (default 0.6 φ) and φ₂ = ``p_tox``
  (default 1.4 φ),

      λ_e = log((1 − φ₁)/(1 − φ)) / log(φ(1 − φ₁) / (φ₁(1 − φ))),
      λ_d = log((1 − φ)/(1 − φ₂)) / log(φ₂(1 − φ) / (φ(1 − φ₂))),

  and with n patients at the current dose: escalate if #DLT ≤ b_e(n) = ⌊λ_e n⌋, de-escalate if #DLT ≥ b_d(n) =
  ⌈λ_d n⌉ (``get.boundary`` 2.7.2 uses ``λ_d n + 1`` when ``λ_d n`` is an integer to within 1e-12), else stay;
  the dose (and every higher dose) is eliminated if n ≥ 3 and P(p > φ | y, n) > ``cutoff_eli`` (0.95) under a
  Beta(1, 1) prior, i.e. y ≥ e(n), the smallest y with ``1 − pbeta(φ, y + 1, n − y + 1) > cutoff_eli``; b_d(n) is
  lowered to e(n) when it exceeds it. The trial stops when the lowest dose is eliminated.
* :func:`select_mtd` — BOIN's ``select.mtd`` (2.7.2, ``boundMTD = FALSE``, ``extrasafe = FALSE``): the doses
  from the first one meeting the elimination rule upwards are eliminated; among the doses treated and not
  eliminated the DLT rates are estimated by ``(y + 0.05)/(n + 0.1)`` and made non-decreasing by the
  pool-adjacent-violators algorithm (PAVA; Barlow et al. 1972) with weights ``1 / var``, ``var = (y + 0.05)(n − y +
  0.05) / ((n + 0.1)² (n + 1.1))``; ``j · 1e-10`` is added to the j-th estimate and the MTD is the dose whose
  estimate is closest to φ, the first such dose in dose order on exact ties. Within a pooled block (equal
  estimates) this selects the highest dose when the estimate is below φ and the lowest when it is above, as the
  BOIN documentation states. No MTD when the lowest dose is eliminated or no dose is admissible.
  The isotonic maximum-likelihood estimate of binomial rates, the PAVA of y/n weighted by the patients n (Barlow
  et al. 1972, §2.1), is reported as well (column ``isotonic``) but is not what BOIN selects on.
* :func:`dose_decisions` — the per-level table (patients, DLTs, decision, isotonic estimates), the selected MTD
  and the next dose from one row per patient.
* :func:`dose_response` — a measured quantity by dose level, summarised per level and tested for a monotone trend
  with :func:`allotrack.stats.jonckheere_terpstra`.

The BOIN boundaries and the MTD selection are checked against the same rules written out in R, and against the
BOIN 2.7.2 sources when they are available to the reference script (tests/reference/dose_finding_reference.R);
the boundaries for φ = 0.20, 0.25, 0.30 equal the published table of Liu & Yuan (2015).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from allotrack.errors import InputError
from allotrack.stats import _input
from allotrack.stats.results import Result
from allotrack.stats.trend import JonckheereTerpstra, jonckheere_terpstra

__all__ = [
    "DEESCALATE",
    "ELIMINATE",
    "ESCALATE",
    "EXPAND",
    "NOT_TREATED",
    "STAY",
    "BoinBoundaries",
    "DoseDecisions",
    "DoseResponse",
    "MtdSelection",
    "boin_boundaries",
    "dose_decision",
    "dose_decisions",
    "dose_response",
    "isotonic_regression",
    "select_mtd",
    "three_plus_three",
]

ESCALATE = "escalate"
STAY = "stay"
DEESCALATE = "de-escalate"
ELIMINATE = "eliminate"
EXPAND = "expand"
NOT_TREATED = "not treated"

_DESIGNS = ("boin", "3+3")
_BOIN_TOL = 1e-12  # get.boundary 2.7.2: λ_d n within 1e-12 of an integer counts as that integer


# ---------------------------------------------------------------------------------------------- validation


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise InputError(f"{name} must be a whole number, not {value!r}", column=name, values=[value])
    if not math.isfinite(float(value)) or float(value) != int(value) or value < 0:
        raise InputError(f"{name} must be a non-negative whole number, not {value!r}", column=name, values=[value])
    return int(value)


def _counts(n_treated: Any, n_dlt: Any) -> tuple[int, int]:
    n = _count(n_treated, "n_treated")
    y = _count(n_dlt, "n_dlt")
    if y > n:
        raise InputError(f"n_dlt ({y}) cannot exceed n_treated ({n})", column="n_dlt", values=[y])
    return n, y


# --------------------------------------------------------------------------------------------------- 3 + 3


def three_plus_three(n_treated: int, n_dlt: int) -> str:
    """The 3 + 3 decision for the current dose given the patients treated there and their DLTs.

    Returns ``"escalate"`` (0/3, or ≤ 1/6), ``"expand"`` (1/3: treat 3 more at this dose), ``"de-escalate"`` (≥ 2
    DLTs: the MTD is exceeded at this dose) or ``"stay"`` (a cohort still being filled: fewer than 3 patients, or
    4–5 during the expansion, with at most one DLT).
    """
    n, y = _counts(n_treated, n_dlt)
    if n > 6:
        raise InputError(f"the 3 + 3 design treats at most 6 patients at a dose, not {n}", column="n_treated",
                         values=[n])  # fmt: skip
    if y >= 2:
        return DEESCALATE
    if n == 3:
        return ESCALATE if y == 0 else EXPAND
    if n == 6:
        return ESCALATE
    return STAY


def _three_plus_three_mtd(n: np.ndarray, y: np.ndarray) -> tuple[int | None, str]:
    """The 3 + 3 MTD: the dose just below the lowest dose with ≥ 2 DLTs, once ≤ 1 of 6 patients there had a DLT."""
    exceeded = np.flatnonzero(y >= 2)
    if exceeded.size == 0:
        return None, "not reached: no dose level had 2 or more DLTs"
    first = int(exceeded[0])
    if first == 0:
        return None, "the lowest dose level exceeds the MTD"
    below = first - 1
    if n[below] == 6 and y[below] <= 1:
        return below, "selected"
    return None, f"not yet determined: the dose level below the exceeded one has {int(n[below])} patients, not 6"


# ------------------------------------------------------------------------------------------------------ BOIN


@dataclass(frozen=True, repr=False)
class BoinBoundaries(Result):
    """BOIN boundaries (:func:`boin_boundaries`). ``escalate_max(n)``, ``deescalate_min(n)`` and
    ``eliminate_min(n)`` give the boundaries for any n; ``table`` lists them for n = 1 … ``max_n`` as
    ``get.boundary``'s ``full_boundary_tab`` (with ``eliminate_if_at_least`` missing where no elimination)."""

    target: float
    p_saf: float
    p_tox: float
    lambda_e: float
    lambda_d: float
    cutoff_eli: float
    max_n: int

    def escalate_max(self, n: int) -> int:
        """b_e(n): escalate if the number of DLTs is at most this."""
        return math.floor(self.lambda_e * n)

    def eliminate_min(self, n: int) -> int | None:
        """e(n): eliminate the dose if the number of DLTs is at least this (None: n < 3 or no such count)."""
        if n < 3:
            return None
        ys = np.arange(1, n + 1)
        prob = 1 - stats.beta.cdf(self.target, ys + 1, n - ys + 1)  # R: 1 - pbeta(target, y + 1, n - y + 1)
        hit = np.flatnonzero(prob > self.cutoff_eli)
        return int(ys[hit[0]]) if hit.size else None

    def deescalate_min(self, n: int) -> int:
        """b_d(n): de-escalate if the number of DLTs is at least this."""
        x = self.lambda_d * n
        b_d = round(x) + 1 if abs(round(x) - x) < _BOIN_TOL else math.ceil(x)
        elim = self.eliminate_min(n)
        return min(b_d, elim) if elim is not None else b_d

    def decision(self, n_treated: int, n_dlt: int) -> str:
        """``"eliminate"`` (the dose and all higher ones; de-escalate, or stop at the lowest dose), ``"escalate"``,
        ``"de-escalate"`` or ``"stay"`` for ``n_dlt`` DLTs among ``n_treated`` patients at the current dose."""
        n, y = _counts(n_treated, n_dlt)
        if n == 0:
            return STAY
        elim = self.eliminate_min(n)
        if elim is not None and y >= elim:
            return ELIMINATE
        if y <= self.escalate_max(n):
            return ESCALATE
        if y >= self.deescalate_min(n):
            return DEESCALATE
        return STAY

    @property
    def table(self) -> pd.DataFrame:
        ns = range(1, self.max_n + 1)
        elim = [self.eliminate_min(n) for n in ns]
        return pd.DataFrame(
            {
                "n": list(ns),
                "escalate_if_at_most": [self.escalate_max(n) for n in ns],
                "deescalate_if_at_least": [self.deescalate_min(n) for n in ns],
                "eliminate_if_at_least": pd.array(elim, dtype="Int64"),
            }
        )

    def to_frame(self) -> pd.DataFrame:
        return self.table

    def __repr__(self) -> str:
        head = (
            f"<BOIN boundaries: target {self.target:g}, p_saf {self.p_saf:g}, p_tox {self.p_tox:g}: "
            f"lambda_e {self.lambda_e:.4f}, lambda_d {self.lambda_d:.4f}, cutoff_eli {self.cutoff_eli:g}>"
        )
        return f"{head}\n{self.table.set_index('n').T}"


def boin_boundaries(
    target: float,
    max_n: int = 30,
    *,
    p_saf: float | None = None,
    p_tox: float | None = None,
    cutoff_eli: float = 0.95,
) -> BoinBoundaries:
    """BOIN escalation / de-escalation / elimination boundaries for the target DLT rate φ = ``target`` (Liu & Yuan
    2015), as ``BOIN::get.boundary(target, ncohort = max_n, cohortsize = 1, p.saf, p.tox, cutoff.eli)``.

    ``p_saf`` (φ₁, default 0.6 φ) is the highest DLT rate deemed subtherapeutic, ``p_tox`` (φ₂, default 1.4 φ) the
    lowest deemed overly toxic. The checks of ``get.boundary`` apply: 0.05 ≤ φ ≤ 0.6, φ − φ₁ ≥ 0.1 φ, φ₂ − φ ≥ 0.1 φ.
    """
    phi = _number(target, "target")
    if not 0.05 <= phi <= 0.6:
        raise InputError(f"target must lie between 0.05 and 0.6 (BOIN get.boundary), not {target!r}",
                         column="target", values=[target])  # fmt: skip
    phi1 = 0.6 * phi if p_saf is None else _number(p_saf, "p_saf")
    phi2 = 1.4 * phi if p_tox is None else _number(p_tox, "p_tox")
    if not 0 < phi1 or phi - phi1 < 0.1 * phi:
        raise InputError(f"p_saf must be positive and below the target by at least 10% of it, not {phi1!r}",
                         column="p_saf", values=[phi1])  # fmt: skip
    if not phi2 < 1 or phi2 - phi < 0.1 * phi:
        raise InputError(f"p_tox must be below 1 and above the target by at least 10% of it, not {phi2!r}",
                         column="p_tox", values=[phi2])  # fmt: skip
    cutoff = _number(cutoff_eli, "cutoff_eli")
    if not 0 < cutoff < 1:
        raise InputError(f"cutoff_eli must lie strictly between 0 and 1, not {cutoff_eli!r}", column="cutoff_eli",
                         values=[cutoff_eli])  # fmt: skip
    max_n = _count(max_n, "max_n")
    if max_n < 1:
        raise InputError("max_n must be at least 1", column="max_n", values=[max_n])
    lambda_e = math.log((1 - phi1) / (1 - phi)) / math.log(phi * (1 - phi1) / (phi1 * (1 - phi)))
    lambda_d = math.log((1 - phi) / (1 - phi2)) / math.log(phi2 * (1 - phi) / (phi * (1 - phi2)))
    return BoinBoundaries(target=phi, p_saf=phi1, p_tox=phi2, lambda_e=lambda_e, lambda_d=lambda_d,
                          cutoff_eli=cutoff, max_n=max_n)  # fmt: skip


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number, not {value!r}", column=name, values=[value])
    if not math.isfinite(float(value)):
        raise InputError(f"{name} must be finite, not {value!r}", column=name, values=[value])
    return float(value)


def dose_decision(
    n_treated: int,
    n_dlt: int,
    design: str = "boin",
    target: float | None = None,
    *,
    p_saf: float | None = None,
    p_tox: float | None = None,
    cutoff_eli: float = 0.95,
) -> str:
    """The decision for the current dose: :func:`three_plus_three` (``design="3+3"``) or the BOIN rule
    (``design="boin"``, needs ``target``): ``"escalate"``, ``"stay"``, ``"de-escalate"`` or ``"eliminate"``."""
    if design == "3+3":
        return three_plus_three(n_treated, n_dlt)
    if design != "boin":
        raise InputError(f"design must be one of {_DESIGNS}, not {design!r}", column="design", values=[design])
    if target is None:
        raise InputError("the BOIN design needs the target DLT rate (target=...)", column="target")
    n, y = _counts(n_treated, n_dlt)
    bounds = boin_boundaries(target, max(n, 1), p_saf=p_saf, p_tox=p_tox, cutoff_eli=cutoff_eli)
    return bounds.decision(n, y)


# ------------------------------------------------------------------------------------- isotonic estimates, MTD


def isotonic_regression(values: Sequence[float] | np.ndarray, weights: Sequence[float] | np.ndarray | None = None
                        ) -> np.ndarray:  # fmt: skip
    """The non-decreasing sequence closest to ``values`` in weighted least squares: the pool-adjacent-violators
    algorithm (Barlow, Bartholomew, Bremner & Brunk 1972). Adjacent blocks that violate the order are pooled into
    their weighted mean until none does."""
    x = np.asarray(values, dtype=float).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.shape != x.shape:
        raise InputError(f"weights must have one entry per value ({x.size}), not {w.size}", column="weights")
    if not (np.isfinite(x).all() and np.isfinite(w).all()) or (w <= 0).any():
        raise InputError("values must be finite and weights finite and positive", column="weights")
    means: list[float] = []
    wsum: list[float] = []
    sizes: list[int] = []
    for xi, wi in zip(x.tolist(), w.tolist(), strict=True):
        means.append(xi)
        wsum.append(wi)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            total = wsum[-2] + wsum[-1]
            means[-2] = (means[-2] * wsum[-2] + means[-1] * wsum[-1]) / total
            wsum[-2] = total
            sizes[-2] += sizes[-1]
            del means[-1], wsum[-1], sizes[-1]
    return np.repeat(np.array(means), sizes)


def _boin_estimates(n: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BOIN's ``(y + 0.05)/(n + 0.1)`` and its PAVA weights ``1 / var``."""
    phat = (y + 0.05) / (n + 0.1)
    var = (y + 0.05) * (n - y + 0.05) / ((n + 0.1) ** 2 * (n + 0.1 + 1))
    return phat, 1 / var


def _isotonic_estimates(n: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per dose (NaN where untreated): the patient-weighted PAVA of y/n (the isotonic MLE) and BOIN's PAVA of
    ``(y + 0.05)/(n + 0.1)`` weighted by ``1/var``, both over the treated doses."""
    treated = n > 0
    iso_mle = np.full(n.size, np.nan)
    iso_boin = np.full(n.size, np.nan)
    if treated.any():
        iso_mle[treated] = isotonic_regression(y[treated] / n[treated], n[treated])
        phat, w = _boin_estimates(n[treated], y[treated])
        iso_boin[treated] = isotonic_regression(phat, w)
    return iso_mle, iso_boin


@dataclass(frozen=True, repr=False)
class MtdSelection(Result):
    """Result of :func:`select_mtd`. ``mtd`` is the 0-based index of the selected dose or None;
    ``isotonic_boin`` BOIN's isotonic estimate per dose (over all treated doses, as ``select.mtd`` reports it;
    NaN where untreated), ``isotonic`` the patient-weighted isotonic MLE, ``eliminated`` the elimination flags."""

    target: float
    n_treated: tuple[int, ...]
    n_dlt: tuple[int, ...]
    mtd: int | None
    isotonic_boin: tuple[float, ...]
    isotonic: tuple[float, ...]
    eliminated: tuple[bool, ...]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "dose": np.arange(1, len(self.n_treated) + 1),
                "n": self.n_treated,
                "dlt": self.n_dlt,
                "isotonic_boin": self.isotonic_boin,
                "isotonic": self.isotonic,
                "eliminated": self.eliminated,
                "selected": [i == self.mtd for i in range(len(self.n_treated))],
            }
        )


def select_mtd(n_treated: Sequence[int] | np.ndarray, n_dlt: Sequence[int] | np.ndarray, target: float,
               cutoff_eli: float = 0.95) -> MtdSelection:  # fmt: skip
    """BOIN's MTD selection (``BOIN::select.mtd(target, npts, ntox, cutoff.eli)``; see the module docstring)
    for doses in increasing order with ``n_treated`` patients and ``n_dlt`` DLTs each."""
    n, y = _count_arrays(n_treated, n_dlt)
    phi = _number(target, "target")
    if not 0 < phi < 1:
        raise InputError(f"target must lie strictly between 0 and 1, not {target!r}", column="target",
                         values=[target])  # fmt: skip
    k = n.size
    eliminated = np.zeros(k, dtype=bool)
    for i in range(k):
        if n[i] >= 3 and 1 - stats.beta.cdf(phi, y[i] + 1, n[i] - y[i] + 1) > cutoff_eli:
            eliminated[i:] = True
            break
    treated = n > 0
    iso_mle, iso_boin = _isotonic_estimates(n, y)
    mtd: int | None = None
    admissible = treated & ~eliminated
    if not eliminated[0] and admissible.any():
        index = np.flatnonzero(admissible)
        phat, w = _boin_estimates(n[admissible], y[admissible])
        est = isotonic_regression(phat, w) + np.arange(1, index.size + 1) * 1e-10
        mtd = int(index[int(np.argmin(np.abs(est - phi)))])
    return MtdSelection(
        target=phi, n_treated=tuple(int(v) for v in n), n_dlt=tuple(int(v) for v in y), mtd=mtd,
        isotonic_boin=tuple(float(v) for v in iso_boin), isotonic=tuple(float(v) for v in iso_mle),
        eliminated=tuple(bool(v) for v in eliminated),
    )  # fmt: skip


def _count_arrays(n_treated: Any, n_dlt: Any) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(n_treated, dtype=float).ravel()
    y = np.asarray(n_dlt, dtype=float).ravel()
    if n.size != y.size or n.size == 0:
        raise InputError(f"n_treated and n_dlt need one entry per dose level: {n.size} and {y.size}",
                         column="n_dlt")  # fmt: skip
    for arr, name in ((n, "n_treated"), (y, "n_dlt")):
        bad = ~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr))
        if bad.any():
            rows = np.flatnonzero(bad)
            raise InputError(f"{name} must be non-negative whole numbers", column=name, rows=rows.tolist(),
                             values=arr[rows].tolist())  # fmt: skip
    over = y > n
    if over.any():
        rows = np.flatnonzero(over)
        raise InputError("n_dlt cannot exceed n_treated", column="n_dlt", rows=rows.tolist(),
                         values=y[rows].tolist())  # fmt: skip
    return n.astype(np.int64), y.astype(np.int64)


# ------------------------------------------------------------------------------------------- dose_decisions


@dataclass(frozen=True, repr=False)
class DoseDecisions(Result):
    """Result of :func:`dose_decisions`.

    ``table`` has one row per dose level (lowest first): level, n, dlt, dlt_rate, decision (the rule applied to
    that level's own counts, ``"not treated"`` when nobody was), eliminated (BOIN: the level or a lower one meets
    the elimination rule; 3 + 3: the level or a lower one had ≥ 2 DLTs), isotonic (patient-weighted PAVA of the
    DLT rates), isotonic_boin (BOIN's estimate). ``mtd`` is the selected level (None with the reason in
    ``mtd_status``); ``next_level`` the level for the next cohort when ``current_level`` was given (None when the
    trial stops: ``stop``)."""

    design: str
    target: float | None
    levels: tuple[Any, ...]
    table: pd.DataFrame
    mtd: Any
    mtd_status: str
    current_level: Any
    next_level: Any
    stop: bool
    boundaries: BoinBoundaries | None

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        name = "BOIN" if self.design == "boin" else "3 + 3"
        target = f", target {self.target:g}" if self.target is not None else ""
        mtd = f"MTD {self.mtd!r}" if self.mtd is not None else f"no MTD ({self.mtd_status})"
        lines = [f"<Dose decisions, {name}{target}: {mtd}>"]
        if self.current_level is not None:
            nxt = "stop the trial" if self.stop else f"next level {self.next_level!r}"
            lines.append(f"  current level {self.current_level!r}: {nxt}")
        with pd.option_context("display.width", 110, "display.precision", 4):
            lines.append(str(self.table))
        return "\n".join(lines)


def _ordered_levels(values: pd.Series, levels: Sequence[Any] | None, column: str) -> list[Any]:
    if levels is not None:
        labels = list(levels)
        if not labels:
            raise InputError("levels must list at least one dose level", column="levels")
        if len(set(labels)) != len(labels):
            raise InputError(f"levels lists a dose level twice: {labels!r}", column="levels")
        return labels
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.cat.categories)
    if values.dtype.kind in "biuf":
        return sorted(pd.unique(values).tolist())
    raise InputError("dose levels are not numbers, so their order is not known: give it with levels=[...] "
                     "(lowest first) or pass an ordered pandas Categorical", column=column)  # fmt: skip


def _series(data: Any, spec: Any, role: str) -> pd.Series:
    if isinstance(spec, str) and isinstance(data, pd.DataFrame) and spec in data.columns:
        return data[spec].reset_index(drop=True)
    if isinstance(spec, pd.Series):
        return spec.reset_index(drop=True)
    return pd.Series(_input.raw_column(data, spec, role))


def dose_decisions(
    dlt_records: Any,
    levels: Sequence[Any] | None = None,
    design: str = "boin",
    target: float | None = None,
    *,
    current_level: Any = None,
    p_saf: float | None = None,
    p_tox: float | None = None,
    cutoff_eli: float = 0.95,
    patient_id: _input.ColumnSpec = "patient_id",
    dose_level: _input.ColumnSpec = "dose_level",
    dlt: _input.ColumnSpec = "dlt",
) -> DoseDecisions:
    """Per-level decisions, isotonic DLT-rate estimates and the MTD from DLT records, one row per patient.

    Parameters
    ----------
    dlt_records : a DataFrame (or mapping of columns) with ``patient_id``, ``dose_level`` and ``dlt`` (0/1, the
        DLT assessment of the patient at that level). Each patient appears once.
    levels : the dose levels in increasing order, untreated ones included; default the levels in the records
        (sorted numbers, or an ordered Categorical's categories).
    design : ``"boin"`` (needs ``target``, the target DLT rate φ) or ``"3+3"``.
    current_level : the level the last cohort was treated at; when given, ``next_level`` is the level for the
        next cohort. BOIN (as ``BOIN::get.oc`` conducts the trial): escalate unless at the highest level or the
        next level is eliminated, de-escalate unless at the lowest level, eliminate = de-escalate, and stop when
        the lowest level is eliminated. 3 + 3: escalate to the next level unless at the highest level or the next
        level exceeded the MTD (then stop); expand or stay at the current level; de-escalate to the level below
        if it has fewer than 6 patients (to expand it), else stop (the MTD is determined, or none is).
    p_saf, p_tox, cutoff_eli : BOIN's parameters (:func:`boin_boundaries`).

    The MTD is BOIN's :func:`select_mtd`, or for 3 + 3 the level just below the lowest level with ≥ 2 DLTs once
    6 patients there had ≤ 1 DLT.
    """
    if design not in _DESIGNS:
        raise InputError(f"design must be one of {_DESIGNS}, not {design!r}", column="design", values=[design])
    pid = _series(dlt_records, patient_id, "patient_id")
    lvl = _series(dlt_records, dose_level, "dose_level")
    tox = _series(dlt_records, dlt, "dlt")
    _input.n_rows({"patient_id": pid.to_numpy(), "dose_level": lvl.to_numpy(), "dlt": tox.to_numpy()})
    pid_name = _input.column_name(patient_id, "patient_id")
    lvl_name = _input.column_name(dose_level, "dose_level")
    dlt_name = _input.column_name(dlt, "dlt")
    for series, name in ((pid, pid_name), (lvl, lvl_name), (tox, dlt_name)):
        missing = series.isna().to_numpy()
        if missing.any():
            rows = np.flatnonzero(missing)
            raise InputError("values must not be missing", table="dlt_records", column=name, rows=rows.tolist(),
                             n_bad=rows.size)  # fmt: skip
    dup = pid.duplicated(keep="first").to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        raise InputError("each patient has one DLT record (one dose level)", table="dlt_records", column=pid_name,
                         rows=rows.tolist(), values=pid.to_numpy()[rows].tolist())  # fmt: skip
    tox_num = pd.to_numeric(tox, errors="coerce")
    bad = ~tox_num.isin([0, 1]).to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError("dlt must be 0 or 1", table="dlt_records", column=dlt_name, rows=rows.tolist(),
                         values=tox.to_numpy()[rows].tolist())  # fmt: skip
    labels = _ordered_levels(lvl, levels, lvl_name)
    lookup = {label: i for i, label in enumerate(labels)}
    codes = np.array([lookup.get(v, -1) for v in lvl.tolist()], dtype=np.intp)
    unknown = codes < 0
    if unknown.any():
        rows = np.flatnonzero(unknown)
        raise InputError(f"dose levels not among levels={labels!r}", table="dlt_records", column=lvl_name,
                         rows=rows.tolist(), values=lvl.to_numpy()[rows].tolist())  # fmt: skip
    k = len(labels)
    n = np.bincount(codes, minlength=k).astype(np.int64)
    y = np.bincount(codes, weights=tox_num.to_numpy(dtype=float), minlength=k).round().astype(np.int64)
    current: int | None = None
    if current_level is not None:
        if current_level not in lookup:
            raise InputError(f"current_level {current_level!r} is not one of the levels {labels!r}",
                             column="current_level", values=[current_level])  # fmt: skip
        current = lookup[current_level]

    bounds: BoinBoundaries | None = None
    if design == "boin":
        if target is None:
            raise InputError("the BOIN design needs the target DLT rate (target=...)", column="target")
        bounds = boin_boundaries(target, max(int(n.max()), 1), p_saf=p_saf, p_tox=p_tox, cutoff_eli=cutoff_eli)
        selection = select_mtd(n, y, bounds.target, bounds.cutoff_eli)
        decisions = [bounds.decision(int(ni), int(yi)) if ni > 0 else NOT_TREATED for ni, yi in zip(n, y, strict=True)]
        eliminated = np.array(selection.eliminated)
        mtd_index = selection.mtd
        if mtd_index is not None:
            status = "selected"
        elif eliminated[0]:
            status = "the lowest dose level is eliminated"
        else:
            status = "no admissible dose level has been treated"
    else:
        over = np.flatnonzero(n > 6)
        if over.size:
            raise InputError(f"the 3 + 3 design treats at most 6 patients at a dose level; level "
                             f"{labels[int(over[0])]!r} has {int(n[over[0]])}", table="dlt_records",
                             column=lvl_name, values=[labels[int(over[0])]])  # fmt: skip
        decisions = [three_plus_three(int(ni), int(yi)) if ni > 0 else NOT_TREATED for ni, yi in zip(n, y, strict=True)]
        eliminated = np.maximum.accumulate(y >= 2)
        mtd_index, status = _three_plus_three_mtd(n, y)
    iso_mle, iso_boin = _isotonic_estimates(n, y)

    next_index: int | None = None
    stop = False
    if current is not None:
        next_index, stop = _next_level(design, decisions[current], current, k, n, eliminated)

    table = pd.DataFrame(
        {
            "level": pd.Series(labels, dtype=object),
            "n": n,
            "dlt": y,
            "dlt_rate": np.where(n > 0, y / np.maximum(n, 1), np.nan),
            "decision": decisions,
            "eliminated": eliminated.astype(bool),
            "isotonic": iso_mle,
            "isotonic_boin": iso_boin,
        }
    )
    return DoseDecisions(
        design=design, target=None if bounds is None else bounds.target, levels=tuple(labels), table=table,
        mtd=None if mtd_index is None else labels[mtd_index], mtd_status=status, current_level=current_level,
        next_level=None if next_index is None else labels[next_index], stop=stop, boundaries=bounds,
    )  # fmt: skip


def _next_level(design: str, decision: str, current: int, k: int, n: np.ndarray,
                eliminated: np.ndarray) -> tuple[int | None, bool]:  # fmt: skip
    """The level for the next cohort and whether the trial stops (see :func:`dose_decisions`)."""
    if design == "boin":
        if decision == ELIMINATE and current == 0:
            return None, True
        if decision == ESCALATE and current < k - 1 and not eliminated[current + 1]:
            return current + 1, False
        if decision in (DEESCALATE, ELIMINATE) and current > 0:
            return current - 1, False
        return current, False
    if decision in (EXPAND, STAY, NOT_TREATED):
        return current, False
    if decision == ESCALATE:
        if current < k - 1 and not eliminated[current + 1]:
            return current + 1, False
        return None, True
    # de-escalate: expand the level below to 6 patients, or stop
    if current > 0 and n[current - 1] < 6:
        return current - 1, False
    return None, True


# --------------------------------------------------------------------------------------------- dose-response


@dataclass(frozen=True, repr=False)
class DoseResponse(Result):
    """Result of :func:`dose_response`: ``table`` per dose level (n, n_missing, mean, sd, median, q1, q3, min,
    max; quantiles as R's default type 7) and ``trend``, the Jonckheere–Terpstra test across the ordered levels."""

    value: str
    levels: tuple[Any, ...]
    table: pd.DataFrame
    trend: JonckheereTerpstra

    def to_frame(self) -> pd.DataFrame:
        out = self.table.copy()
        out.attrs.update({"test": "Jonckheere-Terpstra", "statistic": self.trend.statistic,
                          "p_value": self.trend.p_value, "alternative": self.trend.alternative})  # fmt: skip
        return out

    def __repr__(self) -> str:
        t = self.trend
        head = (f"<Dose-response of {self.value}: Jonckheere-Terpstra J = {t.statistic:g}, "
                f"p = {t.p_value:.4g} ({t.alternative}, {'exact' if t.exact else 'normal'})>")  # fmt: skip
        with pd.option_context("display.width", 110, "display.precision", 4):
            return f"{head}\n{self.table}"


def dose_response(
    data: Any,
    value: _input.ColumnSpec,
    dose_level: _input.ColumnSpec = "dose_level",
    levels: Sequence[Any] | None = None,
    *,
    alternative: str = "two-sided",
    exact: bool | None = None,
) -> DoseResponse:
    """A measured quantity (e.g. the NK-cell count at day 30) by dose level: per-level summaries and the
    Jonckheere–Terpstra trend test (:func:`allotrack.stats.jonckheere_terpstra`, with ``alternative`` and
    ``exact`` as there). ``levels`` gives the dose order (default: sorted numeric levels or an ordered
    Categorical's categories); missing values are counted per level and left out."""
    v_name = _input.column_name(value, "value")
    values = pd.to_numeric(_series(data, value, "value"), errors="coerce")
    raw_values = _series(data, value, "value")
    not_numeric = values.isna() & raw_values.notna()
    if not_numeric.any():
        rows = np.flatnonzero(not_numeric.to_numpy())
        raise InputError("values must be numbers", column=v_name, rows=rows.tolist(),
                         values=raw_values.to_numpy()[rows].tolist())  # fmt: skip
    lvl = _series(data, dose_level, "dose_level")
    lvl_name = _input.column_name(dose_level, "dose_level")
    _input.n_rows({"value": values.to_numpy(), "dose_level": lvl.to_numpy()})
    if lvl.isna().any():
        rows = np.flatnonzero(lvl.isna().to_numpy())
        raise InputError("dose levels must not be missing", column=lvl_name, rows=rows.tolist(), n_bad=rows.size)
    labels = _ordered_levels(lvl, levels, lvl_name)
    known = lvl.isin(labels).to_numpy()
    if not known.all():
        rows = np.flatnonzero(~known)
        raise InputError(f"dose levels not among levels={labels!r}", column=lvl_name, rows=rows.tolist(),
                         values=lvl.to_numpy()[rows].tolist())  # fmt: skip
    rows_out = []
    for label in labels:
        at = values[(lvl == label).to_numpy()]
        ok = at.dropna().to_numpy(dtype=float)
        rows_out.append(
            {
                "level": label,
                "n": int(ok.size),
                "n_missing": int(at.isna().sum()),
                "mean": float(ok.mean()) if ok.size else np.nan,
                "sd": float(ok.std(ddof=1)) if ok.size > 1 else np.nan,
                "median": float(np.median(ok)) if ok.size else np.nan,
                "q1": float(np.quantile(ok, 0.25)) if ok.size else np.nan,
                "q3": float(np.quantile(ok, 0.75)) if ok.size else np.nan,
                "min": float(ok.min()) if ok.size else np.nan,
                "max": float(ok.max()) if ok.size else np.nan,
            }
        )
    table = pd.DataFrame(rows_out)
    table["level"] = pd.Series(labels, dtype=object)
    trend = jonckheere_terpstra(values.to_numpy(dtype=float), pd.Series(lvl.to_numpy(), name=lvl_name),
                                order=labels, alternative=alternative, exact=exact)  # fmt: skip
    return DoseResponse(value=v_name, levels=tuple(labels), table=table, trend=trend)
