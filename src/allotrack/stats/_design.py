"""Covariate design matrices: a list of columns or a Wilkinson formula (formulaic), categorical terms
expanded against their first level as R's treatment contrasts do; checks for missing values, constant and
collinear columns. Returns the matrix with its column names and the columns of each term."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from allotrack.errors import InputError, ModelError


@dataclass(frozen=True)
class Design:
    matrix: np.ndarray
    columns: list[str]
    terms: dict[str, list[int]]  # term name -> column indices
    spec: Any  # formulaic ModelSpec to code new data; None for plain numeric covariates


def _frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    if data is None:
        raise InputError("covariates or a formula need data with the covariate columns")
    return pd.DataFrame(dict(data))


def build_design(data: Any, covariates: Sequence[str] | None, formula: str | None) -> Design:
    if (covariates is None) == (formula is None):
        raise InputError("give either covariates (a list of column names) or a formula, not both or neither")
    frame = _frame(data)
    if formula is None:
        assert covariates is not None
        if isinstance(covariates, str):
            covariates = [covariates]
        missing_cols = [c for c in covariates if c not in frame.columns]
        if missing_cols:
            raise InputError(f"no column(s) {missing_cols} for covariates")
        if all(frame[c].dtype.kind in "fiu" for c in covariates):
            return _numeric_design(frame, list(covariates))
        formula = " + ".join(f"`{c}`" for c in covariates)
    from formulaic import Formula, model_matrix  # slow attribute access: only on the formula path

    rhs = formula.split("~", 1)[1] if "~" in formula else formula
    needed = sorted(str(v) for v in Formula(rhs).required_variables if str(v) in frame.columns)
    for col in needed:
        miss = frame[col].isna().to_numpy()
        if miss.any():
            rows = np.flatnonzero(miss)
            raise InputError(
                "covariates must not be missing (drop or impute these rows explicitly)",
                column=col,
                rows=rows[:5].tolist(),
                n_bad=rows.size,
            )
    mm = model_matrix(rhs, frame, na_action="raise")
    spec = mm.model_spec
    names = list(mm.columns)
    x = mm.to_numpy(dtype=float)
    keep = [i for i, name in enumerate(names) if name != "Intercept"]
    index_map = {old: new for new, old in enumerate(keep)}
    terms: dict[str, list[int]] = {}
    for term, idx in spec.term_indices.items():
        cols = [index_map[i] for i in idx if i in index_map]
        if cols:
            terms[str(term)] = cols
    design = Design(x[:, keep], [names[i] for i in keep], terms, spec)
    check_rank(design.matrix, design.columns)
    return design


def _numeric_design(frame: pd.DataFrame, covariates: list[str]) -> Design:
    """Numeric columns only: stack them directly (no formula parsing), one term per column."""
    x = np.empty((len(frame), len(covariates)), order="F")
    for j, c in enumerate(covariates):
        x[:, j] = frame[c].to_numpy(dtype=float)
    bad = np.isnan(x)
    if bad.any():
        col = int(np.flatnonzero(bad.any(axis=0))[0])
        rows = np.flatnonzero(bad[:, col])
        raise InputError(
            "covariates must not be missing (drop or impute these rows explicitly)",
            column=covariates[col],
            rows=rows[:5].tolist(),
            n_bad=rows.size,
        )
    design = Design(x, covariates, {c: [j] for j, c in enumerate(covariates)}, None)  # numeric: no coding
    check_rank(design.matrix, design.columns)
    return design


def new_rows(design: Design, newdata: Any) -> np.ndarray:
    """Design rows for new covariate values, coded as in the fit."""
    frame = _frame(newdata)
    if design.spec is None:  # numeric covariates taken as they are
        missing = [c for c in design.columns if c not in frame.columns]
        if missing:
            raise InputError(f"newdata lacks the covariate column(s) {missing}")
        return frame[design.columns].to_numpy(dtype=float)
    mm = design.spec.get_model_matrix(frame, na_action="raise")
    return mm[design.columns].to_numpy(dtype=float)


def check_rank(x: np.ndarray, names: list[str], tol: float = 1e-9) -> None:
    """Raise ModelError naming constant columns and columns that are linear combinations of earlier ones."""
    if x.shape[1] == 0:
        raise ModelError("the model has no covariates")
    n = x.shape[0]
    mean = x.mean(axis=0)
    gram = x.T @ x - n * np.outer(mean, mean)  # centred cross-products, one BLAS pass
    var = np.diag(gram).copy()
    scale_ref = np.maximum(1.0, np.abs(mean)) ** 2 * n
    const = [names[j] for j in np.flatnonzero(var <= tol * scale_ref)]
    if const:
        raise ModelError(f"covariate column(s) {const} are constant; a Cox model cannot estimate their effect")
    sd = np.sqrt(var)
    gram = gram / np.outer(sd, sd)
    kept: list[int] = []
    for j in range(x.shape[1]):
        if kept:
            g = gram[np.ix_(kept, kept)]
            v = gram[kept, j]
            resid = 1.0 - v @ np.linalg.solve(g, v)
        else:
            resid = 1.0
        if resid < tol:
            raise ModelError(
                f"covariate column '{names[j]}' is a linear combination of {[names[k] for k in kept]} "
                "(collinear covariates); drop one of them"
            )
        kept.append(j)
