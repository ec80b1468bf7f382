"""Number formatting, following gtsummary exactly (``style_pvalue``, ``style_percent``, ``style_ratio``)
with cards' ``round5`` rounding: half away from zero with a sqrt(eps) fuzz, not Python's half-to-even.
"""

from __future__ import annotations

import math

_FUZZ = math.sqrt(2.220446049250313e-16)


def round5(x: float, digits: int = 0) -> float:
    """cards::round5: ``trunc(|x|·10^d + 0.5 + sqrt(eps)) / 10^d · sign(x)``."""
    if math.isnan(x):
        return x
    scale = 10.0**digits
    return math.copysign(math.trunc(abs(x) * scale + 0.5 + _FUZZ) / scale, x)


def _fixed(x: float, digits: int) -> str:
    return f"{round5(x, digits):.{digits}f}"


def format_pvalue(p: float, digits: int = 1, prepend_p: bool = False) -> str:
    """gtsummary ``style_pvalue(p, digits=1)``: ">0.9", 1 decimal from 0.2, 2 decimals from 0.1,
    3 decimals from 0.001, "<0.001" below; ``digits=2`` gives ">0.99", 2 decimals from 0.1 and 3 below.
    ``prepend_p`` gives "p=0.042" / "p<0.001" as ggsurvfit's plot label."""
    if p is None or math.isnan(p) or p < 0 or p > 1:
        raise ValueError(f"a p-value must lie in [0, 1], not {p!r}")
    if digits == 1:
        if p > 0.9:
            text = ">0.9"
        elif round5(p, 1) >= 0.2:
            text = _fixed(p, 1)
        elif round5(p, 2) >= 0.1:
            text = _fixed(p, 2)
        elif p >= 0.001:
            text = _fixed(p, 3)
        else:
            text = "<0.001"
    elif digits == 2:
        if p > 0.99:
            text = ">0.99"
        elif round5(p, 2) >= 0.1:
            text = _fixed(p, 2)
        elif p >= 0.001:
            text = _fixed(p, 3)
        else:
            text = "<0.001"
    else:
        raise ValueError("digits must be 1 or 2 (gtsummary style_pvalue)")
    if prepend_p:
        return f"p{text}" if text[0] in "<>" else f"p={text}"
    return text


def format_ratio(x: float) -> str:
    """gtsummary ``style_ratio(digits=2)``: 2 significant figures below 1, 3 above (0.85, 1.23, 12.3)."""
    if math.isnan(x):
        return "NA"
    if abs(round5(x, 2)) < 1:
        return _fixed(x, 2)
    decimals = max(0, 2 - math.floor(math.log10(abs(x))))
    return _fixed(x, decimals)


def format_percent(fraction: float) -> str:
    """gtsummary ``style_percent`` (input a proportion 0–1): 0 decimals from 10 %, 1 decimal from 0.1 %,
    "<0.1" above 0, "0" at 0. A negative fraction (a risk difference) is its size so formatted after a minus
    sign ("−3.7"; ">−0.1" just below 0)."""
    pct = fraction * 100
    if pct == 0:
        return "0"
    if pct < 0:
        size = format_percent(-fraction)
        return ">−0.1" if size == "<0.1" else f"−{size}"
    if round5(pct, 0) >= 10:
        return _fixed(pct, 0)
    if pct >= 0.1:
        return _fixed(pct, 1)
    return "<0.1"
