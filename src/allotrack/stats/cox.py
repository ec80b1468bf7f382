"""Cox proportional-hazards regression, reproducing R ``survival::coxph`` (survival ≥ 3.5).

* Efron (default) or Breslow ties, with case weights as R (``coxfit6.c``); strata; counting-process
  ``(entry, time]`` data for delayed entry and time-varying covariates;
* R's Newton–Raphson from β = 0 with step-halving when the log-likelihood falls, converged when
  ``|1 − ℓ_old/ℓ_new| ≤ tol`` (R ``coxph.control(eps=1e-9, iter.max=20)``); non-convergence and
  coefficients that drift to ±∞ (monotone likelihood, R's ``toler.inf`` rule) raise
  :class:`~allotrack.errors.ConvergenceWarning` and are recorded in ``warnings``;
* robust (sandwich) variance ``D'D`` from weighted dfbeta residuals summed by cluster, no n/(n−1)
  factor, with R's robust score test;
* likelihood-ratio, Wald and score tests; Harrell's concordance as R's ``concordance()`` reports it;
* :meth:`CoxModel.test_proportional_hazards` is R ≥ 3.0 ``cox.zph`` (score test for X·g(t), g = 1 − KM(t−));
* :meth:`CoxModel.predict_survival` is R ``survfit(fit, newdata)`` with its variance and log CIs.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.stats import chi2, norm

from allotrack.errors import ConvergenceWarning, InputError, ModelError
from allotrack.stats import _cox_engine as engine
from allotrack.stats import _input
from allotrack.stats._design import Design, build_design
from allotrack.stats._risksets import RiskSets, build_risk_sets
from allotrack.stats.results import Result, TestResult, named_test

__all__ = ["CoxModel", "cox_ph"]


@dataclass(frozen=True)
class _Fitted:
    """What later methods need: sorted, centred data (copies, never the user's frame)."""

    rs: RiskSets
    x: np.ndarray  # centred design, sorted as rs
    entry: np.ndarray | None  # sorted
    terms: engine.TieTerms
    final: engine.Derivatives
    design: Design
    means: np.ndarray
    strata_labels: list[Any] | None
    strata_name: str | None


@dataclass(frozen=True, repr=False)
class CoxModel(Result):
    """A fitted Cox model. ``summary`` is indexed by term; ``var`` is the variance used for inference
    (robust when ``robust``), ``naive_var`` the inverse information."""

    summary: pd.DataFrame
    coef: np.ndarray
    var: np.ndarray
    naive_var: np.ndarray
    loglik: float
    loglik_null: float
    n: int
    n_events: int
    tests: pd.DataFrame
    ties: str
    robust: bool
    iterations: int
    converged: bool
    warnings: tuple[str, ...]
    conf_level: float
    _fitted: _Fitted = field(repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_frame(self) -> pd.DataFrame:
        return self.summary.copy()

    def __repr__(self) -> str:
        with pd.option_context("display.width", 120, "display.precision", 4):
            head = (
                f"<CoxModel: n={self.n}, events={self.n_events}, ties={self.ties}"
                f"{', robust' if self.robust else ''}; log-likelihood {self.loglik_null:.4f} -> {self.loglik:.4f}>"
            )
            return f"{head}\n{self.summary}\n{self.tests}"

    def test(self, name: str) -> TestResult:
        """One of the global tests: ``"likelihood ratio"``, ``"wald"``, ``"score"`` or ``"robust score"``."""
        return named_test(self.tests, name)

    @property
    def concordance(self) -> float:
        """Harrell's C as R ``coxph`` reports it (computed on first access; O(n log² n))."""
        if "concordance" not in self._cache:
            from allotrack.stats.concordance import cox_concordance

            self._cache["concordance"] = cox_concordance(self._fitted, self.coef)
        return float(self._cache["concordance"])

    def test_proportional_hazards(self, transform: str = "km") -> pd.DataFrame:
        """R ``cox.zph(fit, transform, terms=TRUE)``: per-term score tests and a GLOBAL row."""
        from allotrack.stats.cox_zph import zph_test

        return zph_test(self._fitted, self.coef, transform)

    def predict_survival(self, newdata: Any, times: Sequence[float] | np.ndarray) -> pd.DataFrame:
        """Survival for new covariate values (R ``summary(survfit(fit, newdata), times, extend=TRUE)``)."""
        from allotrack.stats.cox_predict import predict_survival

        return predict_survival(self._fitted, self.coef, self.naive_var, newdata, times, self.conf_level)


def _solve(info: np.ndarray, vec: np.ndarray) -> np.ndarray:
    try:
        return cho_solve(cho_factor(info), vec)
    except (LinAlgError, ValueError):
        return np.linalg.lstsq(info, vec, rcond=None)[0]


def _sorted_mean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted column means summed in the time-sorted order of the rows, so that they do not depend on the order
    the rows were given in (rows with distinct times). A BLAS product over the input order rounds differently for
    a permuted input; a covariate constant within every risk set then centred to tiny non-zero values in one
    order and exact zeros in another, turning "no information" into a spurious finite estimate."""
    return np.add.reduce(x * w[:, None], axis=0) / np.add.reduce(w)


def _inverse(info: np.ndarray) -> np.ndarray:
    try:
        return cho_solve(cho_factor(info), np.eye(info.shape[0]))
    except (LinAlgError, ValueError) as err:
        raise ModelError(
            "the information matrix is singular: the data carry no information on some covariate "
            "(for example it does not vary within any risk set at an event time)"
        ) from err


def _newton(
    rs: RiskSets, x: np.ndarray, terms: engine.TieTerms, max_iter: int, tol: float
) -> tuple[np.ndarray, engine.Derivatives, engine.Derivatives, int, bool]:
    """R coxfit6 iteration: Newton steps, halving back toward the last accepted β when ℓ falls."""
    p = x.shape[1]
    beta = np.zeros(p)
    null = engine.derivatives(rs, x, beta, terms)
    best = null
    new_beta = beta + _solve(best.information, best.score)
    halving = 0
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        trial = engine.derivatives(rs, x, new_beta, terms)
        finite = bool(
            np.isfinite(trial.loglik) and np.isfinite(trial.score).all() and np.isfinite(trial.information).all()
        )
        change = abs(1 - best.loglik / trial.loglik) if trial.loglik != 0 else abs(best.loglik)
        if finite and change <= tol and halving == 0:
            beta, best, converged = new_beta, trial, True
            break
        if it == max_iter:
            break
        if not finite or trial.loglik < best.loglik:
            halving += 1
            new_beta = (new_beta + halving * beta) / (halving + 1)
        else:
            halving = 0
            beta, best = new_beta, trial
            new_beta = beta + _solve(best.information, best.score)
    return beta, best, null, it, converged


def cox_ph(
    data: Any = None,
    time: _input.ColumnSpec = "time",
    event: _input.ColumnSpec = "event",
    covariates: Sequence[str] | None = None,
    formula: str | None = None,
    ties: str = "efron",
    strata: _input.ColumnSpec | None = None,
    robust: bool = False,
    cluster: _input.ColumnSpec | None = None,
    entry: _input.ColumnSpec | None = None,
    weights: _input.ColumnSpec | None = None,
    conf_level: float = 0.95,
    max_iter: int = 20,
    tol: float = 1e-9,
) -> CoxModel:
    """Fit a Cox model (R ``coxph(Surv(entry, time, event) ~ covariates + strata(s), ties, weights, cluster)``).

    ``covariates`` lists columns (categorical ones expanded against their first sorted level), or
    ``formula`` gives a right-hand side such as ``"age + C(sex) + donor_age:hla_mismatch"``.
    ``entry`` turns the data into counting-process rows at risk on (entry, time] (delayed entry or
    time-varying covariates). A ``cluster`` implies ``robust=True``.
    """
    if ties not in ("efron", "breslow"):
        raise InputError(f"ties must be 'efron' or 'breslow', not {ties!r}")
    if not 0 < conf_level < 1:
        raise InputError(f"conf_level must lie strictly between 0 and 1, not {conf_level!r}")
    stop = _input.time_array(data, time, "time")
    ev = _input.event_array(data, event)
    n = _input.n_rows({"time": stop, "event": ev})
    w = _input.weight_array(data, weights, n)
    start = None
    if entry is not None:
        start = _input.time_array(data, entry, "entry")
        bad = start >= stop
        if bad.any():
            rows = np.flatnonzero(bad)
            raise InputError(
                "entry time must be before the exit time (rows are at risk on (entry, time]; stop ≤ start)",
                column=_input.column_name(entry, "entry"),
                rows=rows[:5].tolist(),
                values=start[rows[:5]].tolist(),
                n_bad=rows.size,
            )
    if strata is not None:
        scode, slabels = _input.group_array(data, strata, "strata")
        _input.n_rows({"time": stop, "strata": scode})
    else:
        scode, slabels = np.zeros(n, dtype=np.intp), None
    if not ev.any():
        raise ModelError("no events: every observation is censored, so no hazard ratio can be estimated")
    design = build_design(data, covariates, formula)
    if design.matrix.shape[0] != n:
        raise InputError(f"covariates have {design.matrix.shape[0]} rows but time has {n}")
    rs = build_risk_sets(stop, ev, w, scode, start)  # near ties merged here (aeqSurv), data sorted once
    n_cov = len(design.columns)
    x = np.empty((n, n_cov), order="F")  # column-major: column sums and cumsums are contiguous
    for col in range(n_cov):
        x[:, col] = design.matrix[rs.order, col]
    means = _sorted_mean(x, w[rs.order])
    x -= means
    terms = engine.tie_terms(rs, x, ties)
    beta, final, null, iters, converged = _newton(rs, x, terms, max_iter, tol)
    messages = []
    if not converged:
        messages.append(f"Ran out of iterations ({max_iter}) and did not converge")
    pseudo = np.linalg.pinv(final.information)
    infs = np.abs(final.score @ pseudo)
    diverging = (infs > tol) & (infs > np.sqrt(tol) * np.abs(beta))
    try:
        naive_var = _inverse(final.information)
    except ModelError:
        if not diverging.any():
            raise
        # monotone likelihood: the information vanishes along the diverging coefficients
        naive_var = pseudo
        naive_var[diverging, :] = 0.0
        naive_var[:, diverging] = 0.0
        naive_var[np.flatnonzero(diverging), np.flatnonzero(diverging)] = np.inf
    for k in np.flatnonzero(diverging):
        messages.append(f"Loglik converged before variable '{design.columns[k]}'; coefficient may be infinite")
    for msg in messages:
        warnings.warn(msg, ConvergenceWarning, stacklevel=2)

    use_robust = robust or cluster is not None
    var = naive_var
    robust_score = None
    if use_robust:
        if cluster is not None:
            ccode, _ = _input.group_array(data, cluster, "cluster")
            ccode = ccode[rs.order]
        else:
            ccode = np.arange(n)
        resid = engine.score_residuals(rs, x, terms, final)
        dfbeta = _by_cluster(rs.weight[:, None] * resid, ccode) @ naive_var
        var = dfbeta.T @ dfbeta
        resid0 = _by_cluster(rs.weight[:, None] * engine.score_residuals(rs, x, terms, null), ccode)
        robust_score = float(null.score @ _solve(resid0.T @ resid0, null.score))

    p = beta.size
    se = np.sqrt(np.diag(var))
    zq = norm.ppf(1 - (1 - conf_level) / 2)
    with np.errstate(over="ignore"):
        summary = _summary_frame(beta, naive_var, se, use_robust, zq, design.columns)
    lr = 2 * (final.loglik - null.loglik)
    finite = np.isfinite(np.diag(var))  # an infinite coefficient adds nothing to the Wald statistic
    wald = float(beta[finite] @ _solve(var[np.ix_(finite, finite)], beta[finite])) if finite.any() else 0.0
    score = float(null.score @ _solve(null.information, null.score))
    test_rows: list[tuple[str, float]] = [("likelihood ratio", lr), ("wald", wald), ("score", score)]
    if robust_score is not None:
        test_rows.append(("robust score", robust_score))
    tests = pd.DataFrame(
        {
            "test": [r[0] for r in test_rows],
            "statistic": [r[1] for r in test_rows],
            "dof": p,
            "p_value": [float(chi2.sf(r[1], p)) for r in test_rows],
        }
    )
    fitted = _Fitted(
        rs=rs,
        x=x,
        entry=None if start is None else start[rs.order],
        terms=terms,
        final=final,
        design=design,
        means=means,
        strata_labels=slabels,
        strata_name=None if strata is None else _input.column_name(strata, "strata"),
    )
    return CoxModel(
        summary=summary,
        coef=beta,
        var=var,
        naive_var=naive_var,
        loglik=final.loglik,
        loglik_null=null.loglik,
        n=n,
        n_events=int(ev.sum()),
        tests=tests,
        ties=ties,
        robust=use_robust,
        iterations=iters,
        converged=converged,
        warnings=tuple(messages),
        conf_level=conf_level,
        _fitted=fitted,
    )


def _summary_frame(
    beta: np.ndarray, naive_var: np.ndarray, se: np.ndarray, robust: bool, zq: float, names: list[str]
) -> pd.DataFrame:
    z = beta / se
    return pd.DataFrame(
        {
            "coef": beta,
            "hr": np.exp(beta),
            "se": np.sqrt(np.diag(naive_var)),
            **({"robust_se": se} if robust else {}),
            "z": z,
            "p": 2 * norm.sf(np.abs(z)),
            "hr_lower": np.exp(beta - zq * se),
            "hr_upper": np.exp(beta + zq * se),
        },
        index=pd.Index(names, name="term"),
    )


def _by_cluster(rows: np.ndarray, codes: np.ndarray) -> np.ndarray:
    out = np.zeros((int(codes.max()) + 1, rows.shape[1]))
    np.add.at(out, codes, rows)
    return out
