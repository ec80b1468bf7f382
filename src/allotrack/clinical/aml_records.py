"""ELN 2022 AML response from stored observations: each marrow examination (item ``marrow_blasts_pct``) of a
patient, with the blood counts of that time (items ``anc`` and ``plt``, 10⁹/L), handed to
:func:`allotrack.clinical.response.eln2022_response`.

- The patient's first marrow is the pre-treatment (baseline) marrow unless ``baseline`` names another date; each
  later marrow is one assessment, the baseline blast percentage serving the PR rule (blasts 5–25 % and at least
  halved).
- Counts: the value of each count nearest the marrow's date within ``count_window_days`` (3 by default; on a tie
  the earlier), as the ELN criteria read the counts "at the time of" the marrow. A marrow without both counts in
  the window is refused with its date named (a response cannot be classified without them).
- Circulating blasts, extramedullary disease and MRD status are not blood-count observations: give them per date in
  ``other`` (``{date: {"circulating_blasts": True, "mrd_negative": True}}``); they are taken as absent otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from allotrack.clinical.response import AmlResponse, eln2022_response
from allotrack.errors import InputError

__all__ = ["eln_from_observations"]


def eln_from_observations(observations: pd.DataFrame, patient_id: str, baseline: date | None = None,
                          count_window_days: int = 3, other: Mapping[date, Mapping[str, Any]] | None = None,
                          ) -> list[tuple[date, AmlResponse]]:  # fmt: skip
    """(date, ELN 2022 response) for each marrow after the baseline marrow of one patient, in date order."""
    rows = observations[(observations["patient_id"] == patient_id) & observations["date"].notna()]
    day = pd.to_datetime(rows["date"]).dt.date
    marrows = sorted(zip(day[rows["item"] == "marrow_blasts_pct"], rows.loc[rows["item"] == "marrow_blasts_pct",
                                                                              "value"], strict=True))  # fmt: skip
    if not marrows:
        return []
    base_day = baseline or marrows[0][0]
    base_blasts = next((float(v) for d, v in marrows if d == base_day), None)
    counts = {item: (np.array([np.datetime64(d, "D") for d in day[rows["item"] == item]], dtype="datetime64[D]"),
                     rows.loc[rows["item"] == item, "value"].to_numpy(dtype="float64"))
              for item in ("anc", "plt")}  # fmt: skip
    extra = other or {}
    out = []
    for when, blasts in marrows:
        if when <= base_day:
            continue
        anc, plt = (_nearest(*counts[item], when, count_window_days) for item in ("anc", "plt"))
        if anc is None or plt is None:
            raise InputError(f"the marrow of {when.isoformat()} has no ANC and platelet count within "
                             f"{count_window_days} days: its ELN response cannot be classified", column="date")
        facts = extra.get(when, {})
        out.append((when, eln2022_response(
            float(blasts), circulating_blasts=bool(facts.get("circulating_blasts", False)),
            extramedullary=bool(facts.get("extramedullary", False)), anc=anc, platelets=plt,
            baseline_marrow_blasts=base_blasts, mrd_negative=facts.get("mrd_negative"))))  # fmt: skip
    return out


def _nearest(days: np.ndarray, values: np.ndarray, when: date, window: int) -> float | None:
    """The value nearest ``when`` within ``window`` days (on a tie the earlier), or None."""
    if not len(days):
        return None
    distance = np.abs((days - np.datetime64(when, "D")).astype(int))
    order = np.lexsort((days.astype(int), distance))
    best = order[0]
    return float(values[best]) if distance[best] <= window else None
