"""Cox partial likelihood, score and information in O(n·p²) after one sort — R ``coxph`` (``coxfit6.c``).

Efron ties (default) as R computes them with case weights: at a death time with m tied deaths of total
weight W, for j = 0..m−1 the denominator is ``S0 − (j/m)·D0`` and each of the m terms carries weight W/m
(``reference/r-definitions.md`` §1.3). Breslow, and any death time without ties: one term with
denominator S0 and weight W.

Write h_kj = (W/m)/denom_kj and a_kj = (S1 − (j/m)·D1)/denom_kj. Then
    ℓ = Σ w δ η − Σ_kj (W/m) log denom_kj
    U = Σ w δ x − Σ_i r_i c_i x_i,     c_i = Σ_{k ∋ i} Σ_j h_kj (1 − (j/m)·[i dies at k])
    I = Σ_i r_i c_i x_i x_i' − Σ_kj (W/m) a_kj a_kj'
with r_i = w_i exp(η_i). The c_i are block cumulative sums (see :mod:`allotrack.stats._risksets`), so the
second-moment sum is one X' diag(r c) X product and nothing of size n × (death times) is built. Death
times without ties (the bulk of continuous data) are handled per block; only tied blocks are expanded
into their m Efron terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allotrack.stats._risksets import RiskSets


@dataclass(frozen=True)
class TieTerms:
    """How each death block enters the likelihood; fixed for a data set."""

    weight: np.ndarray  # W per block (total death weight)
    single: np.ndarray  # bool per block: one term with denominator S0 (Breslow, or a single death)
    # expanded Efron terms of the tied blocks (sorted by block)
    tblock: np.ndarray
    tfrac: np.ndarray
    tcoef: np.ndarray
    tied_deaths: np.ndarray  # sorted positions of the deaths in tied blocks
    tied_death_block: np.ndarray
    death_weight_x: np.ndarray  # Σ w δ x


@dataclass(frozen=True)
class Terms:
    """All (block, j) terms in block order, with their hazard increments and weighted means."""

    block: np.ndarray
    frac: np.ndarray
    coef: np.ndarray
    h: np.ndarray
    a: np.ndarray


@dataclass(frozen=True)
class Derivatives:
    loglik: float
    score: np.ndarray
    information: np.ndarray
    risk: np.ndarray  # r_i = w exp(eta), sorted order
    s0: np.ndarray
    a_block: np.ndarray  # S1/S0 per block
    tdenom: np.ndarray  # denominators of the expanded terms
    a_terms: np.ndarray  # weighted means of the expanded terms


def tie_terms(rs: RiskSets, x: np.ndarray, ties: str) -> TieTerms:
    db = rs.death_block
    m = np.bincount(db, minlength=rs.n_blocks)
    wsum = np.bincount(db, weights=rs.weight[rs.death_pos], minlength=rs.n_blocks)
    dwx = x.T @ (rs.weight * rs.event)
    single = np.ones(rs.n_blocks, dtype=bool) if ties == "breslow" else m == 1
    tied = ~single[db]  # deaths in tied blocks
    tdb = db[tied]
    starts = np.concatenate(([0], np.cumsum(m)[:-1]))
    j = np.arange(db.size)[tied] - starts[tdb]
    return TieTerms(
        weight=wsum,
        single=single,
        tblock=tdb,
        tfrac=j / m[tdb],
        tcoef=(wsum / m)[tdb],
        tied_deaths=rs.death_pos[tied],
        tied_death_block=tdb,
        death_weight_x=dwx,
    )


def derivatives(rs: RiskSets, x: np.ndarray, beta: np.ndarray, terms: TieTerms, need_info: bool = True) -> Derivatives:
    """Log partial likelihood, score and information at ``beta`` (x sorted as ``rs``).

    Overflow far out on a diverging path gives non-finite values, which the Newton loop treats as a failed
    step (R's step-halving), so no floating-point warning is raised here.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
        return _derivatives(rs, x, beta, terms, need_info)


def _derivatives(rs: RiskSets, x: np.ndarray, beta: np.ndarray, terms: TieTerms, need_info: bool) -> Derivatives:
    eta = x @ beta
    risk = rs.weight * np.exp(eta)
    rx = risk[:, None] * x
    s0 = rs.risk_sum(risk)
    s1 = rs.risk_sum(rx)
    a_block = s1 / s0[:, None]
    single = terms.single
    w_single = np.where(single, terms.weight, 0.0)
    hk = np.where(single, terms.weight / s0, 0.0)
    log_sum = float(np.sum(w_single[single] * np.log(s0[single])))
    tb, tf = terms.tblock, terms.tfrac
    if tb.size:
        d0 = np.bincount(terms.tied_death_block, weights=risk[terms.tied_deaths], minlength=rs.n_blocks)
        d1 = np.zeros((rs.n_blocks, x.shape[1]))
        np.add.at(d1, terms.tied_death_block, rx[terms.tied_deaths])
        tdenom = s0[tb] - tf * d0[tb]
        a_terms = (s1[tb] - tf[:, None] * d1[tb]) / tdenom[:, None]
        th = terms.tcoef / tdenom
        hk += np.bincount(tb, weights=th, minlength=rs.n_blocks)
        hfk = np.bincount(tb, weights=th * tf, minlength=rs.n_blocks)
        log_sum += float(np.sum(terms.tcoef * np.log(tdenom)))
    else:
        tdenom = np.zeros(0)
        a_terms = np.zeros((0, x.shape[1]))
        hfk = None
    dpos = rs.death_pos
    loglik = float(np.sum(rs.weight[dpos] * eta[dpos])) - log_sum
    c = rs.over_blocks(hk)
    if hfk is not None:
        c[dpos] -= hfk[rs.death_block]
    rc = risk * c
    score = terms.death_weight_x - x.T @ rc
    if need_info:
        info = (x * rc[:, None]).T @ x - (a_block * w_single[:, None]).T @ a_block
        if tb.size:
            info -= (a_terms * terms.tcoef[:, None]).T @ a_terms
    else:
        info = np.zeros((x.shape[1], x.shape[1]))
    return Derivatives(loglik, score, info, risk, s0, a_block, tdenom, a_terms)


def expand_terms(terms: TieTerms, d: Derivatives) -> Terms:
    """Every (block, j) term in block order — for residuals, the PH test and predictions (not the hot loop)."""
    single = np.flatnonzero(terms.single)
    block = np.concatenate((single, terms.tblock))
    frac = np.concatenate((np.zeros(single.size), terms.tfrac))
    coef = np.concatenate((terms.weight[single], terms.tcoef))
    denom = np.concatenate((d.s0[single], d.tdenom))
    a = np.concatenate((d.a_block[single], d.a_terms))
    order = np.argsort(block, kind="stable")
    return Terms(block[order], frac[order], coef[order], (coef / denom)[order], a[order])


def score_residuals(rs: RiskSets, x: np.ndarray, terms: TieTerms, d: Derivatives) -> np.ndarray:
    """Per-subject score residuals L_i (sorted order, unweighted), R ``residuals(fit, type="score")``.

    L_i = δ_i (x_i − ā_k(i)) − e^{η_i} Σ_{k ∋ i} Σ_j h_kj (1 − (j/m)[i dies at k]) (x_i − a_kj),
    with ā_k the average of a_kj over the m Efron terms of block k. Σ w_i L_i = U.
    """
    t = expand_terms(terms, d)
    b, f = t.block, t.frac
    expeta = d.risk / rs.weight
    hk = np.bincount(b, weights=t.h, minlength=rs.n_blocks)
    hfk = np.bincount(b, weights=t.h * f, minlength=rs.n_blocks)
    ha = t.h[:, None] * t.a
    gk = sum_by_block(b, ha, rs.n_blocks)
    gfk = sum_by_block(b, f[:, None] * ha, rs.n_blocks)
    c = rs.over_blocks(hk)
    g = rs.over_blocks(gk)
    dpos = rs.death_pos
    c[dpos] -= hfk[rs.death_block]
    g[dpos] -= gfk[rs.death_block]
    resid = -expeta[:, None] * (x * c[:, None] - g)
    counts = np.bincount(b, minlength=rs.n_blocks).astype(float)
    abar = sum_by_block(b, t.a, rs.n_blocks) / np.maximum(counts, 1)[:, None]
    resid[dpos] += x[dpos] - abar[rs.death_block]
    return resid


def sum_by_block(index: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """Row sums per block; ``index`` is sorted and holds every block 0..size-1 (each block has terms)."""
    if index.size == 0:
        return np.zeros((size, rows.shape[1]))
    starts = np.flatnonzero(np.concatenate(([True], index[1:] != index[:-1])))
    return np.add.reduceat(rows, starts, axis=0)
