"""Blood-count recovery: CIBMTR neutrophil and platelet engraftment and the microtransplantation
"hematopoietic recovery" window (``reference/clinical-definitions.md`` §5.2).

* Neutrophils: the first of ``run`` (3) consecutive values ≥ 0.5 × 10⁹/L obtained on different days, counted
  only after the nadir (the lowest value; earlier values above the threshold are ignored).
* Platelets: the first of 3 consecutive values ≥ 20 × 10⁹/L on different days with no platelet transfusion in
  the 7 days before the first value nor during the run (CIBMTR worked example: 10, 35, 30, 25, 10, 15, 19, 23,
  25, 40, 50 on days 0–10 with a transfusion on day 0 → day 7). "Not applicable" when the count never fell
  below the threshold and no transfusion was given.
* Hematopoietic recovery after a chemotherapy course (Guo et al., Blood 2011;117:936–41; Liu et al., Front Oncol
  2026): start = first of 3 consecutive days with ANC < 2 and platelets < 100 after chemotherapy; end = first
  of 3 consecutive days with ANC > 0.5 and platelets > 30 after the start; duration = end − start in days.

Series are (day, value) pairs; several values on one day are reduced to one (``same_day``: "min" by default,
the conservative choice). "Consecutive" measurements may be days apart unless ``max_gap_days`` is set (the
recovery window, defined on consecutive *days*, uses 1 by default); a larger gap breaks a run. Counts are in
10⁹/L: values that look like cells/µL (a median above 100 for ANC, above 2,000 for platelets) raise an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from allotrack.clinical import _check
from allotrack.errors import InputError

CIBMTR = "CIBMTR forms manual (neutrophil/platelet recovery), ASTCT 2021"
MST = "microtransplantation recovery window (Guo et al., Blood 2011;117:936-41)"


@dataclass(frozen=True)
class Recovery:
    """``day`` of recovery (None when not reached; ``status`` says why), with the nadir and the run used."""

    status: str  # reached, not reached, not applicable
    day: float | None
    nadir_day: float | None
    nadir_value: float | None
    run_days: tuple[float, ...]
    rule: str


@dataclass(frozen=True)
class RecoveryWindow:
    status: str  # recovered, not recovered, no aplasia, not below the recovery cut
    start_day: float | None
    end_day: float | None
    duration_days: float | None
    rule: str


def _days(values: Sequence[Any], origin: date | None) -> np.ndarray:
    out = []
    for v in values:
        if isinstance(v, date):
            if origin is None:
                raise InputError("dates need an origin date (e.g. the infusion date) to count days", column="origin")
            out.append(float((v - origin).days))
        else:
            out.append(_check.number("day", v))
    return np.asarray(out, dtype=float)


def _series(
    days: Sequence[Any], values: Sequence[Any], name: str, unit_limit: float, same_day: str, origin: date | None
) -> tuple[np.ndarray, np.ndarray]:
    if len(days) != len(values):
        raise InputError(f"{name}: {len(days)} days but {len(values)} values", column=name)
    if not len(days):
        raise InputError(f"{name}: the series is empty", column=name)
    d = _days(days, origin)
    v = np.asarray([_check.number(name, x, 0) for x in values], dtype=float)
    if np.median(v) > unit_limit:
        raise InputError(
            f"{name} values look like cells/µL (median {np.median(v):g}); give counts in 10⁹/L (divide by 1,000)",
            column=name,
        )
    order = np.argsort(d, kind="stable")
    d, v = d[order], v[order]
    reduce = {"min": np.minimum, "max": np.maximum}.get(_check.choice("same_day", same_day, ("min", "max", "last")))
    uniq, first = np.unique(d, return_index=True)
    if reduce is not None:
        v = reduce.reduceat(v, first)
    else:  # last value of the day
        v = v[np.append(first[1:], d.size) - 1]
    return uniq, v


def _first_run(days: np.ndarray, ok: np.ndarray, run: int, max_gap: float | None) -> int | None:
    """Index of the first of ``run`` consecutive True entries (no gap above ``max_gap`` inside the run)."""
    length = 0
    for i in range(days.size):  # series are short (one patient's counts): a plain scan is clearest
        gap_ok = i > 0 and (max_gap is None or days[i] - days[i - 1] <= max_gap)
        length = (length + 1 if gap_ok and length else 1) if ok[i] else 0
        if length >= run:
            return i - run + 1
    return None


def _reached(d: np.ndarray, v: np.ndarray, i: int, nadir: int, run: int, rule: str) -> Recovery:
    run_days = tuple(float(x) for x in d[i : i + run])
    return Recovery("reached", float(d[i]), float(d[nadir]), float(v[nadir]), run_days, rule)


def neutrophil_engraftment(
    days: Sequence[Any],
    anc: Sequence[float],
    threshold: float = 0.5,
    run: int = 3,
    max_gap_days: float | None = None,
    same_day: str = "min",
    origin: date | None = None,
) -> Recovery:
    """CIBMTR neutrophil recovery: first of ``run`` consecutive values ≥ ``threshold`` × 10⁹/L after the nadir."""
    d, v = _series(days, anc, "anc", 100.0, same_day, origin)
    run = int(_check.number("run", run, 1, 30))
    nadir = int(np.argmin(v))
    rule = f"{CIBMTR}; ANC ≥ {threshold:g} x10^9/L on {run} consecutive days after the nadir"
    start = _first_run(d[nadir:], v[nadir:] >= threshold, run, max_gap_days)
    if start is None:
        return Recovery("not reached", None, float(d[nadir]), float(v[nadir]), (), rule)
    i = nadir + start
    return _reached(d, v, i, nadir, run, rule)


def platelet_engraftment(
    days: Sequence[Any],
    platelets: Sequence[float],
    transfusion_days: Sequence[Any] = (),
    threshold: float = 20.0,
    run: int = 3,
    transfusion_free_days: int = 7,
    max_gap_days: float | None = None,
    same_day: str = "min",
    origin: date | None = None,
) -> Recovery:
    """CIBMTR platelet recovery: first of ``run`` consecutive values ≥ ``threshold`` × 10⁹/L after the nadir, none
    supported by a platelet transfusion in the ``transfusion_free_days`` before the run or during it. (Searching
    from the nadir, as for neutrophils, matters for chemotherapy courses, whose counts start above the threshold.)"""
    d, v = _series(days, platelets, "platelets", 2000.0, same_day, origin)
    tx = np.sort(_days(list(transfusion_days), origin)) if len(transfusion_days) else np.zeros(0)
    run = int(_check.number("run", run, 1, 30))
    rule = (f"{CIBMTR}; platelets ≥ {threshold:g} x10^9/L on {run} consecutive days, "
            f"no transfusion in the {transfusion_free_days} days before")  # fmt: skip
    nadir = int(np.argmin(v))
    if v[nadir] >= threshold and tx.size == 0:
        return Recovery("not applicable", None, float(d[nadir]), float(v[nadir]), (), rule)
    ok = v >= threshold
    # a value is usable as the first of a run only if no transfusion fell in (day − free_days, last day of run]
    start_from = nadir
    while True:
        s = _first_run(d[start_from:], ok[start_from:], run, max_gap_days)
        if s is None:
            return Recovery("not reached", None, float(d[nadir]), float(v[nadir]), (), rule)
        i = start_from + s
        window_lo, window_hi = d[i] - transfusion_free_days, d[i + run - 1]
        if not np.any((tx > window_lo) & (tx <= window_hi)):
            return _reached(d, v, i, nadir, run, rule)
        start_from = i + 1


def hematopoietic_recovery(
    days: Sequence[Any],
    anc: Sequence[float],
    platelets: Sequence[float],
    chemotherapy_end: Any = 0,
    aplasia_anc: float = 2.0,
    aplasia_platelets: float = 100.0,
    recovery_anc: float = 0.5,
    recovery_platelets: float = 30.0,
    run: int = 3,
    max_gap_days: float | None = 1,
    origin: date | None = None,
) -> RecoveryWindow:
    """Microtransplantation recovery window after one chemotherapy course (ANC and platelets on the same days).

    The window opens on the first of ``run`` consecutive days (at most ``max_gap_days`` apart) from the end of
    chemotherapy with ANC < ``aplasia_anc`` and platelets < ``aplasia_platelets`` (onset of cytopenia), and closes
    on the first of ``run`` consecutive days with ANC > ``recovery_anc`` and platelets > ``recovery_platelets``
    counted from the nadir — the first day from the onset on with a count at or below its recovery cut — so counts
    that enter aplasia above the recovery cut do not close the window on its first day. Status: ``recovered``,
    ``not recovered``, ``no aplasia``, or ``not below the recovery cut`` (aplasia that never reached it)."""
    d_a, a = _series(days, anc, "anc", 100.0, "min", origin)
    d_p, p = _series(days, platelets, "platelets", 2000.0, "min", origin)
    if not np.array_equal(d_a, d_p):
        raise InputError("ANC and platelets must be measured on the same days", column="days")
    end_chemo = _days([chemotherapy_end], origin)[0]
    after = d_a >= end_chemo
    d, a, p = d_a[after], a[after], p[after]
    rule = (f"{MST}; start: ANC < {aplasia_anc:g} and PLT < {aplasia_platelets:g}; end: ANC > {recovery_anc:g} "
            f"and PLT > {recovery_platelets:g}; {run} consecutive days")  # fmt: skip
    s = _first_run(d, (a < aplasia_anc) & (p < aplasia_platelets), run, max_gap_days)
    if s is None:
        return RecoveryWindow("no aplasia", None, None, None, rule)
    # recovery is searched from the nadir on: the first day from the onset on when a count is at or below its
    # recovery cut (counts that enter aplasia above the cut have not yet "recovered" on the first day of it)
    low = np.flatnonzero((a[s:] <= recovery_anc) | (p[s:] <= recovery_platelets))
    if not len(low):
        return RecoveryWindow("not below the recovery cut", float(d[s]), None, None, rule)
    n = s + int(low[0])
    e = _first_run(d[n:], (a[n:] > recovery_anc) & (p[n:] > recovery_platelets), run, max_gap_days)
    if e is None:
        return RecoveryWindow("not recovered", float(d[s]), None, None, rule)
    return RecoveryWindow("recovered", float(d[s]), float(d[n + e]), float(d[n + e] - d[s]), rule)
