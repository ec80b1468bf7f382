"""What the five studies' builders share: the study codes, id prefixes and centres, the row collector and the date
and rounding helpers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from allotrack.records.dates import DAYS_PER_MONTH
from allotrack.records.schema import TABLES, Records

STUDIES = ("older_aml", "myeloma_mst", "imak", "msc_rct", "nk_cells")
PREFIXES = {"older_aml": "AML-", "myeloma_mst": "MM-", "imak": "IMAK-", "msc_rct": "MSC-", "nk_cells": "NK-"}
CENTRES = {"older_aml": ("MST-AML",), "myeloma_mst": ("MST-MM",), "imak": ("IMAK",),
           "msc_rct": ("RCT-01", "RCT-02", "RCT-03", "RCT-04", "RCT-05"), "nk_cells": ("NK-01", "CIBMTR")}  # fmt: skip
ID_COLUMNS = ("patient_id", "donor_id", "course_id", "infusion_id")


class _Tables:
    """Rows per table (dates as ISO text, as a file would give them)."""

    def __init__(self) -> None:
        self.rows: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, table: str, **row: Any) -> None:
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}")
        self.rows[table].append(row)

    def records(self) -> Records:
        return Records.from_frames(**{name: pd.DataFrame(rows) for name, rows in self.rows.items()})


def _on(origin: date) -> Callable[[float], str]:
    """ISO date ``days`` after ``origin`` (rounded to whole days)."""
    return lambda days: (origin + timedelta(days=round(days))).isoformat()


def _day(months: float) -> int:
    return round(months * DAYS_PER_MONTH)


def _between(rng: np.random.Generator, first: date, last: date) -> date:
    """A day drawn uniformly from ``first`` … ``last``."""
    if last < first:
        raise AssertionError(f"empty date window {first} … {last}")
    return first + timedelta(days=int(rng.integers(0, (last - first).days + 1)))


def _r(value: float, digits: int = 2) -> float:
    return round(float(value), digits)
