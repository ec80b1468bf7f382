"""The ``balance`` plan analysis: how the plan's [matching] balanced the treated patients and their matched
controls (MatchIt's ``summary(m, un = TRUE)``: standardised mean differences, variance ratios and eCDF statistics
before and after matching; :mod:`allotrack.design.balance`), with the numbers matched and a Love plot."""

from __future__ import annotations

import pandas as pd

from allotrack.report.document import FigureBlock, Section, TableBlock
from allotrack.study import plan as sp
from allotrack.study.context import Context


def balance_section(ctx: Context, a: sp.BalanceAnalysis) -> Section:
    from allotrack.report.balance_figures import love_plot
    from allotrack.study.dataset import plan_matching

    spec = ctx.plan.matching
    assert spec is not None  # plan_problems refuses a balance analysis without [matching]
    result = plan_matching(ctx.data, spec)
    balance = result.balance()
    after = balance.after if balance.after is not None else balance.before
    names = [ctx.label(v) + (f": {lv}" if lv is not None else "") if v != "distance" else "Propensity score"
             for v, lv in zip(balance.variables, balance.levels, strict=True)]  # fmt: skip
    shown = pd.DataFrame({
        "Covariate": names,
        "Treated mean": [f"{v:.3g}" for v in balance.before["means_treated"]],
        "Control mean, before": [f"{v:.3g}" for v in balance.before["means_control"]],
        "Control mean, after": [f"{v:.3g}" for v in after["means_control"]],
        "SMD before": [_signed(v) for v in balance.before["smd"]],
        "SMD after": [_signed(v) for v in after["smd"]],
        "Variance ratio after": ["" if v != v else f"{v:.2f}" for v in after["var_ratio"]],
        "eCDF max after": [f"{v:.3f}" for v in after["ecdf_max"]],
    })  # fmt: skip
    n_treated = int(result.treated.sum())
    matched_treated = n_treated - len(result.unmatched_treated)
    controls = int(((~result.treated) & (result.weights > 0)).sum())
    sets = result.sets_frame()
    per_set = sets[sets["role"] == "control"].groupby("set_id").size().value_counts().sort_index(ascending=False)
    sizes = ", ".join(f"{n} set{'s' if n != 1 else ''} of {k}" for k, n in per_set.items())
    most = spec.ratio if spec.max_ratio is None else spec.max_ratio
    rule = (f"{most}:1" if per_set.index.tolist() == [most] else f"up to {most} per treated patient: {sizes}") + (
        "; greedy nearest neighbour " + ("with" if spec.replace else "without") + " replacement")  # fmt: skip
    text = (f"{matched_treated} of {n_treated} treated patients matched to {controls} controls ({rule}; distance "
            f"{spec.distance}" + (f", exact on {', '.join(ctx.label(e) for e in spec.exact)}" if spec.exact else "")
            + (f", caliper {_caliper(ctx, spec.caliper)}" if spec.caliper is not None else "") + ").")  # fmt: skip
    notes = ("Standardised mean difference: difference of means over the treated group's SD in the full sample "
             "(MatchIt summary(), ATT); after matching, controls weighted by MatchIt's matching weights",)
    fig = love_plot(balance, labels={t: n for t, n in zip(balance.before.index, names, strict=True)})
    return Section("Matched controls: balance", (text,),
                   (TableBlock("Covariate balance before and after matching", shown, notes,
                               data=balance.to_frame()),),
                   (FigureBlock("Absolute standardised mean differences before and after matching (Love plot)",
                                fig),))  # fmt: skip


def _signed(v: float) -> str:
    """A standardised difference with three decimals and a true minus sign (never "−0.000")."""
    text = f"{v:.3f}"
    return "0.000" if text in ("-0.000", "0.000") else text.replace("-", "−")


def _caliper(ctx: Context, caliper: float | dict[str, float]) -> str:
    if isinstance(caliper, dict):
        return ", ".join(f"{ctx.label(k) if k != 'distance' else 'score'} ± {v:g}" for k, v in caliper.items())
    return f"{caliper:g} SD of the propensity score"
