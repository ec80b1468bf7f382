"""Linear mixed models for repeated measures (e.g. IL-6 on day 0/1/7 per patient by arm), reproducing R's
``lme4::lmer(outcome ~ fixed + (1 | group), REML = TRUE)`` and ``... + (time | group)``.

* Fixed effects are coded by formulaic exactly as for the Cox model (:mod:`allotrack.stats._design`):
  categorical terms use treatment contrasts against their first level (sorted, or the categories' order for a
  pandas ``Categorical``), as R's default for character columns.
* The fit is statsmodels ``MixedLM`` (REML by default). Its optimisers can stop short of the optimum (REML
  criterion up to ~1e-7 high), so the model is fitted with several methods, the best criterion is kept and
  then polished by Nelder-Mead with tight tolerances on the profiled criterion over lme4's theta (Cholesky
  factor of the relative random-effect covariance); on the reference data the REML criterion agrees with
  ``lme4::REMLcrit`` at tight tolerances to ~1e-13 relative, fixed effects and SEs to ~3e-7.
* ``vcov`` of the fixed effects is ``sigma^2 (X' V^-1 X)^-1`` at the estimated variance parameters, as
  ``vcov(lmer_fit)`` (not the block of the inverse Hessian over all parameters, which statsmodels reports).
* Inference is Wald with the **standard normal** reference (``df`` = inf in ``summary``): lme4 gives no
  p-values, and lmerTest's Satterthwaite df (t reference) would give slightly larger p-values in small
  studies. ``t_value`` is lme4's "t value" (estimate / SE).
* Rows with a missing outcome are dropped (missed visits; the likelihood uses every observed value, as
  lme4's default ``na.action = na.omit``); missing covariates, groups or times raise
  :class:`~allotrack.errors.InputError`.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from allotrack.errors import ConvergenceWarning, InputError, ModelError
from allotrack.stats._design import Design, _frame, build_design, new_rows
from allotrack.stats.results import Result

__all__ = ["EstimatedMeans", "MixedModel", "fit_mixed_model", "mixed_model"]

_METHODS: tuple[str, ...] = ("lbfgs", "bfgs", "powell", "nm", "cg")


@dataclass(frozen=True, repr=False)
class EstimatedMeans(Result):
    """Model-based (estimated marginal) means: one row per combination of the ``at`` variables, with its
    standard error and Wald (normal) confidence interval."""

    at: tuple[str, ...]
    table: pd.DataFrame
    conf_level: float
    contrasts: np.ndarray  # one row of fixed-effect weights per mean (mean = contrasts @ coef)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()


@dataclass(frozen=True, repr=False)
class MixedModel(Result):
    """A fitted linear mixed model.

    ``summary`` (indexed by fixed-effect column, ``Intercept`` first) holds ``estimate``, ``std_error``,
    ``t_value``, ``df`` (inf: Wald z), ``p_value`` and the 95% Wald interval. Variance components:
    ``intercept_var`` (random intercept), ``slope_var`` and ``corr`` (random slope on ``time`` and its
    correlation with the intercept; NaN for a random-intercept model) and ``residual_var``. ``loglik`` is the
    REML (or ML when ``reml=False``) log-likelihood and ``criterion`` = -2 ``loglik`` (lme4 ``REMLcrit`` /
    ``deviance``).
    """

    outcome: str
    fixed: str
    group: str
    random: str
    time: str | None
    reml: bool
    summary: pd.DataFrame
    coef: np.ndarray
    vcov: np.ndarray
    intercept_var: float
    slope_var: float
    corr: float
    residual_var: float
    loglik: float
    criterion: float
    n_obs: int
    n_groups: int
    converged: bool
    method: str
    warnings: tuple[str, ...] = ()
    _design: Design | None = field(default=None, compare=False)
    _frame: pd.DataFrame | None = field(default=None, compare=False)

    def to_frame(self) -> pd.DataFrame:
        return self.summary.copy()

    @property
    def coef_names(self) -> list[str]:
        return list(self.summary.index)

    @property
    def variance_components(self) -> pd.DataFrame:
        """One row per component: variance, standard deviation (correlation for ``corr``)."""
        rows = [("intercept", self.intercept_var)]
        if self.random == "slope":
            rows.append((f"slope ({self.time})", self.slope_var))
        rows.append(("residual", self.residual_var))
        frame = pd.DataFrame(
            {"component": [r[0] for r in rows], "variance": [r[1] for r in rows],
             "sd": [float(np.sqrt(r[1])) for r in rows]}
        )  # fmt: skip
        if self.random == "slope":
            corr = pd.DataFrame({"component": ["corr (intercept, slope)"], "variance": [np.nan], "sd": [self.corr]})
            frame = pd.concat([frame, corr], ignore_index=True)
        return frame

    def estimated_means(
        self, at: str | Sequence[str] | Mapping[str, Sequence[Any]], conf_level: float = 0.95
    ) -> EstimatedMeans:
        """Model-based means for each combination of the ``at`` variables (the emmeans idea).

        ``at`` names variables of the fixed formula (e.g. ``["visit", "arm"]``); categorical ones take each of
        their levels, numeric ones their mean unless values are given (``{"Days": [0, 5, 9]}``). Variables not
        in ``at`` are averaged over: categorical ones with **equal weight per level** (a balanced grid, as
        emmeans' default, not weighted by how many patients have each level), numeric ones held at their mean
        over the fitted rows. Each mean is ``L @ coef`` with ``SE = sqrt(L vcov L')`` and a Wald normal
        interval.
        """
        if self._design is None or self._frame is None:
            raise ModelError("this MixedModel was not built by mixed_model(); it has no design to predict from")
        if not 0 < conf_level < 1:
            raise InputError(f"conf_level must lie strictly between 0 and 1, got {conf_level!r}")
        frame = self._frame
        variables = _fixed_variables(self.fixed, frame)
        if isinstance(at, str):
            at = [at]
        spec: dict[str, Sequence[Any] | None] = (
            {k: list(v) for k, v in at.items()} if isinstance(at, Mapping) else {k: None for k in at}
        )
        for name in spec:
            if name not in variables:
                raise InputError(
                    f"estimated_means: '{name}' is not a variable of the fixed formula '{self.fixed}' "
                    f"(variables: {variables})",
                    column=name,
                )
        values: dict[str, list[Any]] = {}
        for name in variables:
            col = frame[name]
            numeric = col.dtype.kind in "fiu"
            given = spec.get(name)
            if given is not None:
                values[name] = list(given)
            elif numeric:
                values[name] = [float(col.mean())]
            else:
                values[name] = _levels(col)
        at_names = list(spec)
        others = [v for v in variables if v not in spec]
        combos = list(itertools.product(*(values[a] for a in at_names)))
        rest = list(itertools.product(*(values[o] for o in others)))
        records = [dict(zip(at_names + others, c + r, strict=True)) for c in combos for r in rest]
        grid = pd.DataFrame.from_records(records, columns=at_names + others)
        for name in variables:
            if isinstance(frame[name].dtype, pd.CategoricalDtype):
                grid[name] = pd.Categorical(grid[name], categories=frame[name].cat.categories)
        try:
            x = new_rows(self._design, grid)
        except Exception as exc:  # formulaic: a level never seen in the fit
            raise InputError(f"estimated_means: cannot code the requested values ({exc})") from exc
        x = np.column_stack([np.ones(len(grid)), x])
        lmat = x.reshape(len(combos), len(rest), -1).mean(axis=1)
        mean = lmat @ self.coef
        se = np.sqrt(np.einsum("ij,jk,ik->i", lmat, self.vcov, lmat))
        z = norm.ppf(0.5 + conf_level / 2)
        table = pd.DataFrame(combos, columns=at_names)
        table["estimate"] = mean
        table["std_error"] = se
        table["lower"] = mean - z * se
        table["upper"] = mean + z * se
        return EstimatedMeans(tuple(at_names), table, conf_level, lmat)


def fit_mixed_model(
    data: Any,
    outcome: str,
    fixed: str,
    group: str,
    random: str = "intercept",
    time: str | None = None,
    reml: bool = True,
) -> MixedModel:
    """Fit ``outcome ~ fixed + (1 | group)`` (``random="intercept"``) or ``outcome ~ fixed + (time | group)``
    (``random="slope"``: correlated random intercept and slope on the numeric column ``time``) by REML
    (``reml=False``: maximum likelihood), as ``lme4::lmer``.

    ``fixed`` is the right-hand side of the fixed effects, e.g. ``"visit * arm"`` (an intercept is always
    included). p-values are Wald z (normal reference, ``df`` = inf), not lmerTest's Satterthwaite t.
    As lme4, it needs more observations than random effects: more rows than subjects for a random intercept,
    more than twice as many for a random slope, and some subject with two different times.
    """
    frame = _frame(data)
    if random not in ("intercept", "slope"):
        raise InputError(f"random must be 'intercept' or 'slope', got {random!r}")
    if random == "slope" and time is None:
        raise InputError("random='slope' needs time= (the numeric column the slope is on)")
    if random == "intercept" and time is not None:
        raise InputError("time= is only used with random='slope'", column=time)
    for col in (outcome, group, time):
        if col is not None and col not in frame.columns:
            raise InputError(f"no such column (columns: {list(frame.columns)[:20]})", column=col)
    if frame[outcome].dtype.kind not in "fiub":
        raise InputError("the outcome must be numeric", column=outcome)
    keep = frame[outcome].notna().to_numpy()
    frame = frame.loc[keep].reset_index(drop=True)
    if len(frame) == 0:
        raise InputError("no observed outcome values", column=outcome)
    for col in (group, time):
        if col is None:
            continue
        miss = frame[col].isna().to_numpy()
        if miss.any():
            rows = np.flatnonzero(miss)
            raise InputError("must not be missing (rows counted after dropping missing outcomes)",
                             column=col, rows=rows[:5].tolist(), n_bad=rows.size)  # fmt: skip
    if time is not None and frame[time].dtype.kind not in "fiu":
        raise InputError("the random-slope time must be numeric", column=time)

    design = build_design(frame, None, fixed)
    x = np.column_stack([np.ones(len(frame)), design.matrix])
    names = ["Intercept", *design.columns]
    y = frame[outcome].to_numpy(dtype=float)
    codes, labels = pd.factorize(frame[group], sort=True)
    n_obs, n_groups = len(y), len(labels)
    q = 1 if random == "intercept" else 2
    if n_obs <= q * n_groups:
        raise InputError(
            f"{n_obs} observations for {n_groups} subjects: a random "
            f"{'intercept' if q == 1 else 'intercept and slope'} needs more than {q} observation(s) per subject "
            "on average (lme4: number of observations <= number of random effects)",
            column=group,
        )
    if time is not None:
        t = frame[time].to_numpy(dtype=float)
        spread = pd.Series(t).groupby(codes).agg(lambda s: s.max() - s.min())
        if not (spread > 0).any():
            raise InputError("no subject has two different times: a random slope cannot be estimated",
                             column=time)  # fmt: skip
        z = np.column_stack([np.ones(n_obs), t])
    else:
        z = np.ones((n_obs, 1))
    if n_obs <= x.shape[1]:
        raise ModelError(f"{n_obs} observations for {x.shape[1]} fixed effects")

    fit, method, fit_warnings = _fit(y, x, z, codes, reml)
    psi0 = np.atleast_2d(np.asarray(fit.cov_re, dtype=float)) / float(fit.scale)
    groups = _group_index(codes)
    psi, polished, polish_ok = _polish(y, x, z, groups, psi0, reml)
    beta, vcov, scale, crit = _profiled(y, x, z, groups, psi, reml)
    cov_re = psi * scale
    se = np.sqrt(np.diag(vcov))
    tval = beta / se
    zq = norm.ppf(0.975)
    summary = pd.DataFrame(
        {"estimate": beta, "std_error": se, "t_value": tval, "df": np.inf,
         "p_value": 2 * norm.sf(np.abs(tval)), "lower": beta - zq * se, "upper": beta + zq * se},
        index=pd.Index(names, name="term"),
    )  # fmt: skip
    converged = bool(fit.converged) or polish_ok
    if not converged:
        fit_warnings.append("the optimiser did not report convergence")
        warnings.warn(f"mixed_model: {fit_warnings[-1]}", ConvergenceWarning, stacklevel=2)
    loglik = -crit / 2
    return MixedModel(
        outcome=outcome, fixed=fixed, group=group, random=random, time=time, reml=reml, summary=summary,
        coef=beta, vcov=vcov, intercept_var=float(cov_re[0, 0]),
        slope_var=float(cov_re[1, 1]) if q == 2 else np.nan,
        corr=float(cov_re[0, 1] / np.sqrt(cov_re[0, 0] * cov_re[1, 1])) if q == 2 and cov_re[0, 0] * cov_re[1, 1] > 0
        else np.nan,
        residual_var=scale, loglik=loglik, criterion=-2 * loglik, n_obs=n_obs, n_groups=n_groups,
        converged=converged, method=f"{method}+nelder-mead" if polished else method,
        warnings=tuple(fit_warnings), _design=design, _frame=frame,
    )  # fmt: skip


def _fit(y: np.ndarray, x: np.ndarray, z: np.ndarray, codes: np.ndarray, reml: bool) -> tuple[Any, str, list[str]]:
    """Fit with several statsmodels optimisers, keep the best (RE)ML criterion, then polish it with tight
    tolerances from there (statsmodels' defaults can stop ~1e-5 short of the optimum)."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    model = MixedLM(y, x, groups=codes, exog_re=z)
    best: Any = None
    best_method = ""
    caught: list[str] = []
    for method in _METHODS:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            try:
                res = model.fit(reml=reml, method=[method])
            except (np.linalg.LinAlgError, ValueError):
                continue
        if not np.isfinite(res.llf):
            continue
        if best is None or res.llf > best.llf + 1e-12:
            best, best_method = res, method
            caught = [str(m.message) for m in w]
    if best is None:
        raise ModelError("statsmodels MixedLM failed with every optimiser")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            polished = model.fit(reml=reml, start_params=best.params_object, method=["lbfgs"],
                                 pgtol=1e-12, factr=10.0, maxiter=5000)  # fmt: skip
        except (np.linalg.LinAlgError, ValueError):
            polished = None
    if polished is not None and np.isfinite(polished.llf) and polished.llf >= best.llf:
        best, best_method = polished, f"{best_method}+lbfgs"
        caught = [str(m.message) for m in w]
    kept = [m for m in dict.fromkeys(caught) if "boundary" in m or "singular" in m.lower()]
    return best, best_method, kept


def _group_index(codes: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)


def _profiled(
    y: np.ndarray, x: np.ndarray, z: np.ndarray, groups: list[np.ndarray], psi: np.ndarray, reml: bool
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """GLS at the relative random-effect covariance psi (V_i = I + Z_i psi Z_i'): beta, its covariance
    sigma^2 (X'V^-1 X)^-1, sigma^2 and the profiled criterion -2 log L (REML: lme4's ``REMLcrit``)."""
    n, p = x.shape
    xtvx = np.zeros((p, p))
    xtvy = np.zeros(p)
    ytvy = 0.0
    logdet_v = 0.0
    for idx in groups:
        zi = z[idx]
        vi = np.eye(len(idx)) + zi @ psi @ zi.T
        ci = np.linalg.cholesky(vi)
        logdet_v += 2 * float(np.log(np.diag(ci)).sum())
        w = np.linalg.solve(ci, np.column_stack([x[idx], y[idx]]))  # L^-1 [X y]
        xtvx += w[:, :p].T @ w[:, :p]
        xtvy += w[:, :p].T @ w[:, p]
        ytvy += float(w[:, p] @ w[:, p])
    chol = np.linalg.cholesky(xtvx)
    inv = np.linalg.inv(xtvx)
    beta = inv @ xtvy
    rss = ytvy - float(xtvy @ beta)
    dof = n - p if reml else n
    scale = rss / dof
    crit = dof * (1 + np.log(2 * np.pi * scale)) + logdet_v
    if reml:
        crit += 2 * float(np.log(np.diag(chol)).sum())
    return beta, scale * inv, scale, float(crit)


def _theta(psi: np.ndarray) -> np.ndarray:
    q = psi.shape[0]
    if q == 1:
        return np.sqrt(np.maximum(psi[0], 0.0))
    try:
        low = np.linalg.cholesky(psi)
    except np.linalg.LinAlgError:  # singular (boundary) start: a slightly inflated diagonal
        low = np.linalg.cholesky(psi + 1e-10 * np.eye(q) * max(1.0, float(np.trace(psi))))
    return low[np.tril_indices(q)]


def _psi(theta: np.ndarray, q: int) -> np.ndarray:
    low = np.zeros((q, q))
    low[np.tril_indices(q)] = theta
    return low @ low.T


def _polish(
    y: np.ndarray, x: np.ndarray, z: np.ndarray, groups: list[np.ndarray], psi0: np.ndarray, reml: bool
) -> tuple[np.ndarray, bool, bool]:
    """Finish statsmodels' optimum on the profiled criterion over the Cholesky factor of psi (lme4's theta),
    Nelder-Mead with tight tolerances; statsmodels' own stopping rules leave the criterion up to ~1e-7 above
    the optimum. The start is kept unless the polish improves the criterion. Returns psi, whether the polish
    improved it and whether the polish met its tolerances."""
    from scipy.optimize import minimize

    q = psi0.shape[0]

    def objective(theta: np.ndarray) -> float:
        try:
            return _profiled(y, x, z, groups, _psi(theta, q), reml)[3]
        except np.linalg.LinAlgError:
            return np.inf

    start = _theta(psi0)
    f0 = objective(start)
    res = minimize(objective, start, method="Nelder-Mead",
                   options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 4000, "maxfev": 4000,
                            "initial_simplex": _simplex(start)})  # fmt: skip
    if np.isfinite(res.fun) and res.fun <= f0:
        return _psi(res.x, q), True, bool(res.success)
    return psi0, False, bool(res.success)


def _simplex(start: np.ndarray) -> np.ndarray:
    step = np.maximum(np.abs(start) * 0.02, 1e-4)
    return np.vstack([start, start + np.diag(step)])


def _fixed_variables(fixed: str, frame: pd.DataFrame) -> list[str]:
    from formulaic import Formula

    rhs = fixed.split("~", 1)[1] if "~" in fixed else fixed
    return sorted(str(v) for v in Formula(rhs).required_variables if str(v) in frame.columns)


def _levels(col: pd.Series) -> list[Any]:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return list(col.cat.categories)
    return sorted(col.dropna().unique().tolist())


def mixed_model(data: Any, formula: str, groups: str, re_formula: str = "1", reml: bool = True) -> MixedModel:
    """The linear mixed model of DESIGN.md's public API: ``formula`` is ``"outcome ~ fixed effects"``, ``groups``
    the subject column, ``re_formula`` ``"1"`` (random intercept) or ``"1 + <time column>"`` (correlated random
    intercept and slope on that numeric column), as ``lme4::lmer(outcome ~ fixed + (re_formula | groups))``.
    See :func:`fit_mixed_model`."""
    if "~" not in formula:
        raise InputError(f"formula must be 'outcome ~ fixed effects', not {formula!r}", column="formula")
    outcome, fixed = (part.strip() for part in formula.split("~", 1))
    terms = [t.strip() for t in re_formula.split("+")]
    if terms == ["1"]:
        return fit_mixed_model(data, outcome, fixed, groups, random="intercept", reml=reml)
    if len(terms) == 2 and terms[0] == "1" and terms[1]:
        return fit_mixed_model(data, outcome, fixed, groups, random="slope", time=terms[1], reml=reml)
    raise InputError(f"re_formula must be '1' or '1 + <time column>', not {re_formula!r}", column="re_formula")
