"""Matched controls: greedy nearest-neighbour matching with the semantics of MatchIt 4.x
``matchit(method = "nearest")`` (Ho, Imai, King & Stuart 2011; MatchIt's ``?method_nearest``), for the ATT.

* **distance** — ``"glm"``: the propensity score of a logistic regression of the treatment on the covariates
  (R ``glm(family = binomial)``, fitted by R's IRLS; categorical covariates coded against their first level),
  the fitted probability per unit; a column name: a score supplied by the user, used like a propensity score;
  ``"mahalanobis"``: MatchIt's Mahalanobis distance (categoricals as one column per level divided by √2, columns
  standardised, the pooled within-group covariance with divisor n − 2, a Moore–Penrose inverse when it is
  singular); ``"euclidean"``: the Euclidean distance on the same columns, unscaled.
* **order** (``m_order``) — treated units are matched one at a time: ``"largest"`` propensity score first
  (MatchIt's default for a score), ``"smallest"`` first, ``"data"`` order (the only deterministic choice without a
  score) or ``"random"`` (a permutation from ``numpy.random.default_rng(seed)``; R's random numbers are not
  reproduced). Ties in the score keep data order (R's ``order`` is stable).
* **ratio** — with ``ratio = k`` every treated unit gets its first control, then (a second round, in the same
  order) its second, and so on, as MatchIt does. Variable ratio (``max_ratio``, MatchIt's ``max.controls``, with
  ``min_ratio`` its ``min.controls``): ``m = round(ratio · n₁)`` controls in all, allocated by MatchIt's rule:
  ``kmax = ⌊(m − min·(n₁ − 1)) / (max − min)⌋`` treated units get ``max`` controls, ``n₁ − kmax − 1`` get ``min``
  and one gets the rest (a 0 becomes 1, taken from the next unit); the treated units with the most extreme scores
  (furthest from the controls' mean) get the fewest.
* **eligible controls** for a treated unit — not used yet (without replacement), not already in its set, in the
  same stratum of every ``exact`` column, and within every caliper (``|difference| <= width``). The nearest
  eligible control is taken; among equally near controls the first in data order (``which_min``). With
  ``replace=True`` each treated unit takes its ``ratio`` nearest eligible controls (all of them, nearest first, if
  there are no more).
* **caliper** — a number: the width on the distance in standard deviations of the score (``std_caliper=True``,
  MatchIt's default; the SD of all units, n − 1 divisor) or in score units (``std_caliper=False``); a mapping
  ``{"age": 10}``: widths in the columns' own units (MatchIt's ``caliper = c(age = 10), std.caliper = FALSE``; a
  mapping ``std_caliper={"age": True}`` makes one a multiple of the column's SD); the key ``"distance"`` in the
  mapping is the score's caliper. A caliper on a categorical or two-valued column is refused, as in MatchIt.
* **weights** (MatchIt ``weights.matrix``) — a matched treated unit has weight 1; a control gets ``1/kᵢ`` from each
  treated unit ``i`` it is matched to (``kᵢ`` controls in that set), summed over sets (with replacement a control can
  be in several), and the control weights are rescaled to add up to the number of matched controls. Unmatched
  units have weight 0.

Differences from MatchIt, none affecting which units are matched to whom: sets are numbered in data order of
their treated unit (MatchIt's ``subclass`` labels follow the lexical order of the treated units' row numbers);
with replacement a set lists its controls nearest first (MatchIt lists them in data order when a treated unit has
no more eligible controls than ``ratio``). MatchIt 4.5.1's fast propensity-score routine (``nn_matchC_vec``)
ignores calipers and takes wrong neighbours on some platforms (MatchIt issue #163, fixed in 4.5.4); this module
follows the intended, general routine (``nn_matchC``), and the reference values were made with it
(``tests/reference/matching_reference.R``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from allotrack.design.balance import (
    BalanceTable,
    as_frame,
    balance_from_arrays,
    covariate_matrix,
    numeric_array,
    treatment_indicator,
)
from allotrack.errors import ConvergenceWarning, InputError, ModelError
from allotrack.stats._design import check_rank
from allotrack.stats.logistic import _irls, _linkinv
from allotrack.stats.results import Result

__all__ = ["MatchResult", "match_controls"]

_ORDERS = ("largest", "smallest", "random", "data")
_SQRT_EPS = float(np.sqrt(np.finfo(float).eps))


@dataclass(frozen=True, repr=False)
class MatchResult(Result):
    """Controls matched to treated units (MatchIt ``matchit(method = "nearest")``).

    Per input row (positions 0..n−1): ``treated`` (bool), ``ids`` (the ``ids`` column, else the positions),
    ``distance`` (the propensity score, or the user's score; ``None`` for Mahalanobis/Euclidean matching),
    ``weights`` (MatchIt's matching weights) and ``set_id`` (1, 2, ... numbered in data order of the treated unit;
    0 for a unit in no set, and for every control when matching with replacement, where a control can be in
    several sets). ``treated_rows`` lists the treated rows in data order and ``match_matrix`` (one row per treated
    unit, ``max`` ratio columns) the control rows in match order, −1 where there is none (MatchIt's
    ``match.matrix``). ``caliper`` gives the widths applied in the units compared (``"distance"`` for the score).
    """

    treated: np.ndarray
    ids: np.ndarray
    distance: np.ndarray | None
    distance_kind: str
    treated_rows: np.ndarray
    match_matrix: np.ndarray
    weights: np.ndarray
    set_id: np.ndarray
    ratios: np.ndarray
    caliper: dict[str, float]
    exact: tuple[str, ...]
    replace: bool
    m_order: str
    match_order: np.ndarray  # positions in treated_rows, in the order the treated units were matched
    balance_matrix: np.ndarray = field(repr=False)
    balance_terms: tuple[str, ...] = ()
    balance_variables: tuple[str, ...] = ()
    balance_levels: tuple[str | None, ...] = ()

    # ---- views ----------------------------------------------------------------------------------------------
    @property
    def matches(self) -> dict[int, tuple[int, ...]]:
        """Treated row position → control row positions in match order (empty for an unmatched treated unit)."""
        return {
            int(t): tuple(int(c) for c in row[row >= 0])
            for t, row in zip(self.treated_rows, self.match_matrix, strict=True)
        }

    @property
    def unmatched_treated(self) -> np.ndarray:
        """Row positions of treated units that got no control."""
        return self.treated_rows[(self.match_matrix < 0).all(axis=1)]

    @property
    def unmatched_controls(self) -> np.ndarray:
        """Row positions of controls in no matched set (weight 0)."""
        return np.flatnonzero(~self.treated & (self.weights == 0))

    @property
    def n_matched(self) -> dict[str, int]:
        """MatchIt's sample sizes: matched and unmatched treated and control units."""
        matched = self.weights > 0
        return {
            "treated": int((matched & self.treated).sum()),
            "control": int((matched & ~self.treated).sum()),
            "unmatched_treated": int((~matched & self.treated).sum()),
            "unmatched_control": int((~matched & ~self.treated).sum()),
        }

    @property
    def sets(self) -> pd.DataFrame:
        """One row per set member: ``set_id``, ``row`` (position), ``id``, ``role`` ("case"/"control"), ``order``
        (0 for the case, 1.. for its controls in match order), ``weight``. A control's weights over its rows add
        up to its MatchIt weight (one row, its weight, without replacement)."""
        has = (self.match_matrix >= 0).any(axis=1)
        k = (self.match_matrix >= 0).sum(axis=1)
        ctrl_w = self.weights[~self.treated]
        raw = np.zeros(len(self.treated))
        valid = self.match_matrix >= 0
        np.add.at(raw, self.match_matrix[valid], np.broadcast_to((1.0 / np.maximum(k, 1))[:, None], valid.shape)[valid])
        raw_c = raw[~self.treated]
        scale = (ctrl_w.sum() / raw_c.sum()) if raw_c.sum() > 0 else 0.0
        set_numbers = np.cumsum(has)  # 1.. in data order of the treated unit
        case_rows = self.treated_rows[has]
        parts_row = [case_rows]
        parts_set = [set_numbers[has]]
        parts_order = [np.zeros(case_rows.size, dtype=int)]
        parts_weight = [np.ones(case_rows.size)]
        ti, cj = np.nonzero(valid)
        parts_row.append(self.match_matrix[ti, cj])
        parts_set.append(set_numbers[ti])
        parts_order.append(cj + 1)
        parts_weight.append(scale / k[ti])
        rows = np.concatenate(parts_row)
        frame = pd.DataFrame(
            {
                "set_id": np.concatenate(parts_set),
                "row": rows,
                "id": self.ids[rows],
                "role": np.where(np.concatenate(parts_order) == 0, "case", "control"),
                "order": np.concatenate(parts_order),
                "weight": np.concatenate(parts_weight),
            }
        )
        return frame.sort_values(["set_id", "order"], kind="stable").reset_index(drop=True)

    def sets_frame(self, study: str | None = None) -> pd.DataFrame:
        """The matched sets as rows of allotrack's ``matched_sets`` study-design table: ``patient_id`` (the
        ``ids``), ``study``, ``set_id`` (text), ``role`` ("case"/"control") and ``weight``. Without replacement a
        unit is in at most one set, as the table's key (patient_id, study) requires."""
        sets = self.sets
        return pd.DataFrame(
            {
                "patient_id": sets["id"].to_numpy(),
                "study": study,
                "set_id": sets["set_id"].astype(str).to_numpy(),
                "role": sets["role"].to_numpy(),
                "weight": sets["weight"].to_numpy(),
            }
        )

    def balance(self, sd_denominator: str = "treated") -> BalanceTable:
        """Balance before and after matching, MatchIt's ``summary(m, un = TRUE)`` (see
        :mod:`allotrack.design.balance`): the score (``"distance"``) first, then the covariates, exact-matching
        and caliper columns, one row per level of a categorical."""
        return balance_from_arrays(
            self.balance_matrix,
            self.balance_terms,
            self.balance_variables,
            self.balance_levels,
            self.treated,
            self.weights,
            self.distance,
            sd_denominator,
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per input row: id, treated, distance, weight, set_id (missing when in no set) and matched."""
        set_id = pd.array(np.where(self.set_id > 0, self.set_id, 0), dtype="Int64")
        set_id[self.set_id <= 0] = pd.NA
        return pd.DataFrame(
            {
                "id": self.ids,
                "treated": self.treated,
                "distance": self.distance if self.distance is not None else np.nan,
                "weight": self.weights,
                "set_id": set_id,
                "matched": self.weights > 0,
            }
        )

    def __repr__(self) -> str:
        n = self.n_matched
        cal = ", ".join(f"{k} ≤ {v:.6g}" for k, v in self.caliper.items()) or "none"
        kmax = self.match_matrix.shape[1]
        ratio = f"1:{kmax}" if (self.ratios == kmax).all() else f"1:{self.ratios.min()}-{kmax} (variable)"
        return (
            f"<MatchResult: nearest neighbour on {self.distance_kind}, {ratio}, "
            f"{'with' if self.replace else 'without'} replacement, order {self.m_order}, caliper {cal}"
            f"{', exact on ' + ', '.join(self.exact) if self.exact else ''}>\n"
            f"matched {n['treated']} treated and {n['control']} controls; unmatched {n['unmatched_treated']} treated "
            f"and {n['unmatched_control']} controls"
        )


# ---- distances --------------------------------------------------------------------------------------------------
def _propensity_score(frame: pd.DataFrame, treated: np.ndarray, covariates: list[str]) -> np.ndarray:
    """R ``glm(treat ~ covariates, family = binomial)`` fitted values (R's IRLS and convergence rule); a
    categorical covariate is coded by its levels after the first (R's treatment contrasts)."""
    matrix, terms, variables, levels = covariate_matrix(frame, covariates)
    first_level = [
        j for j, lvl in enumerate(levels) if lvl is not None and (j == 0 or variables[j - 1] != variables[j])
    ]
    keep = np.setdiff1d(np.arange(len(terms)), first_level)
    names = [terms[j] for j in keep]
    try:
        check_rank(matrix[:, keep], names)
    except ModelError as err:
        raise ModelError(f"propensity-score model: {err}") from None
    x = np.column_stack([np.ones(len(frame)), matrix[:, keep]])
    y = treated.astype(float)
    coef, _, _, _, iterations, converged = _irls(x, y, np.ones(len(y)))
    if not converged:
        warnings.warn(
            f"match_controls: the propensity-score model did not converge in {iterations} IRLS iterations",
            ConvergenceWarning,
            stacklevel=3,
        )
    # The linear predictor once per distinct covariate row: a matrix-vector product can round identical rows
    # differently (blocked BLAS kernels), and units with equal covariates must get exactly equal scores (ties
    # decide the match order, and the eCDF statistics are evaluated at the distinct values, as in R).
    rows, inverse = np.unique(x, axis=0, return_inverse=True)
    eta = (rows @ coef)[inverse.reshape(-1)]
    return np.asarray(_linkinv(eta), dtype=float)


def _distance_columns(frame: pd.DataFrame, covariates: list[str]) -> np.ndarray:
    """MatchIt ``get.covs.matrix.for.dist``: numeric columns as they are, one column per level of a categorical
    divided by √2; columns without variation are dropped."""
    matrix, _, _, levels = covariate_matrix(frame, covariates)
    is_level = np.array([lvl is not None for lvl in levels], dtype=bool)
    matrix[:, is_level] /= math.sqrt(2.0)
    varies = np.abs(matrix.max(axis=0) - matrix.min(axis=0)) >= _SQRT_EPS if matrix.size else np.array([], bool)
    if not varies.any():
        return matrix[:, :1]
    return matrix[:, varies]


def _mahalanobis_space(x: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Rows mapped so that Euclidean distances between them are MatchIt's Mahalanobis distances: standardised
    columns, the pooled within-group covariance (divisor n − 2), its inverse (a Moore–Penrose inverse, singular
    values below 1e-8 of the largest dropped, when the determinant is at most 1e-8, as MatchIt)."""
    n = x.shape[0]
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    centred = z.copy()
    for grp in (treated, ~treated):
        centred[grp] = z[grp] - z[grp].mean(axis=0)
    cov = centred.T @ centred / (n - 2)
    inv = None
    if np.linalg.det(cov) > 1e-8:
        try:
            inv = np.linalg.inv(cov)
        except np.linalg.LinAlgError:
            inv = None
    if inv is None:
        u, d, vt = np.linalg.svd(cov)
        keep = d > max(1e-8 * d[0], 0.0)
        inv = (vt[keep].T / d[keep]) @ u[:, keep].T
    inv = (inv + inv.T) / 2.0
    vals, vecs = np.linalg.eigh(inv)
    return z @ (vecs * np.sqrt(np.clip(vals, 0.0, None)))


# ---- options ------------------------------------------------------------------------------------------------------
def _variable_ratios(score: np.ndarray, treated: np.ndarray, ratio: float, lo: int, hi: int) -> np.ndarray:
    """MatchIt's allocation of controls per treated unit for variable-ratio matching (in data order of the
    treated units)."""
    n1 = int(treated.sum())
    m = round(ratio * n1)
    kmax = math.floor((m - lo * (n1 - 1)) / (hi - lo))
    kmin = n1 - kmax - 1
    kmed = m - (lo * kmin + hi * kmax)
    if kmin < 0 or kmax < 0:  # R: rep() with a negative count fails
        raise InputError(f"ratio {ratio} with min_ratio {lo} and max_ratio {hi} cannot be allocated over {n1} "
                         "treated units (MatchIt's rule needs ratio further below max_ratio)")  # fmt: skip
    r0 = np.array([lo] * kmin + [kmed] + [hi] * kmax, dtype=int)
    zero = np.flatnonzero(r0 == 0)
    r0[zero] = 1
    nxt = zero + 1
    r0[nxt[nxt < r0.size]] -= 1
    s1 = score[treated]
    decreasing = s1.mean() > score[~treated].mean()
    order = np.argsort(-s1 if decreasing else s1, kind="stable")
    out = np.empty(n1, dtype=int)
    out[order] = r0
    if (out < 1).any():
        raise InputError(f"ratio {ratio} with min_ratio {lo} and max_ratio {hi} cannot be allocated over {n1} "
                         "treated units")  # fmt: skip
    return out


def _check_ratio(ratio: float, max_ratio: int | None, min_ratio: int) -> tuple[float, int | None, int]:
    """MatchIt ``process.ratio`` for nearest-neighbour matching."""
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not math.isfinite(ratio) or ratio < 1:
        raise InputError(f"ratio must be a number of at least 1, not {ratio!r}")
    if max_ratio is None:
        if abs(ratio - round(ratio)) > 1e-8:
            raise InputError(f"ratio must be a whole number unless max_ratio is given (variable ratio), not {ratio}")
        return float(round(ratio)), None, 1
    if ratio <= 1:
        raise InputError(f"variable-ratio matching needs ratio > 1 (the mean number of controls), not {ratio}")
    hi = math.ceil(max_ratio)
    if hi <= ratio:
        raise InputError(f"max_ratio ({max_ratio}) must be greater than ratio ({ratio})")
    lo = math.floor(min_ratio)
    if lo < 1:
        raise InputError(f"min_ratio must be at least 1, not {min_ratio}")
    if lo >= ratio:
        raise InputError(f"min_ratio ({min_ratio}) must be less than ratio ({ratio})")
    return float(ratio), hi, lo


def _exact_strata(frame: pd.DataFrame, exact: list[str]) -> np.ndarray | None:
    if not exact:
        return None
    for col in exact:
        if col not in frame.columns:
            raise InputError(f"no column {col!r} for exact matching (columns: {list(frame.columns)[:20]})")
        missing = frame[col].isna().to_numpy()
        if missing.any():
            rows = np.flatnonzero(missing)
            raise InputError("exact-matching variables must not be missing", column=col, rows=rows[:5].tolist(),
                             n_bad=rows.size)  # fmt: skip
    return frame.groupby(exact, sort=True, observed=True).ngroup().to_numpy()


def _calipers(
    frame: pd.DataFrame,
    caliper: float | Mapping[str, float] | None,
    std_caliper: bool | Mapping[str, bool],
    score: np.ndarray | None,
) -> tuple[dict[str, float], list[tuple[str, np.ndarray, float]]]:
    """Widths in the units compared, and (name, values, width) per caliper (MatchIt ``process.caliper``)."""
    if caliper is None:
        return {}, []
    if isinstance(caliper, Mapping):
        spec = dict(caliper)
    elif isinstance(caliper, int | float) and not isinstance(caliper, bool):
        spec = {"distance": float(caliper)}
    else:
        raise InputError(f"caliper must be a number (the score's) or a mapping of column to width, not {caliper!r}")

    def standardise(name: str) -> bool:
        if isinstance(std_caliper, Mapping):
            return bool(std_caliper.get(name, False))
        return bool(std_caliper) and name == "distance"

    widths: dict[str, float] = {}
    out: list[tuple[str, np.ndarray, float]] = []
    for name, width in spec.items():
        if isinstance(width, bool) or not isinstance(width, int | float) or math.isnan(width) or width < 0:
            raise InputError(f"the caliper for {name!r} must be a non-negative number, not {width!r}")
        if math.isinf(width):
            continue  # MatchIt drops infinite calipers
        if name == "distance":
            if score is None:
                raise InputError(
                    "a caliper on the distance needs a propensity score (distance='glm' or a score column); "
                    "with Mahalanobis or Euclidean matching give calipers on columns, e.g. caliper={'age': 5}"
                )
            values = score
        else:
            if name not in frame.columns:
                raise InputError(f"no column {name!r} for a caliper (columns: {list(frame.columns)[:20]})")
            series = frame[name]
            if series.dtype == bool or series.dtype.kind not in "iuf":
                raise InputError("calipers cannot be used with categorical or text columns", column=name)
            values = series.to_numpy(dtype=float)
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise InputError("caliper columns must not be missing", column=name, rows=bad[:5].tolist(),
                                 values=values[bad[:5]].tolist(), n_bad=bad.size)  # fmt: skip
        n_unique = np.unique(values).size
        if n_unique <= 1:
            continue  # no variation: MatchIt drops the caliper
        if n_unique == 2:
            raise InputError("calipers cannot be used with binary (two-valued) columns",
                             column=None if name == "distance" else name)  # fmt: skip
        w = float(width) * (float(np.std(values, ddof=1)) if standardise(name) else 1.0)
        widths[name] = w
        out.append((name, values, w))
    return widths, out


# ---- the greedy match ---------------------------------------------------------------------------------------------
def _greedy(
    space: np.ndarray,
    treated: np.ndarray,
    order: np.ndarray,
    ratios: np.ndarray,
    strata: np.ndarray | None,
    calipers: list[tuple[str, np.ndarray, float]],
    replace: bool,
) -> np.ndarray:
    """The match matrix (treated in data order × max ratio; control row positions, −1 for none). ``space`` is the
    score (1-d: distance |s_c − s_t|) or rows in a Euclidean space (2-d). Every step is one vectorised pass over the
    controls: O(n_treated · n_control) per round."""
    t_rows = np.flatnonzero(treated)
    c_rows = np.flatnonzero(~treated)
    kmax = int(ratios.max())
    mm = np.full((t_rows.size, kmax), -1, dtype=np.int64)
    space_c = space[c_rows]
    strata_c = None if strata is None else strata[c_rows]
    cal_c = [(values[c_rows], values, w) for _, values, w in calipers]
    one_d = space.ndim == 1

    def eligible(t: int, base: np.ndarray | None) -> np.ndarray:
        ok = np.ones(c_rows.size, dtype=bool) if base is None else base.copy()
        if strata_c is not None and strata is not None:
            ok &= strata_c == strata[t]
        for values_c, values, w in cal_c:
            ok &= np.abs(values_c - values[t]) <= w
        return np.flatnonzero(ok)

    def distances(t: int, idx: np.ndarray) -> np.ndarray:
        if one_d:
            return np.abs(space_c[idx] - space[t])
        return np.sqrt(np.sum((space_c[idx] - space[t]) ** 2, axis=1))

    if replace:
        for a in order:
            t = t_rows[a]
            idx = eligible(t, None)
            if not idx.size:
                continue
            d = distances(t, idx)
            keep = d[np.isfinite(d)].size
            chosen = idx[np.argsort(d, kind="stable")[: min(int(ratios[a]), keep)]]
            mm[a, : chosen.size] = c_rows[chosen]
        return mm

    available = np.ones(c_rows.size, dtype=bool)
    for r in range(kmax):
        for a in order:
            if ratios[a] <= r:
                continue
            if not available.any():
                return mm
            t = t_rows[a]
            idx = eligible(t, available)
            if not idx.size:
                continue
            d = distances(t, idx)
            j = idx[int(np.argmin(d))]
            if not np.isfinite(d.min()):
                continue
            mm[a, r] = c_rows[j]
            available[j] = False
    return mm


def _weights(mm: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """MatchIt ``weights_matrixC``: treated 1; a control Σ 1/kᵢ over its sets; controls rescaled to add up to the
    number of matched controls."""
    t_rows = np.flatnonzero(treated)
    valid = mm >= 0
    k = valid.sum(axis=1)
    w = np.zeros(treated.size)
    contrib = np.broadcast_to((1.0 / np.maximum(k, 1))[:, None], mm.shape)
    np.add.at(w, mm[valid], contrib[valid])
    w[t_rows[k > 0]] = 1.0
    cw = w[~treated]
    total = cw.sum()
    if total > 0:
        w[~treated] = cw * float((cw > 0).sum()) / total
    return w


def _match_order(kind: str, score: np.ndarray | None, treated: np.ndarray, seed: int | None) -> np.ndarray:
    n1 = int(treated.sum())
    if kind == "data":
        return np.arange(n1)
    if kind == "random":
        return np.random.default_rng(seed).permutation(n1)
    assert score is not None
    s1 = score[treated]
    return np.argsort(-s1 if kind == "largest" else s1, kind="stable")


def match_controls(
    data: Any,
    treatment: Any = None,
    covariates: Sequence[str] | str | None = None,
    *,
    treat: Any = None,
    exact: str | Sequence[str] | None = None,
    distance: str = "glm",
    ratio: float = 1,
    max_ratio: int | None = None,
    min_ratio: int = 1,
    caliper: float | Mapping[str, float] | None = None,
    std_caliper: bool | Mapping[str, bool] = True,
    replace: bool = False,
    m_order: str | None = None,
    seed: int | None = None,
    ids: str | None = None,
) -> MatchResult:
    """Greedy nearest-neighbour matching of controls to treated units, as MatchIt 4.x
    ``matchit(treat ~ covariates, method = "nearest", distance, exact, caliper, std.caliper, ratio,
    min.controls, max.controls, replace, m.order)`` (ATT). The rules are in the module docstring.

    ``treatment`` (alias ``treat``) names a 0/1 or boolean column. ``covariates`` are the propensity-score model's
    (or the Mahalanobis distance's) columns, categoricals coded by level; they may be left out only when
    ``distance`` names a score column. ``exact`` names columns whose values must be equal within a set.
    ``distance`` is ``"glm"``, ``"mahalanobis"``, ``"euclidean"`` or the name of a score column. ``ratio`` controls
    per treated unit (``max_ratio``/``min_ratio`` for variable ratio with mean ``ratio``). ``caliper``: a number
    (the score's caliper, in SDs of the score when ``std_caliper``) or a mapping of column (or ``"distance"``) to a
    width in raw units. ``m_order`` defaults to ``"largest"`` with a score and ``"data"`` otherwise; ``seed`` makes
    ``"random"`` reproducible. ``ids`` names the unit identifier column (the ``patient_id`` of
    :meth:`MatchResult.sets_frame`); without it units are identified by row position.

    Raises :class:`~allotrack.errors.InputError` for bad input (naming the column and values) and
    :class:`~allotrack.errors.ModelError` when no treated unit can be matched.
    """
    frame = as_frame(data)
    if treatment is None and treat is None:
        raise InputError("name the treatment column (treatment=... or treat=...)")
    if treatment is not None and treat is not None and not (isinstance(treatment, str) and treatment == treat):
        raise InputError("give the treatment column once: treatment=... or its alias treat=..., not both")
    spec = treatment if treatment is not None else treat
    treated, treat_name = treatment_indicator(frame, spec)
    covs = [] if covariates is None else ([covariates] if isinstance(covariates, str) else list(covariates))
    if treat_name in covs:
        raise InputError(f"the treatment column {treat_name!r} cannot also be a covariate")
    exact_cols = [] if exact is None else ([exact] if isinstance(exact, str) else list(exact))
    if not isinstance(replace, bool | np.bool_):
        raise InputError(f"replace must be True or False, not {replace!r}")
    ratio_f, hi, lo = _check_ratio(ratio, max_ratio, min_ratio)

    if ids is None:
        id_values = np.arange(len(frame))
    else:
        if ids not in frame.columns:
            raise InputError(f"no id column {ids!r} in the data")
        id_values = frame[ids].to_numpy()
        dup = pd.Series(id_values).duplicated(keep=False).to_numpy()
        if dup.any() or pd.isna(id_values).any():
            rows = np.flatnonzero(dup | pd.isna(id_values))
            raise InputError("unit ids must be present and unique", column=ids, rows=rows[:5].tolist(),
                             values=id_values[rows[:5]].tolist(), n_bad=rows.size)  # fmt: skip

    # the distance
    score: np.ndarray | None = None
    if not isinstance(distance, str):
        raise InputError(f"distance must be 'glm', 'mahalanobis', 'euclidean' or a column name, not {distance!r}")
    if distance == "glm":
        if not covs:
            raise InputError("distance='glm' needs covariates for the propensity-score model")
        score = _propensity_score(frame, treated, covs)
        space = score
        kind = "propensity score (glm)"
    elif distance in ("mahalanobis", "euclidean"):
        if not covs:
            raise InputError(f"distance={distance!r} needs covariates")
        cols = _distance_columns(frame, covs)
        space = _mahalanobis_space(cols, treated) if distance == "mahalanobis" else cols
        kind = f"{distance} distance"
    elif distance in frame.columns:
        score = numeric_array(frame, distance, "distance", non_negative=False)
        space = score
        kind = f"score column {distance!r}"
    else:
        raise InputError(f"distance must be 'glm', 'mahalanobis', 'euclidean' or a column name, not {distance!r}")

    order_kind = m_order if m_order is not None else ("largest" if score is not None else "data")
    if order_kind not in _ORDERS:
        raise InputError(f"m_order must be one of {', '.join(_ORDERS)}, not {m_order!r}")
    if score is None and order_kind in ("largest", "smallest"):
        raise InputError(f"m_order={order_kind!r} needs a propensity score; use 'data' or 'random'")
    if replace:
        order_kind = "data"  # MatchIt: with unlimited reuse the order does not matter

    if hi is not None:
        if score is None:
            raise InputError("variable-ratio matching (max_ratio) needs a propensity score, as in MatchIt")
        ratios = _variable_ratios(score, treated, ratio_f, lo, hi)
    else:
        ratios = np.full(int(treated.sum()), int(ratio_f), dtype=int)

    strata = _exact_strata(frame, exact_cols)
    widths, calipers = _calipers(frame, caliper, std_caliper, score)
    order = _match_order(order_kind, score, treated, seed)

    mm = _greedy(space, treated, order, ratios, strata, calipers, bool(replace))
    if not (mm >= 0).any():
        raise ModelError(
            "no treated unit could be matched: no control is in the same exact strata and within the calipers "
            "(MatchIt: 'No units were matched')"
        )
    weights = _weights(mm, treated)

    set_id = np.zeros(len(frame), dtype=np.int64)
    t_rows = np.flatnonzero(treated)
    has = (mm >= 0).any(axis=1)
    numbers = np.cumsum(has)
    set_id[t_rows[has]] = numbers[has]
    if not replace:
        ti, cj = np.nonzero(mm >= 0)
        set_id[mm[ti, cj]] = numbers[ti]

    # balance columns as MatchIt's X: covariates, then exact and caliper columns not among them
    bal_cols = list(covs)
    for col in [*exact_cols, *(name for name, _, _ in calipers if name != "distance")]:
        if col not in bal_cols:
            bal_cols.append(col)
    bmat, bterms, bvars, blevels = covariate_matrix(frame, bal_cols)

    return MatchResult(
        treated=treated,
        ids=np.array(id_values, dtype=object),  # a copy: results hold no reference to the caller's data
        distance=score,
        distance_kind=kind,
        treated_rows=t_rows,
        match_matrix=mm,
        weights=weights,
        set_id=set_id,
        ratios=ratios,
        caliper=widths,
        exact=tuple(exact_cols),
        replace=bool(replace),
        m_order=order_kind,
        match_order=order,
        balance_matrix=bmat,
        balance_terms=tuple(bterms),
        balance_variables=tuple(bvars),
        balance_levels=tuple(blevels),
    )
