"""The design analyses of a plan: ``sample_size`` (the study's sample size or power,
:mod:`allotrack.design.power`) and ``dose_finding`` (3 + 3 or BOIN decisions per dose level from the DLT records,
the isotonic estimates and the MTD, :func:`allotrack.design.dose_finding.dose_decisions`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from allotrack.endpoints.measurements import item_rows
from allotrack.errors import InputError
from allotrack.records.dictionary import default_dictionary
from allotrack.report.document import Section, TableBlock
from allotrack.study import plan as sp

if TYPE_CHECKING:
    from allotrack.study.context import Context

METHODS = {"two_proportions": "two proportions, pooled z (chi-square) test; R power.prop.test",
           "logrank": "log-rank test", "competing_risks": "Fine–Gray / Gray's test (Latouche et al. 2004)"}  # fmt: skip


def sample_size_section(ctx: Context, a: sp.SampleSizeAnalysis) -> Section:
    """The calculation's inputs and results as a two-column table, and one sentence a protocol can quote."""
    result = a.calculate()
    row = result.to_frame().iloc[0]
    shown = [(k.replace("_", " "), _value(v)) for k, v in row.items() if not _blank(v)]
    n = (f"{result.n_per_group[0]} + {result.n_per_group[1]} = {result.n_total} patients"
         if result.n_per_group is not None else "")  # fmt: skip
    events = f"{result.events} events" if result.events is not None else ""
    size = " and ".join(x for x in (events, n) if x)
    shown_power = f"{result.power:.2f}" if result.solved_for != "power" else f"{result.power:.3f}"
    sentence = f"{size} give power {shown_power} at α = {result.alpha:g} ({result.alternative})"
    title = a.title or f"Sample size: {METHODS[a.method]}"
    return Section(title, (sentence + f" ({result.method}).",),
                   (TableBlock(title, pd.DataFrame(shown, columns=["Quantity", "Value"]),
                               (f"{METHODS[a.method]}; solved for {result.solved_for}.",),
                               data=result.to_frame()),))  # fmt: skip


def dose_finding_section(ctx: Context, a: sp.DoseFindingAnalysis) -> Section:
    """Per dose level: patients evaluable for DLT, DLTs, the design's decision on the level's own counts,
    elimination, and the isotonic estimate of the DLT rate; the MTD (and the next cohort's level)."""
    from allotrack.design.dose_finding import dose_decisions

    dictionary = ctx.dictionary or default_dictionary()
    doses = ctx.records["interventions"]
    doses = doses[(doses["agent"] == a.agent) & doses["patient_id"].isin(ctx.data["patient_id"])]
    if doses.empty:
        raise InputError(f"dose finding: no intervention of {a.agent!r} among the analysed patients",
                         table="interventions", column="agent", values=[a.agent])  # fmt: skip
    first = doses.sort_values(["patient_id", "start_date"], kind="stable").drop_duplicates("patient_id")
    level = first.set_index("patient_id")["dose_level"]
    unknown = sorted(set(level.dropna().astype(str)) - set(a.levels))
    if unknown:
        raise InputError(f"dose finding: dose level(s) {unknown} are not in the plan's levels {a.levels}",
                         table="interventions", column="dose_level", values=unknown)  # fmt: skip
    dlt = item_rows(ctx.records, a.item, dictionary).dropna(subset=["value"]).groupby("patient_id")["value"].max()
    frame = pd.DataFrame({"patient_id": level.index, "dose_level": level.astype(str).to_numpy()})
    frame["dlt"] = frame["patient_id"].map(dlt)
    not_evaluable = int(frame["dlt"].isna().sum())
    frame = frame.dropna(subset=["dlt"]).assign(dlt=lambda f: f["dlt"].astype(int))
    result = dose_decisions(frame, levels=a.levels, design=a.design, target=a.target, current_level=a.current_level)
    name = "BOIN" if a.design == "boin" else "3 + 3"
    table = result.table
    decisions = table["decision"].astype(str).tolist()
    if decisions and decisions[-1] == "escalate":  # nothing above the highest level: the action is to stay
        decisions[-1] = "stay (highest level)"
    shown = pd.DataFrame({
        "Dose level": table["level"].astype(str), "Patients": table["n"].astype(int),
        "DLTs": table["dlt"].astype(int),
        "Decision on the level's counts": decisions,
        "Eliminated": table["eliminated"].map({True: "yes", False: ""}),
        "DLT rate, isotonic estimate": [f"{v:.2f}" if v == v else "—" for v in table["isotonic"]],
    })  # fmt: skip
    target = f", target DLT rate {a.target:g}" if a.target is not None else ""
    mtd = (f"The selected MTD is {result.mtd}." if result.mtd is not None
           else f"No MTD is selected ({result.mtd_status}).")  # fmt: skip
    top = table.iloc[-1]
    below_target = a.target is not None and top["isotonic"] == top["isotonic"] and top["isotonic"] < a.target
    if result.mtd is not None and str(result.mtd) == str(a.levels[-1]) and below_target:
        mtd = (f"The MTD was not reached: the highest level tested, {result.mtd}, has an estimated DLT rate of "
               f"{top['isotonic']:.2f}, below the target {a.target:g} ({name}'s selection rule names it).")
    if a.current_level is not None:
        mtd += (" The trial stops." if result.stop else f" The next cohort is treated at {result.next_level}.")
    notes = [f"{name} design{target}; DLT = any '{a.item}' assessment of yes; dose level = the first "
             f"{a.agent} intervention's. Isotonic estimate: patient-weighted pool-adjacent-violators of the DLT "
             "rates."]  # fmt: skip
    if not_evaluable:
        notes.append(f"{not_evaluable} treated patient(s) without a DLT assessment are not evaluable (left out).")
    title = a.title or f"Dose finding ({name}): {a.agent}"
    return Section(title, (mtd,), (TableBlock(f"{title}: decisions by dose level", shown, tuple(notes),
                                              data=result.to_frame()),))  # fmt: skip


def _blank(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)
