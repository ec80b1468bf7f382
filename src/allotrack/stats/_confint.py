"""Pointwise confidence intervals for a survival probability, exactly as R ``survival:::survfit_confint``.

``logse`` is the standard error of the cumulative hazard (-log S), as survfit stores it.
Undefined limits are NaN, as R gives NA: ``log`` at S = 0, ``log-log`` at S = 0 or 1.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

CONF_TYPES = ("log", "log-log", "plain")


def check_conf(conf_type: str, conf_level: float) -> None:
    from allotrack.errors import InputError

    if conf_type not in CONF_TYPES:
        raise InputError(f"conf_type must be one of {CONF_TYPES}, not {conf_type!r}")
    if not 0 < conf_level < 1:
        raise InputError(f"conf_level must lie strictly between 0 and 1, not {conf_level!r}")


def survival_confint(
    surv: np.ndarray, logse: np.ndarray, conf_type: str, conf_level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper limits for ``surv`` given the SE of -log(surv)."""
    z = norm.ppf(1 - (1 - conf_level) / 2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            half = z * logse * surv
            lower = np.maximum(surv - half, 0.0)
            upper = np.minimum(surv + half, 1.0)
        elif conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            lower = np.exp(np.log(xx) - z * logse)
            upper = np.minimum(np.exp(np.log(xx) + z * logse), 1.0)
        else:  # log-log
            xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
            shift = z * logse / np.log(xx)
            lower = np.exp(-np.exp(np.log(-np.log(xx)) - shift))
            upper = np.exp(-np.exp(np.log(-np.log(xx)) + shift))
    return lower, upper
