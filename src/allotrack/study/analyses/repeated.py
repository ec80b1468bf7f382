"""Plan analyses of repeated measurements of one dictionary item per patient:

- ``paired``: the item at two visits of the same patients (e.g. CD4 before and after treatment), compared by the
  Wilcoxon signed-rank test or the paired t-test (:func:`allotrack.stats.paired.paired_test`), per group when
  ``by`` is given; only patients measured at both visits count, and their number is shown.
- ``longitudinal``: the item at several visits (e.g. IL-6 on day 0, 1 and 7) by group, as a linear mixed model
  with a random intercept per patient (:func:`allotrack.stats.mixed.mixed_model`, REML as ``lme4::lmer``): the
  model-based mean per visit and group, and the visit × group interaction's Wald test. Patients with missed visits
  keep their other visits (the model uses every measurement, not complete cases).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats as sps

from allotrack.endpoints.measurements import item_rows, require_visit, value_at_visit
from allotrack.errors import InputError
from allotrack.records.dictionary import default_dictionary
from allotrack.records.retired import choice_code
from allotrack.report.document import Section, TableBlock
from allotrack.report.format import format_pvalue
from allotrack.stats.mixed import mixed_model
from allotrack.stats.paired import friedman_test, paired_test
from allotrack.study.plan import LongitudinalAnalysis, PairedAnalysis, TrendAnalysis

if TYPE_CHECKING:
    from allotrack.study.context import Context


def paired_section(ctx: Context, a: PairedAnalysis) -> Section:
    dictionary = ctx.dictionary or default_dictionary()
    label = dictionary.item(a.item).label if a.item in dictionary else a.item
    for visit in (a.before, a.after):
        require_visit(ctx.records, a.item, visit, dictionary, f"paired analysis of '{a.item}'")
    before = value_at_visit(ctx.records, a.item, a.before, dictionary)
    after = value_at_visit(ctx.records, a.item, a.after, dictionary)
    pairs = pd.DataFrame({"before": before, "after": after}).dropna().astype(float)
    groups = ctx.data.set_index("patient_id")[a.by] if a.by else None
    subsets = [("All patients", pairs)]
    if groups is not None:
        grouped = pairs.assign(group=groups.reindex(pairs.index).astype(str))
        subsets += [(f"{ctx.label(a.by or '')}: {g}", grouped[grouped["group"] == g])
                    for g in ctx.ordered(grouped.dropna(subset=["group"]), "group")]  # fmt: skip
    rows, data = [], []
    for name, sub in subsets:
        if len(sub) < 2:
            rows.append({"Group": name, "Pairs": len(sub)})
            continue
        result = paired_test(sub, "after", "before", method=a.method)  # the change: after − before
        est, lo, hi = _same_decimals(result.estimate, result.lower, result.upper)
        rows.append({"Group": name, "Pairs": len(sub), f"{a.before}, median (Q1, Q3)": _median(sub["before"]),
                     f"{a.after}, median (Q1, Q3)": _median(sub["after"]),
                     "Change (95% CI)¹": f"{est} ({lo} to {hi})", "p-value¹": format_pvalue(result.p_value)})
        data.append({"group": name, "pairs": len(sub), "median_before": float(sub["before"].median()),
                     "median_after": float(sub["after"].median()), "change": result.estimate,
                     "lower": result.lower, "upper": result.upper, "statistic": result.statistic,
                     "p_value": result.p_value})  # fmt: skip
    test = ("Wilcoxon signed-rank test (exact when there are no ties, else normal with continuity correction; R "
            "wilcox.test paired); change: Hodges–Lehmann pseudo-median of after − before"
            if a.method == "wilcoxon" else "paired t-test (R t.test paired); change: mean of after − before")
    notes = (f"¹ {test}.", f"Patients measured at both {a.before} and {a.after}.")
    return Section(a.title or f"{label}: {a.before} vs {a.after}", (),
                   (TableBlock(f"{label}, {a.before} and {a.after}", pd.DataFrame(rows), notes,
                               data=pd.DataFrame(data)),))  # fmt: skip


def longitudinal_section(ctx: Context, a: LongitudinalAnalysis) -> Section:
    dictionary = ctx.dictionary or default_dictionary()
    label = dictionary.item(a.item).label if a.item in dictionary else a.item
    rows = item_rows(ctx.records, a.item, dictionary)
    rows = rows[rows["visit"].isin(a.visits)].dropna(subset=["value"])
    long = pd.DataFrame({"patient": rows["patient_id"], "value": rows["value"].astype(float),
                         "visit": pd.Categorical(rows["visit"], categories=a.visits)})  # fmt: skip
    at, formula = ["visit"], "value ~ visit"
    if a.by is not None:
        groups = ctx.data.set_index("patient_id")[a.by]
        long["group"] = pd.Categorical(rows["patient_id"].map(groups).astype(str),
                                       categories=ctx.ordered(ctx.data, a.by))  # fmt: skip
        if long["group"].nunique() > 1:
            at, formula = ["visit", "group"], "value ~ visit * group"
    long = long.dropna()
    if long["patient"].nunique() < 3:
        raise InputError(f"a longitudinal analysis of '{a.item}' needs measurements of at least 3 patients at "
                         f"{a.visits}", table="observations", column="visit")  # fmt: skip
    model = mixed_model(long, formula, "patient")
    means = model.estimated_means(at).table
    shown = pd.DataFrame({"Visit": means["visit"].astype(str)})
    if "group" in at:
        shown[ctx.label(a.by or "")] = means["group"].astype(str)
    estimates = zip(means["estimate"], means["lower"], means["upper"], strict=True)
    unit = dictionary.item(a.item).unit if a.item in dictionary else None
    column = "Estimated mean (95% CI)" + (f", {unit}" if unit and unit != "1" else "")
    shown[column] = [f"{_number(m)} ({_number(lo)}–{_number(hi)})" for m, lo, hi in estimates]
    notes = [f"Linear mixed model: {formula.replace('*', '×')} with a random intercept per patient, REML (as "
             "lme4::lmer); estimated means per " + (" and ".join(at)) + ", Wald 95% intervals."]
    if "group" in at:
        notes.append("Visit × group interaction (does the course over visits differ between groups?): Wald "
                     f"chi-square p {format_pvalue(_interaction_p(model))}.")  # fmt: skip
    else:
        complete = long.pivot_table(index="patient", columns="visit", values="value", observed=False).dropna()
        friedman_p = (friedman_test(complete.reset_index().melt(id_vars="patient", var_name="visit"), "value",
                                    "visit", "patient").p_value if len(complete) >= 2 else float("nan"))  # fmt: skip
        wald = format_pvalue(_wald_p(model, "visit"))
        notes.append(f"Change over visits: Wald chi-square test of the visit terms p {wald}"
                     f"; Friedman test on the {len(complete)} patients measured at every visit p "
                     f"{format_pvalue(friedman_p)} (R friedman.test).")  # fmt: skip
        if a.by is not None:
            notes.append(f"One {ctx.label(a.by)} only among the patients measured: no comparison between groups.")
    if model.intercept_var <= 1e-8 * max(model.residual_var, 1e-300):
        notes.append("The patient random-intercept variance is estimated at 0 (a singular fit, as lme4 would warn): "
                     "the measurements of a patient were no more alike than those of different patients.")
    notes.append(f"{long['patient'].nunique()} patients, {len(long)} measurements; patients with missed visits "
                 "keep their other visits.")  # fmt: skip
    caption = f"{label} by visit" + (f" and {ctx.label(a.by or '')}" if "group" in at else "")
    return Section(a.title or f"{label} over visits", (), (TableBlock(caption, shown, tuple(notes), data=means),))


def _median(values: pd.Series) -> str:
    q1, med, q3 = np.quantile(values.to_numpy(float), [0.25, 0.5, 0.75], method="inverted_cdf")
    return f"{_number(med)} ({_number(q1)}, {_number(q3)})"


def _same_decimals(*values: float) -> list[str]:
    """An estimate and its interval with the same number of decimals (by the largest magnitude: 0 from 100, 1 from
    10, 2 from 1, else 3), with a true minus sign."""
    finite = [abs(v) for v in values if np.isfinite(v)]
    scale = max(finite) if finite else 0.0
    decimals = 0 if scale >= 100 else 1 if scale >= 10 else 2 if scale >= 1 else 3
    return [f"{v:,.{decimals}f}".replace("-", "−") if np.isfinite(v) else "—" for v in values]


def _number(x: float) -> str:
    """A measurement for a table: no exponent; 3 significant digits below 100, whole numbers above."""
    if not np.isfinite(x):
        return "—"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) >= 0.01 else f"{x:.2g}"


def _interaction_p(model: object) -> float:
    """Joint Wald chi-square test that every visit × group coefficient is 0."""
    return _wald_p(model, ":")


def _wald_p(model: object, part: str) -> float:
    """Joint Wald chi-square test that every fixed-effect coefficient whose name contains ``part`` is 0."""
    names = list(model.coef_names)  # type: ignore[attr-defined]
    chosen = [i for i, n in enumerate(names) if part in n]
    if not chosen:
        return float("nan")
    beta = np.asarray(model.coef)[chosen]  # type: ignore[attr-defined]
    cov = np.asarray(model.vcov)[np.ix_(chosen, chosen)]  # type: ignore[attr-defined]
    statistic = float(beta @ np.linalg.solve(cov, beta))
    return float(sps.chi2.sf(statistic, len(chosen)))


def trend_section(ctx: Context, a: TrendAnalysis) -> Section:
    """A dose–response trend: the item at a visit across ordered dose levels — the Cochran–Armitage test for a
    binary outcome (``event`` codes given), the Jonckheere–Terpstra test for a numeric one. A patient's dose level
    is the ``dose_level`` of their first intervention with ``agent`` (e.g. the NK-cell infusions)."""
    from allotrack.stats.trend import cochran_armitage, jonckheere_terpstra

    dictionary = ctx.dictionary or default_dictionary()
    label = dictionary.item(a.item).label if a.item in dictionary else a.item
    given = ctx.records["interventions"]
    if not (given["agent"] == a.agent).any():
        agents = sorted(set(given["agent"].dropna()))
        raise InputError(f"trend analysis: no intervention of agent {a.agent!r}; the agents recorded are {agents}",
                         table="plan", column="agent", values=[a.agent])  # fmt: skip
    given = given[given["agent"] == a.agent].sort_values(["patient_id", "start_date"])
    recorded = set(given["dose_level"].dropna().astype(str))
    if not recorded & set(a.levels):
        raise InputError(f"trend analysis: none of the dose levels {a.levels} is recorded for {a.agent!r} (its "
                         f"levels are {sorted(recorded)})", table="plan", column="levels")  # fmt: skip
    require_visit(ctx.records, a.item, a.visit, dictionary, f"trend analysis of '{a.item}'")
    level = given.drop_duplicates("patient_id").set_index("patient_id")["dose_level"].dropna().astype(str)
    value = value_at_visit(ctx.records, a.item, a.visit, dictionary)
    frame = pd.DataFrame({"level": level, "value": value}).dropna()
    frame = frame[frame["level"].isin(a.levels)]
    if frame["level"].nunique() < 2:
        raise InputError(f"a trend needs at least two of the dose levels {a.levels} with a value of '{a.item}' at "
                         f"{a.visit}", table="interventions", column="dose_level")  # fmt: skip
    order = [lv for lv in a.levels if lv in set(frame["level"])]
    rows, data = [], []
    if a.event:
        frame["event"] = frame["value"].map(choice_code).isin(a.event).astype(int)  # yes/no items are 1/0
        per = frame.groupby("level")["event"].agg(["sum", "size"]).reindex(order)
        result = cochran_armitage(per["sum"].to_numpy(float), per["size"].to_numpy(float),
                                  np.arange(1, len(order) + 1, dtype=float))  # fmt: skip
        events, sizes = per["sum"].to_numpy(int), per["size"].to_numpy(int)
        rows = [{"Dose level": lv, "Patients": int(n), "Events": f"{int(x)} ({100 * x / n:.0f}%)"}
                for lv, x, n in zip(order, events, sizes, strict=True)]  # fmt: skip
        test = "Cochran–Armitage test for trend (R prop.trend.test), dose levels scored 1, 2, …"
    else:
        values = frame["value"].astype(float)
        result = jonckheere_terpstra(values.to_numpy(), frame["level"].to_numpy(), order=order)  # type: ignore[assignment]
        rows = [{"Dose level": lv, "Patients": int((frame["level"] == lv).sum()),
                 "Median (Q1, Q3)": _median(values[frame["level"] == lv])} for lv in order]  # fmt: skip
        test = ("Jonckheere–Terpstra test for an ordered trend (exact without ties, else normal with the "
                "tie-corrected variance)")  # fmt: skip
    data.append({"statistic": result.statistic, "p_value": result.p_value, "levels": ", ".join(order)})
    shown = pd.DataFrame(rows)
    notes = (f"Trend across {', '.join(order)}: p {format_pvalue(result.p_value)}¹.", f"¹ {test}.",
             f"Dose level: the first {a.agent} intervention's dose level.")  # fmt: skip
    return Section(a.title or f"{label} at {a.visit} by dose level", (),
                   (TableBlock(f"{label} at {a.visit} by dose level", shown, notes, data=pd.DataFrame(data)),))
