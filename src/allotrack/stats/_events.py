"""Competing-risks event columns: 0..K codes or labels with a declared censoring value."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from allotrack.errors import InputError
from allotrack.stats import _input


def cause_array(data: Any, spec: _input.ColumnSpec, censor: Any = 0) -> tuple[np.ndarray, list[Any]]:
    """Codes 0 = censored, 1..K = the K causes (sorted, as ``cmprsk::cuminc`` orders them) and the cause labels.

    Missing values are an error (a missing status is neither censored nor an event).
    """
    col = _input.column_name(spec, "event")
    raw = _input.raw_column(data, spec, "event")
    series = pd.Series(raw)
    missing = series.isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        raise InputError(
            "event status must not be missing (code censoring explicitly)", column=col,
            rows=rows[:5].tolist(), n_bad=rows.size,
        )  # fmt: skip
    if censor is None or (isinstance(censor, float) and np.isnan(censor)):
        raise InputError("the censoring value must be given (e.g. censor=0 or censor='censored')", column=col)
    is_censor = (series == censor).to_numpy()
    causes = sorted(pd.unique(series[~is_censor]).tolist(), key=_sort_key)
    lookup = {c: k + 1 for k, c in enumerate(causes)}
    codes = np.zeros(len(series), dtype=np.intp)
    codes[~is_censor] = series[~is_censor].map(lookup).to_numpy()
    return codes, causes


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float | np.integer | np.floating) else (1, str(value))


def resolve_cause(cause: Any, causes: list[Any], column: str) -> int:
    """1-based code of ``cause`` among the causes present in the data."""
    for k, c in enumerate(causes):
        if c == cause or str(c) == str(cause):
            return k + 1
    raise InputError(f"cause {cause!r} does not occur in the data (causes present: {causes})", column=column)
