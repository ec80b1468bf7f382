"""Shared test helpers: the committed R reference values and the data sets R used."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REFERENCE_DIR = Path(__file__).parent / "reference"
RTOL = 1e-6


@cache
def reference(name: str = "survival_reference") -> dict[str, Any]:
    return json.loads((REFERENCE_DIR / f"{name}.json").read_text())


@cache
def _dataset(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / "data" / f"{name}.csv")


def dataset(name: str) -> pd.DataFrame:
    return _dataset(name).copy()


def as_float(values: Any) -> np.ndarray:
    """JSON null (R NA) becomes NaN."""
    arr = np.atleast_1d(np.asarray(values, dtype=object))
    return np.array([np.nan if v is None else float(v) for v in arr], dtype=float)


def assert_close(actual: Any, expected: Any, rtol: float = RTOL, atol: float = 1e-12, what: str = "") -> None:
    """Relative agreement with R; NA in R must be NaN here (and only there)."""
    a = np.atleast_1d(np.asarray(actual, dtype=float))
    e = as_float(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def strip_stratum(label: str) -> str:
    """R strata labels look like 'sex=1'; allotrack's group column holds the level itself."""
    return label.split("=", 1)[1] if "=" in label else label
