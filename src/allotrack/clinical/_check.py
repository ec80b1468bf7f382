"""Input checks shared by the clinical rules: every failure names the field, the value and the rule."""

from __future__ import annotations

import math
from typing import Any

from allotrack.errors import InputError


def number(field: str, value: Any, low: float | None = None, high: float | None = None, unit: str = "") -> float:
    """A finite number within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{field} must be a number{' in ' + unit if unit else ''}, got {value!r}", column=field)
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise InputError(f"{field} must be a finite number, got {value!r}", column=field)
    if low is not None and v < low:
        raise InputError(f"{field} must be ≥ {low:g}{' ' + unit if unit else ''}, got {value!r}", column=field)
    if high is not None and v > high:
        raise InputError(f"{field} must be ≤ {high:g}{' ' + unit if unit else ''}, got {value!r}", column=field)
    return v


def stage(field: str, value: Any, allowed: range) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise InputError(f"{field} must be an integer stage in {list(allowed)}, got {value!r}", column=field)
    return int(value)


def choice(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(f"{field} must be one of {allowed}, got {value!r}", column=field)
    return str(value)
