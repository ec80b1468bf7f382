"""Cox partial likelihood, score and information in O(n·p²) after one sort — R ``coxph`` (``coxfit6.c``).

Efron ties (default) as R computes them with case weights: at a death time with m tied deaths of total
weight W, for j = 0..m−1 the denominator is ``S0 − (j/m)·D0`` and each of the m terms carries weight W/m
(``reference/r-definitions.md`` §1.3). Breslow: one term with denominator S0 and weight W.

Write h_kj = (W/m)/denom_kj and a_kj = (S1 − (j/m)·D1)/denom_kj. Then
    ℓ = Σ w δ η − Σ_kj (W/m) log denom_kj
    U = Σ w δ x − Σ_i r_i c_i x_i,     c_i = Σ_{k ∋ i} Σ_j h_kj (1 − (j/m)·[i dies at k])
    I = Σ_i r_i c_i x_i x_i' − Σ_kj (W/m) a_kj a_kj'
with r_i = w_i exp(η_i). The c_i are block cumulative sums (see :mod:`allotrack.stats._risksets`), so the
second-moment sum is one X' diag(r c) X product and nothing of size n × (death times) is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allotrack.stats._risksets import RiskSets


@dataclass(frozen=True)
class TieTerms:
    """The (block, j) terms of the Efron/Breslow sums, fixed for a data set."""

    block: np.ndarray  # block index of each term
    frac: np.ndarray  # j/m (0 for Breslow)
    coef: np.ndarray  # W/m (W for Breslow)
    death_weight_x: np.ndarray  # Σ w δ x over all deaths (p)


@dataclass(frozen=True)
class Derivatives:
    loglik: float
    score: np.ndarray
    information: np.ndarray
    risk: np.ndarray  # r_i = w exp(eta), sorted order
    h: np.ndarray  # per term hazard increment (W/m)/denom
    a: np.ndarray  # per term weighted mean of x (terms × p)


def tie_terms(rs: RiskSets, x: np.ndarray, ties: str) -> TieTerms:
    db = rs.death_block
    w_death = rs.weight[rs.death_pos]
    m = np.bincount(db, minlength=rs.n_blocks)
    wsum = np.bincount(db, weights=w_death, minlength=rs.n_blocks)
    dwx = (w_death[:, None] * x[rs.death_pos]).sum(axis=0) if rs.death_pos.size else np.zeros(x.shape[1])
    if ties == "breslow":
        blocks = np.arange(rs.n_blocks)
        return TieTerms(blocks, np.zeros(rs.n_blocks), wsum, dwx)
    starts = np.concatenate(([0], np.cumsum(m)[:-1]))
    j = np.arange(db.size) - starts[db]
    return TieTerms(db, j / m[db], (wsum / m)[db], dwx)


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
    dpos = rs.death_pos
    d0 = np.bincount(rs.death_block, weights=risk[dpos], minlength=rs.n_blocks)
    d1 = _block_sum(rs, rx[dpos])
    b, f = terms.block, terms.frac
    denom = s0[b] - f * d0[b]
    a = (s1[b] - f[:, None] * d1[b]) / denom[:, None]
    h = terms.coef / denom
    loglik = float(np.sum(rs.weight[dpos] * eta[dpos]) - np.sum(terms.coef * np.log(denom)))
    hk = np.bincount(b, weights=h, minlength=rs.n_blocks)
    hfk = np.bincount(b, weights=h * f, minlength=rs.n_blocks)
    c = rs.over_blocks(hk)
    c[dpos] -= hfk[rs.death_block]
    rc = risk * c
    score = terms.death_weight_x - x.T @ rc
    if need_info:
        info = (x * rc[:, None]).T @ x - (a * terms.coef[:, None]).T @ a
    else:
        info = np.zeros((x.shape[1], x.shape[1]))
    return Derivatives(loglik, score, info, risk, h, a)


def _block_sum(rs: RiskSets, rows: np.ndarray) -> np.ndarray:
    """Σ over the deaths of each block of ``rows`` (deaths are contiguous per block)."""
    if rows.shape[0] == 0:
        return np.zeros((rs.n_blocks, *rows.shape[1:]))
    starts = np.flatnonzero(np.concatenate(([True], rs.death_block[1:] != rs.death_block[:-1])))
    return np.add.reduceat(rows, starts, axis=0)


def score_residuals(rs: RiskSets, x: np.ndarray, terms: TieTerms, d: Derivatives) -> np.ndarray:
    """Per-subject score residuals L_i (sorted order, unweighted), R ``residuals(fit, type="score")``.

    L_i = δ_i (x_i − ā_k(i)) − e^{η_i} Σ_{k ∋ i} Σ_j h_kj (1 − (j/m)[i dies at k]) (x_i − a_kj),
    with ā_k the average of a_kj over the m Efron terms of block k. Σ w_i L_i = U.
    """
    b, f = terms.block, terms.frac
    expeta = d.risk / rs.weight
    hk = np.bincount(b, weights=d.h, minlength=rs.n_blocks)
    hfk = np.bincount(b, weights=d.h * f, minlength=rs.n_blocks)
    ha = d.h[:, None] * d.a
    gk = _sum_by(b, ha, rs.n_blocks)
    gfk = _sum_by(b, f[:, None] * ha, rs.n_blocks)
    c = rs.over_blocks(hk)
    g = rs.over_blocks(gk)
    dpos = rs.death_pos
    c[dpos] -= hfk[rs.death_block]
    g[dpos] -= gfk[rs.death_block]
    resid = -expeta[:, None] * (x * c[:, None] - g)
    counts = np.bincount(b, minlength=rs.n_blocks).astype(float)
    abar = _sum_by(b, d.a, rs.n_blocks) / np.maximum(counts, 1)[:, None]
    resid[dpos] += x[dpos] - abar[rs.death_block]
    return resid


def _sum_by(index: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """Row sums per index value; ``index`` is sorted and holds every value 0..size-1 (each block has terms)."""
    if index.size == 0:
        return np.zeros((size, rows.shape[1]))
    starts = np.flatnonzero(np.concatenate(([True], index[1:] != index[:-1])))
    return np.add.reduceat(rows, starts, axis=0)
