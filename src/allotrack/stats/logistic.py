"""Logistic regression of a 0/1 outcome, reproducing R ``glm(y ~ ..., family = binomial)``.

* R's IRLS (``glm.fit``): start ``mu = (w y + 0.5) / (w + 1)``, weighted least squares on the working response,
  converged when ``|D - D_old| / (|D| + 0.1) < 1e-8`` (``glm.control()``), at most 25 iterations; the logit's
  inverse and derivative clamped at ``|eta| > 30`` as R's C code does. Standard errors come, as in R, from the
  weighted QR of the last iteration;
* Wald z, two-sided p and limits ``coef ± z_{(1+level)/2} se`` (R ``summary.glm``, ``confint.default``);
* profile-likelihood limits: the values ``b`` where the deviance of the model with ``beta_j`` fixed at ``b``
  exceeds the minimum by ``z²`` (R ≥ 4.4 ``confint(fit)``, MASS ``confint.glm`` in older R). R locates them by
  interpolating a spline through a coarse grid of the profile (off by up to ~1e-3 relative); here each limit is
  solved exactly (Brent's method on the signed root deviance, every constrained fit by Newton's method with
  step-halving, warm-started);
* null and residual deviance with their degrees of freedom, AIC as R's ``binomial()$aic``; prior ``weights``
  as R's (zero weights leave the residual df, as in R).

Special cases (documented choices):

* **separation** — complete or quasi-complete separation (some combination of covariates predicts the outcome
  perfectly, so the maximum-likelihood estimate does not exist; R warns "fitted probabilities numerically 0 or 1
  occurred" or returns huge coefficients and standard errors) is detected by a linear program before fitting and
  raises :class:`~allotrack.errors.ModelError` naming the terms involved. Use a penalised (Firth) or exact method
  for such data;
* **missing values** — rows missing the outcome, a covariate or a weight are dropped as R's ``na.omit`` does,
  with a :class:`UserWarning` giving how many rows (and which positions) were dropped; ``n_dropped`` records it.
  ``na_action="fail"`` raises :class:`~allotrack.errors.InputError` instead (R ``na.fail``);
* an outcome that is not 0/1 (or boolean) or that is constant raises :class:`~allotrack.errors.InputError`
  naming the column and values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq, linprog
from scipy.special import expit, log_expit
from scipy.stats import binom, norm

from allotrack.errors import ConvergenceWarning, InputError, ModelError
from allotrack.stats._design import build_design
from allotrack.stats.results import Result

__all__ = ["LogisticModel", "logistic_regression"]

_EPS = np.finfo(float).eps
_THRESH = 30.0
INTERCEPT = "(Intercept)"


@dataclass(frozen=True, repr=False)
class LogisticModel(Result):
    """A fitted logistic model. Arrays follow ``terms`` (``"(Intercept)"`` first); ``summary`` has one row per
    term with log-odds ``coef``, ``se``, ``z``, Wald ``p``, and the ``odds_ratio`` with its profile-likelihood
    limits ``lower``/``upper`` and its Wald limits ``wald_lower``/``wald_upper`` (DESIGN.md's public names)."""

    summary: pd.DataFrame
    terms: tuple[str, ...]
    coef: np.ndarray
    se: np.ndarray
    var: np.ndarray
    z: np.ndarray
    p_value: np.ndarray
    wald_lower: np.ndarray  # log-odds scale (R confint.default)
    wald_upper: np.ndarray
    profile_lower: np.ndarray  # log-odds scale (R confint on a glm)
    profile_upper: np.ndarray
    null_deviance: float
    deviance: float
    df_null: int
    df_residual: int
    aic: float
    n: int
    n_dropped: int
    iterations: int
    converged: bool
    conf_level: float

    def to_frame(self) -> pd.DataFrame:
        return self.summary.copy()

    def __repr__(self) -> str:
        with pd.option_context("display.width", 140, "display.precision", 4):
            head = (
                f"<LogisticModel: n={self.n}, null deviance {self.null_deviance:.4f} on {self.df_null} df, "
                f"residual deviance {self.deviance:.4f} on {self.df_residual} df, AIC {self.aic:.4f}>"
            )
            return f"{head}\n{self.summary}"


# ---- logit link as R's C code (family.c) ------------------------------------------------------------------
def _linkinv(eta: np.ndarray) -> np.ndarray:
    e = np.exp(np.clip(eta, -_THRESH, _THRESH))
    e = np.where(eta < -_THRESH, _EPS, np.where(eta > _THRESH, 1.0 / _EPS, e))
    return e / (1.0 + e)


def _mu_eta(eta: np.ndarray) -> np.ndarray:
    e = np.exp(np.clip(eta, -_THRESH, _THRESH))
    return np.where(np.abs(eta) > _THRESH, _EPS, e / (1.0 + e) ** 2)


def _dev_resids(y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(y > 0, y * np.log(y / mu), 0.0)
        b = np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
    return 2.0 * w * (a + b)


def _deviance_eta(y: np.ndarray, w: np.ndarray, eta: np.ndarray) -> float:
    """Exact deviance of 0/1 data at linear predictor eta (log μ and log(1−μ) without cancellation)."""
    return float(-2.0 * np.sum(w * np.where(y > 0.5, log_expit(eta), log_expit(-eta))))


def _irls(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, epsilon: float = 1e-8, max_iter: int = 25
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int, bool]:
    """R glm.fit for the binomial family: coefficients, variance (from the last weighted QR), mu, deviance,
    iterations, converged."""
    mu = (w * y + 0.5) / (w + 1.0)
    eta = np.log(mu / (1.0 - mu))
    dev_old = float(np.sum(_dev_resids(y, mu, w)))
    coef = np.zeros(x.shape[1])
    r_mat = np.eye(x.shape[1])
    converged = False
    it = 0
    while it < max_iter:
        it += 1
        mu_eta = _mu_eta(eta)
        good = (w > 0) & (mu_eta != 0)
        z = eta[good] + (y - mu)[good] / mu_eta[good]
        sw = np.sqrt(w[good] * mu_eta[good] ** 2 / (mu * (1 - mu))[good])
        q, r_mat = np.linalg.qr(x[good] * sw[:, None])
        coef = np.linalg.solve(r_mat, q.T @ (z * sw))
        eta = x @ coef
        mu = _linkinv(eta)
        dev = float(np.sum(_dev_resids(y, mu, w)))
        if not math.isfinite(dev):
            raise ModelError("the IRLS deviance became infinite; the data cannot be fitted by a logistic model")
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            converged = True
            break
        dev_old = dev
    r_inv = np.linalg.inv(r_mat)
    return coef, r_inv @ r_inv.T, mu, dev, it, converged


def _newton_offset(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, offset: np.ndarray, start: np.ndarray
) -> tuple[float, np.ndarray]:
    """Minimum deviance of y ~ x + offset(offset): Newton with step-halving (concave log-likelihood)."""
    beta = start.copy()
    dev = _deviance_eta(y, w, x @ beta + offset)
    if x.shape[1] == 0:
        return dev, beta
    for _ in range(200):
        eta = x @ beta + offset
        mu = expit(eta)
        grad = x.T @ (w * (y - mu))
        info = (x * (w * mu * (1 - mu))[:, None]).T @ x
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(info, grad, rcond=None)[0]
        t = 1.0
        while True:
            trial = _deviance_eta(y, w, x @ (beta + t * step) + offset)
            if trial <= dev or t < 1e-12:
                break
            t /= 2
        beta = beta + t * step
        small = np.max(np.abs(t * step)) < 1e-13 * (1 + np.max(np.abs(beta)))
        dev = min(dev, trial)
        if small:
            break
    return dev, beta


def _profile_limits(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, coef: np.ndarray, se: np.ndarray, conf_level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact profile-likelihood limits: roots of sign(b − β̂_j)·sqrt(D_j(b) − D̂) = ±z."""
    dev_hat, coef = _newton_offset(x, y, w, np.zeros(len(y)), coef)  # polish the MLE for the reference deviance
    zq = float(norm.ppf((1 + conf_level) / 2))
    p = x.shape[1]
    lower = np.full(p, np.nan)
    upper = np.full(p, np.nan)
    for j in range(p):
        others = np.delete(x, j, axis=1)
        start = np.delete(coef, j)

        def excess(b: float, *, j: int = j, others: np.ndarray = others, start: np.ndarray = start) -> float:
            dev, _ = _newton_offset(others, y, w, b * x[:, j], start)
            return dev - dev_hat - zq * zq

        for sign, out in ((-1.0, lower), (1.0, upper)):
            step = 2.0 * zq * se[j]
            far = coef[j] + sign * step
            found = True
            for _ in range(60):
                if excess(far) > 0:
                    break
                step *= 2
                far = coef[j] + sign * step
            else:
                found = False  # the profile levels off below z²: the limit is infinite (R: NA)
            if found:
                a, b = sorted((coef[j], far))
                out[j] = brentq(excess, a, b, xtol=1e-14 * max(1.0, abs(coef[j])), rtol=4 * _EPS, maxiter=500)
            else:
                out[j] = sign * np.inf
    return lower, upper


def _separation(x: np.ndarray, y: np.ndarray, names: list[str]) -> list[str]:
    """Terms in a direction b ≠ 0 with (2y−1)·x'b ≥ 0 for every row (complete or quasi-complete separation),
    found by the linear program of Konis (2007): maximise Σ (2y−1) x'b with |b_k| ≤ 1 on column-scaled x."""
    scale = np.maximum(np.max(np.abs(x), axis=0), 1e-300)
    xs = x / scale
    signed = xs * (2 * y - 1)[:, None]
    res = linprog(
        -signed.sum(axis=0), A_ub=-signed, b_ub=np.zeros(len(y)), bounds=[(-1, 1)] * x.shape[1], method="highs"
    )
    if res.status != 0 or -res.fun <= 1e-7 * len(y):
        return []
    b = res.x
    return [names[k] for k in np.flatnonzero(np.abs(b) > 1e-7)]


def _column(frame: pd.DataFrame, spec: Any, what: str) -> tuple[np.ndarray, str]:
    if isinstance(spec, str):
        if spec not in frame.columns:
            raise InputError(f"no {what} column {spec!r} in the data")
        return frame[spec].to_numpy(), spec
    arr = np.asarray(spec)
    if arr.shape != (len(frame),):
        raise InputError(f"{what} must be a column name or {len(frame)} values, one per row")
    return arr, what


def logistic_regression(
    data: Any,
    outcome: str,
    covariates: Sequence[str] | None = None,
    formula: str | None = None,
    weights: str | Sequence[float] | np.ndarray | None = None,
    conf_level: float = 0.95,
    na_action: str = "omit",
) -> LogisticModel:
    """Fit a logistic regression (R ``glm(outcome ~ covariates, family = binomial, weights)``).

    ``outcome`` names a 0/1 (or boolean) column. ``covariates`` lists columns (categorical ones expanded
    against their first level, as in :func:`~allotrack.stats.cox.cox_ph`), or ``formula`` gives a right-hand
    side such as ``"arm + C(stratum)"`` (``"outcome ~ ..."`` is accepted too). ``weights`` (a column name or
    values) are R's prior weights. Rows with missing values are dropped as R's ``na.omit`` (with a warning;
    ``na_action="fail"`` raises instead). Separation raises :class:`~allotrack.errors.ModelError`.
    """
    if not 0 < conf_level < 1:
        raise InputError(f"conf_level must lie strictly between 0 and 1, not {conf_level}")
    if na_action not in ("omit", "fail"):
        raise InputError(f"na_action must be 'omit' or 'fail', not {na_action!r}")
    if isinstance(data, pd.DataFrame):
        frame = data
    elif hasattr(data, "to_pandas"):
        frame = data.to_pandas()
    else:
        frame = pd.DataFrame(dict(data))
    frame = frame.reset_index(drop=True)
    if formula is not None and "~" in formula:
        lhs, rhs = formula.split("~", 1)
        if lhs.strip() and lhs.strip().strip("`") != outcome:
            raise InputError(f"the formula's left-hand side {lhs.strip()!r} is not the outcome {outcome!r}")
        formula = rhs
    y_raw, y_name = _column(frame, outcome, "outcome")
    w_raw = None
    if weights is not None:
        w_raw, _ = _column(frame, weights, "weights")

    # rows R's na.omit would drop: outcome, covariates (formula variables) and weights
    if formula is not None:
        from formulaic import Formula

        needed = sorted(str(v) for v in Formula(formula).required_variables if str(v) in frame.columns)
    else:
        needed = [covariates] if isinstance(covariates, str) else list(covariates or [])
        needed = [c for c in needed if c in frame.columns]
    missing = pd.isna(pd.Series(y_raw)).to_numpy().copy()
    for col in needed:
        missing |= frame[col].isna().to_numpy()
    if w_raw is not None:
        missing |= pd.isna(pd.Series(w_raw)).to_numpy()
    n_dropped = int(missing.sum())
    if n_dropped:
        rows = np.flatnonzero(missing)
        if na_action == "fail":
            raise InputError(
                "missing values in the outcome, covariates or weights (na_action='fail')",
                rows=rows[:5].tolist(),
                n_bad=rows.size,
            )
        shown = ", ".join(str(r) for r in rows[:5]) + (f" and {rows.size - 5} more" if rows.size > 5 else "")
        warnings.warn(
            f"logistic_regression: {n_dropped} row(s) with missing outcome, covariate or weight values were "
            f"dropped (as R's na.omit): rows {shown}",
            UserWarning,
            stacklevel=2,
        )
        keep = ~missing
        frame = frame.loc[keep].reset_index(drop=True)
        y_raw = y_raw[keep]
        if w_raw is not None:
            w_raw = w_raw[keep]

    y_series = pd.Series(y_raw)
    if y_series.dtype == bool:
        y = y_series.to_numpy(dtype=float)
    else:
        y_num = pd.to_numeric(y_series, errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isin(y_num, (0.0, 1.0)))
        if bad.size:
            raise InputError(
                "the outcome must be coded 0/1 (or True/False)",
                column=y_name,
                rows=bad[:5].tolist(),
                values=y_series.iloc[bad[:5]].tolist(),
                n_bad=bad.size,
            )
        y = y_num
    if w_raw is None:
        w = np.ones(len(y))
    else:
        w = pd.to_numeric(pd.Series(w_raw), errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
        if bad.size:
            raise InputError(
                "weights must be finite and non-negative",
                column=weights if isinstance(weights, str) else "weights",
                rows=bad[:5].tolist(),
                values=pd.Series(w_raw).iloc[bad[:5]].tolist(),
                n_bad=bad.size,
            )
    used = w > 0
    if not used.any():
        raise InputError("every weight is zero")
    levels = np.unique(y[used])
    if levels.size < 2:
        raise InputError(
            f"the outcome is constant (every used row is {int(levels[0])}); a logistic model needs both 0 and 1",
            column=y_name,
        )

    design = build_design(frame, covariates, formula)
    x = np.column_stack([np.ones(len(y)), design.matrix])
    names = [INTERCEPT, *design.columns]

    separated = _separation(x[used], y[used], names)
    if separated:
        raise ModelError(
            f"the outcome is separated (complete or quasi-complete separation) by {separated}: some combination "
            "of these terms predicts it perfectly, so the maximum-likelihood estimates do not exist (R: "
            "'fitted probabilities numerically 0 or 1 occurred', huge coefficients and standard errors). Use a "
            "penalised (Firth) or exact logistic regression, or merge sparse categories"
        )

    coef, var, mu, dev, iterations, converged = _irls(x, y, w)
    if not converged:
        warnings.warn(
            f"logistic_regression: IRLS did not converge in {iterations} iterations (R glm.fit's rule)",
            ConvergenceWarning,
            stacklevel=2,
        )
    se = np.sqrt(np.diag(var))
    zval = coef / se
    pval = 2 * norm.sf(np.abs(zval))
    zq = float(norm.ppf((1 + conf_level) / 2))
    wald_lower, wald_upper = coef - zq * se, coef + zq * se
    prof_lower, prof_upper = _profile_limits(x, y, w, coef, se, conf_level)

    n_ok = int(used.sum())
    mean_y = float(np.sum(w * y) / np.sum(w))
    null_dev = float(np.sum(_dev_resids(y, np.full(len(y), mean_y), w)))
    m = np.round(w)
    loglik_terms = np.where(w > 0, binom.logpmf(np.round(w * y), m, mu), 0.0)
    aic = float(-2 * np.sum(loglik_terms) + 2 * x.shape[1])

    summary = pd.DataFrame(
        {
            "term": names,
            "coef": coef,
            "se": se,
            "z": zval,
            "p": pval,
            "odds_ratio": np.exp(coef),
            "lower": np.exp(prof_lower),
            "upper": np.exp(prof_upper),
            "wald_lower": np.exp(wald_lower),
            "wald_upper": np.exp(wald_upper),
        }
    )
    return LogisticModel(
        summary=summary,
        terms=tuple(names),
        coef=coef,
        se=se,
        var=var,
        z=zval,
        p_value=pval,
        wald_lower=wald_lower,
        wald_upper=wald_upper,
        profile_lower=prof_lower,
        profile_upper=prof_upper,
        null_deviance=null_dev,
        deviance=dev,
        df_null=n_ok - 1,
        df_residual=n_ok - x.shape[1],
        aic=aic,
        n=len(y),
        n_dropped=n_dropped,
        iterations=iterations,
        converged=converged,
        conf_level=conf_level,
    )
