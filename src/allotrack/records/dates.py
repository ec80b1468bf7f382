"""Date arithmetic shared by derivation and exports."""

from __future__ import annotations

import pandas as pd

DAYS_PER_MONTH = 30.4375  # 365.25 / 12: DESIGN.md's display unit for months
DAYS_PER_YEAR = 365.25
DAYS_PER_UNIT = {"days": 1.0, "months": DAYS_PER_MONTH, "years": DAYS_PER_YEAR}


def completed_years(born: pd.Series, at: pd.Series) -> pd.Series:
    """Age in completed years on each date (calendar rule: one less until the birthday is reached)."""
    b, a = pd.to_datetime(born), pd.to_datetime(at)
    before_birthday = (a.dt.month < b.dt.month) | ((a.dt.month == b.dt.month) & (a.dt.day < b.dt.day))
    return (a.dt.year - b.dt.year - before_birthday.astype("Int64")).astype("Float64")
