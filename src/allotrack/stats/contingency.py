"""The tests of a baseline table, as R computes them and gtsummary's ``add_p()`` chooses them.

* Pearson's chi-square without continuity correction (R ``chisq.test(correct = FALSE)``; gtsummary's
  ``"chisq.test.no.correct"``) when every expected count is at least 5, otherwise Fisher's exact test
  (R ``fisher.test``), for 2 × 2 and r × c tables alike.
* Wilcoxon rank-sum (R ``wilcox.test``: exact when both groups have fewer than 50 values and there are no ties,
  otherwise the normal approximation with continuity correction and tie-corrected variance) for two groups;
  Kruskal–Wallis (R ``kruskal.test``) for more; Welch's t-test (R ``t.test``) and one-way ANOVA (R ``aov``) for
  variables declared normal.

Fisher's r × c p-value sums the hypergeometric probabilities of every table with the observed margins whose
probability is at most the observed one (times 1 + 10⁻⁷, R's tolerance). The tables are enumerated column by
column as numpy arrays; above ``max_tables`` the p-value is estimated by Monte Carlo with a fixed seed (R's
``simulate.p.value``), and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
from scipy import special, stats

from allotrack.errors import InputError

R_REL_ERR = 1 + 1e-7


@dataclass(frozen=True)
class GroupTest:
    """One variable's test across groups."""

    test: str  # the R function, as gtsummary's footnote names it
    statistic: float
    p_value: float
    method: str  # footnote text

    def __repr__(self) -> str:
        return f"GroupTest({self.method}: statistic={self.statistic:.6g}, p={self.p_value:.6g})"


def _counts(table: np.ndarray) -> np.ndarray:
    t = np.asarray(table)
    if t.ndim != 2 or (t < 0).any() or not np.allclose(t, np.round(t)):
        raise InputError("a contingency table is a 2-D array of non-negative whole counts", table="table")
    t = np.round(t).astype(np.int64)
    return t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]  # R drops empty rows and columns (factor levels unused)


def expected_counts(table: np.ndarray) -> np.ndarray:
    t = _counts(table)
    return np.outer(t.sum(axis=1), t.sum(axis=0)) / t.sum()


def chisq_test(table: np.ndarray) -> GroupTest:
    """Pearson's chi-square test without continuity correction (R ``chisq.test(x, correct = FALSE)``)."""
    t = _counts(table)
    if min(t.shape) < 2:
        raise InputError("chi-square needs at least 2 rows and 2 columns with counts", table="table")
    e = expected_counts(t)
    statistic = float(((t - e) ** 2 / e).sum())
    dof = (t.shape[0] - 1) * (t.shape[1] - 1)
    return GroupTest("chisq.test", statistic, float(stats.chi2.sf(statistic, dof)), "Pearson's Chi-squared test")


def fisher_test(table: np.ndarray, max_tables: int = 2_000_000, seed: int = 20260101) -> GroupTest:
    """Fisher's exact test for an r × c table (R ``fisher.test``; two-sided for 2 × 2 as well)."""
    t = _counts(table)
    if min(t.shape) < 2:
        return GroupTest("fisher.test", float("nan"), 1.0, "Fisher's exact test")
    rows, cols, n = t.sum(axis=1), t.sum(axis=0), int(t.sum())
    const = special.gammaln(rows + 1).sum() + special.gammaln(cols + 1).sum() - special.gammaln(n + 1)
    observed = const - special.gammaln(t + 1).sum()
    logp = _enumerate_log_probabilities(rows, cols, const, max_tables)
    if logp is None:
        return _fisher_monte_carlo(t, observed, seed)
    threshold = observed + np.log(R_REL_ERR)
    p = float(np.exp(logp[logp <= threshold]).sum())
    return GroupTest("fisher.test", float(np.exp(observed)), min(1.0, p), "Fisher's exact test")


def _enumerate_log_probabilities(rows: np.ndarray, cols: np.ndarray, const: float, cap: int) -> np.ndarray | None:
    """log P of every table with these margins (None when there would be more than ``cap``). Column by column:
    each state is the remaining row totals and the accumulated log-probability."""
    remaining = rows[None, :].astype(np.int64)
    acc = np.zeros(1)
    for j, c in enumerate(cols[:-1]):
        splits = np.array([s for s in product(range(int(c) + 1), repeat=len(rows) - 1) if sum(s) <= c], dtype=np.int64)
        splits = np.column_stack([splits, c - splits.sum(axis=1)])  # every way to split column j over the rows
        cell_cost = special.gammaln(splits + 1).sum(axis=1)
        new_rem = remaining[:, None, :] - splits[None, :, :]
        ok = (new_rem >= 0).all(axis=2)
        tail = cols[j + 1 :].sum()
        ok &= new_rem.sum(axis=2) == tail
        state, split = np.nonzero(ok)
        if state.size > cap:
            return None
        remaining = new_rem[state, split]
        acc = acc[state] - cell_cost[split]
    last = special.gammaln(remaining + 1).sum(axis=1)  # the last column is what the rows still need
    return const + acc - last


def _fisher_monte_carlo(t: np.ndarray, observed: float, seed: int, n_resamples: int = 100_000) -> GroupTest:
    """R ``fisher.test(simulate.p.value = TRUE, B)``: (1 + #{simulated P ≤ observed P}) / (B + 1)."""
    rows, cols = t.sum(axis=1), t.sum(axis=0)
    sims = stats.random_table(rows, cols, seed=seed).rvs(n_resamples)
    logp = -special.gammaln(sims + 1).sum(axis=(1, 2))
    obs = -special.gammaln(t + 1).sum()
    hits = int((logp <= obs + np.log(R_REL_ERR)).sum())
    method = f"Fisher's exact test (Monte Carlo, {n_resamples:,} tables)"
    return GroupTest("fisher.test", float(np.exp(observed)), (1 + hits) / (n_resamples + 1), method)


def categorical_test(table: np.ndarray) -> GroupTest:
    """gtsummary's default: chi-square without correction if every expected count is ≥ 5, else Fisher."""
    t = _counts(table)
    if min(t.shape) >= 2 and (expected_counts(t) >= 5).all():
        return chisq_test(t)
    return fisher_test(t)


def _samples(groups: list[np.ndarray]) -> list[np.ndarray]:
    out = [np.asarray(g, dtype=float) for g in groups]
    out = [g[~np.isnan(g)] for g in out]
    if sum(len(g) > 0 for g in out) < 2:
        raise InputError("a group comparison needs values in at least two groups", table="data")
    return [g for g in out if len(g)]


def wilcox_test(x: np.ndarray, y: np.ndarray) -> GroupTest:
    """Wilcoxon rank-sum test as R ``wilcox.test(x, y)``: W is the Mann–Whitney U of ``x``; exact when both
    samples have < 50 values and no ties, else normal with continuity correction (tie-corrected variance)."""
    x, y = _samples([x, y])
    pooled = np.concatenate([x, y])
    ties = len(np.unique(pooled)) < len(pooled)
    exact = len(x) < 50 and len(y) < 50 and not ties
    res = stats.mannwhitneyu(x, y, alternative="two-sided", use_continuity=True,
                             method="exact" if exact else "asymptotic")  # fmt: skip
    method = "Wilcoxon rank sum exact test" if exact else "Wilcoxon rank sum test"
    return GroupTest("wilcox.test", float(res.statistic), float(res.pvalue), method)


def kruskal_test(groups: list[np.ndarray]) -> GroupTest:
    """Kruskal–Wallis rank-sum test (R ``kruskal.test``; chi-square with tie correction)."""
    res = stats.kruskal(*_samples(groups))
    return GroupTest("kruskal.test", float(res.statistic), float(res.pvalue), "Kruskal-Wallis rank sum test")


def t_test(x: np.ndarray, y: np.ndarray) -> GroupTest:
    """Welch two-sample t-test (R ``t.test(x, y)``, unequal variances)."""
    x, y = _samples([x, y])
    res = stats.ttest_ind(x, y, equal_var=False)
    return GroupTest("t.test", float(res.statistic), float(res.pvalue), "Welch Two Sample t-test")


def anova_test(groups: list[np.ndarray]) -> GroupTest:
    """One-way ANOVA F test (R ``summary(aov(y ~ group))``)."""
    res = stats.f_oneway(*_samples(groups))
    return GroupTest("aov", float(res.statistic), float(res.pvalue), "One-way ANOVA")


def continuous_test(groups: list[np.ndarray], normal: bool = False) -> GroupTest:
    """gtsummary's default: Wilcoxon (2 groups) or Kruskal–Wallis; t-test or ANOVA if declared normal."""
    samples = _samples(groups)
    if len(samples) == 2:
        return t_test(*samples) if normal else wilcox_test(*samples)
    return anova_test(samples) if normal else kruskal_test(samples)
