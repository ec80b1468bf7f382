"""CDISC ADaM ADTTE export (``reference/clinical-definitions.md`` §10.1): one row per patient and endpoint.

Variables: USUBJID, PARAMCD (endpoint name in capitals), PARAM (label), STARTDT (origin date), ADT (event or
censoring date), AVAL (ADT − STARTDT in days, the same number as the analysis dataset; ``aval_plus_one=True``
gives admiral's ADT − STARTDT + 1), AVALU ("DAYS"), CNSR (0 = event, 1 = censored, 2 = competing event —
a single-event BDS cannot hold competing risks, so the competing event is coded 2 and named in EVNTDESC),
EVNTDESC, CNSDTDSC (source of the censoring date), SRCDOM. Patients for whom an endpoint is undefined (no origin,
e.g. LFS without remission) have no row for it.
"""

from __future__ import annotations

import pandas as pd

from allotrack.endpoints.derive import DerivedEndpoints

_DOMAIN = {"death": "DS", "death_without_relapse": "DS", "relapse": "RS", "refractory": "RS", "agvhd_2_4": "CE",
           "agvhd_3_4": "CE", "cgvhd_systemic": "CE"}  # fmt: skip


def adtte(derived: DerivedEndpoints, aval_plus_one: bool = False) -> pd.DataFrame:
    """ADTTE rows for every defined patient × endpoint of ``derived``."""
    ex = derived.explanation
    ex = ex[ex["time"].notna()].copy()
    labels = {e.name: e.label for e in derived.endpoints}
    competing = {e.name: set(e.competing) for e in derived.endpoints}
    censored = ex["status"] == 0
    kind = ex["end"].astype(str)
    cnsr = ex["status"].map({1: 0, 0: 1, 2: 2}).astype(int)
    desc = [
        f"censored: {k.removeprefix('censored at ')}" if c else
        (f"competing event: {k.replace('_', ' ')}" if k in competing[e] else k.replace("_", " "))
        for k, c, e in zip(kind, censored, ex["endpoint"], strict=True)
    ]  # fmt: skip
    out = pd.DataFrame({
        "USUBJID": ex["patient_id"].to_numpy(),
        "PARAMCD": ex["endpoint"].str.upper().to_numpy(),
        "PARAM": ex["endpoint"].map(labels).to_numpy(),
        "STARTDT": ex["origin_date"].dt.date.to_numpy(),
        "ADT": ex["end_date"].dt.date.to_numpy(),
        "AVAL": (ex["time"].astype(float) + (1.0 if aval_plus_one else 0.0)).to_numpy(),
        "AVALU": "DAYS",
        "CNSR": cnsr.to_numpy(),
        "EVNTDESC": desc,
        "CNSDTDSC": [k.removeprefix("censored at ") if c else "" for k, c in zip(kind, censored, strict=True)],
        "SRCDOM": ["FU" if c else _DOMAIN.get(k, "") for k, c in zip(kind, censored, strict=True)],
    })  # fmt: skip
    return out.sort_values(["USUBJID", "PARAMCD"], kind="stable").reset_index(drop=True)
