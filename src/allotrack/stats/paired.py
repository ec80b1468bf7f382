"""Paired and repeated-measures comparisons, as R computes them.

* :func:`paired_wilcoxon` — Wilcoxon signed-rank test on the differences ``before − after``, R
  ``wilcox.test(x, y, paired = TRUE)`` (Wilcoxon 1945; Hollander & Wolfe 1999, §3.1). V is the sum of the ranks
  of |d| over the positive differences. Zero differences are dropped first (Wilcoxon's convention, as R). The
  p-value is exact (distribution of V by enumeration, R ``psignrank``) when fewer than 50 non-zero differences
  remain and there are neither ties nor zeros; otherwise it is normal with continuity correction
  ``z = (V − n(n+1)/4 − ½ sign(·)) / sqrt(n(n+1)(2n+1)/24 − Σ(t³ − t)/48)``.
  With ``conf_int=True`` it adds the Hodges–Lehmann pseudo-median and its interval (Hollander & Wolfe §3.3):
  in the exact case the median of the Walsh averages and the Walsh averages at the ``psignrank`` quantiles; in
  the normal case R's own construction — the roots, found by R ``uniroot`` (Brent's zeroin, tolerance
  ``tol_root``), of the standardised statistic of ``d − μ`` as a function of μ. Reproducing R to 1e-6 needs the
  same root finder, so :func:`_zeroin` is Brent's algorithm (Brent 1973, ch. 4; Forsythe, Malcolm & Moler 1977,
  ``zeroin``) step for step. R lowers ``conf.level`` when the requested level is not achievable; so does this
  (the result's ``conf_level`` is the achieved one).
* :func:`paired_t` — R ``t.test(x, y, paired = TRUE)``: one-sample t on the differences (``scipy.stats.ttest_rel``,
  which agrees with R exactly).
* :func:`friedman` — R ``friedman.test``: Friedman's (1937) rank test for an unreplicated complete block design,
  with the tie correction ``χ² = 12 Σ_j (R_j − n(k+1)/2)² / (n k (k+1) − Σ(t³ − t)/(k − 1))`` on k − 1 df.
  Written out because ``scipy.stats.friedmanchisquare`` refuses k = 2, which R allows.

Missing values: pairs (subjects) with a missing value are dropped, as R ``complete.cases``; the results count
what was used. Only the two-sided alternative is offered (R's default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from allotrack.errors import InputError
from allotrack.stats import _input
from allotrack.stats.results import Result, TestResult

__all__ = ["FriedmanTest", "PairedT", "PairedWilcoxon", "friedman", "friedman_test", "paired_t", "paired_test",
           "paired_wilcoxon"]

_EPS = float(np.finfo(float).eps)


# ---------------------------------------------------------------------------------------------------- input


def _values(data: Any, spec: _input.ColumnSpec, role: str) -> np.ndarray:
    """A numeric 1-d column (NaN kept for the caller to drop); infinite values are an error."""
    name = _input.column_name(spec, role)
    arr = _input._as_float(_input.raw_column(data, spec, role), name, role)
    bad = np.isinf(arr)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(f"{role} must be finite", column=name, rows=rows[:5].tolist(),
                         values=arr[rows[:5]].tolist(), n_bad=rows.size)  # fmt: skip
    return arr


def _differences(before: Any, after: Any, data: Any) -> tuple[np.ndarray, int]:
    """``before − after`` over the complete pairs, and the number of incomplete pairs dropped."""
    b = _values(data, before, "before")
    a = _values(data, after, "after")
    if b.size != a.size:
        raise InputError(
            f"before and after must have the same length (one value each per pair), not {b.size} and {a.size}",
            column="after",
        )
    ok = ~(np.isnan(b) | np.isnan(a))
    return b[ok] - a[ok], int((~ok).sum())


def _check_level(conf_level: float) -> None:
    if not (isinstance(conf_level, int | float) and 0 < conf_level < 1):
        raise InputError(f"conf_level must lie strictly between 0 and 1, not {conf_level!r}", column="conf_level")


# ------------------------------------------------------------------------------------------- signed rank


def _signrank_cdf(n: int) -> np.ndarray:
    """P(V ≤ v), v = 0 … n(n+1)/2, for the signed-rank statistic of n untied non-zero differences (R
    ``psignrank``): the number of subsets of {1..n} with sum v, by adding one rank at a time, times 2⁻ⁿ."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    top = 0
    for i in range(1, n + 1):
        counts[i : top + i + 1] += counts[: top + 1].copy()
        top += i
    return np.cumsum(counts * np.exp(-n * np.log(2.0)))


def _qsignrank(p: float, cdf: np.ndarray) -> int:
    """R ``qsignrank(p, n)`` for p ≤ ½: the smallest v with P(V ≤ v) ≥ p (R subtracts 10·eps from p)."""
    return int(np.searchsorted(cdf, p - 10 * _EPS, side="left"))


def _signif(x: float, digits: int) -> float:
    return float(f"{x:.{digits - 1}e}")


def _signed_rank_z(x: np.ndarray, d: float, correct: bool) -> float:
    """R's ``W(d)`` inside ``wilcox.test``: the standardised signed-rank statistic of ``x − d`` (zeros dropped,
    tie-corrected variance, continuity correction ``sign(z)/2`` when ``correct``)."""
    xd = x - d
    xd = xd[xd != 0]
    nx = xd.size
    ranks = stats.rankdata(np.abs(xd))
    zd = ranks[xd > 0].sum() - nx * (nx + 1) / 4
    _, ties = np.unique(ranks, return_counts=True)
    sigma = np.sqrt(nx * (nx + 1) * (2 * nx + 1) / 24 - (ties**3 - ties).sum() / 48)
    correction = np.sign(zd) * 0.5 if correct else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(zd - correction) / sigma)


def _zeroin(f: Callable[[float], float], ax: float, bx: float, fa: float, fb: float, tol: float,
            maxiter: int = 1000) -> float:  # fmt: skip
    """A zero of ``f`` in [ax, bx] by Brent's method (Brent 1973, ch. 4; the ``zeroin`` of Forsythe, Malcolm &
    Moler 1977), the algorithm behind R ``uniroot`` — bisection safeguarding secant / inverse quadratic
    interpolation, stopping when the bracket is within ``2·eps·|b| + tol/2`` of b. R passes the end-point values
    in (``f.lower``, ``f.upper``), so they are arguments here too; the iterates follow R's step for step."""
    if fa == 0.0:
        return ax
    if fb == 0.0:
        return bx
    a, b, c = ax, bx, ax
    fc = fa
    for _ in range(maxiter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):  # b is the best approximation so far
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * _EPS * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):  # try interpolation
            cb = c - b
            if a == c:  # linear
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:  # inverse quadratic
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b  # R warns "_NOT_ converged" and returns the last iterate


class _Interval:
    """``lower`` and ``upper``: DESIGN.md's public names of a result's ``conf_low`` and ``conf_high``."""

    conf_low: float
    conf_high: float

    @property
    def lower(self) -> float:
        return self.conf_low

    @property
    def upper(self) -> float:
        return self.conf_high


@dataclass(frozen=True, repr=False)
class PairedWilcoxon(_Interval, Result):
    """Result of :func:`paired_wilcoxon` (R ``wilcox.test(x, y, paired = TRUE)``).

    ``statistic`` is R's V (sum of the ranks of the positive differences ``before − after``); ``n`` counts the
    non-zero differences used, ``n_zero`` the zero differences dropped, ``n_missing`` the incomplete pairs.
    ``estimate`` (the Hodges–Lehmann pseudo-median of the differences) and the interval are NaN unless
    ``conf_int=True``; ``conf_level`` is the level achieved (R lowers it when the requested one cannot be had).
    """

    statistic: float
    p_value: float
    method: str
    exact: bool
    correct: bool
    n: int
    n_zero: int
    n_missing: int
    estimate: float
    conf_low: float
    conf_high: float
    conf_level: float

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "test": ["wilcox.test(paired = TRUE)"],
                "method": [self.method],
                "n": [self.n],
                "n_zero": [self.n_zero],
                "statistic": [self.statistic],
                "p_value": [self.p_value],
                "estimate": [self.estimate],
                "conf_low": [self.conf_low],
                "conf_high": [self.conf_high],
                "conf_level": [self.conf_level],
            }
        )


def paired_wilcoxon(
    before: _input.ColumnSpec,
    after: _input.ColumnSpec,
    data: Any = None,
    *,
    exact: bool | None = None,
    correct: bool = True,
    conf_int: bool = False,
    conf_level: float = 0.95,
    tol_root: float = 1e-4,
) -> PairedWilcoxon:
    """Wilcoxon signed-rank test of paired values, as R ``wilcox.test(before, after, paired = TRUE, exact,
    correct, conf.int, conf.level, tol.root)`` (two-sided).

    Parameters
    ----------
    before, after : paired values (arrays, or column names in ``data``); the differences are ``before − after``.
    exact : exact p-value (and interval); ``None`` means exact when fewer than 50 non-zero differences. With ties
        or zero differences the normal approximation is used whatever is asked, as in R.
    correct : continuity correction in the normal approximation.
    conf_int : add the Hodges–Lehmann pseudo-median with its confidence interval.
    conf_level : requested confidence level.
    tol_root : tolerance of the root finder for the normal-approximation interval (R's ``tol.root``).
    """
    _check_level(conf_level)
    if not tol_root > 0:
        raise InputError(f"tol_root must be positive, not {tol_root!r}", column="tol_root")
    diff, n_missing = _differences(before, after, data)
    if diff.size == 0:
        raise InputError("no complete pairs: the signed-rank test needs at least one pair", column="before")
    zeros = diff == 0
    if zeros.all():
        raise InputError(
            f"all {diff.size} differences before − after are zero: the signed-rank test is undefined", column="after"
        )
    x = diff[~zeros]
    n = x.size
    ranks = stats.rankdata(np.abs(x))
    v = float(ranks[x > 0].sum())
    ties = np.unique(ranks).size < n
    use_exact = (n < 50 if exact is None else bool(exact)) and not ties and not zeros.any()
    method = "Wilcoxon signed rank exact test" if use_exact else "Wilcoxon signed rank test"
    if not use_exact and correct:
        method += " with continuity correction"
    if use_exact:
        p = float(stats.wilcoxon(x, method="exact").pvalue)
    else:
        p = float(stats.wilcoxon(x, method="asymptotic", correction=correct, zero_method="wilcox").pvalue)
    estimate = low = high = float("nan")
    level = float(conf_level)
    if conf_int:
        if use_exact:
            estimate, low, high, level = _exact_interval(x, conf_level)
        else:
            estimate, low, high, level = _normal_interval(x, conf_level, correct, tol_root)
    return PairedWilcoxon(
        statistic=v, p_value=p, method=method, exact=use_exact, correct=correct, n=int(n),
        n_zero=int(zeros.sum()), n_missing=n_missing, estimate=estimate, conf_low=low, conf_high=high,
        conf_level=level,
    )  # fmt: skip


def _exact_interval(x: np.ndarray, conf_level: float) -> tuple[float, float, float, float]:
    """Hodges–Lehmann estimate and exact interval: the median of the n(n+1)/2 Walsh averages and the Walsh
    averages of ranks ``qsignrank(α/2)`` and ``n(n+1)/2 − qsignrank(α/2) + 1`` (R's exact branch)."""
    n = x.size
    i, j = np.triu_indices(n)
    walsh = np.sort(x[i] + x[j]) / 2
    cdf = _signrank_cdf(n)
    alpha = 1 - conf_level
    qu = _qsignrank(alpha / 2, cdf)
    if qu == 0:
        qu = 1
    ql = n * (n + 1) // 2 - qu
    achieved = 2 * cdf[qu - 1]  # R: 2 * psignrank(qu - 1, n)
    level = conf_level
    if achieved - alpha > alpha / 2:  # R: "requested conf.level not achievable"
        level = 1 - _signif(achieved, 2)
    return float(np.median(walsh)), float(walsh[qu - 1]), float(walsh[ql]), float(level)


def _normal_interval(x: np.ndarray, conf_level: float, correct: bool, tol: float) -> tuple[float, float, float, float]:
    """R's asymptotic interval: μ where the standardised statistic of ``x − μ`` crosses ∓z_{α/2}, searched in
    [min x, max x] (α doubled until the crossings lie inside); the estimate is where it crosses 0 without
    continuity correction."""
    lo, hi = float(x.min()), float(x.max())
    w_lo = _signed_rank_z(x, lo, correct)
    w_hi = _signed_rank_z(x, hi, correct) if np.isfinite(w_lo) else float("nan")
    if not (np.isfinite(w_lo) and np.isfinite(w_hi)):  # all tied: R gives NaN limits, level 0 and the midrange
        return (lo + hi) / 2, float("nan"), float("nan"), 0.0
    alpha = 1 - conf_level
    while w_lo - stats.norm.isf(alpha / 2) < 0 or w_hi - stats.norm.ppf(alpha / 2) > 0:
        alpha *= 2
    level = conf_level
    if alpha >= 1 or 1 - conf_level < alpha * 0.75:  # R: "requested conf.level not achievable"
        level = 1 - min(1.0, alpha)
    if alpha < 1:

        def root(zq: float) -> float:
            return _zeroin(lambda d: _signed_rank_z(x, d, correct) - zq, lo, hi, w_lo - zq, w_hi - zq, tol)

        low, high = root(float(stats.norm.isf(alpha / 2))), root(float(stats.norm.ppf(alpha / 2)))
    else:
        low = high = float(np.median(x))
    estimate = _zeroin(lambda d: _signed_rank_z(x, d, False), lo, hi, _signed_rank_z(x, lo, False),
                       _signed_rank_z(x, hi, False), tol)  # fmt: skip
    return float(estimate), float(low), float(high), float(level)


# --------------------------------------------------------------------------------------------------- t-test


@dataclass(frozen=True, repr=False)
class PairedT(_Interval, Result):
    """Result of :func:`paired_t` (R ``t.test(x, y, paired = TRUE)``): ``estimate`` is the mean of
    ``before − after``, ``std_err`` its standard error, ``statistic`` the t value on ``dof = n − 1``."""

    estimate: float
    std_err: float
    conf_low: float
    conf_high: float
    conf_level: float
    statistic: float
    dof: int
    p_value: float
    n: int
    n_missing: int

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "test": ["t.test(paired = TRUE)"],
                "n": [self.n],
                "mean_difference": [self.estimate],
                "std_err": [self.std_err],
                "conf_low": [self.conf_low],
                "conf_high": [self.conf_high],
                "conf_level": [self.conf_level],
                "statistic": [self.statistic],
                "dof": [self.dof],
                "p_value": [self.p_value],
            }
        )


def paired_t(
    before: _input.ColumnSpec, after: _input.ColumnSpec, data: Any = None, *, conf_level: float = 0.95
) -> PairedT:
    """Paired t-test, as R ``t.test(before, after, paired = TRUE, conf.level)`` (two-sided): the one-sample t-test
    of the differences ``before − after`` (Student 1908), via ``scipy.stats.ttest_rel``."""
    _check_level(conf_level)
    diff, n_missing = _differences(before, after, data)
    n = diff.size
    if n < 2:
        raise InputError(f"the paired t-test needs at least 2 complete pairs, not {n}", column="before")
    mean = float(diff.mean())
    se = float(diff.std(ddof=1) / np.sqrt(n))
    if se < 10 * _EPS * abs(mean) or se == 0:  # R: "data are essentially constant"
        raise InputError("the differences before − after are (essentially) constant: t is undefined", column="after")
    res = stats.ttest_rel(diff, np.zeros(n))
    ci = res.confidence_interval(conf_level)
    return PairedT(
        estimate=mean, std_err=se, conf_low=float(ci.low), conf_high=float(ci.high), conf_level=float(conf_level),
        statistic=float(res.statistic), dof=int(res.df), p_value=float(res.pvalue), n=int(n), n_missing=n_missing,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------- Friedman


@dataclass(frozen=True, repr=False)
class FriedmanTest(TestResult):
    """Result of :func:`friedman` (R ``friedman.test``): chi-square on ``dof = k − 1``. ``conditions`` are the
    column labels in order, ``rank_sums`` their within-subject rank sums; ``n_subjects`` were used and
    ``n_dropped`` subjects with a missing value left out."""

    n_subjects: int
    n_dropped: int
    conditions: tuple[Any, ...]
    rank_sums: tuple[float, ...]

    def to_frame(self) -> pd.DataFrame:
        out = super().to_frame()
        out.insert(1, "n_subjects", self.n_subjects)
        out.insert(2, "n_conditions", len(self.conditions))
        return out


def _wide(data: Any, subject: Any, condition: Any, value: Any) -> tuple[np.ndarray, list[Any]]:
    """Subjects × conditions matrix and the condition labels, from a matrix or from long data."""
    if subject is None and condition is None and value is None:
        if isinstance(data, pd.DataFrame):
            labels: list[Any] = list(data.columns)
            try:
                mat = data.to_numpy(dtype=float)
            except (TypeError, ValueError):
                raise InputError("a wide Friedman table must hold numbers only (rows subjects, columns "
                                 "conditions)", table="data") from None  # fmt: skip
        else:
            try:
                mat = np.asarray(data, dtype=float)
            except (TypeError, ValueError):
                raise InputError("data must be a numeric matrix (rows subjects, columns conditions)",
                                 table="data") from None  # fmt: skip
            if mat.ndim != 2:
                raise InputError(f"data must be a 2-d matrix (rows subjects, columns conditions), got shape "
                                 f"{mat.shape}", table="data")  # fmt: skip
            labels = list(range(1, mat.shape[1] + 1))
        return mat, labels
    if subject is None or condition is None or value is None:
        raise InputError("long data need all three of subject, condition and value", column="subject")
    s_codes, _ = _input.group_array(data, subject, "subject")
    c_codes, labels = _input.group_array(data, condition, "condition")
    y = _input._as_float(_input.raw_column(data, value, "value"), _input.column_name(value, "value"), "value")
    _input.n_rows({"subject": s_codes, "condition": c_codes, "value": y})
    n_s = int(s_codes.max()) + 1 if s_codes.size else 0
    cells = np.zeros((n_s, len(labels)), dtype=np.int64)
    np.add.at(cells, (s_codes, c_codes), 1)
    if (cells != 1).any():  # R: "not an unreplicated complete block design"
        bad_s, bad_c = np.nonzero(cells != 1)
        raise InputError(
            "not an unreplicated complete block design: every subject needs exactly one value per condition "
            f"(e.g. condition {labels[bad_c[0]]!r} has {cells[bad_s[0], bad_c[0]]} values for one subject)",
            column=_input.column_name(subject, "subject"),
            n_bad=int(bad_s.size),
        )
    mat = np.full((n_s, len(labels)), np.nan)
    mat[s_codes, c_codes] = y
    return mat, labels


def friedman(
    data: Any,
    *,
    subject: _input.ColumnSpec | None = None,
    condition: _input.ColumnSpec | None = None,
    value: _input.ColumnSpec | None = None,
) -> FriedmanTest:
    """Friedman rank-sum test, as R ``friedman.test`` (Friedman 1937; Hollander & Wolfe 1999, §7.1).

    ``data`` is either a matrix / wide DataFrame (rows subjects, columns conditions, as R
    ``friedman.test(y)``), or long data with ``subject``, ``condition`` and ``value`` columns (R
    ``friedman.test(value ~ condition | subject)``), in which every subject must have exactly one value per
    condition. Subjects with a missing value are dropped (R ``complete.cases``).
    """
    mat, labels = _wide(data, subject, condition, value)
    if mat.shape[1] < 2:
        raise InputError(f"the Friedman test needs at least 2 conditions, not {mat.shape[1]}", table="data")
    if np.isinf(mat).any():
        raise InputError("values must be finite", table="data")
    complete = ~np.isnan(mat).any(axis=1)
    y = mat[complete]
    n, k = y.shape
    if n == 0:
        raise InputError("no subject has a value under every condition", table="data")
    ranks = stats.rankdata(y, axis=1)
    ordered = np.sort(y, axis=1)
    starts = np.ones((n, k), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    run_sizes = np.diff(np.append(np.flatnonzero(starts.ravel()), n * k)).astype(float)
    tie_sum = float((run_sizes**3 - run_sizes).sum())
    rank_sums = ranks.sum(axis=0)
    denominator = n * k * (k + 1) - tie_sum / (k - 1)
    if denominator <= 0:
        raise InputError("every subject has the same value under all conditions: the Friedman statistic is "
                         "undefined (R returns NaN)", table="data")  # fmt: skip
    statistic = float(12 * ((rank_sums - n * (k + 1) / 2) ** 2).sum() / denominator)
    return FriedmanTest(
        name="Friedman rank sum test", statistic=statistic, dof=k - 1,
        p_value=float(stats.chi2.sf(statistic, k - 1)), n_subjects=int(n), n_dropped=int((~complete).sum()),
        conditions=tuple(labels), rank_sums=tuple(float(r) for r in rank_sums),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- public contract


def paired_test(data: Any, before: _input.ColumnSpec, after: _input.ColumnSpec, method: str = "wilcoxon",
                exact: bool | None = None, correct: bool = True,
                conf_level: float = 0.95) -> PairedWilcoxon | PairedT:  # fmt: skip
    """The paired comparison of DESIGN.md's public API: ``method="wilcoxon"`` is :func:`paired_wilcoxon` (R
    ``wilcox.test(before, after, paired = TRUE, conf.int = TRUE)``), ``"t"`` is :func:`paired_t` (R ``t.test(...,
    paired = TRUE)``). Both results have ``statistic``, ``p_value``, ``estimate``, ``lower`` and ``upper``
    (differences are before − after)."""
    if method == "wilcoxon":
        return paired_wilcoxon(before, after, data, exact=exact, correct=correct, conf_int=True,
                               conf_level=conf_level)  # fmt: skip
    if method == "t":
        return paired_t(before, after, data, conf_level=conf_level)
    raise InputError(f"method must be 'wilcoxon' or 't', not {method!r}", column="method", values=[method])


def friedman_test(data: Any, value: _input.ColumnSpec, group: _input.ColumnSpec,
                  block: _input.ColumnSpec) -> FriedmanTest:  # fmt: skip
    """Friedman's test of DESIGN.md's public API (R ``friedman.test(value ~ group | block)``): :func:`friedman`
    on long data, ``group`` the conditions compared within each ``block`` (subject)."""
    return friedman(data, subject=block, condition=group, value=value)
