"""Values of data-dictionary items for the analysis dataset: one value per patient at a named visit or in a time
window from a per-patient origin ("IL-6 at day 7", "NK-cell count on day 30 ± 7 after the first NK infusion",
"GVHD response at week 4"), and the long table of every value for repeated-measures analyses.

The item's kind in the dictionary says which table holds it (observation → ``observations``, assessment →
``assessments``, attribute → ``attributes``, intervention → ``interventions``). A number, integer or yes/no item
gives ``value`` (``dose`` for an intervention), any other item its coded ``value_text``. In a window the value
nearest the target day is taken (on a tie the earlier one), as a protocol's visit window is read; days are
counted from the origin date (day 0). Everything is vectorised: one sort, then first-per-patient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from allotrack.errors import InputError
from allotrack.records.dictionary import DataDictionary, default_dictionary
from allotrack.records.schema import Records

TABLE_OF_KIND = {"observation": "observations", "assessment": "assessments", "attribute": "attributes",
                 "intervention": "interventions"}  # fmt: skip


@dataclass(frozen=True)
class Window:
    """Days ``start`` to ``end`` (inclusive) from the origin; the value nearest ``target`` is taken (default: the
    middle of the window)."""

    start: float
    end: float
    target: float | None = None

    def __post_init__(self) -> None:
        if not self.start <= self.end:
            raise InputError(f"a window's start ({self.start:g}) must not be after its end ({self.end:g})",
                             column="window")  # fmt: skip

    @property
    def aim(self) -> float:
        return (self.start + self.end) / 2 if self.target is None else self.target


def item_rows(records: Records, item: str, dictionary: DataDictionary | None = None) -> pd.DataFrame:
    """Every row of ``item`` as ``patient_id, date, visit, value`` (number or code, as the module says)."""
    dictionary = dictionary or default_dictionary()
    if item not in dictionary:
        raise InputError(f"item '{item}' is not in the data dictionary", column="item", values=[item])
    spec = dictionary.item(item)
    table = TABLE_OF_KIND.get(spec.kind)
    if table is None:
        raise InputError(f"item '{item}' is a {spec.kind} item: its values are study-design records", column="item")
    frame = records[table]
    code = "agent" if table == "interventions" else "item"
    rows = frame[frame[code] == item]
    numeric = spec.type in ("number", "integer", "yesno")
    value = _column(rows, ("dose" if table == "interventions" else "value") if numeric else "value_text")
    date = _column(rows, "start_date" if table == "interventions" else "date")
    visit = _column(rows, "visit")
    return pd.DataFrame({"patient_id": rows["patient_id"], "date": pd.to_datetime(date), "visit": visit,
                         "value": value.astype("float64") if numeric else value.astype(object)}).reset_index(
        drop=True)  # fmt: skip


def _column(rows: pd.DataFrame, name: str) -> pd.Series:
    return rows[name] if name in rows.columns else pd.Series(None, index=rows.index, dtype=object)


def value_at_visit(records: Records, item: str, visit: str, dictionary: DataDictionary | None = None) -> pd.Series:
    """Each patient's value of ``item`` recorded at the visit labelled ``visit`` (indexed by patient id; a patient
    without one is absent)."""
    rows = item_rows(records, item, dictionary)
    at = rows[rows["visit"] == visit]
    twice = at["patient_id"].duplicated(keep=False)
    if twice.any():
        raise InputError(f"item '{item}' has more than one value at visit '{visit}' for {int(twice.sum())} rows "
                         "(give a date window instead)", column="visit")  # fmt: skip
    return at.set_index("patient_id")["value"].rename(f"{item}@{visit}")


def require_visit(records: Records, item: str, visit: str, dictionary: DataDictionary | None = None,
                  what: str = "the plan") -> None:  # fmt: skip
    """Refuse, naming the visits recorded for ``item``, a visit at which no patient has a value of it (a misspelt
    visit in a plan would otherwise leave every patient without a value)."""
    rows = item_rows(records, item, dictionary)
    if not (rows["visit"] == visit).any():
        seen = list(dict.fromkeys(str(v) for v in rows["visit"].dropna()))
        listed = ", ".join(repr(v) for v in seen[:12]) + (" …" if len(seen) > 12 else "") if seen else "none"
        raise InputError(f"{what}: no patient has a value of '{item}' at visit {visit!r}; the visits recorded for "
                         f"it are {listed}", table="plan", column="visit", values=[visit])  # fmt: skip


def value_in_window(records: Records, item: str, origin: pd.Series, window: Window,
                    dictionary: DataDictionary | None = None) -> pd.Series:  # fmt: skip
    """Each patient's value of ``item`` dated within ``window`` days of the patient's ``origin`` date (a series
    indexed by patient id), nearest the window's target day; patients without an origin or a value are absent."""
    rows = item_rows(records, item, dictionary)
    start = pd.to_datetime(rows["patient_id"].map(origin))
    day = (rows["date"] - start).dt.days.to_numpy(dtype="float64", na_value=np.nan)
    inside = ~np.isnan(day) & (day >= window.start) & (day <= window.end)
    chosen = rows[inside].assign(_distance=np.abs(day[inside] - window.aim), _day=day[inside])
    chosen = chosen.sort_values(["patient_id", "_distance", "_day"], kind="stable").drop_duplicates("patient_id")
    return chosen.set_index("patient_id")["value"].rename(f"{item}@[{window.start:g},{window.end:g}]")


def first_dates(records: Records, table: str, date_column: str, where: pd.Series | None = None) -> pd.Series:
    """Each patient's first date in ``table`` (optionally among the rows ``where`` is true): an origin such as the
    first NK-cell infusion (``interventions`` where ``agent == 'nk_infusion'``)."""
    frame = records[table] if where is None else records[table][where.to_numpy(dtype=bool)]
    return pd.to_datetime(frame[date_column]).groupby(frame["patient_id"]).min()
