"""Conditional logistic regression for matched sets, reproducing R
``survival::clogit(y ~ covariates + strata(set), method = "exact")``.

* The likelihood conditions on the number of cases in each matched set (Breslow & Day 1980, ch. 7): a set ``s``
  with members ``j = 1..n_s`` and ``m_s`` cases contributes
  ``L_s(β) = exp(Σ_{cases} x_i'β) / Σ_{|S| = m_s} exp(Σ_{j ∈ S} x_j'β)``, the denominator running over every
  subset of ``m_s`` members. The set effects (one intercept per set) cancel, so no covariate that is constant
  within every set can be estimated;
* the denominator ``B(m_s, n_s)`` and its first and second derivatives come from the recursion of Gail, Lubin &
  Rubinstein (1981, *Biometrika* 68:703–707), ``B(m, k) = B(m, k−1) + r_k B(m−1, k−1)`` with ``r_k = exp(x_k'β)``,
  ``B(0, k) = 1`` and ``B(m, k) = 0`` for ``m > k``, differentiated term by term. It runs for all sets at once
  (sets padded to the largest, absent members with ``r = 0``), looping only over member positions. For stability
  it is carried as ``log B`` with the derivatives divided by ``B`` (nothing overflows or underflows for any ``β``)
  and covariates are centred within each set; a set with more cases than controls is evaluated through its
  complement (``L_s`` is unchanged when cases and controls swap and ``x`` changes sign), which halves the largest
  subset size the recursion needs;
* a set whose members are all cases, or none of them, contributes nothing (its ``L_s`` is 1 whatever ``β``):
  it is counted in ``n_sets`` but not in ``n_informative_sets``;
* R's ``clogit`` is ``coxph(Surv(1, y) ~ x + strata(set), method = "exact")`` (``coxexact.c``), and the fit here
  follows it step by step: Newton–Raphson from ``β = 0``; when the log-likelihood falls, the last increment is
  halved (``β = (β_old + β) / 2``, repeatedly) and no convergence is declared during halving; converged when
  ``|1 − ℓ_best/ℓ_new| ≤ tol`` (``coxph.control(eps = 1e-9, iter.max = 20)``). The variance is the inverse
  information at the returned ``β``; coefficients that drift to ±∞ (monotone likelihood, R's ``toler.inf``
  rule) or running out of iterations raise :class:`~allotrack.errors.ConvergenceWarning` and are recorded in
  ``warnings``;
* likelihood-ratio ``2(ℓ(β̂) − ℓ(0))``, Wald ``β̂' V⁻¹ β̂`` and score ``U(0)' I(0)⁻¹ U(0)`` tests on ``p`` degrees of
  freedom (R ``summary(fit)$logtest``, ``$waldtest``, ``$sctest``); Wald limits ``exp(β̂ ± z_{(1+level)/2} se)``
  for the odds ratios (R ``summary(fit)$conf.int``).

Input rules: the outcome is 0/1 (or boolean); missing outcome, set or covariate values raise
:class:`~allotrack.errors.InputError` naming the column and rows (drop or impute them explicitly). Weights are not
supported (R ignores them for the exact method).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.stats import chi2, norm

from allotrack.errors import ConvergenceWarning, InputError, ModelError
from allotrack.stats import _input
from allotrack.stats._design import build_design
from allotrack.stats.results import Result, TestResult, named_test

__all__ = ["ConditionalLogisticModel", "conditional_logistic"]


@dataclass(frozen=True, repr=False)
class ConditionalLogisticModel(Result):
    """A fitted conditional logistic model. Arrays follow ``terms``; ``summary`` has one row per term with the
    log-odds ratio ``coef``, ``se``, ``z``, Wald ``p``, the ``odds_ratio`` and its Wald limits
    ``wald_lower``/``wald_upper`` (the names :class:`~allotrack.stats.logistic.LogisticModel` uses for Wald
    limits). ``tests`` holds the likelihood-ratio, Wald and score tests (also as :meth:`test`)."""

    summary: pd.DataFrame
    terms: tuple[str, ...]
    coef: np.ndarray
    se: np.ndarray
    var: np.ndarray
    z: np.ndarray
    p_value: np.ndarray
    wald_lower: np.ndarray  # log-odds scale
    wald_upper: np.ndarray
    loglik: float
    loglik_null: float
    tests: pd.DataFrame
    n: int
    n_sets: int
    n_informative_sets: int
    n_events: int
    iterations: int
    converged: bool
    warnings: tuple[str, ...]
    conf_level: float

    def to_frame(self) -> pd.DataFrame:
        return self.summary.copy()

    def __repr__(self) -> str:
        with pd.option_context("display.width", 140, "display.precision", 4):
            head = (
                f"<ConditionalLogisticModel: n={self.n}, cases={self.n_events}, sets={self.n_sets} "
                f"({self.n_informative_sets} informative); "
                f"log-likelihood {self.loglik_null:.4f} -> {self.loglik:.4f}>"
            )
            return f"{head}\n{self.summary}\n{self.tests}"

    def test(self, name: str) -> TestResult:
        """One of the global tests: ``"likelihood ratio"``, ``"wald"`` or ``"score"``."""
        return named_test(self.tests, name)


@dataclass(frozen=True)
class _Sets:
    """Informative sets, padded: ``x[s, k]`` is member ``k`` of set ``s`` (zeros beyond the set's size)."""

    x: np.ndarray  # (S, K, p), centred within each set
    member: np.ndarray  # (S, K) bool
    cases: np.ndarray  # (S,) number of cases (after the complement swap: at most half the set)
    case_sum: np.ndarray  # (p,) Σ over cases of the centred x


@dataclass(frozen=True)
class _Derivatives:
    loglik: float
    score: np.ndarray
    information: np.ndarray


def _pack(x: np.ndarray, y: np.ndarray, codes: np.ndarray) -> tuple[_Sets, int]:
    """Keep the informative sets, swap cases and controls (and negate x) where cases outnumber controls, centre x
    within sets and pad the sets into a (sets, largest size, p) array. Returns the sets and their number."""
    size = np.bincount(codes)
    n_cases = np.bincount(codes, weights=y).round().astype(np.intp)
    informative = (n_cases > 0) & (n_cases < size)
    keep = informative[codes]
    new_code = np.cumsum(informative) - 1
    codes = new_code[codes[keep]]
    x = x[keep]
    y = y[keep]
    size = size[informative]
    n_cases = n_cases[informative]
    n_sets = int(informative.sum())
    if n_sets == 0:
        return _Sets(np.zeros((0, 0, x.shape[1])), np.zeros((0, 0), dtype=bool), n_cases, np.zeros(x.shape[1])), 0
    swap = (2 * n_cases > size)[codes]
    y = np.where(swap, 1.0 - y, y)
    x = np.where(swap[:, None], -x, x)
    n_cases = np.where(2 * n_cases > size, size - n_cases, n_cases)
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    x = x[order]
    y = y[order]
    sums = np.zeros((n_sets, x.shape[1]))
    np.add.at(sums, codes, x)
    x = x - (sums / size[:, None])[codes]
    start = np.concatenate(([0], np.cumsum(size)[:-1]))
    pos = np.arange(len(codes)) - start[codes]
    width = int(size.max())
    padded = np.zeros((n_sets, width, x.shape[1]))
    padded[codes, pos] = x
    member = np.zeros((n_sets, width), dtype=bool)
    member[codes, pos] = True
    case_sum = x[y > 0.5].sum(axis=0)
    return _Sets(padded, member, n_cases, case_sum), n_sets


def _derivatives(sets: _Sets, beta: np.ndarray) -> _Derivatives:
    """Conditional log-likelihood, score and information by the Gail–Lubin–Rubinstein recursion, all sets at once.

    The recursion is carried in normalised form so that nothing overflows or underflows however far ``β`` is
    from 0: ``log B(m, k)`` (by ``logaddexp``), ``E1 = ∇B / B`` and ``E2 = ∇²B / B``. With
    ``w = r_k B(m−1, k−1) / B(m, k)`` the share of the subsets that contain member ``k``,
    ``E1(m, k) = (1−w) E1(m, k−1) + w (E1(m−1, k−1) + x_k)`` and
    ``E2(m, k) = (1−w) E2(m, k−1) + w (E2(m−1, k−1) + x_k E1(m−1, k−1)' + E1(m−1, k−1) x_k' + x_k x_k')``.
    Then ``ℓ_s = Σ_{cases} x_i'β − log B(m_s, n_s)``, ``U_s = Σ_{cases} x_i − E1`` and ``I_s = E2 − E1 E1'``.
    """
    x = sets.x
    n_sets, width, p = x.shape
    eta = np.where(sets.member, x @ beta, -np.inf)  # absent members: r = 0
    top = int(sets.cases.max())
    log_b = np.full((n_sets, top + 1), -np.inf)
    log_b[:, 0] = 0.0
    e1 = np.zeros((n_sets, top + 1, p))
    e2 = np.zeros((n_sets, top + 1, p, p))
    with np.errstate(invalid="ignore", under="ignore"):
        for k in range(width):
            hi = min(k + 1, top)  # B(m, k+1) = 0 for m > k+1
            xk = x[:, k, :]
            added = eta[:, k, None] + log_b[:, :hi]  # log r_k B(m−1, k)
            new_log = np.logaddexp(log_b[:, 1 : hi + 1], added)
            w = np.where(np.isfinite(new_log), np.exp(added - new_log), 0.0)
            keep = 1.0 - w
            e1_prev = e1[:, :hi]
            x_e1 = xk[:, None, :, None] * e1_prev[:, :, None, :]
            with_k2 = e2[:, :hi] + x_e1 + x_e1.swapaxes(-1, -2) + (xk[:, :, None] * xk[:, None, :])[:, None]
            with_k1 = e1_prev + xk[:, None, :]
            e2[:, 1 : hi + 1] = keep[:, :, None, None] * e2[:, 1 : hi + 1] + w[:, :, None, None] * with_k2
            e1[:, 1 : hi + 1] = keep[:, :, None] * e1[:, 1 : hi + 1] + w[:, :, None] * with_k1
            log_b[:, 1 : hi + 1] = new_log
    idx = np.arange(n_sets)
    first = e1[idx, sets.cases]
    loglik = float(sets.case_sum @ beta - np.sum(log_b[idx, sets.cases]))
    score = sets.case_sum - first.sum(axis=0)
    information = e2[idx, sets.cases].sum(axis=0) - first.T @ first
    return _Derivatives(loglik, score, information)


def _solve(info: np.ndarray, vec: np.ndarray) -> np.ndarray:
    try:
        return cho_solve(cho_factor(info), vec)
    except (LinAlgError, ValueError):
        return np.linalg.lstsq(info, vec, rcond=None)[0]


def _finite(d: _Derivatives) -> bool:
    return bool(math.isfinite(d.loglik) and np.isfinite(d.score).all() and np.isfinite(d.information).all())


def _newton(sets: _Sets, p: int, max_iter: int, tol: float) -> tuple[np.ndarray, _Derivatives, _Derivatives, int, bool]:
    """R ``coxexact.c``: Newton steps from β = 0; when ℓ falls, halve the last increment (no convergence is
    declared while halving); converged when ``|1 − ℓ_best/ℓ_new| ≤ tol``. Returns the last evaluated β."""
    old = np.zeros(p)
    null = _derivatives(sets, old)
    best = null.loglik
    beta = old + _solve(null.information, null.score)
    halving = False
    converged = False
    current = null
    it = 0
    for it in range(1, max_iter + 1):
        current = _derivatives(sets, beta)
        finite = _finite(current)
        change = abs(1 - best / current.loglik) if current.loglik != 0 else abs(best)
        if finite and change <= tol and not halving:
            converged = True
            break
        if it == max_iter:
            break
        if not finite or current.loglik < best:
            halving = True
            beta = (old + beta) / 2
        else:
            halving = False
            best = current.loglik
            old = beta
            beta = beta + _solve(current.information, current.score)
    return beta, current, null, it, converged


def _within_checks(sets: _Sets, names: list[str], tol: float = 1e-10) -> None:
    """ModelError for covariates constant within every informative set, or collinear within sets (the set
    effects absorb them, so the conditional likelihood carries no information on them)."""
    x = sets.x.reshape(-1, sets.x.shape[2])[sets.member.ravel()]
    scale = np.maximum(np.max(np.abs(x), axis=0), 1e-300)
    gram = (x / scale).T @ (x / scale)
    var = np.diag(gram).copy()
    const = [names[j] for j in np.flatnonzero(var <= (tol**2) * x.shape[0])]
    if const:
        raise ModelError(
            f"covariate column(s) {const} do not vary within any informative matched set (one with both cases and "
            "controls); the set effects absorb them, so conditional logistic regression cannot estimate them"
        )
    sd = np.sqrt(var)
    corr = gram / np.outer(sd, sd)
    kept: list[int] = []
    for j in range(len(names)):
        resid = 1.0 - corr[kept, j] @ np.linalg.solve(corr[np.ix_(kept, kept)], corr[kept, j]) if kept else 1.0
        if resid < 1e-9:
            raise ModelError(
                f"within the matched sets, covariate column '{names[j]}' is a linear combination of "
                f"{[names[k] for k in kept]} (after removing the set effects); drop one of them"
            )
        kept.append(j)


def _outcome(frame: pd.DataFrame, outcome: Any) -> tuple[np.ndarray, str]:
    name = _input.column_name(outcome, "outcome")
    raw = _input.raw_column(frame, outcome, "outcome")
    if len(raw) != len(frame):
        raise InputError(f"the outcome has {len(raw)} values but the data have {len(frame)} rows", column=name)
    series = pd.Series(raw)
    missing = series.isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        raise InputError(
            "the outcome must not be missing (drop or impute these rows explicitly)",
            column=name,
            rows=rows[:5].tolist(),
            n_bad=rows.size,
        )
    if series.dtype == bool:
        return series.to_numpy(dtype=float), name
    numeric = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isin(numeric, (0.0, 1.0)))
    if bad.size:
        raise InputError(
            "the outcome must be coded 0/1 (or True/False)",
            column=name,
            rows=bad[:5].tolist(),
            values=series.iloc[bad[:5]].tolist(),
            n_bad=bad.size,
        )
    return numeric, name


def conditional_logistic(
    data: Any,
    outcome: _input.ColumnSpec = "outcome",
    covariates: Sequence[str] | None = None,
    formula: str | None = None,
    strata: _input.ColumnSpec = "set",
    conf_level: float = 0.95,
    max_iter: int = 20,
    tol: float = 1e-9,
) -> ConditionalLogisticModel:
    """Fit a conditional logistic regression (R ``clogit(outcome ~ covariates + strata(strata), method="exact")``).

    ``outcome`` is a 0/1 (or boolean) column, ``strata`` the matched-set identifier. ``covariates`` lists columns
    (categorical ones expanded against their first level, as in :func:`~allotrack.stats.logistic.
    logistic_regression`), or ``formula`` gives a right-hand side such as ``"dose + C(exposure)"``
    (``"outcome ~ ..."`` is accepted too). ``max_iter`` and ``tol`` are R's ``coxph.control(iter.max, eps)``.
    """
    if not 0 < conf_level < 1:
        raise InputError(f"conf_level must lie strictly between 0 and 1, not {conf_level!r}")
    if max_iter < 1:
        raise InputError(f"max_iter must be at least 1, not {max_iter!r}")
    if not tol > 0:
        raise InputError(f"tol must be positive, not {tol!r}")
    if isinstance(data, pd.DataFrame):
        frame = data
    elif hasattr(data, "to_pandas"):
        frame = data.to_pandas()
    elif data is None:
        raise InputError("conditional_logistic needs data with the outcome, set and covariate columns")
    else:
        frame = pd.DataFrame(dict(data))
    frame = frame.reset_index(drop=True)
    if formula is not None and "~" in formula:
        lhs, rhs = formula.split("~", 1)
        name = _input.column_name(outcome, "outcome")
        if lhs.strip() and lhs.strip().strip("`") != name:
            raise InputError(f"the formula's left-hand side {lhs.strip()!r} is not the outcome {name!r}")
        formula = rhs
    y, _ = _outcome(frame, outcome)
    codes, labels = _input.group_array(frame, strata, "strata")
    _input.n_rows({"outcome": y, "strata": codes})
    design = build_design(frame, covariates, formula)
    names = list(design.columns)
    x = np.asarray(design.matrix, dtype=float)

    sets, n_informative = _pack(x, y, codes)
    if n_informative == 0:
        raise ModelError(
            "no matched set has both cases and controls, so the conditional likelihood carries no information"
        )
    _within_checks(sets, names)
    p = len(names)
    beta, final, null, iterations, converged = _newton(sets, p, max_iter, tol)

    messages = []
    if not converged:
        messages.append(f"Ran out of iterations ({max_iter}) and did not converge")
    pseudo = np.linalg.pinv(final.information)
    infs = np.abs(final.score @ pseudo)
    diverging = (infs > tol) & (infs > np.sqrt(tol) * np.abs(beta))
    try:
        var = cho_solve(cho_factor(final.information), np.eye(p))
    except (LinAlgError, ValueError) as err:
        if converged and not diverging.any():
            raise ModelError(
                "the information matrix is singular: the matched sets carry no information on some covariate"
            ) from err
        var = pseudo  # monotone likelihood: the information vanishes along the diverging coefficients
        var[diverging, :] = 0.0
        var[:, diverging] = 0.0
        var[np.flatnonzero(diverging), np.flatnonzero(diverging)] = np.inf
    for k in np.flatnonzero(diverging if converged else []):  # R checks this only after converging
        messages.append(f"Loglik converged before variable '{names[k]}'; coefficient may be infinite")
    for msg in messages:
        warnings.warn(f"conditional_logistic: {msg}", ConvergenceWarning, stacklevel=2)

    se = np.sqrt(np.diag(var))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        zval = beta / se
        pval = 2 * norm.sf(np.abs(zval))
        zq = float(norm.ppf((1 + conf_level) / 2))
        lower, upper = beta - zq * se, beta + zq * se
        summary = pd.DataFrame(
            {
                "term": names,
                "coef": beta,
                "se": se,
                "z": zval,
                "p": pval,
                "odds_ratio": np.exp(beta),
                "wald_lower": np.exp(lower),
                "wald_upper": np.exp(upper),
            }
        )
    lr = 2 * (final.loglik - null.loglik)
    finite = np.isfinite(np.diag(var))  # an infinite coefficient adds nothing to the Wald statistic
    wald = float(beta[finite] @ _solve(var[np.ix_(finite, finite)], beta[finite])) if finite.any() else 0.0
    score = float(null.score @ _solve(null.information, null.score))
    test_rows = [("likelihood ratio", lr), ("wald", wald), ("score", score)]
    tests = pd.DataFrame(
        {
            "test": [r[0] for r in test_rows],
            "statistic": [r[1] for r in test_rows],
            "dof": p,
            "p_value": [float(chi2.sf(r[1], p)) for r in test_rows],
        }
    )
    return ConditionalLogisticModel(
        summary=summary,
        terms=tuple(names),
        coef=beta,
        se=se,
        var=var,
        z=zval,
        p_value=pval,
        wald_lower=lower,
        wald_upper=upper,
        loglik=final.loglik,
        loglik_null=null.loglik,
        tests=tests,
        n=len(y),
        n_sets=len(labels),
        n_informative_sets=n_informative,
        n_events=int(y.sum()),
        iterations=iterations,
        converged=converged,
        warnings=tuple(messages),
        conf_level=conf_level,
    )
