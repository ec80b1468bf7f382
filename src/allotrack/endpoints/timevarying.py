"""Counting-process (start, stop] datasets for time-varying covariates and landmark datasets — R
``survival::tmerge`` semantics (``reference/r-definitions.md`` §1.5): a covariate recorded at time y takes its
value from y on (intervals split at y), the event stays with the interval that ends at the event time, and
changes at or after the end of follow-up are ignored. Immortal-time bias is avoided because a patient counts
as "> 3 courses" only from the day the fourth course starts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allotrack.errors import InputError


def counting_process(
    data: pd.DataFrame,
    time: str,
    status: str,
    changes: pd.DataFrame,
    covariate: str,
    initial: float = 0.0,
    cumulative: bool = False,
    id_column: str = "patient_id",
) -> pd.DataFrame:
    """Split each patient's follow-up (0, time] at the days in ``changes`` (columns id, ``day``, ``value``).

    The covariate equals ``initial`` until the first change, then the change's value (``cumulative=True`` adds
    the values up: e.g. value 1 per course start gives the number of courses started). Changes at day ≤ 0
    set the starting value (tmerge's rule for a tdc at or before the start); changes at or after the end of
    follow-up are dropped. Returns id, start, stop, status (only on the last interval) and the covariate,
    plus every other column of ``data``.
    """
    for col in (id_column, time, status):
        if col not in data.columns:
            raise InputError(f"no column '{col}' in the analysis data", column=col)
    for col in (id_column, "day", "value"):
        if col not in changes.columns:
            raise InputError(f"changes need columns {id_column}, day, value; '{col}' is missing", column=col)
    base = data.dropna(subset=[time, status]).reset_index(drop=True)
    ch = changes.merge(base[[id_column, time]], on=id_column, how="inner")
    ch = ch[ch["day"] < ch[time]].sort_values([id_column, "day"], kind="stable")
    if cumulative:
        ch["level"] = ch.groupby(id_column)["value"].cumsum() + initial
    else:
        ch["level"] = ch["value"]
    ch["day"] = ch["day"].clip(lower=0)
    ch = ch.drop_duplicates([id_column, "day"], keep="last")  # several changes on one day: the last holds
    starts_at_zero = ch[ch["day"] == 0].set_index(id_column)["level"]
    cuts = ch[ch["day"] > 0]
    # one row per interval: patient start points are 0 plus every cut
    pieces = pd.concat([
        pd.DataFrame({id_column: base[id_column], "start": 0.0}),
        pd.DataFrame({id_column: cuts[id_column].to_numpy(), "start": cuts["day"].to_numpy(dtype=float)}),
    ]).sort_values([id_column, "start"], kind="stable").reset_index(drop=True)  # fmt: skip
    level_at = pd.concat([
        pd.DataFrame({id_column: base[id_column], "start": 0.0,
                      covariate: base[id_column].map(starts_at_zero).fillna(initial).to_numpy()}),
        pd.DataFrame({id_column: cuts[id_column].to_numpy(), "start": cuts["day"].to_numpy(dtype=float),
                      covariate: cuts["level"].to_numpy()}),
    ])  # fmt: skip
    pieces = pieces.merge(level_at, on=[id_column, "start"], how="left")
    pieces["stop"] = pieces.groupby(id_column)["start"].shift(-1)
    ends = base.set_index(id_column)[time]
    last = pieces["stop"].isna()
    pieces.loc[last, "stop"] = pieces.loc[last, id_column].map(ends).to_numpy()
    st = base.set_index(id_column)[status]
    pieces[status] = np.where(last, pieces[id_column].map(st), 0)
    others = base.drop(columns=[time, status])
    out = pieces.merge(others, on=id_column, how="left")
    return out[[id_column, "start", "stop", status, covariate, *[c for c in others.columns if c != id_column]]]


def landmark(data: pd.DataFrame, time: str, status: str, at: float) -> pd.DataFrame:
    """Landmark dataset at time ``at``: patients still under observation at ``at`` with time re-originated
    (time − at); covariates measured by ``at`` should be used with it."""
    if not np.isfinite(at) or at < 0:
        raise InputError(f"landmark time must be a non-negative number, got {at!r}", column="at")
    keep = data[time] > at
    out = data[keep].copy()
    out[time] = out[time] - at
    return out.reset_index(drop=True)
