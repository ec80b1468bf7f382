"""Fine–Gray subdistribution-hazard regression, reproducing R ``cmprsk::crr`` in linear time.

Model (Fine & Gray, JASA 1999;94:496–509; ``reference/r-definitions.md`` §1.8–2): at each distinct time t_k of
the cause of interest (d_k failures), the risk set holds everyone with T ≥ t_k (weight 1) and everyone who
failed from a competing cause before t_k, with weight ``w_jk = G(t_k−)/G(T_j−)``; G is the Kaplan–Meier of
censoring (events stay in its risk set at tied times, as ``survfit``), left-continuous, per censoring group
(``cengroup``), and 0 beyond the group's last time. Breslow ties:
``ℓ(β) = Σ_k [Σ_{i fails at t_k} x_iβ − d_k log S0_k]``, ``S0_k = Σ_{j ∈ R_k} w_jk exp(x_jβ)``.

Linear-time computation (after one sort): ``S0_k`` and ``S1_k`` are reverse cumulative sums over T ≥ t_k plus
``G(t_k−)`` times forward cumulative sums of ``exp(xβ)/G(T_j−)`` over earlier competing failures; every
second-moment sum collapses to one ``X' diag(e·c) X`` product with per-subject coefficients ``c_j`` built by
cumulative sums over failure times. The sandwich variance ``H⁻¹ Σ (η_i + ψ_i)(η_i + ψ_i)' H⁻¹`` (no n/(n−1)),
including ψ for the estimated censoring distribution with ``q(u) = C1(u)·D0(u) − C0(u)·D1(u)``, is assembled
from the same sums. Memory O(n·p); nothing of size n × (failure times) is formed.

With ``cluster`` (correlated observations, e.g. matched sets) the variance is the cluster-robust sandwich of
Zhou, Fine, Latouche & Labopin (Biometrics 2012;68:1–19; R ``crrSC::crrc``): ``H⁻¹ Σ_c u_c u_c' H⁻¹`` with
``u_c = Σ_{i ∈ c} (η_i + ψ_i)``, the same per-subject terms (crrc's ``crrvvoo`` keeps ψ and one censoring
distribution G, no n/(n−1)-type factor); singleton clusters give crr's variance. The estimate is unchanged.
crrc handles one censoring group only; with ``cengroup`` the per-group ψ terms are summed by cluster alike.

Newton–Raphson from β = 0 with Armijo backtracking (c = 1e-4, halving up to 20 times) as ``crr``; converged
when ``max_j |U_j|·max(|β_j|, 1) < gtol·max(|ℓ|, 1)``. ``gtol`` defaults to 1e-9 (crr: 1e-6 with 10
iterations, which can stop visibly short of the maximum); ``crr(gtol=1e-12)`` is the reference in the tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from allotrack.errors import ConvergenceWarning, InputError, ModelError
from allotrack.stats import _input
from allotrack.stats._design import Design, build_design, new_rows
from allotrack.stats._events import cause_array, resolve_cause
from allotrack.stats.results import Result, TestResult

__all__ = ["FineGrayModel", "fine_gray"]


@dataclass(frozen=True)
class _Data:
    """Sorted arrays and the index structures that do not depend on β."""

    time: np.ndarray
    fail: np.ndarray  # bool: failure from the cause of interest
    compete: np.ndarray  # bool: failure from another cause
    censored: np.ndarray  # bool
    cg: np.ndarray  # censoring group code
    n_groups: int
    uft: np.ndarray  # distinct failure times of the cause of interest
    d: np.ndarray  # failures at each uft
    first_at_risk: np.ndarray  # per uft: first sorted position with T >= t_k
    fail_pos_block: np.ndarray  # per sorted subject: number of uft <= T (k index + 1 of the last t_k <= T)
    g_left_at_uft: np.ndarray  # (groups, K): G_g(t_k−)
    g_left_own: np.ndarray  # per subject: G_{g_i}(T_i−)
    comp_before: np.ndarray  # (groups, K): number of competing failures in g with T < t_k (positions in comp order)
    comp_index: list[np.ndarray]  # per group: sorted positions of its competing failures


def _censoring_km(time: np.ndarray, censored: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct times, at-risk counts and KM of censoring (failures stay at risk at tied times)."""
    first = np.flatnonzero(np.concatenate(([True], time[1:] != time[:-1])))
    ut = time[first]
    n_risk = (time.size - first).astype(float)
    n_cens = np.add.reduceat(censored.astype(float), first)
    return ut, n_risk, np.cumprod(1 - n_cens / n_risk)


def _g_left(ut: np.ndarray, surv: np.ndarray, t: np.ndarray, last: float) -> np.ndarray:
    """G(t−) (approx(..., xout = t(1 − 100 eps), method = "constant")); 0 beyond the group's last time."""
    before = np.concatenate(([1.0], surv))
    out = before[np.searchsorted(ut, t, side="left")]
    out[t > last] = 0.0
    return out


def _prepare(time: np.ndarray, codes: np.ndarray, fail_code: int, cg: np.ndarray, n_groups: int) -> tuple:
    order = np.argsort(time, kind="stable")
    t = time[order]
    c = codes[order]
    g = cg[order]
    fail = c == fail_code
    censored = c == 0
    compete = ~fail & ~censored
    uft, d = np.unique(t[fail], return_counts=True)
    first_at_risk = np.searchsorted(t, uft, side="left")
    fail_pos_block = np.searchsorted(uft, t, side="right")
    g_left_at_uft = np.zeros((n_groups, uft.size))
    g_left_own = np.zeros(t.size)
    comp_before = np.zeros((n_groups, uft.size), dtype=np.intp)
    comp_index = []
    for k in range(n_groups):
        rows = np.flatnonzero(g == k)
        ut, _, surv = _censoring_km(t[rows], censored[rows])
        last = float(t[rows][-1]) if rows.size else -np.inf
        g_left_at_uft[k] = _g_left(ut, surv, uft, last)
        g_left_own[rows] = _g_left(ut, surv, t[rows], last)
        comp = rows[compete[rows]]
        comp_index.append(comp)
        comp_before[k] = np.searchsorted(t[comp], uft, side="left")
    data = _Data(
        time=t, fail=fail, compete=compete, censored=censored, cg=g, n_groups=n_groups, uft=uft,
        d=d.astype(float), first_at_risk=first_at_risk, fail_pos_block=fail_pos_block,
        g_left_at_uft=g_left_at_uft, g_left_own=g_left_own, comp_before=comp_before, comp_index=comp_index,
    )  # fmt: skip
    return order, data


@dataclass(frozen=True)
class _Sums:
    loglik: float
    score: np.ndarray
    hessian: np.ndarray  # −(information)
    e: np.ndarray
    s0: np.ndarray
    xbar: np.ndarray  # S1/S0 per failure time
    c: np.ndarray  # per subject Σ over failure times whose risk set holds it of w·d/S0
    gx: np.ndarray  # per subject Σ of w·d·x̄/S0 over the same failure times


def _tail(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Σ_{j >= i} values[j] for i in index (i = n gives 0)."""
    rev = np.cumsum(values[::-1], axis=0)
    n = values.shape[0]
    out = rev[np.clip(n - 1 - index, 0, None)]
    out[index >= n] = 0
    return out


def _head(values: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Σ of the first ``count`` entries of values (count = 0 gives 0)."""
    cum = np.concatenate((np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)))
    return cum[count]


def _sums(data: _Data, x: np.ndarray, beta: np.ndarray, need_second: bool = True) -> _Sums:
    eta = x @ beta
    e = np.exp(eta)
    ex = e[:, None] * x
    s0 = _tail(e, data.first_at_risk)
    s1 = _tail(ex, data.first_at_risk)
    for k, comp in enumerate(data.comp_index):
        if comp.size == 0:
            continue
        inv_g = 1.0 / data.g_left_own[comp]
        gk = data.g_left_at_uft[k]
        s0 += gk * _head(e[comp] * inv_g, data.comp_before[k])
        s1 += gk[:, None] * _head(ex[comp] * inv_g[:, None], data.comp_before[k])
    xbar = s1 / s0[:, None]
    dk = data.d
    loglik = float(eta[data.fail].sum() - np.sum(dk * np.log(s0)))
    if not need_second:  # a line-search trial needs the likelihood only
        return _Sums(loglik, np.zeros(x.shape[1]), np.zeros((x.shape[1], x.shape[1])), e, s0, xbar, e, xbar)
    # per-subject coefficients over failure times k whose risk set holds the subject
    h = dk / s0  # d_k / S0_k
    cum_h = np.concatenate(([0.0], np.cumsum(h)))
    cum_hx = np.concatenate((np.zeros((1, x.shape[1])), np.cumsum(h[:, None] * xbar, axis=0)))
    kpos = data.fail_pos_block  # failures with t_k <= T_i
    c = cum_h[kpos]
    gx = cum_hx[kpos]
    for k, comp in enumerate(data.comp_index):
        if comp.size == 0:
            continue
        hg = h * data.g_left_at_uft[k]  # failures after T_j, weighted by G(t_k−)
        tail_h = np.concatenate((np.cumsum(hg[::-1])[::-1], [0.0]))
        tail_hx = np.concatenate((np.cumsum((hg[:, None] * xbar)[::-1], axis=0)[::-1], np.zeros((1, x.shape[1]))))
        inv_g = 1.0 / data.g_left_own[comp]
        c[comp] += tail_h[kpos[comp]] * inv_g
        gx[comp] += tail_hx[kpos[comp]] * inv_g[:, None]
    ec = e * c
    score = x[data.fail].sum(axis=0) - x.T @ ec
    if need_second:
        hess = -((x * ec[:, None]).T @ x - (xbar * dk[:, None]).T @ xbar)
    else:
        hess = np.zeros((x.shape[1], x.shape[1]))
    return _Sums(loglik, score, hess, e, s0, xbar, c, gx)


def _sandwich(data: _Data, x: np.ndarray, sums: _Sums, cluster: np.ndarray | None = None) -> np.ndarray:
    """Σ_i (η_i + ψ_i)(η_i + ψ_i)' of crr (``crrvv``), in O(n·p) per censoring group; with ``cluster`` (codes
    0..C−1 in sorted order) Σ_c u_c u_c' with u_c = Σ_{i ∈ c} (η_i + ψ_i) (crrSC ``crrvvoo``)."""
    e, xbar, s0 = sums.e, sums.xbar, sums.s0
    kpos = data.fail_pos_block
    # η_i: δ1_i (x_i − x̄(T_i)) − e_i (c_i x_i − gx_i)
    eta_res = -(e[:, None] * (sums.c[:, None] * x - sums.gx))
    fail_k = kpos[data.fail] - 1
    eta_res[data.fail] += x[data.fail] - xbar[fail_k]
    psi = np.zeros_like(x)
    h = data.d / s0
    # ψ_i = I(censored at u_i) q_g(u_i)/π_g(u_i) − Σ_{censorings u ≤ T_i in g} q_g(u)/π_g(u)², with g the
    # censoring group of i, π_g(u) = #{T ≥ u in g} and q_g(u) = C1_g(u)·D0_g(u) − C0_g(u)·D1_g(u) built from
    # the competing failures of group g only (only their weights depend on G_g)
    for g, comp in enumerate(data.comp_index):
        rows = np.flatnonzero(data.cg == g)
        cens = rows[data.censored[rows]]
        if cens.size == 0:
            continue
        t_rows = data.time[rows]
        u, first = np.unique(data.time[cens], return_index=True)
        n_c = np.diff(np.append(first, cens.size)).astype(float)
        pi = (rows.size - np.searchsorted(t_rows, u, side="left")).astype(float)
        inv_g = 1.0 / data.g_left_own[comp]
        n_before = np.searchsorted(data.time[comp], u, side="left")  # competing with T_j < u
        c0 = _head(e[comp] * inv_g, n_before)
        c1 = _head(e[comp][:, None] * x[comp] * inv_g[:, None], n_before)
        hg = h * data.g_left_at_uft[g]
        k_from = np.searchsorted(data.uft, u, side="left")  # failures with t_k >= u
        d0 = _tail(hg, k_from)
        d1 = _tail(hg[:, None] * xbar, k_from)
        q = c1 * d0[:, None] - c0[:, None] * d1
        comp_cum = np.concatenate((np.zeros((1, x.shape[1])), np.cumsum(q * (n_c / pi**2)[:, None], axis=0)))
        psi[rows] -= comp_cum[np.searchsorted(u, t_rows, side="right")]
        at = np.searchsorted(u, data.time[cens], side="left")
        psi[cens] += q[at] / pi[at][:, None]
    total = eta_res + psi
    if cluster is not None:
        by_cluster = np.zeros((int(cluster.max()) + 1, x.shape[1]))
        np.add.at(by_cluster, cluster, total)
        total = by_cluster
    return total.T @ total


@dataclass(frozen=True, repr=False)
class FineGrayModel(Result):
    """A fitted Fine–Gray model. ``summary`` by term: coef, shr, se, z, p, shr_lower, shr_upper."""

    summary: pd.DataFrame
    coef: np.ndarray
    var: np.ndarray
    loglik: float
    loglik_null: float
    n: int
    n_events: int
    n_competing: int
    cause: Any
    iterations: int
    converged: bool
    conf_level: float
    n_clusters: int | None  # clusters of the cluster-robust variance (crrSC crrc); None: crr's sandwich
    baseline: pd.DataFrame  # time, hazard jump (crr's uftime, bfitj on the uncentred covariates)
    _design: Design = field(repr=False)
    _means: np.ndarray = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        return self.summary.copy()

    def __repr__(self) -> str:
        with pd.option_context("display.width", 120, "display.precision", 4):
            return (
                f"<FineGrayModel: cause {self.cause!r}, n={self.n}, events={self.n_events}, "
                f"competing={self.n_competing}"
                + ("" if self.n_clusters is None else f", clusters={self.n_clusters}")
                + f"; pseudo log-likelihood {self.loglik_null:.4f} -> {self.loglik:.4f}>"
                f"\n{self.summary}"
            )

    def wald_test(self) -> TestResult:
        """Global Wald test of all coefficients with the sandwich variance (cluster-robust with a ``cluster``)."""
        stat = float(self.coef @ np.linalg.solve(self.var, self.coef))
        return TestResult("wald", stat, self.coef.size, float(chi2.sf(stat, self.coef.size)))

    def predict_cif(self, newdata: Any, times: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
        """Predicted cumulative incidence ``1 − exp(−exp(zβ) Σ_{t_k ≤ t} bfitj_k)`` (R ``predict.crr``) for
        each row of ``newdata``, at ``times`` (default: the failure times)."""
        z = new_rows(self._design, newdata if isinstance(newdata, pd.DataFrame) else pd.DataFrame(newdata))
        jumps = self.baseline["hazard"].to_numpy()
        cum = np.cumsum(jumps)
        grid = self.baseline["time"].to_numpy()
        req = grid if times is None else np.sort(np.atleast_1d(np.asarray(times, dtype=float)))
        idx = np.searchsorted(grid, req, side="right") - 1
        base = np.where(idx >= 0, cum[np.maximum(idx, 0)], 0.0)
        rows = []
        for i in range(z.shape[0]):
            risk = float(np.exp(z[i] @ self.coef))
            rows.append(pd.DataFrame({"row": i, "time": req, "cif": 1 - np.exp(-risk * base)}))
        return pd.concat(rows, ignore_index=True)


def fine_gray(
    data: Any = None,
    time: _input.ColumnSpec = "time",
    event: _input.ColumnSpec = "event",
    covariates: Sequence[str] | None = None,
    formula: str | None = None,
    cause: Any = 1,
    censor: Any = 0,
    cengroup: _input.ColumnSpec | None = None,
    conf_level: float = 0.95,
    gtol: float = 1e-9,
    max_iter: int = 100,
    cluster: _input.ColumnSpec | None = None,
) -> FineGrayModel:
    """Fit the Fine–Gray model for ``cause`` (R ``crr(ftime, fstatus, cov1, failcode = cause, cengroup)``).

    With ``cluster`` (e.g. matched sets) ``var``, the standard errors, z, p, confidence limits and the Wald test
    use the cluster-robust variance of R ``crrSC::crrc(..., cluster)``; the coefficients are crr's."""
    if not 0 < conf_level < 1:
        raise InputError(f"conf_level must lie strictly between 0 and 1, not {conf_level!r}")
    t = _input.time_array(data, time, "time")
    codes, causes = cause_array(data, event, censor)
    n = _input.n_rows({"time": t, "event": codes})
    col = _input.column_name(event, "event")
    if not causes:
        raise InputError(f"no events: every row has the censoring value {censor!r}", column=col)
    fail_code = resolve_cause(cause, causes, col)
    if cengroup is None:
        cg, n_groups = np.zeros(n, dtype=np.intp), 1
    else:
        cg, glabels = _input.group_array(data, cengroup, "cengroup")
        n_groups = len(glabels)
    ccode: np.ndarray | None = None
    n_clusters: int | None = None
    if cluster is not None:
        ccode, clabels = _input.group_array(data, cluster, "cluster")
        _input.n_rows({"time": t, "cluster": ccode})
        n_clusters = len(clabels)
    design = build_design(data, covariates, formula)
    means = design.matrix.mean(axis=0)
    order, prepared = _prepare(t, codes, fail_code, cg, n_groups)
    p = len(design.columns)
    x = np.empty((n, p), order="F")
    for j in range(p):
        x[:, j] = design.matrix[order, j] - means[j]
    beta = np.zeros(p)
    current = _sums(prepared, x, beta)
    null_loglik = current.loglik
    converged = False
    it = 0
    for it in range(max_iter + 1):
        if np.max(np.abs(current.score) * np.maximum(np.abs(beta), 1)) < max(abs(current.loglik), 1) * gtol:
            converged = True
            break
        if it == max_iter:
            break
        try:
            step = -np.linalg.solve(current.hessian, current.score)
        except np.linalg.LinAlgError as err:
            raise ModelError("the information matrix is singular (collinear covariates or no information)") from err
        decrement = float(step @ current.score)  # Newton decrement: the predicted gain in ℓ
        if decrement < 1e-20 * max(abs(current.loglik), 1):  # already at the maximum to machine precision
            converged = True
            break
        halvings = 0
        trial = _sums(prepared, x, beta + step)  # usually accepted at once: then it is the next iterate
        # Armijo: accept when −ℓ decreases by at least 1e-4 × the predicted decrease
        while not np.isfinite(trial.loglik) or trial.loglik < current.loglik + 1e-4 * float(step @ current.score):
            halvings += 1
            if halvings > 20:
                break
            step = step * 0.5
            trial = _sums(prepared, x, beta + step, need_second=False)
        if halvings > 20:
            # no step improves ℓ: converged if the predicted gain is below floating-point resolution of ℓ
            converged = decrement < 1e-12 * max(abs(current.loglik), 1)
            break
        beta = beta + step
        current = trial if halvings == 0 else _sums(prepared, x, beta)
    if not converged:
        warnings.warn(f"Fine–Gray fit did not converge in {max_iter} iterations", ConvergenceWarning, stacklevel=2)
    info = -current.hessian
    try:
        inv_info = np.linalg.inv(info)
    except np.linalg.LinAlgError as err:
        raise ModelError("the information matrix is singular at the estimate") from err
    var = inv_info @ _sandwich(prepared, x, current, None if ccode is None else ccode[order]) @ inv_info
    se = np.sqrt(np.diag(var))
    zq = norm.ppf(1 - (1 - conf_level) / 2)
    with np.errstate(over="ignore"):
        zval = beta / se
        summary = pd.DataFrame(
            {"coef": beta, "shr": np.exp(beta), "se": se, "z": zval, "p": 2 * norm.sf(np.abs(zval)),
             "shr_lower": np.exp(beta - zq * se), "shr_upper": np.exp(beta + zq * se)},
            index=pd.Index(design.columns, name="term"),
        )  # fmt: skip
    shift = float(np.exp(-(means @ beta)))  # baseline on the uncentred covariates, as crr's bfitj
    baseline = pd.DataFrame({"time": prepared.uft, "hazard": prepared.d / current.s0 * shift})
    return FineGrayModel(
        summary=summary, coef=beta, var=var, loglik=current.loglik, loglik_null=null_loglik, n=n,
        n_events=int(prepared.fail.sum()), n_competing=int(prepared.compete.sum()), cause=causes[fail_code - 1],
        iterations=it, converged=converged, conf_level=conf_level, n_clusters=n_clusters, baseline=baseline,
        _design=design, _means=means,
    )  # fmt: skip
