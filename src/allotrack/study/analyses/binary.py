"""The ``binary`` plan analysis: a binary outcome at a visit compared between two groups
(:func:`allotrack.stats.binary.binary_counts`), e.g. "GVHD complete response at week 4, MSC + basiliximab vs
basiliximab". The outcome is read from the records through the data dictionary
(:func:`allotrack.endpoints.measurements.value_at_visit`); the groups from the analysis dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from allotrack.endpoints.measurements import require_visit, value_at_visit
from allotrack.errors import InputError
from allotrack.records.dictionary import default_dictionary
from allotrack.records.retired import choice_code
from allotrack.report.document import Section, TableBlock
from allotrack.report.format import format_percent, format_pvalue, format_ratio
from allotrack.stats.binary import BinaryOutcome, binary_counts
from allotrack.study.context import lower_first
from allotrack.study.plan import BinaryAnalysis

if TYPE_CHECKING:
    from allotrack.records.dictionary import DataDictionary
    from allotrack.study.context import Context

TESTS = {"chisq": "Pearson's chi-square test without continuity correction",
         "chisq_yates": "Pearson's chi-square test with Yates' continuity correction",
         "fisher": "Fisher's exact test (two-sided)"}  # fmt: skip


def binary_section(ctx: Context, a: BinaryAnalysis) -> Section:
    """The outcome per group with Wilson intervals, the risk difference (Newcombe), relative risk (Katz) and
    odds ratio (conditional MLE, exact interval), and the p-value of the plan's test (named in a footnote)."""
    data, records = ctx.data, ctx.records
    groups = data[["patient_id", a.by]].dropna()
    levels = sorted(str(v) for v in groups[a.by].unique())
    if len(levels) != 2:
        raise InputError(f"a binary analysis compares two groups; '{a.by}' has {len(levels)} ({levels})",
                         table="plan", column=a.by)  # fmt: skip
    reference = a.reference or levels[1]
    if reference not in levels:
        raise InputError(f"reference group {reference!r} is not a value of '{a.by}' ({levels})", table="plan",
                         column="reference")  # fmt: skip
    first = next(v for v in levels if v != reference)
    require_visit(records, a.item, a.visit, _dictionary(ctx), f"binary analysis of '{a.item}'")
    value = value_at_visit(records, a.item, a.visit, _dictionary(ctx))
    codes = set(value.dropna().map(choice_code))
    if not codes & set(a.event):
        raise InputError(f"binary analysis of '{a.item}' at {a.visit!r}: no patient has the event code(s) {a.event}; "
                         f"the codes recorded there are {sorted(codes)}", table="plan", column="event",
                         values=list(a.event))  # fmt: skip
    outcome = groups.assign(value=groups["patient_id"].map(value))
    outcome["event"] = outcome["value"].map(choice_code).isin(a.event).where(outcome["value"].notna())
    missing = outcome[outcome["event"].isna()].groupby(outcome[a.by].astype(str)).size()
    if a.missing == "failure":
        outcome["event"] = outcome["event"].fillna(False)
    counted = outcome.dropna(subset=["event"])
    count = {g: (int(counted.loc[counted[a.by].astype(str) == g, "event"].astype(bool).sum()),
                 int((counted[a.by].astype(str) == g).sum())) for g in (first, reference)}  # fmt: skip
    result = binary_counts(*count[first], *count[reference], labels=(first, reference))
    title = a.title or f"{a.item} at {a.visit}"
    frame = counted.merge(data.drop(columns=[a.by]), on="patient_id").assign(
        event=lambda f: f["event"].astype(bool).astype(int), arm=lambda f: f[a.by].astype(str))  # fmt: skip
    # the test shown is the matched one when there are sets: conditional logistic regression within them
    within = _within_sets(ctx, a, frame, first, reference) if a.matched_sets else None
    tables, figures = [_table(result, a, title, missing, within[1].get("p_value") if within else None)], []
    if a.strata or a.adjust or within:
        tables.append(_adjusted(ctx, a, frame, first, reference, within))
    if a.subgroups:
        block, rows = _subgroups(ctx, a, frame, first, reference)
        tables.append(block)
        if len(rows):
            from allotrack.report.clinical_figures import plot_forest
            from allotrack.report.document import FigureBlock

            figures.append(FigureBlock(f"{title}: odds ratio {first} vs {reference} by subgroup",
                                       plot_forest(rows, xlabel="Odds ratio (95% CI, log scale)",
                                                   p_label="interaction p")))  # fmt: skip
    return Section(title, (), tuple(tables), tuple(figures))


def _adjusted(ctx: Context, a: BinaryAnalysis, frame: pd.DataFrame, first: str, reference: str,
              within: tuple[dict[str, str], dict[str, object], str] | None = None) -> TableBlock:  # fmt: skip
    """The arm's odds ratio stratified (Cochran–Mantel–Haenszel, Mantel–Haenszel common odds ratio), within
    matched sets (conditional logistic regression, Wald interval) and adjusted (logistic regression on the arm and
    the ``adjust`` variables, profile-likelihood interval)."""
    import numpy as np

    from allotrack.errors import ModelError
    from allotrack.stats.binary import cmh_test
    from allotrack.stats.logistic import logistic_regression

    rows, data, notes = [], [], []
    if a.strata:
        sub = frame.dropna(subset=[a.strata])
        layers = [np.array([[int(part.loc[part["arm"] == g, "event"].sum()),
                             int((part["arm"] == g).sum()) - int(part.loc[part["arm"] == g, "event"].sum())]
                            for g in (first, reference)])
                  for _, part in sub.groupby(sub[a.strata].astype(str))]  # fmt: skip
        cmh = cmh_test(np.stack(layers))
        odds = cmh.common_odds_ratio
        rows.append({"Analysis": f"Stratified by {ctx.label(a.strata)} ({len(layers)} strata)",
                     "Odds ratio (95% CI)": f"{odds.estimate:.2f} ({odds.lower:.2f}–{odds.upper:.2f})",
                     "p-value": f"{format_pvalue(cmh.chisq.p_value)}¹"})  # fmt: skip
        data.append({"analysis": "cmh", "odds_ratio": odds.estimate, "lower": odds.lower, "upper": odds.upper,
                     "p_value": cmh.chisq.p_value})  # fmt: skip
        notes.append("¹ Cochran–Mantel–Haenszel test without continuity correction (R mantelhaen.test(correct = "
                     "FALSE)); Mantel–Haenszel common odds ratio with the Robins–Breslow–Greenland interval.")
    if within is not None:  # fitted once by binary_section
        rows.append(within[0])
        data.append(within[1])
        notes.append(within[2])
    if a.adjust:
        sub = frame.dropna(subset=list(a.adjust)).assign(
            arm=lambda f: pd.Categorical(f["arm"], categories=[reference, first]))  # fmt: skip
        try:
            model = logistic_regression(sub, "event", formula=" + ".join(["arm", *a.adjust]))
            row = model.summary.set_index("term").loc[[f"arm[T.{first}]"], ["odds_ratio", "lower", "upper", "p"]]
            est, lo, hi, p = (float(v) for v in row.to_numpy(dtype=float)[0])
            rows.append({"Analysis": "Adjusted for " + ", ".join(ctx.label(v) for v in a.adjust)
                         + f" (n = {model.n})", "Odds ratio (95% CI)": f"{est:.2f} ({lo:.2f}–{hi:.2f})",
                         "p-value": f"{format_pvalue(p)}⁴"})  # fmt: skip
            data.append({"analysis": "logistic", "odds_ratio": est, "lower": lo, "upper": hi, "p_value": p})
        except ModelError as err:
            rows.append({"Analysis": "Adjusted for " + ", ".join(ctx.label(v) for v in a.adjust),
                         "Odds ratio (95% CI)": "not estimable", "p-value": str(err)[:80]})  # fmt: skip
        notes.append("⁴ Logistic regression (R glm binomial): Wald p-value; profile-likelihood 95% interval.")
    ran = [w for w, on in (("stratified", a.strata), ("within matched sets", a.matched_sets), ("adjusted", a.adjust))
           if on]  # fmt: skip
    what = ", ".join(ran[:-1]) + (" and " if len(ran) > 1 else "") + ran[-1]
    caption = "odds ratio within matched sets" if ran == ["within matched sets"] else f"{what} odds ratios"
    return TableBlock(f"{first} vs {reference}: {caption}", pd.DataFrame(rows),
                      tuple(notes), data=pd.DataFrame(data))  # fmt: skip


def _within_sets(ctx: Context, a: BinaryAnalysis, frame: pd.DataFrame, first: str,
                 reference: str) -> tuple[dict[str, str], dict[str, object], str]:  # fmt: skip
    """The odds ratio of ``first`` vs ``reference`` within matched sets: conditional logistic regression of the
    outcome on the group with the set as stratum (R ``clogit(event ~ group + strata(set))``, exact likelihood);
    sets without both an event and a non-event among their assessed members carry no information."""
    from allotrack.errors import ModelError
    from allotrack.stats.conditional_logistic import conditional_logistic

    assert a.matched_sets is not None
    sub = frame.dropna(subset=[a.matched_sets]).assign(exposed=lambda f: (f["arm"] == first).astype(int))
    label = f"Within {lower_first(ctx.label(a.matched_sets))}s"
    try:
        model = conditional_logistic(sub, "event", covariates=["exposed"], strata=a.matched_sets)
    except ModelError as err:
        return ({"Analysis": label, "Odds ratio (95% CI)": "not estimable", "p-value": str(err)[:80]},
                {"analysis": "conditional_logistic"}, "² Conditional logistic regression: not estimable.")  # fmt: skip
    r = model.summary.iloc[0]
    est, lo, hi, p = (float(r[k]) for k in ("odds_ratio", "wald_lower", "wald_upper", "p"))
    label += f" ({model.n_informative_sets} of {model.n_sets} sets informative, n = {model.n})"
    return ({"Analysis": label, "Odds ratio (95% CI)": f"{format_ratio(est)} ({format_ratio(lo)}–{format_ratio(hi)})",
             "p-value": f"{format_pvalue(p)}²"},
            {"analysis": "conditional_logistic", "odds_ratio": est, "lower": lo, "upper": hi, "p_value": p},
            "² Conditional logistic regression within matched sets (exact conditional likelihood, R survival "
            "clogit): Wald p-value and interval; a set informs only if its assessed members include an event and a "
            "non-event.")  # fmt: skip


def _subgroups(ctx: Context, a: BinaryAnalysis, frame: pd.DataFrame, first: str,
               reference: str) -> tuple[TableBlock, pd.DataFrame]:  # fmt: skip
    """Per level of each subgroup variable: events per arm and the odds ratio (conditional MLE, exact CI), and
    the variable's arm × subgroup interaction test (likelihood ratio between logistic models with and without
    the interaction)."""
    from scipy import stats as sps

    from allotrack.errors import ModelError
    from allotrack.stats.logistic import logistic_regression

    shown, forest = [], []
    for var in a.subgroups:
        sub = frame.dropna(subset=[var])
        sub = sub.assign(_level=sub[var].astype(str))
        try:
            main = logistic_regression(sub, "event", formula="arm + _level")
            full = logistic_regression(sub, "event", formula="arm * _level")
            df = full.df_null - full.df_residual - (main.df_null - main.df_residual)
            p_int = float(sps.chi2.sf(main.deviance - full.deviance, df)) if df > 0 else float("nan")
        except (ModelError, InputError):
            p_int = float("nan")  # separation or a single level: the interaction is not estimable
        for k, level in enumerate(ctx.ordered(sub, "_level")):
            part = sub[sub["_level"] == level]
            n = {g: (int(part.loc[part["arm"] == g, "event"].sum()), int((part["arm"] == g).sum()))
                 for g in (first, reference)}  # fmt: skip
            row = {"Subgroup": f"{ctx.label(var)}: {level}", first: f"{n[first][0]}/{n[first][1]}",
                   reference: f"{n[reference][0]}/{n[reference][1]}", "Odds ratio (95% CI)": "—",
                   "Interaction p¹": format_pvalue(p_int) if k == 0 and p_int == p_int else ""}  # fmt: skip
            if min(n[first][1], n[reference][1]) > 0:
                odds = binary_counts(*n[first], *n[reference]).odds_ratio
                row["Odds ratio (95% CI)"] = f"{odds.estimate:.2f} ({odds.lower:.2f}–{odds.upper:.2f})"
                if 0 < odds.estimate < float("inf") and odds.lower > 0 and odds.upper < float("inf"):
                    forest.append({"Variable": ctx.label(var), "Term": level, "_hr": odds.estimate,
                                   "_lo": odds.lower, "_hi": odds.upper, "_p": p_int})  # fmt: skip
            shown.append(row)
    notes = ("Odds ratio per subgroup as the conditional maximum-likelihood estimate with its exact interval.",
             "¹ Likelihood-ratio test of the arm × subgroup interaction (logistic regression with and without it); "
             "blank when not estimable (a level without events or without both arms).")  # fmt: skip
    return TableBlock(f"Subgroups: {first} vs {reference}", pd.DataFrame(shown), notes), pd.DataFrame(forest)


def _dictionary(ctx: Context) -> DataDictionary:
    return ctx.dictionary or default_dictionary()


def _table(result: BinaryOutcome, a: BinaryAnalysis, title: str, missing: pd.Series,
           matched_p: object = None) -> TableBlock:  # fmt: skip
    def ci(est: float, lo: float, hi: float, pct: bool) -> str:
        if pct:  # "−19 to 18%": an en dash between signed numbers reads as a minus
            sep = " to " if lo < 0 or hi < 0 else "–"
            return f"{format_percent(est)}% ({format_percent(lo)}{sep}{format_percent(hi)}%)"
        return f"{est:.2f} ({lo:.2f}–{hi:.2f})"

    p_value = {"chisq": result.chisq.p_value, "chisq_yates": result.chisq_corrected.p_value,
               "fisher": result.fisher_p_value}[a.test]  # fmt: skip
    if a.matched_sets:
        p_value = float(matched_p) if isinstance(matched_p, float) else float("nan")
    rows = [{"": f"{label}: {x}/{n}", "Estimate (95% CI)": ci(p.estimate, p.lower, p.upper, True)}
            for label, x, n, p in ((result.labels[0], result.events_a, result.n_a, result.proportion_a),
                                   (result.labels[1], result.events_b, result.n_b, result.proportion_b))]  # fmt: skip
    d, rr, odds = result.risk_difference, result.relative_risk, result.odds_ratio
    crude = " (crude)" if a.matched_sets else ""
    rows += [{"": f"Risk difference{crude}", "Estimate (95% CI)": ci(d.estimate, d.lower, d.upper, True)},
             {"": f"Relative risk{crude}", "Estimate (95% CI)": ci(rr.estimate, rr.lower, rr.upper, False)},
             {"": f"Odds ratio{crude}", "Estimate (95% CI)": ci(odds.estimate, odds.lower, odds.upper, False)},
             {"": "p-value¹", "Estimate (95% CI)": format_pvalue(p_value) if p_value == p_value else "—"}]  # fmt: skip
    test = (f"Conditional logistic regression within {lower_first(a.matched_sets.replace('_', ' '))}s (Wald; the "
            "odds ratio within sets is in the next table); the crude estimates above ignore the matching"
            if a.matched_sets else TESTS[a.test])  # fmt: skip
    notes = [f"¹ {test}.",
             "Proportions with Wilson score intervals; risk difference with Newcombe's hybrid score interval; "
             "relative risk with the Katz log interval; odds ratio as the conditional maximum-likelihood estimate "
             "with its exact interval (R fisher.test).",
             f"Event: {a.item} at {a.visit} in {a.event}."]
    if missing.sum():
        what = "counted as failures" if a.missing == "failure" else "left out"
        notes.append(f"No value at {a.visit}: " + ", ".join(f"{g} {n}" for g, n in missing.items()) + f" ({what}).")
    return TableBlock(title, pd.DataFrame(rows), tuple(notes), data=result.to_frame())
