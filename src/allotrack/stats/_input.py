"""Turn user input (a DataFrame, a mapping of columns, or arrays) into validated numpy arrays.

Every check raises :class:`allotrack.errors.InputError` naming the column, the first offending row positions,
their values and the rule. Nothing here modifies the caller's data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from allotrack.errors import InputError

ColumnSpec = str | Sequence[Any] | np.ndarray | pd.Series

__all__ = [
    "ColumnSpec",
    "column_name",
    "event_array",
    "group_array",
    "n_rows",
    "raw_column",
    "time_array",
    "weight_array",
]


def column_name(spec: ColumnSpec | None, default: str) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, pd.Series) and spec.name is not None:
        return str(spec.name)
    return default


def raw_column(data: Any, spec: ColumnSpec, role: str) -> np.ndarray:
    """Fetch ``spec`` (a column name in ``data``, or an array) as a 1-d numpy array (no copy of user memory
    is ever written to)."""
    if isinstance(spec, str):
        if data is None:
            raise InputError(f"'{spec}' names a column but no data were given", column=spec)
        if isinstance(data, pd.DataFrame):
            if spec not in data.columns:
                raise InputError(f"no column '{spec}' for {role} (columns: {list(data.columns)[:20]})")
            return data[spec].to_numpy()
        if hasattr(data, "get_column"):  # polars DataFrame
            if spec not in data.columns:
                raise InputError(f"no column '{spec}' for {role}")
            return np.asarray(data.get_column(spec).to_numpy())
        if isinstance(data, Mapping):
            if spec not in data:
                raise InputError(f"no column '{spec}' for {role} (keys: {list(data)[:20]})")
            return np.asarray(data[spec])
        raise InputError(f"data must be a DataFrame or a mapping of columns, not {type(data).__name__}")
    arr = spec.to_numpy() if isinstance(spec, pd.Series) else np.asarray(spec)
    if arr.ndim != 1:
        raise InputError(f"{role} must be one-dimensional, got shape {arr.shape}")
    return arr


def n_rows(arrays: Mapping[str, np.ndarray]) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"columns have different lengths: {lengths}")
    return next(iter(lengths.values()))


def _bad(col: str, mask: np.ndarray, values: np.ndarray, rule: str) -> InputError:
    rows = np.flatnonzero(mask)
    return InputError(rule, column=col, rows=rows[:5].tolist(), values=values[rows[:5]].tolist(), n_bad=rows.size)


def _as_float(arr: np.ndarray, col: str, role: str) -> np.ndarray:
    if arr.dtype == bool or arr.dtype.kind in "iuf":
        return arr.astype(float, copy=False)
    if arr.dtype.kind == "M" or arr.dtype.kind == "m":
        raise InputError(
            f"{role} must be numbers (e.g. days), not dates or durations; derive times with allotrack.endpoints",
            column=col,
        )
    converted = pd.to_numeric(pd.Series(arr), errors="coerce").to_numpy(dtype=float)
    not_numeric = np.isnan(converted) & ~pd.isna(pd.Series(arr)).to_numpy()
    if not_numeric.any():
        raise _bad(col, not_numeric, arr, f"{role} must be numeric")
    return converted


def time_array(data: Any, spec: ColumnSpec, role: str = "time", *, allow_negative: bool = False) -> np.ndarray:
    """Non-missing, finite, non-negative float times."""
    col = column_name(spec, role)
    arr = _as_float(raw_column(data, spec, role), col, role)
    missing = np.isnan(arr)
    if missing.any():
        raise _bad(col, missing, arr, f"{role} must not be missing")
    infinite = ~np.isfinite(arr)
    if infinite.any():
        raise _bad(col, infinite, arr, f"{role} must be finite")
    if not allow_negative:
        negative = arr < 0
        if negative.any():
            raise _bad(col, negative, arr, f"{role} must be non-negative")
    return arr


def event_array(data: Any, spec: ColumnSpec, role: str = "event") -> np.ndarray:
    """Event indicator coded 0 = censored, 1 = event (booleans accepted); returned as float 0.0/1.0."""
    col = column_name(spec, role)
    raw = raw_column(data, spec, role)
    arr = _as_float(raw, col, role)
    missing = np.isnan(arr)
    if missing.any():
        raise _bad(col, missing, arr, f"{role} must not be missing")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        raise _bad(col, bad, arr, f"{role} must be coded 0 (censored) or 1 (event)")
    return arr


def weight_array(data: Any, spec: ColumnSpec | None, n: int) -> np.ndarray:
    """Case weights: finite and > 0 (R ``coxph`` rule). ``None`` gives unit weights."""
    if spec is None:
        return np.ones(n)
    col = column_name(spec, "weights")
    arr = _as_float(raw_column(data, spec, "weights"), col, "weights")
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        raise _bad(col, bad, arr, "weights must be finite and greater than 0")
    return arr


def group_array(data: Any, spec: ColumnSpec, role: str) -> tuple[np.ndarray, list[Any]]:
    """Integer codes 0..k-1 and the sorted labels of a grouping column; missing labels are an error."""
    col = column_name(spec, role)
    raw = raw_column(data, spec, role)
    series = pd.Series(raw)
    missing = series.isna().to_numpy()
    if missing.any():
        raise _bad(col, missing, raw, f"{role} must not be missing (code unknown values explicitly)")
    if isinstance(series.dtype, pd.CategoricalDtype):
        cats = series.cat.remove_unused_categories()
        return cats.cat.codes.to_numpy().astype(np.intp), list(cats.cat.categories)
    codes, labels = pd.factorize(series, sort=True)
    return codes.astype(np.intp), list(labels)
