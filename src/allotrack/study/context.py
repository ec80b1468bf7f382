"""The context every plan analysis runs in: the analysis dataset, the records, the plan, the time unit and the
variable labels, restricted to an analysis's population and subset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from allotrack.errors import InputError
from allotrack.records.dates import DAYS_PER_UNIT, DAYS_PER_YEAR
from allotrack.records.dictionary import DataDictionary
from allotrack.records.schema import Records
from allotrack.study import plan as sp


class Context:
    """What every analysis needs: the dataset, the records, the time unit and the variable labels."""

    def __init__(self, data: pd.DataFrame, records: Records, plan: sp.StudyPlan,
                 dictionary: DataDictionary | None = None) -> None:  # fmt: skip
        self.data, self.records, self.plan = data, records, plan
        self.dictionary = dictionary  # the store's data dictionary (None: allotrack's bundled one)
        self.unit = plan.study.time_unit
        self.scale = DAYS_PER_UNIT[self.unit]
        self.labels = dict(plan.baseline.labels) if plan.baseline else {}
        self.levels = dict(plan.baseline.levels) if plan.baseline else {}

    def restricted(self, a: Any) -> tuple[Context, str | None]:
        """The context of one analysis: its ``population`` and ``subset`` (plan.py's ``_Analysis``) applied to the
        dataset and the records, and a phrase naming them with the number of patients ("population ITT, n = 130";
        None for everyone)."""
        population, subset = getattr(a, "population", None), getattr(a, "subset", None)
        if population is None and subset is None:
            return self, None
        keep = self.data["patient_id"].notna().to_numpy().copy()  # a writable mask
        said = []
        if population is not None:
            pops = self.records["populations"]
            chosen = pops[(pops["population"] == population) & pops["included"].fillna(False).astype(bool)]
            if chosen.empty:
                known = sorted(set(pops["population"].dropna()))
                raise InputError(f"analysis population {population!r} has no patients in the records (populations "
                                 f"recorded: {known or 'none'})", table="populations", column="population")  # fmt: skip
            keep &= self.data["patient_id"].isin(set(chosen["patient_id"])).to_numpy()
            said.append(f"population {population}")
        if subset is not None:
            from allotrack.records.branching import holds, parse

            tree = parse(subset)
            rows = self.data.to_dict("records")
            keep &= np.asarray([holds(tree, {str(k): (None if v is pd.NA else v) for k, v in row.items()})
                                for row in rows], dtype=np.bool_)  # fmt: skip
            said.append(f"subset {subset}")
        data = self.data[keep]
        if data.empty:
            raise InputError(f"{' and '.join(said)} leaves no patient to analyse (of {len(self.data)})",
                             table="plan", column="subset" if subset is not None else "population")  # fmt: skip
        ids = set(data["patient_id"])
        records = Records({name: frame[frame["patient_id"].isin(ids)] for name, frame in self.records.tables.items()})
        return Context(data, records, self.plan, self.dictionary), " and ".join(said) + f", n = {len(data)}"

    def origin_dates(self, endpoint: str) -> pd.Series:
        """Each patient's origin date of ``endpoint`` (indexed by patient_id; NaT where the origin never
        happened), as :func:`allotrack.endpoints.derive_endpoints` sets it."""
        from allotrack.endpoints import derive_endpoints

        derived = derive_endpoints(self.records, [self.plan.endpoint(endpoint)], validate=False)
        return derived.explanation.set_index("patient_id")["origin_date"]

    def time_points(self, endpoint: str, times: Sequence[float] = (), years: Sequence[float] = (),
                    default_years: Sequence[float] = ()) -> list[tuple[str, float]]:  # fmt: skip
        """Where a table shows estimates of ``endpoint``, as (column label, time in the plan's unit): ``times``
        (the plan's unit), else ``years``, else the plan's time points of the endpoint, else ``default_years``."""
        chosen = list(dict.fromkeys(times)) or ([] if years else self.plan.time_points(endpoint))
        if chosen:
            return [(f"{t:g} {self.unit if t != 1 else self.unit.rstrip('s')}", float(t)) for t in chosen]
        return [(f"{y:g} year{'s' if y != 1 else ''}", y * DAYS_PER_YEAR / self.scale)
                for y in dict.fromkeys(list(years) or list(default_years))]  # fmt: skip

    def require_known_at_origin(self, endpoint: str, names: Sequence[str]) -> None:
        """Refuse to group or adjust a time-to-event analysis of ``endpoint`` by a plan variable measured after
        the endpoint's origin for any patient (immortal time: :class:`~allotrack.study.plan.VariableSpec`)."""
        specs = [v for v in self.plan.variables if v.name in names and v.item is not None]
        if not specs:
            return
        from allotrack.study.dataset import variable_values

        origin = self.origin_dates(endpoint)
        ep = self.plan.endpoint(endpoint)
        for spec in specs:
            dates = variable_values(self.records, spec, self.dictionary)[1]
            later = (dates > origin.reindex(dates.index)).to_numpy(dtype=bool, na_value=False)
            if later.any():
                raise InputError(f"variable {spec.name!r} ({spec.item} at {spec.visit or 'any visit'}) is measured "
                                 f"after the origin of {ep.label} ({ep.origin_label}) for "
                                 f"{int(later.sum())} patients: comparing by it credits the survival needed to reach "
                                 "the measurement (immortal-time bias); use a value measured before the origin, or "
                                 "an endpoint that starts at the measurement (a landmark)", table="plan",
                                 column=f"variables.{spec.name}")  # fmt: skip

    def label(self, name: str) -> str:
        """A variable's name in the report: the baseline table's label, else the [[variables]] label, else the
        dataset's own (``sex`` → "Sex"), else the name with spaces."""
        from allotrack.study.dataset import COLUMN_LABELS

        own = {v.name: v.label for v in self.plan.variables if v.label}
        return self.labels.get(name) or own.get(name) or COLUMN_LABELS.get(name, name.replace("_", " "))

    def timed(self, endpoint: str) -> pd.DataFrame:
        """Patients with a defined time for ``endpoint``, its time in the plan's unit as ``time``."""
        d = self.data.dropna(subset=[f"{endpoint}_time", f"{endpoint}_status"]).copy()
        d["time"] = d[f"{endpoint}_time"].astype(float) / self.scale
        d["status"] = d[f"{endpoint}_status"].astype(int)
        return d

    def ordered(self, frame: pd.DataFrame, by: str) -> list[str]:
        present = [str(v) for v in frame[by].dropna().unique()]
        wanted = [str(v) for v in self.levels.get(by, [])]
        return [v for v in wanted if v in present] + sorted(v for v in present if v not in wanted)


def lower_first(label: str) -> str:
    """A label inside a sentence: "Matched set" → "matched set"; acronyms stay ("HLA mismatches", "ELN risk")."""
    return label[0].lower() + label[1:] if len(label) > 1 and label[1].islower() else label
