"""Tests for a trend across ordered groups.

* :func:`cochran_armitage` — the Cochran–Armitage test for a trend in proportions (Cochran 1954; Armitage 1955),
  exactly R ``prop.trend.test(x, n, score)``: R fits ``lm(x/n ~ score, weights = n / (p̄(1 − p̄)))`` and reports
  the regression sum of squares of ``score``, which in closed form is
  ``χ² = [Σ s_i (x_i − n_i p̄)]² / (p̄ (1 − p̄) Σ n_i (s_i − s̄)²)``, ``s̄ = Σ n_i s_i / Σ n_i``, on 1 df.
  The signed root ``z`` (positive when the proportion rises with the score) is reported as well.
* :func:`jonckheere_terpstra` — the Jonckheere–Terpstra test for ordered alternatives (Terpstra 1952;
  Jonckheere 1954; Hollander & Wolfe 1999, §6.2): ``J = Σ_{i<j} #{(a, b) : a in group i, b in group j, a < b}``
  with ties counting ½, mean ``(N² − Σ n_i²)/4`` and the tie-corrected variance of Hollander & Wolfe (eq. 6.19)

      [N(N−1)(2N+5) − Σ n_i(n_i−1)(2n_i+5) − Σ t_j(t_j−1)(2t_j+5)] / 72
      + [Σ n_i(n_i−1)(n_i−2)] [Σ t_j(t_j−1)(t_j−2)] / [36 N(N−1)(N−2)]
      + [Σ n_i(n_i−1)] [Σ t_j(t_j−1)] / [8 N(N−1)]

  (t_j the sizes of the tied groups of values); the p-value is normal, without continuity correction.
  Without ties and for N ≤ 100 the p-value is exact: under the null hypothesis every assignment of the group
  labels to the ordered values is equally likely, and J is the sum of independent Mann–Whitney counts of each
  group against all earlier groups pooled (the q-multinomial factorisation), so the permutation distribution
  is the convolution of Mann–Whitney null distributions, each built by the recursion
  ``P_{m,n}(u) = m/(m+n) P_{m−1,n}(u) + n/(m+n) P_{m,n−1}(u − m)`` (Mann & Whitney 1947). Two-sided exact
  p-values double the smaller tail, as R ``wilcox.test`` does. No R package in Debian implements this test; the
  reference values come from the definitions written out in R (tests/reference/paired_trend_reference.R).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from allotrack.errors import InputError
from allotrack.stats import _input
from allotrack.stats.results import Result, TestResult

__all__ = ["JonckheereTerpstra", "TrendTest", "cochran_armitage", "jonckheere_terpstra", "trend_test"]

_ALTERNATIVES = ("two-sided", "increasing", "decreasing")
EXACT_MAX_N = 100


# ------------------------------------------------------------------------------------------ Cochran–Armitage


@dataclass(frozen=True, repr=False)
class TrendTest(TestResult):
    """Result of :func:`cochran_armitage`: chi-square on 1 df as R ``prop.trend.test``, plus the signed root
    ``z`` and the ``scores`` used."""

    z: float
    scores: tuple[float, ...]

    def to_frame(self) -> pd.DataFrame:
        out = super().to_frame()
        out.insert(2, "z", self.z)
        return out


def _counts(values: Any, role: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InputError(f"{role} must be one-dimensional, got shape {arr.shape}", column=role)
    arr = _input._as_float(arr, role, role)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(f"{role} must be finite and non-negative", column=role, rows=rows[:5].tolist(),
                         values=arr[rows[:5]].tolist(), n_bad=rows.size)  # fmt: skip
    return arr


def cochran_armitage(
    events: Sequence[float] | np.ndarray,
    totals: Sequence[float] | np.ndarray,
    scores: Sequence[float] | np.ndarray | None = None,
) -> TrendTest:
    """Chi-square test for trend in proportions, as R ``prop.trend.test(events, totals, scores)``.

    ``events[i]`` of ``totals[i]`` subjects in ordered group i had the outcome; ``scores`` (default 1, 2, …, k,
    R's ``seq_along``) place the groups. Groups with no subjects carry no weight (R drops them).
    """
    x = _counts(events, "events")
    n = _counts(totals, "totals")
    if x.size != n.size:
        raise InputError(f"events and totals must have one entry per group: {x.size} and {n.size}", column="totals")
    s = np.arange(1.0, x.size + 1) if scores is None else np.asarray(scores, dtype=float).ravel()
    if s.size != x.size:
        raise InputError(f"scores must have one entry per group ({x.size}), not {s.size}", column="scores")
    if not np.isfinite(s).all():
        raise InputError("scores must be finite numbers", column="scores")
    over = x > n
    if over.any():
        rows = np.flatnonzero(over)
        raise InputError("events cannot exceed totals", column="events", rows=rows[:5].tolist(),
                         values=x[rows[:5]].tolist(), n_bad=rows.size)  # fmt: skip
    used = n > 0
    if used.sum() < 2:
        raise InputError("the trend test needs at least 2 groups with subjects", column="totals")
    xs, ns, ss = x[used], n[used], s[used]
    p = xs.sum() / ns.sum()
    if p in (0.0, 1.0):
        raise InputError(f"the overall proportion is {p:g}: with no events (or only events) there is no trend "
                         "to test", column="events")  # fmt: skip
    s_bar = (ns * ss).sum() / ns.sum()
    spread = (ns * (ss - s_bar) ** 2).sum()
    if spread <= 0:
        raise InputError("scores must differ between the groups with subjects", column="scores")
    z = float((ss * (xs - ns * p)).sum() / np.sqrt(p * (1 - p) * spread))
    chisq = z * z
    return TrendTest(
        name="Chi-squared Test for Trend in Proportions", statistic=chisq, dof=1,
        p_value=float(stats.chi2.sf(chisq, 1)), z=z, scores=tuple(float(v) for v in s),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------- Jonckheere–Terpstra


@dataclass(frozen=True, repr=False)
class JonckheereTerpstra(Result):
    """Result of :func:`jonckheere_terpstra`. ``statistic`` is J (large when values rise along the group order),
    ``mean`` and ``variance`` its null moments (variance tie-corrected), ``z`` the standardised J; ``p_value`` is
    exact when ``exact`` else normal. ``groups`` and ``sizes`` give the order used."""

    statistic: float
    mean: float
    variance: float
    z: float
    p_value: float
    alternative: str
    exact: bool
    groups: tuple[Any, ...]
    sizes: tuple[int, ...]
    n_missing: int

    @property
    def method(self) -> str:
        kind = "exact" if self.exact else "normal approximation, tie-corrected variance"
        return f"Jonckheere-Terpstra test ({kind})"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "test": ["Jonckheere-Terpstra"],
                "method": [self.method],
                "alternative": [self.alternative],
                "n": [sum(self.sizes)],
                "statistic": [self.statistic],
                "mean": [self.mean],
                "variance": [self.variance],
                "z": [self.z],
                "p_value": [self.p_value],
            }
        )


def _group_series(data: Any, spec: Any) -> pd.Series:
    """The group labels as a Series, keeping a categorical dtype (its categories carry the order)."""
    if isinstance(spec, pd.Categorical):
        return pd.Series(spec)
    if isinstance(spec, pd.Series):
        return spec.reset_index(drop=True)
    raw = _input.raw_column(data, spec, "groups_ordered")
    if isinstance(spec, str) and isinstance(data, pd.DataFrame):
        return data[spec].reset_index(drop=True)
    return pd.Series(raw)


def _ordered_groups(series: pd.Series, order: Sequence[Any] | None, name: str) -> tuple[np.ndarray, list[Any]]:
    """Integer codes in the stated order: ``order`` if given, else an ordered/categorical dtype's categories,
    else sorted numeric labels. Unordered text labels are refused (their sort order is rarely the dose order)."""
    if series.isna().any():
        rows = np.flatnonzero(series.isna().to_numpy())
        raise InputError("group labels must not be missing", column=name, rows=rows[:5].tolist(), n_bad=rows.size)
    if order is not None:
        labels = list(order)
        if len(set(labels)) != len(labels):
            raise InputError(f"order lists a group twice: {labels!r}", column="order")
        lookup = {label: i for i, label in enumerate(labels)}
        codes = np.array([lookup.get(v, -1) for v in series.tolist()], dtype=np.intp)
        unknown = codes < 0
        if unknown.any():
            rows = np.flatnonzero(unknown)
            raise InputError(f"group labels not listed in order={labels!r}", column=name, rows=rows[:5].tolist(),
                             values=series.to_numpy()[rows[:5]].tolist(), n_bad=rows.size)  # fmt: skip
        return codes, labels
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy().astype(np.intp), list(series.cat.categories)
    if series.dtype.kind in "biuf":
        codes, uniques = pd.factorize(series, sort=True)
        return codes.astype(np.intp), list(uniques)
    raise InputError(
        "group labels are not numbers, so their order is not known: give it with order=[...] or pass an "
        "ordered pandas Categorical",
        column=name,
    )


def _tie_sizes(values: np.ndarray) -> np.ndarray:
    _, counts = np.unique(values, return_counts=True)
    return counts.astype(float)


def _jt_statistic(samples: list[np.ndarray]) -> float:
    """Σ over ordered pairs of groups of #{a < b} + ½ #{a = b}: each group against all earlier ones pooled."""
    total = 0.0
    earlier = np.sort(samples[0])
    for b in samples[1:]:
        below = np.searchsorted(earlier, b, side="left")
        at_or_below = np.searchsorted(earlier, b, side="right")
        total += below.sum() + 0.5 * (at_or_below - below).sum()
        earlier = np.sort(np.concatenate([earlier, b]))
    return float(total)


def _jt_variance(sizes: np.ndarray, ties: np.ndarray) -> float:
    """Hollander & Wolfe (1999) eq. 6.19: the null variance of J given the tied groups ``ties``."""
    n_all = float(sizes.sum())
    ni, tj = sizes.astype(float), ties
    v = (n_all * (n_all - 1) * (2 * n_all + 5) - (ni * (ni - 1) * (2 * ni + 5)).sum()
         - (tj * (tj - 1) * (2 * tj + 5)).sum()) / 72  # fmt: skip
    if n_all > 2:
        v += (
            (ni * (ni - 1) * (ni - 2)).sum()
            * (tj * (tj - 1) * (tj - 2)).sum()
            / (36 * n_all * (n_all - 1) * (n_all - 2))
        )
    v += (ni * (ni - 1)).sum() * (tj * (tj - 1)).sum() / (8 * n_all * (n_all - 1))
    return float(v)


def _mann_whitney_pmf(m: int, n: int) -> np.ndarray:
    """P(U = u), u = 0 … mn, U = #{(a, b): a < b} for untied samples of sizes m (a) and n (b) under H0:
    the largest value belongs to b with probability n/(m+n) and then exceeds all m values of a."""
    length = m * n + 1
    prev = [np.zeros(length) for _ in range(n + 1)]
    for arr in prev:
        arr[0] = 1.0  # m = 0: U = 0
    for i in range(1, m + 1):
        cur = [np.zeros(length) for _ in range(n + 1)]
        cur[0][0] = 1.0
        for j in range(1, n + 1):
            shifted = np.zeros(length)
            shifted[i:] = cur[j - 1][: length - i]
            cur[j] = (i / (i + j)) * prev[j] + (j / (i + j)) * shifted
        prev = cur
    return prev[n]


def jt_null_distribution(sizes: Sequence[int]) -> np.ndarray:
    """Exact null distribution of J without ties: ``P(J = j)`` for j = 0 … Σ_{i<l} n_i n_l, for groups of these
    sizes in order (the convolution of each group's Mann–Whitney count against all earlier groups pooled)."""
    sizes = [int(s) for s in sizes if int(s) > 0]
    pmf = np.ones(1)
    pooled = 0
    for size in sizes:
        if pooled:
            pmf = np.convolve(pmf, _mann_whitney_pmf(pooled, size))
        pooled += size
    return pmf


def jonckheere_terpstra(
    values: _input.ColumnSpec,
    groups_ordered: _input.ColumnSpec,
    data: Any = None,
    *,
    order: Sequence[Any] | None = None,
    alternative: str = "two-sided",
    exact: bool | None = None,
) -> JonckheereTerpstra:
    """Jonckheere–Terpstra test that values change monotonically along ordered groups.

    Parameters
    ----------
    values : the outcome (array, or a column name in ``data``); missing values are dropped.
    groups_ordered : the group of each value. The order is ``order`` if given, else the categories of a pandas
        Categorical, else the sorted numeric labels; text labels need ``order``.
    alternative : ``"two-sided"``, ``"increasing"`` (values rise along the order: large J) or ``"decreasing"``.
    exact : exact permutation p-value; ``None`` means exact when there are no ties and N ≤ 100. With ties only
        the normal approximation is available.
    """
    if alternative not in _ALTERNATIVES:
        raise InputError(f"alternative must be one of {_ALTERNATIVES}, not {alternative!r}", column="alternative")
    v_name = _input.column_name(values, "values")
    y = _input._as_float(_input.raw_column(data, values, "values"), v_name, "values")
    g_name = _input.column_name(groups_ordered, "groups_ordered")
    codes, labels = _ordered_groups(_group_series(data, groups_ordered), order, g_name)
    _input.n_rows({"values": y, "groups_ordered": codes})
    if np.isinf(y).any():
        rows = np.flatnonzero(np.isinf(y))
        raise InputError("values must be finite", column=v_name, rows=rows[:5].tolist(),
                         values=y[rows[:5]].tolist(), n_bad=rows.size)  # fmt: skip
    keep = ~np.isnan(y)
    y, codes = y[keep], codes[keep]
    present = [k for k in range(len(labels)) if (codes == k).any()]
    if len(present) < 2:
        raise InputError("the Jonckheere–Terpstra test needs values in at least 2 groups", column=g_name)
    samples = [y[codes == k] for k in present]
    sizes = np.array([s.size for s in samples])
    n_all = int(sizes.sum())
    ties = _tie_sizes(y)
    tied = bool((ties > 1).any())
    if exact and tied:
        raise InputError("exact=True is not available with tied values (the exact distribution assumes no ties)",
                         column="exact")  # fmt: skip
    use_exact = (not tied and n_all <= EXACT_MAX_N) if exact is None else bool(exact)
    j = _jt_statistic(samples)
    mean = float((n_all**2 - (sizes.astype(float) ** 2).sum()) / 4)
    variance = _jt_variance(sizes, ties)
    if variance <= 0:
        raise InputError("all values are equal: there is no order to test", column=v_name)
    z = (j - mean) / np.sqrt(variance)
    if use_exact:
        pmf = jt_null_distribution(sizes.tolist())
        k = round(j)
        upper, lower = float(pmf[k:].sum()), float(pmf[: k + 1].sum())
    else:
        upper, lower = float(stats.norm.sf(z)), float(stats.norm.cdf(z))
    if alternative == "increasing":
        p = upper
    elif alternative == "decreasing":
        p = lower
    else:
        p = min(1.0, 2 * min(upper, lower)) if use_exact else float(2 * stats.norm.sf(abs(z)))
    return JonckheereTerpstra(
        statistic=j, mean=mean, variance=variance, z=float(z), p_value=float(p), alternative=alternative,
        exact=use_exact, groups=tuple(labels[k] for k in present), sizes=tuple(int(s) for s in sizes),
        n_missing=int((~keep).sum()),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- public contract


def trend_test(data: Any, outcome: _input.ColumnSpec, dose: _input.ColumnSpec,
               method: str = "cochran-armitage") -> TrendTest | JonckheereTerpstra:  # fmt: skip
    """The trend test of DESIGN.md's public API, one row per patient: ``method="cochran-armitage"`` for a 0/1
    ``outcome`` across numeric ``dose`` levels (the events and totals per dose, the doses as scores: R
    ``prop.trend.test(events, totals, score = dose)``); ``"jonckheere"`` for a numeric outcome across ordered
    doses (:func:`jonckheere_terpstra`). ``statistic`` is R's chi-square, respectively J."""
    if method == "jonckheere":
        return jonckheere_terpstra(outcome, dose, data)
    if method != "cochran-armitage":
        raise InputError(f"method must be 'cochran-armitage' or 'jonckheere', not {method!r}", column="method",
                         values=[method])  # fmt: skip
    y = pd.to_numeric(pd.Series(_input.raw_column(data, outcome, "outcome")), errors="coerce")
    d = pd.to_numeric(pd.Series(_input.raw_column(data, dose, "dose")), errors="coerce")
    keep = y.notna().to_numpy() & d.notna().to_numpy()
    bad = ~y[keep].isin([0, 1])
    if bad.any():
        raise InputError("a Cochran–Armitage outcome is 0 or 1", column=_input.column_name(outcome, "outcome"),
                         values=y[keep][bad].tolist())  # fmt: skip
    per_dose = pd.DataFrame({"y": y[keep].to_numpy(), "dose": d[keep].to_numpy()}).groupby("dose")["y"]
    table = per_dose.agg(["sum", "size"])
    return cochran_armitage(table["sum"].to_numpy(float), table["size"].to_numpy(float), table.index.to_numpy(float))
