"""A binary outcome compared between two groups, and across strata, as R computes it.

Two groups (:func:`binary_outcome`, :func:`binary_outcome_table`): group A has ``a`` events among ``n_a``, group B
``c`` among ``n_b``; the 2 × 2 table has the groups as rows and (event, no event) as columns, ``[[a, b], [c, d]]``.

* **Proportions** ``p = x/n`` with the Wilson score interval (Wilson 1927; R ``prop.test(x, n, correct = FALSE)``):
  ``(p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n)``, with the limit exactly 0 at p = 0 and 1 at p = 1.
* **Risk difference** ``p_A − p_B`` with Newcombe's hybrid score interval (Newcombe 1998, *Stat Med* 17:873–890,
  method 10): from the Wilson limits ``(l_A, u_A)``, ``(l_B, u_B)``,
  ``lower = d − sqrt((p_A − l_A)² + (u_B − p_B)²)``, ``upper = d + sqrt((u_A − p_A)² + (p_B − l_B)²)``.
  (R's ``prop.test`` interval for a difference is the Wald one; it is not used.)
* **Relative risk** ``p_A/p_B`` with the Katz log interval (Katz, Baptista, Azen & Pike 1978, *Biometrics*
  34:469–474), ``exp(log RR ± z·sqrt(1/a − 1/n_A + 1/c − 1/n_B))``, by ``scipy.stats.contingency.relative_risk``:
  no events in A gives (0, NaN), none in B (NaN, ∞), none in either (NaN, NaN) — the convention of R
  ``epitools::riskratio``.
* **Odds ratio** as R ``fisher.test``: the conditional maximum-likelihood estimate (the ψ at which the mean of
  Fisher's noncentral hypergeometric distribution of ``a`` given the margins equals the observed ``a``) with the
  exact interval (ψ_L with ``P(X ≥ a; ψ_L) = α/2``, ψ_U with ``P(X ≤ a; ψ_U) = α/2``; Cornfield 1956). As in R,
  ``a`` at the lower end of its support gives 0 (checked first, so a table with a single possible ``a`` gives 0)
  and a lower limit of 0, and at the upper end ∞ with an upper limit of ∞. The roots are found to machine
  precision on the log-odds scale; R's ``uniroot`` stops at its default tolerance (≈ 1.2·10⁻⁴ on the (0, 1) scale
  it solves on), so ``fisher.test`` prints values that differ from these by up to that tolerance. Also the
  sample odds ratio ``ad/(bc)``.
* **Tests**: Pearson's chi-square without and with Yates' correction (R ``chisq.test(correct = FALSE / TRUE)``,
  equal to ``prop.test``; the correction is ``min(0.5, |O − E|)``), undefined (NaN, R's NA) when a margin is
  empty; Fisher's exact two-sided p (R ``fisher.test``), from :func:`allotrack.stats.contingency.fisher_test`.

Strata (:func:`cmh_test`, R ``mantelhaen.test`` for 2 × 2 × k tables): with ``Δ = Σ (a_k − E a_k)`` and
``V = Σ n_1k n_2k m_1k m_2k / (n_k² (n_k − 1))``, the Cochran–Mantel–Haenszel statistic is ``(|Δ| − c)² / V`` on
1 df, with ``c = 0.5`` for the continuity-corrected version **only when |Δ| ≥ 0.5** (else 0, as R), and
``c = 0`` without correction. The Mantel–Haenszel common odds ratio ``Σ a_k d_k/n_k / Σ b_k c_k/n_k`` has the
Robins–Breslow–Greenland (1986, *Biometrics* 42:311–323) variance of its log. The exact conditional test
(R ``mantelhaen.test(exact = TRUE)``) uses the distribution of ``Σ a_k`` given every stratum's margins (the
convolution of the strata's hypergeometric distributions): two-sided p sums the probabilities at most the
observed one times 1 + 10⁻⁷ (R's tolerance), with the conditional MLE and exact interval found as for one table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from allotrack.errors import InputError
from allotrack.stats.contingency import chisq_test, fisher_test
from allotrack.stats.results import Result, TestResult

__all__ = [
    "BinaryComparison",
    "BinaryOutcome",
    "Estimate",
    "MantelHaenszelTest",
    "binary_counts",
    "binary_outcome",
    "binary_outcome_table",
    "cmh_test",
]

R_REL_ERR = 1 + 1e-7  # R's tolerance for "at most as probable as the observed" in exact two-sided p-values

_FRAME_COLUMNS = ["measure", "estimate", "lower", "upper", "statistic", "dof", "p_value", "method"]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with the limits of its two-sided confidence interval; ``method`` names the interval."""

    estimate: float
    lower: float
    upper: float
    method: str


def _estimate_row(measure: str, e: Estimate) -> dict[str, Any]:
    return {"measure": measure, "estimate": e.estimate, "lower": e.lower, "upper": e.upper,
            "statistic": math.nan, "dof": math.nan, "p_value": math.nan, "method": e.method}  # fmt: skip


def _test_row(measure: str, t: TestResult) -> dict[str, Any]:
    return {"measure": measure, "estimate": math.nan, "lower": math.nan, "upper": math.nan,
            "statistic": t.statistic, "dof": t.dof, "p_value": t.p_value, "method": t.name}  # fmt: skip


def _p_row(measure: str, p: float, method: str) -> dict[str, Any]:
    return {"measure": measure, "estimate": math.nan, "lower": math.nan, "upper": math.nan,
            "statistic": math.nan, "dof": math.nan, "p_value": p, "method": method}  # fmt: skip


@dataclass(frozen=True, repr=False)
class BinaryOutcome(Result):
    """Result of :func:`binary_counts`: group A (``labels[0]``) compared with group B (``labels[1]``).

    Differences and ratios are A − B and A / B. ``chisq`` is Pearson's chi-square without correction,
    ``chisq_corrected`` with Yates' correction; ``odds_ratio`` is ``fisher.test``'s conditional MLE with its
    exact interval and ``fisher_p_value`` its two-sided p.
    """

    labels: tuple[str, str]
    events_a: int
    n_a: int
    events_b: int
    n_b: int
    conf_level: float
    proportion_a: Estimate
    proportion_b: Estimate
    risk_difference: Estimate
    relative_risk: Estimate
    odds_ratio: Estimate
    sample_odds_ratio: float
    chisq: TestResult
    chisq_corrected: TestResult
    fisher_p_value: float

    @property
    def table(self) -> np.ndarray:
        """The 2 × 2 table: rows A, B; columns event, no event."""
        return np.array([[self.events_a, self.n_a - self.events_a], [self.events_b, self.n_b - self.events_b]])

    def to_frame(self) -> pd.DataFrame:
        """One row per measure, unrounded; ``attrs`` hold the labels and the confidence level."""
        rows = [
            _estimate_row("proportion_a", self.proportion_a),
            _estimate_row("proportion_b", self.proportion_b),
            _estimate_row("risk_difference", self.risk_difference),
            _estimate_row("relative_risk", self.relative_risk),
            _estimate_row("odds_ratio", self.odds_ratio),
            _estimate_row("odds_ratio_sample", Estimate(self.sample_odds_ratio, math.nan, math.nan, "ad/(bc)")),
            _test_row("chisq", self.chisq),
            _test_row("chisq_corrected", self.chisq_corrected),
            _p_row("fisher_exact", self.fisher_p_value, "Fisher's exact test (two-sided)"),
        ]
        frame = pd.DataFrame(rows, columns=_FRAME_COLUMNS)
        frame.attrs.update({"labels": self.labels, "conf_level": self.conf_level,
                            "events": (self.events_a, self.events_b), "n": (self.n_a, self.n_b)})  # fmt: skip
        return frame

    def __repr__(self) -> str:
        a, b = self.labels
        head = f"<BinaryOutcome: {a} {self.events_a}/{self.n_a} vs {b} {self.events_b}/{self.n_b}"
        return _short_repr(f"{head}, {self.conf_level:g} confidence intervals>", self.to_frame())


@dataclass(frozen=True, repr=False)
class MantelHaenszelTest(Result):
    """Result of :func:`cmh_test`. ``chisq_corrected`` is R's default ``mantelhaen.test``, ``chisq`` its
    ``correct = FALSE``; ``exact_p_value`` and ``exact_odds_ratio`` are ``mantelhaen.test(exact = TRUE)``."""

    strata: tuple[str, ...]
    tables: np.ndarray  # (k, 2, 2): stratum, group (A, B), outcome (event, no event)
    conf_level: float
    chisq: TestResult
    chisq_corrected: TestResult
    common_odds_ratio: Estimate
    exact_p_value: float
    exact_odds_ratio: Estimate

    @property
    def n_strata(self) -> int:
        return int(self.tables.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """One row per measure, unrounded."""
        rows = [
            _test_row("chisq_corrected", self.chisq_corrected),
            _test_row("chisq", self.chisq),
            _p_row("exact", self.exact_p_value, "Exact conditional test of independence in 2 x 2 x k tables"),
            _estimate_row("odds_ratio_mh", self.common_odds_ratio),
            _estimate_row("odds_ratio_exact", self.exact_odds_ratio),
        ]
        frame = pd.DataFrame(rows, columns=_FRAME_COLUMNS)
        frame.attrs.update({"strata": self.strata, "conf_level": self.conf_level})
        return frame

    def __repr__(self) -> str:
        head = f"<MantelHaenszelTest: {self.n_strata} strata, {self.conf_level:g} confidence intervals>"
        return _short_repr(head, self.to_frame())


def _short_repr(head: str, frame: pd.DataFrame) -> str:
    shown = frame[["measure", "estimate", "lower", "upper", "statistic", "p_value"]].set_index("measure")
    with pd.option_context("display.width", 120, "display.max_columns", 10, "display.precision", 4):
        return f"{head}\n{shown}"


# ---- input -------------------------------------------------------------------------------------------------


def _whole(value: Any, name: str) -> int:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number, not {value!r}", column=name) from None
    if isinstance(value, bool | np.bool_) or not math.isfinite(x) or x != round(x):
        raise InputError(f"{name} must be a whole number, not {value!r}", column=name)
    return round(x)


def _check_conf_level(conf_level: float) -> float:
    try:
        level = float(conf_level)
    except (TypeError, ValueError):
        level = math.nan
    if not 0 < level < 1:
        raise InputError(f"conf_level must lie strictly between 0 and 1, not {conf_level!r}", column="conf_level")
    return level


def _z(conf_level: float) -> float:
    return float(special.ndtri((1 + conf_level) / 2))


def _counts_array(tables: Any, name: str) -> np.ndarray:
    """Whole, non-negative, finite counts as int64 (the caller checks the shape)."""
    try:
        arr = np.asarray(tables, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must hold numbers (counts)", column=name) from None
    bad = ~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr))
    if bad.any():
        flat = np.flatnonzero(bad.reshape(-1))
        raise InputError(
            f"{name} must hold non-negative whole counts (flat positions of the bad cells shown)",
            table=name, rows=flat.tolist(), values=arr.reshape(-1)[flat].tolist(), n_bad=flat.size,
        )  # fmt: skip
    return np.round(arr).astype(np.int64)


# ---- the two-group analysis ------------------------------------------------------------------------------


def binary_counts(
    events_a: int,
    n_a: int,
    events_b: int,
    n_b: int,
    *,
    conf_level: float = 0.95,
    labels: Sequence[str] = ("A", "B"),
) -> BinaryOutcome:
    """Compare ``events_a``/``n_a`` (group A) with ``events_b``/``n_b`` (group B) — e.g. a complete response at
    week 4 in 54/65 vs 36/65 patients.

    Returns proportions (Wilson), the risk difference A − B (Newcombe hybrid score), the relative risk A/B
    (Katz log), the odds ratio (conditional MLE with exact interval, R ``fisher.test``) and the sample odds ratio,
    Pearson's chi-square with and without Yates' correction (R ``chisq.test``/``prop.test``) and Fisher's exact
    p. All intervals are two-sided at ``conf_level``. See the module docstring for the definitions.
    """
    level = _check_conf_level(conf_level)
    counts = {name: _whole(v, name) for name, v in
              (("events_a", events_a), ("n_a", n_a), ("events_b", events_b), ("n_b", n_b))}  # fmt: skip
    for x_name, n_name in (("events_a", "n_a"), ("events_b", "n_b")):
        n, x = counts[n_name], counts[x_name]
        if n <= 0:
            raise InputError(f"{n_name} (a group size) must be at least 1, not {n}", column=n_name)
        if not 0 <= x <= n:
            raise InputError(f"{x_name} must lie between 0 and {n_name} = {n}, not {x}", column=x_name)
    names = tuple(str(s) for s in labels)
    if len(names) != 2 or names[0] == names[1]:
        raise InputError(f"labels must be two distinct group names, not {labels!r}", column="labels")
    return _analyse(counts["events_a"], counts["n_a"], counts["events_b"], counts["n_b"], level, (names[0], names[1]))


def binary_outcome_table(table: Any, *, conf_level: float = 0.95, labels: Sequence[str] | None = None) -> BinaryOutcome:
    """:func:`binary_counts` from a 2 × 2 table ``[[events_a, no_events_a], [events_b, no_events_b]]`` (rows are
    the groups, columns event / no event — the layout R's ``fisher.test`` reads). A DataFrame's index gives the
    labels unless ``labels`` is given."""
    if labels is None:
        labels = [str(v) for v in table.index] if isinstance(table, pd.DataFrame) else ("A", "B")
    t = _counts_array(table, "table")
    if t.shape != (2, 2):
        raise InputError(f"table must be 2 x 2 (groups x event/no event), not of shape {t.shape}", table="table")
    for row in range(2):
        if t[row].sum() == 0:
            raise InputError("every group (row) of table needs at least one patient", table="table",
                             rows=[row], values=[t[row].tolist()])  # fmt: skip
    return binary_counts(t[0, 0], t[0].sum(), t[1, 0], t[1].sum(), conf_level=conf_level, labels=labels)


def _wilson(x: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score limits (R ``prop.test(x, n, correct = FALSE)$conf.int``), vectorised over groups."""
    p = x / n
    z22n = z * z / (2 * n)
    half = z * np.sqrt(p * (1 - p) / n + z22n / (2 * n))
    lower = np.where(p <= 0, 0.0, (p + z22n - half) / (1 + 2 * z22n))
    upper = np.where(p >= 1, 1.0, (p + z22n + half) / (1 + 2 * z22n))
    return lower, upper


def _analyse(a: int, n_a: int, c: int, n_b: int, level: float, labels: tuple[str, str]) -> BinaryOutcome:
    z = _z(level)
    x, n = np.array([a, c], dtype=float), np.array([n_a, n_b], dtype=float)
    p = x / n
    lower, upper = _wilson(x, n, z)
    wilson = "Wilson score (prop.test, correct = FALSE)"
    d = p[0] - p[1]
    rd = Estimate(
        float(d),
        float(d - np.hypot(p[0] - lower[0], upper[1] - p[1])),
        float(d + np.hypot(upper[0] - p[0], p[1] - lower[1])),
        "Newcombe hybrid score (1998, method 10)",
    )
    rr = stats.contingency.relative_risk(a, n_a, c, n_b)
    rr_ci = rr.confidence_interval(level)
    relative_risk = Estimate(float(rr.relative_risk), float(rr_ci.low), float(rr_ci.high), "Katz log")
    table = np.array([[a, n_a - a], [c, n_b - c]], dtype=np.int64)
    cond = _Conditional.from_tables(table[None])
    odds = cond.odds_ratio(level, "conditional MLE, exact CI (fisher.test)")
    with np.errstate(divide="ignore", invalid="ignore"):
        sample_or = float(np.float64(table[0, 0] * table[1, 1]) / np.float64(table[0, 1] * table[1, 0]))
    chisq, chisq_corrected = _pearson(table)
    return BinaryOutcome(
        labels=labels,
        events_a=a,
        n_a=n_a,
        events_b=c,
        n_b=n_b,
        conf_level=level,
        proportion_a=Estimate(float(p[0]), float(lower[0]), float(upper[0]), wilson),
        proportion_b=Estimate(float(p[1]), float(lower[1]), float(upper[1]), wilson),
        risk_difference=rd,
        relative_risk=relative_risk,
        odds_ratio=odds,
        sample_odds_ratio=sample_or,
        chisq=chisq,
        chisq_corrected=chisq_corrected,
        fisher_p_value=float(fisher_test(table).p_value),
    )


def _pearson(table: np.ndarray) -> tuple[TestResult, TestResult]:
    """Pearson's chi-square without and with Yates' correction; NaN (R's NA) when a margin is empty."""
    plain, yates = "Pearson's chi-squared test", "Pearson's chi-squared test with Yates' continuity correction"
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        return TestResult(plain, math.nan, 1, math.nan), TestResult(yates, math.nan, 1, math.nan)
    uncorrected = chisq_test(table)
    corrected = stats.chi2_contingency(table, correction=True)  # min(0.5, |O - E|), as R chisq.test
    return (
        TestResult(plain, uncorrected.statistic, 1, uncorrected.p_value),
        TestResult(yates, float(corrected.statistic), 1, float(corrected.pvalue)),
    )


# ---- conditional (exact) inference on the odds ratio, for one table or k strata ------------------------------


@dataclass(frozen=True)
class _Conditional:
    """The null distribution of ``S = Σ a_k`` given every stratum's margins, on ``support`` (lo … hi)."""

    support: np.ndarray
    log_null: np.ndarray  # log P(S = s) under odds ratio 1 (normalised)
    observed: int

    @classmethod
    def from_tables(cls, tables: np.ndarray) -> _Conditional:
        a = tables[:, 0, 0]
        col1 = tables[:, :, 0].sum(axis=1)  # events in the stratum
        row1 = tables[:, 0, :].sum(axis=1)  # group A's size
        total = tables.sum(axis=(1, 2))
        lo_k = np.maximum(0, row1 - (total - col1))
        hi_k = np.minimum(col1, row1)
        logs = [
            stats.hypergeom.logpmf(np.arange(lo, hi + 1), n_, m_, r_)
            for lo, hi, n_, m_, r_ in zip(lo_k, hi_k, total, col1, row1, strict=True)
        ]
        if len(logs) == 1:
            log_null = logs[0]
        else:  # convolve in probability space, rescaled at every step (as R's d2x2xk)
            dens = np.exp(logs[0] - logs[0].max())
            for lg in logs[1:]:
                dens = np.convolve(dens, np.exp(lg - lg.max()))
                dens /= dens.max()
            with np.errstate(divide="ignore"):
                log_null = np.log(dens / dens.sum())
        support = np.arange(int(lo_k.sum()), int(hi_k.sum()) + 1)
        return cls(support=support, log_null=log_null, observed=int(a.sum()))

    def density(self, log_psi: float) -> np.ndarray:
        w = self.log_null + log_psi * self.support
        w = np.exp(w - w.max())
        return w / w.sum()

    def mean(self, log_psi: float) -> float:
        return float(self.support @ self.density(log_psi))

    def tail(self, log_psi: float, upper: bool) -> float:
        d = self.density(log_psi)
        return float(d[self.support >= self.observed].sum() if upper else d[self.support <= self.observed].sum())

    def p_value(self) -> float:
        """Two-sided: the probabilities at most the observed one (times 1 + 1e-7), as R."""
        d = np.exp(self.log_null)
        observed = d[self.observed - self.support[0]]
        return float(min(1.0, d[d <= observed * R_REL_ERR].sum()))

    def odds_ratio(self, level: float, method: str) -> Estimate:
        lo, hi, x = int(self.support[0]), int(self.support[-1]), self.observed
        alpha = (1 - level) / 2
        if x == lo:  # R checks the lower end first: a single-point support gives 0
            mle = 0.0
        elif x == hi:
            mle = math.inf
        else:
            mle = math.exp(_root(lambda t: self.mean(t) - x, increasing=True))
        lower = 0.0 if x == lo else math.exp(_root(lambda t: self.tail(t, upper=True) - alpha, increasing=True))
        upper = math.inf if x == hi else math.exp(_root(lambda t: self.tail(t, upper=False) - alpha, increasing=False))
        return Estimate(mle, lower, upper, method)


def _root(f: Any, increasing: bool) -> float:
    """The root of a monotone function of the log odds ratio, to machine precision (brentq on a bracket found by
    doubling outwards from [-1, 1])."""
    sign = 1.0 if increasing else -1.0
    lo, hi = -1.0, 1.0
    while sign * f(lo) > 0:
        lo *= 2
        if lo < -2048:  # pragma: no cover - cannot happen for x strictly inside its support
            raise ArithmeticError("no bracket for the conditional odds ratio")
    while sign * f(hi) < 0:
        hi *= 2
        if hi > 2048:  # pragma: no cover
            raise ArithmeticError("no bracket for the conditional odds ratio")
    return float(optimize.brentq(f, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500))


# ---- strata -------------------------------------------------------------------------------------------------


def cmh_test(tables: Any, *, conf_level: float = 0.95, strata: Sequence[str] | None = None) -> MantelHaenszelTest:
    """Cochran–Mantel–Haenszel test and Mantel–Haenszel common odds ratio over k 2 × 2 strata (R
    ``mantelhaen.test``: default, ``correct = FALSE`` and ``exact = TRUE``).

    ``tables`` has shape (k, 2, 2): stratum first, then group (A, B) × outcome (event, no event), each stratum as
    in :func:`binary_outcome_table` (R's 2 × 2 × K array ``x`` is ``numpy.moveaxis(x, 2, 0)``). Every stratum
    needs at least 2 patients (as R). Unlike R, a single stratum is accepted (the statistic is then Pearson's
    chi-square times (n − 1)/n, and the exact test is Fisher's).
    """
    level = _check_conf_level(conf_level)
    t = _counts_array(tables, "tables")
    if t.ndim == 2 and t.shape == (2, 2):
        raise InputError("tables must have shape (k, 2, 2); for one 2 x 2 table pass [table]", table="tables")
    if t.ndim != 3 or t.shape[1:] != (2, 2) or t.shape[0] < 1:
        raise InputError(f"tables must have shape (k, 2, 2) (stratum, group, outcome), not {t.shape}", table="tables")
    n = t.sum(axis=(1, 2))
    small = np.flatnonzero(n < 2)
    if small.size:
        raise InputError("every stratum needs at least 2 patients (positions of the strata shown)",
                         table="tables", rows=small.tolist(), values=n[small].tolist(), n_bad=small.size)  # fmt: skip
    names = tuple(str(s) for s in strata) if strata is not None else tuple(str(i + 1) for i in range(t.shape[0]))
    if len(names) != t.shape[0]:
        raise InputError(f"strata must name the {t.shape[0]} strata, got {len(names)} names", column="strata")

    f = t.astype(float)
    a, b, c, d = f[:, 0, 0], f[:, 0, 1], f[:, 1, 0], f[:, 1, 1]
    nf = n.astype(float)
    rows1, rows2, cols1, cols2 = a + b, c + d, a + c, b + d
    delta = np.float64((a - rows1 * cols1 / nf).sum())
    variance = np.float64((rows1 * rows2 * cols1 * cols2 / (nf**2 * (nf - 1))).sum())
    yates = 0.5 if abs(delta) >= 0.5 else 0.0  # R: no correction at all when |delta| < 0.5
    name = "Mantel-Haenszel chi-squared test"
    with np.errstate(divide="ignore", invalid="ignore"):  # IEEE arithmetic, as R: 0/0 is NaN, x/0 is Inf
        stat0 = float(delta**2 / variance)
        stat1 = float((abs(delta) - yates) ** 2 / variance)
        s_diag = np.float64((a * d / nf).sum())
        s_offd = np.float64((b * c / nf).sum())
        estimate = float(s_diag / s_offd)
        var_log = (
            ((a + d) * a * d / nf**2).sum() / (2 * s_diag**2)
            + (((a + d) * b * c + (b + c) * a * d) / nf**2).sum() / (2 * s_diag * s_offd)
            + ((b + c) * b * c / nf**2).sum() / (2 * s_offd**2)
        )
        half = _z(level) * np.sqrt(var_log)
        lower, upper = float(estimate * np.exp(-half)), float(estimate * np.exp(half))
    chisq = TestResult(f"{name} without continuity correction", stat0, 1, float(stats.chi2.sf(stat0, 1)))
    chisq_corrected = TestResult(f"{name} with continuity correction", stat1, 1, float(stats.chi2.sf(stat1, 1)))
    mh = Estimate(estimate, lower, upper, "Mantel-Haenszel, Robins-Breslow-Greenland CI")

    cond = _Conditional.from_tables(t)
    return MantelHaenszelTest(
        strata=names,
        tables=t,
        conf_level=level,
        chisq=chisq,
        chisq_corrected=chisq_corrected,
        common_odds_ratio=mh,
        exact_p_value=cond.p_value(),
        exact_odds_ratio=cond.odds_ratio(level, "conditional MLE, exact CI (mantelhaen.test exact = TRUE)"),
    )


# ---- the public API: a binary outcome column by a group column --------------------------------------------------


@dataclass(frozen=True, repr=False)
class BinaryComparison(Result):
    """Result of :func:`binary_outcome` (DESIGN.md's public API). ``table``: group, n, events, proportion and its
    exact (Clopper–Pearson, R ``binom.test``) interval; ``risk_difference`` (Newcombe), ``risk_ratio`` (Katz log)
    and ``odds_ratio`` (conditional MLE, exact interval) compare the first group with the second; ``tests``: the
    chi-square without and with Yates' correction, Fisher's exact test and, with strata, Cochran–Mantel–Haenszel;
    ``chisq`` is the chi-square ``correct`` chose. ``counts`` holds the full two-group analysis."""

    table: pd.DataFrame
    risk_difference: Estimate
    risk_ratio: Estimate
    odds_ratio: Estimate
    tests: pd.DataFrame
    chisq: TestResult
    counts: BinaryOutcome
    strata: MantelHaenszelTest | None = None

    def to_frame(self) -> pd.DataFrame:
        return self.counts.to_frame()


def binary_outcome(data: Any, outcome: str, by: str, strata: str | None = None, correct: bool = False,
                   conf_level: float = 0.95) -> BinaryComparison:  # fmt: skip
    """A 0/1 (or yes/no) ``outcome`` column compared between the two groups of ``by`` (the order of its
    categories, else sorted: the first group is compared with the second), optionally within ``strata``.
    Rows with a missing outcome or group are left out (R's ``na.omit``). See :func:`binary_counts`."""
    frame = pd.DataFrame(data) if not isinstance(data, pd.DataFrame) else data
    for name in (outcome, by, *([strata] if strata else [])):
        if name not in frame.columns:
            raise InputError("column not found", table="data", column=name)
    y = frame[outcome].map(lambda v: {True: 1, False: 0}.get(v, v) if isinstance(v, bool) else v)
    y = pd.to_numeric(y, errors="coerce")
    used = frame[y.notna() & frame[by].notna() & (frame[strata].notna() if strata else True)]
    y = y[used.index]
    if not y.isin([0, 1]).all():
        raise InputError("a binary outcome is 0 or 1 (or yes/no)", column=outcome, values=sorted(set(y) - {0, 1}))
    groups = used[by]
    levels = (list(groups.cat.categories) if isinstance(groups.dtype, pd.CategoricalDtype)
              else sorted(groups.unique(), key=str))  # fmt: skip
    levels = [g for g in levels if (groups == g).any()]
    if len(levels) != 2:
        raise InputError(f"binary_outcome compares two groups; '{by}' has {len(levels)}", column=by,
                         values=[str(v) for v in levels])  # fmt: skip
    counts = [(int(y[groups == g].sum()), int((groups == g).sum())) for g in levels]
    result = binary_counts(*counts[0], *counts[1], conf_level=conf_level, labels=(str(levels[0]), str(levels[1])))
    rows = []
    for g, (events, n) in zip(levels, counts, strict=True):
        ci = stats.binomtest(events, n).proportion_ci(confidence_level=conf_level, method="exact")
        rows.append({"group": g, "n": n, "events": events, "proportion": events / n, "lower": ci.low,
                     "upper": ci.high})  # fmt: skip
    tests = [(t.name, t.statistic, t.dof, t.p_value) for t in (result.chisq, result.chisq_corrected)]
    tests.append(("Fisher's exact test", math.nan, 0, result.fisher_p_value))
    stratified = None
    if strata:
        layers = [np.array([[int(y[(groups == g) & (used[strata] == s)].sum()),
                             int(((groups == g) & (used[strata] == s)).sum())
                             - int(y[(groups == g) & (used[strata] == s)].sum())] for g in levels])
                  for s in sorted(used[strata].unique(), key=str)]  # fmt: skip
        stratified = cmh_test(np.stack(layers), conf_level=conf_level)
        tests.append(("Cochran–Mantel–Haenszel", stratified.chisq.statistic, stratified.chisq.dof,
                      stratified.chisq.p_value))  # fmt: skip
    return BinaryComparison(
        table=pd.DataFrame(rows), risk_difference=result.risk_difference, risk_ratio=result.relative_risk,
        odds_ratio=result.odds_ratio, tests=pd.DataFrame(tests, columns=["test", "statistic", "dof", "p_value"]),
        chisq=result.chisq_corrected if correct else result.chisq, counts=result, strata=stratified)  # fmt: skip
