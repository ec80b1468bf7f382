"""Covariate balance between treated and control units, before and after matching or weighting, with the
definitions of MatchIt 4.x ``summary(m, un = TRUE)`` (``MatchIt:::bal1var``, ``qqsum``, ``wvar``, ``pooled_sd``).

Covariates become columns as MatchIt's ``get.covs.matrix`` makes them: a numeric column as it is, a categorical
(pandas ``Categorical`` in its category order without unused categories, or strings in sorted order) as one 0/1
column per level named ``variable + level`` (``"raceblack"``), a boolean column as 0/1. A column whose values are
all 0 or 1 is *binary*. For a column ``x``, treatment indicator ``t``, matching weights ``w`` (all 1 before
matching) and the full-sample standardisation:

* **means** — weighted means ``Σ w x / Σ w`` in each group;
* **standardised mean difference** (``Std. Mean Diff.``, ``standardize = TRUE``) — the weighted mean difference
  (treated − control) divided by the standard deviation of the **full, unmatched** sample of the treated group
  for the ATT (``sd_denominator="treated"``; ``"control"`` for the ATC; ``"pooled"``: the root of the mean of the
  two group variances). Variances are ``wvar``: for a binary column ``p(1 − p)`` (no n − 1), else the unbiased
  sample variance. If that SD is not finite or below ``sqrt(machine eps)`` the pooled SD of ``pooled_sd``
  (``contribution = "proportional"``) is used instead. If ``|difference| <= sqrt(eps)`` the raw difference is
  reported (as MatchIt does);
* **variance ratio** (``Var. Ratio``) — treated over control weighted variance ``Σ w̃ (x − x̄)² / (1 − Σ w̃²)`` with
  ``w̃ = w / Σ w``; not defined (NaN) for binary columns;
* **eCDF mean / max** — with the weights normalised to sum to 1 in each group, the absolute difference of the two
  weighted empirical CDFs evaluated at every distinct value of ``x`` in the **whole** sample (units with weight 0
  after matching still contribute their value as an evaluation point, as in MatchIt); mean and maximum over those
  points. For a binary column both equal ``|difference in means|``.

If fewer than two units in each group have non-zero weight, the SMD, variance ratio and eCDF statistics of a
non-binary column are NaN (MatchIt's ``too.small``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from allotrack.errors import InputError
from allotrack.stats.results import Result

__all__ = ["STATISTICS", "BalanceTable", "balance_table", "covariate_matrix"]

STATISTICS = ("means_treated", "means_control", "smd", "var_ratio", "ecdf_mean", "ecdf_max")
_SQRT_EPS = float(np.sqrt(np.finfo(float).eps))


@dataclass(frozen=True, repr=False)
class BalanceTable(Result):
    """Balance statistics per covariate column (``term``), before and (if weights were given) after matching.

    ``before`` and ``after`` are indexed by term with the columns of :data:`STATISTICS` (MatchIt ``sum.all`` and
    ``sum.matched``: Means Treated, Means Control, Std. Mean Diff., Var. Ratio, eCDF Mean, eCDF Max). ``variables``
    and ``levels`` give, per term, the data column and the factor level (``None`` for a numeric column; the
    propensity score's term is ``"distance"``). :meth:`to_frame` stacks both samples with a ``sample`` column
    (``"before"`` / ``"after"``)."""

    before: pd.DataFrame
    after: pd.DataFrame | None
    variables: tuple[str, ...]
    levels: tuple[str | None, ...]
    sd_denominator: str

    def to_frame(self) -> pd.DataFrame:
        parts = []
        for name, table in (("before", self.before), ("after", self.after)):
            if table is None:
                continue
            part = table.reset_index()
            part.insert(1, "variable", list(self.variables))
            part.insert(2, "level", list(self.levels))
            part.insert(3, "sample", name)
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    def __repr__(self) -> str:
        with pd.option_context("display.width", 140, "display.precision", 4, "display.max_rows", 60):
            text = f"<BalanceTable: SMD denominator {self.sd_denominator}>\nbefore:\n{self.before}"
            if self.after is not None:
                text += f"\nafter:\n{self.after}"
            return text


# ---- data -----------------------------------------------------------------------------------------------------
def as_frame(data: Any) -> pd.DataFrame:
    """A pandas view of ``data`` (DataFrame, polars DataFrame, or a mapping of columns), index reset."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif hasattr(data, "to_pandas"):
        frame = data.to_pandas()
    elif isinstance(data, Mapping):
        frame = pd.DataFrame(dict(data))
    else:
        raise InputError(f"data must be a DataFrame or a mapping of columns, not {type(data).__name__}")
    return frame.reset_index(drop=True)


def treatment_indicator(frame: pd.DataFrame, spec: Any) -> tuple[np.ndarray, str]:
    """The treatment column as booleans: 0/1 (or True/False), no missing values, both groups present."""
    if isinstance(spec, str):
        if spec not in frame.columns:
            raise InputError(f"no treatment column {spec!r} in the data (columns: {list(frame.columns)[:20]})")
        raw, name = frame[spec].to_numpy(), spec
    else:
        raw, name = np.asarray(spec), "treatment"
        if raw.shape != (len(frame),):
            raise InputError(f"the treatment must be a column name or {len(frame)} values, one per row")
    series = pd.Series(raw)
    if series.dtype == bool:
        values = series.to_numpy(dtype=float)
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isin(values, (0.0, 1.0)))
    if bad.size:
        raise InputError(
            "the treatment must be coded 1 (treated) / 0 (control) or True/False, with no missing values",
            column=name,
            rows=bad[:5].tolist(),
            values=series.iloc[bad[:5]].tolist(),
            n_bad=bad.size,
        )
    treated = values == 1.0
    if treated.all() or not treated.any():
        raise InputError(f"every row is {'treated' if treated.all() else 'a control'}; both groups are needed",
                         column=name)  # fmt: skip
    return treated, name


def covariate_matrix(frame: pd.DataFrame, covariates: Sequence[str]) -> tuple[np.ndarray, list[str], list[str], list]:
    """MatchIt's ``get.covs.matrix``: numeric columns as they are, one 0/1 column per level of a categorical.
    Returns the matrix, the term names, and per term its variable and level (``None`` for numeric)."""
    columns: list[np.ndarray] = []
    terms: list[str] = []
    variables: list[str] = []
    levels: list[str | None] = []
    for col in covariates:
        if col not in frame.columns:
            raise InputError(f"no covariate column {col!r} in the data (columns: {list(frame.columns)[:20]})")
        series = frame[col]
        missing = series.isna().to_numpy()
        if missing.any():
            rows = np.flatnonzero(missing)
            raise InputError("covariates must not be missing (drop or impute these rows explicitly)", column=col,
                             rows=rows[:5].tolist(), n_bad=rows.size)  # fmt: skip
        if series.dtype == bool:
            columns.append(series.to_numpy(dtype=float))
            terms.append(col)
            variables.append(col)
            levels.append(None)
        elif series.dtype.kind in "iuf":
            values = series.to_numpy(dtype=float)
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise InputError("covariates must be finite", column=col, rows=bad[:5].tolist(),
                                 values=values[bad[:5]].tolist(), n_bad=bad.size)  # fmt: skip
            columns.append(values)
            terms.append(col)
            variables.append(col)
            levels.append(None)
        else:
            if isinstance(series.dtype, pd.CategoricalDtype):
                cat = series.cat.remove_unused_categories()
            else:
                cat = series.astype(str).astype("category")  # R factor(): sorted levels
            for level in cat.cat.categories:
                columns.append((cat == level).to_numpy(dtype=float))
                terms.append(f"{col}{level}")
                variables.append(col)
                levels.append(str(level))
    matrix = np.column_stack(columns) if columns else np.empty((len(frame), 0))
    return matrix, terms, variables, levels


def numeric_array(frame: pd.DataFrame, spec: Any, role: str, non_negative: bool = True) -> np.ndarray:
    """A column name or one value per row, as finite floats (non-negative unless told otherwise)."""
    if isinstance(spec, str):
        if spec not in frame.columns:
            raise InputError(f"no {role} column {spec!r} in the data")
        raw, name = frame[spec].to_numpy(), spec
    else:
        raw, name = np.asarray(spec), role
        if raw.shape != (len(frame),):
            raise InputError(f"{role} must be a column name or {len(frame)} values, one per row")
    values = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=float, copy=True)
    bad = np.flatnonzero(~np.isfinite(values) | ((values < 0) if non_negative else False))
    if bad.size:
        rule = f"{role} must be finite and non-negative" if non_negative else f"{role} must be finite numbers"
        raise InputError(rule, column=name, rows=bad[:5].tolist(),
                         values=pd.Series(raw).iloc[bad[:5]].tolist(), n_bad=bad.size)  # fmt: skip
    return values


# ---- MatchIt's statistics -------------------------------------------------------------------------------------
def _wvar(x: np.ndarray, binary: bool, w: np.ndarray) -> float:
    """MatchIt ``wvar``: p(1 − p) for a binary column, else Σ w̃ (x − x̄)² / (1 − Σ w̃²) with w̃ = w / Σ w."""
    with np.errstate(invalid="ignore", divide="ignore"):
        wn = w / w.sum()
        mx = float(np.sum(wn * x))
        if binary:
            return mx * (1.0 - mx)
        return float(np.sum(wn * (x - mx) ** 2) / (1.0 - np.sum(wn**2)))


def _pooled_sd_proportional(x: np.ndarray, treated: np.ndarray, binary: bool) -> float:
    """MatchIt ``pooled_sd(x, t, w = s.weights, contribution = "proportional")`` with unit sampling weights."""
    n = x.size
    if binary:
        total = 0.0
        for grp in (treated, ~treated):
            sx = float(x[grp].sum())
            total += sx * (1.0 - sx / grp.sum()) / n
        return float(np.sqrt(total))
    centred = x.copy()
    for grp in (treated, ~treated):
        centred[grp] = x[grp] - x[grp].mean()
    wn = np.full(n, 1.0 / n)
    return float(np.sqrt(np.sum(wn * centred**2) / (1.0 - np.sum(wn**2))))


def _denominator(x: np.ndarray, treated: np.ndarray, binary: bool, how: str) -> float:
    ones1 = np.ones(int(treated.sum()))
    ones0 = np.ones(int((~treated).sum()))
    if how == "treated":
        std = np.sqrt(_wvar(x[treated], binary, ones1))
    elif how == "control":
        std = np.sqrt(_wvar(x[~treated], binary, ones0))
    else:  # pooled, each group contributing equally
        std = np.sqrt((_wvar(x[treated], binary, ones1) + _wvar(x[~treated], binary, ones0)) / 2.0)
    if not np.isfinite(std) or std < _SQRT_EPS:
        std = _pooled_sd_proportional(x, treated, binary)
    return float(std)


def _ecdf_stats(x: np.ndarray, treated: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """MatchIt ``qqsum(standardize = TRUE)``: weights normalised within each group; |difference of the weighted
    eCDFs| at every distinct value of x (the last of each run of ties after a stable sort); mean and max."""
    wn = w.astype(float).copy()
    for grp in (treated, ~treated):
        wn[grp] = wn[grp] / wn[grp].sum()
    order = np.argsort(x, kind="stable")
    x_ord = x[order]
    signed = wn[order]
    first_group = treated[order[0]]
    signed = np.where(treated[order] == first_group, -signed, signed)
    cum = np.abs(np.cumsum(signed))
    at = np.append(np.diff(x_ord) != 0, True)
    diffs = cum[at]
    return float(diffs.mean()), float(diffs.max())


def _bal1var(x: np.ndarray, treated: np.ndarray, w: np.ndarray | None, how: str) -> list[float]:
    """One row of MatchIt's balance table (``bal1var`` with unit sampling weights, ``standardize = TRUE``)."""
    ww = np.ones(x.size) if w is None else w
    binary = bool(np.all((x == 0) | (x == 1)))
    w1, w0 = ww[treated], ww[~treated]
    x1, x0 = x[treated], x[~treated]
    too_small = np.count_nonzero(w1) < 2 and np.count_nonzero(w0) < 2
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = float(np.sum(x1 * w1) / np.sum(w1))
        m0 = float(np.sum(x0 * w0) / np.sum(w0))
    mdiff = m1 - m0
    smd = var_ratio = ecdf_mean = ecdf_max = np.nan
    if abs(mdiff) > _SQRT_EPS:
        if not too_small:
            smd = mdiff / _denominator(x, treated, binary, how)
    else:
        smd = mdiff
    if binary:
        ecdf_mean = ecdf_max = abs(mdiff)
    elif not too_small:
        with np.errstate(invalid="ignore", divide="ignore"):
            var_ratio = _wvar(x1, False, w1) / _wvar(x0, False, w0)
        ecdf_mean, ecdf_max = _ecdf_stats(x, treated, ww)
    return [m1, m0, smd, var_ratio, ecdf_mean, ecdf_max]


def balance_statistics(
    matrix: np.ndarray, terms: Sequence[str], treated: np.ndarray, weights: np.ndarray | None, how: str = "treated"
) -> pd.DataFrame:
    """The balance table of the columns of ``matrix`` (one row per term; :data:`STATISTICS`)."""
    rows = [_bal1var(matrix[:, j], treated, weights, how) for j in range(matrix.shape[1])]
    table = pd.DataFrame(rows, columns=list(STATISTICS), index=pd.Index(list(terms), name="term"))
    return table


def balance_from_arrays(
    matrix: np.ndarray,
    terms: Sequence[str],
    variables: Sequence[str],
    levels: Sequence[str | None],
    treated: np.ndarray,
    weights: np.ndarray | None,
    distance: np.ndarray | None = None,
    sd_denominator: str = "treated",
) -> BalanceTable:
    """Balance of prepared columns (``distance``, if given, becomes the first row, ``"distance"``)."""
    if sd_denominator not in ("treated", "control", "pooled"):
        raise InputError(f"sd_denominator must be 'treated', 'control' or 'pooled', not {sd_denominator!r}")
    terms, variables, levels = list(terms), list(variables), list(levels)
    if distance is not None:
        matrix = np.column_stack([distance, matrix])
        terms, variables, levels = ["distance", *terms], ["distance", *variables], [None, *levels]
    if weights is not None:
        if not (weights[treated] > 0).any() or not (weights[~treated] > 0).any():
            raise InputError("the weights leave no treated or no control unit with a positive weight")
    before = balance_statistics(matrix, terms, treated, None, sd_denominator)
    after = None if weights is None else balance_statistics(matrix, terms, treated, weights, sd_denominator)
    return BalanceTable(before=before, after=after, variables=tuple(variables), levels=tuple(levels),
                        sd_denominator=sd_denominator)  # fmt: skip


def balance_table(
    data: Any,
    treatment: Any = None,
    covariates: Sequence[str] | str | None = None,
    weights: Any = None,
    distance: Any = None,
    sd_denominator: str = "treated",
    *,
    treat: Any = None,
) -> BalanceTable:
    """Covariate balance before and (with ``weights``) after matching, as MatchIt's ``summary(m, un = TRUE)``.

    ``treatment`` (or its alias ``treat``) names a 0/1 or boolean column (or gives the values). ``covariates``
    lists columns (categoricals get one row per level). ``weights`` (a column name or values, e.g. a
    :class:`~allotrack.design.matching.MatchResult`'s ``weights``) are the matching weights; without them only
    the unweighted (``before``) table is made. ``distance`` (a column name or values, e.g. a propensity score)
    adds a first row ``"distance"``. ``sd_denominator`` is ``"treated"`` (ATT, MatchIt's default for nearest-
    neighbour matching), ``"control"`` (ATC) or ``"pooled"`` (ATE). The definitions are in the module docstring.
    """
    frame = as_frame(data)
    spec = _treatment_spec(treatment, treat)
    treated, _ = treatment_indicator(frame, spec)
    if covariates is None:
        raise InputError("name the covariates whose balance is wanted")
    covs = [covariates] if isinstance(covariates, str) else list(covariates)
    matrix, terms, variables, levels = covariate_matrix(frame, covs)
    w = None if weights is None else numeric_array(frame, weights, "weights")
    dist = None if distance is None else numeric_array(frame, distance, "distance", non_negative=False)
    return balance_from_arrays(matrix, terms, variables, levels, treated, w, dist, sd_denominator)


def _treatment_spec(treatment: Any, treat: Any) -> Any:
    if treatment is None and treat is None:
        raise InputError("name the treatment column (treatment=... or treat=...)")
    if treatment is not None and treat is not None and not (isinstance(treatment, str) and treatment == treat):
        raise InputError("give the treatment column once: treatment=... or its alias treat=..., not both")
    return treatment if treatment is not None else treat
