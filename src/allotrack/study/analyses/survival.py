"""The time-to-event analyses of a study plan: Kaplan–Meier with log-rank, estimates at chosen time points, Cox
regression (univariate, multivariate, courses as a time-dependent covariate) and competing risks (Aalen–Johansen,
Gray's test, Fine–Gray). Each function returns a report :class:`Section`.

Times are analysed in the plan's unit (days from the records divided by 30.4375 for months, 365.25 for years).
Tables show gtsummary's number formats (:mod:`allotrack.report.format`); every p-value names its test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

import allotrack as at
from allotrack.endpoints.timevarying import counting_process
from allotrack.errors import InputError
from allotrack.report.clinical_figures import plot_forest
from allotrack.report.document import FigureBlock, Section, TableBlock
from allotrack.report.figures import plot_cumulative_incidence, plot_survival
from allotrack.report.format import format_percent, format_pvalue, format_ratio
from allotrack.study import plan as sp
from allotrack.study.context import Context, lower_first


def _ci(est: float, lo: float, hi: float, pct: bool = True) -> str:
    if pct:
        if lo != lo or hi != hi or est == 0:  # R gives no interval at 0 (log scale)
            return f"{format_percent(est)}%"
        return f"{format_percent(est)}% ({format_percent(lo)}–{format_percent(hi)})"
    return f"{est:.1f} ({lo:.1f}–{hi:.1f})"


def _months(x: float) -> str:
    return "NR" if x != x else f"{x:.1f}"


def _median_cell(m: dict[str, float]) -> str:
    return f"{_months(m['median'])} ({_months(m['lower'])}–{_months(m['upper'])})"


def _stratified(ctx: Context, strata: str | None) -> str:
    return f", stratified by {ctx.label(strata)}" if strata else ""


def kaplan_meier_section(ctx: Context, a: sp.KaplanMeierAnalysis) -> Section:
    """Medians (and estimates at the plan's time points) overall and per group, the log-rank test of each
    grouping (stratified by ``strata`` if given: R ``survdiff(... + strata(s))``, e.g. the matched set), and a
    Kaplan–Meier figure per grouping (one of everyone without a grouping)."""
    ctx.require_known_at_origin(a.endpoint, [*a.by, *([a.strata] if a.strata else [])])
    ep = ctx.plan.endpoint(a.endpoint)
    d = ctx.timed(a.endpoint)
    if a.strata:
        d = d.dropna(subset=[a.strata])
    figures, rows = [], []
    points = ctx.time_points(a.endpoint)  # only those the plan declares
    median = f"Median, {ctx.unit} (95% CI)"
    xlabel = f"Time since {ep.origin_label} ({ctx.unit})"

    def at_points(sub: pd.DataFrame) -> dict[str, str]:
        return {r["time_label"]: _estimate_cell(r) for _, r in _estimates_at(ctx, a.endpoint, sub, points).iterrows()}

    overall = at.kaplan_meier(d, "time", "status")
    med = {k: float(overall.median().iloc[0][k]) for k in ("median", "lower", "upper")}
    rows.append({"Group": "All analysed", "N": len(d), "Events": int(d["status"].sum()), median: _median_cell(med),
                 **at_points(d), **({"p-value": ""} if a.by else {})})  # fmt: skip
    if not a.by:
        figures.append(FigureBlock(f"{ep.label} (Kaplan–Meier, 95% CI)", plot_survival(
            overall, xlabel=xlabel, ylabel=f"{ep.label.split(' (')[0]} probability", figsize=(7.0, 4.6))))
    test_name = "Log-rank test" + (" stratified by " + lower_first(ctx.label(a.strata)) if a.strata else "")
    for by in a.by:
        sub = d.dropna(subset=[by])
        order = ctx.ordered(sub, by)
        sub = sub.assign(group=pd.Categorical(sub[by].astype(str), categories=order))
        fit = at.kaplan_meier(sub, "time", "status", by="group")
        test = at.logrank_test(sub, "time", "status", by="group", strata=a.strata)
        medians = fit.median().set_index("group")
        for g in order:
            m = {k: float(medians.loc[g, k]) for k in ("median", "lower", "upper")}  # type: ignore[arg-type]
            mine = sub[sub["group"] == g]
            rows.append({"Group": f"{ctx.label(by)}: {g}", "N": len(mine), "Events": int(mine["status"].sum()),
                         median: _median_cell(m), **at_points(mine),
                         "p-value": format_pvalue(test.p_value) + "¹" if g == order[0] else ""})  # fmt: skip
        fig = plot_survival(fit, pvalue=test.p_value, test_name=test_name.replace(" test", ""), xlabel=xlabel,
                            ylabel=f"{ep.label.split(' (')[0]} probability", labels=order,
                            figsize=(7.0, 5.0))  # fmt: skip
        figures.append(FigureBlock(f"{ep.label} by {ctx.label(by)} (Kaplan–Meier; {test_name.lower()} p "
                                   f"{format_pvalue(test.p_value)})", fig))  # fmt: skip
    notes = [f"¹ {test_name} (R survdiff, rho = 0)"] if a.by else []
    notes.append("Median: Kaplan–Meier, log CI (R survfit); NR = not reached")
    if points:
        notes.append("At each time: Kaplan–Meier survival (95% CI, log transformation); — beyond the group's last "
                     "follow-up")
    table = TableBlock(f"{ep.label}: medians" + (" and estimates at chosen times" if points else ""),
                       pd.DataFrame(rows), tuple(notes))  # fmt: skip
    return Section(ep.label, (), (table,), tuple(figures))


def _estimates_at(ctx: Context, name: str, sub: pd.DataFrame, points: list[tuple[str, float]]) -> pd.DataFrame:
    """The estimate of endpoint ``name`` in ``sub`` at each time point: Kaplan–Meier survival (R ``survfit``, log
    CI) or, for an endpoint with competing events, the cumulative incidence of its event (Aalen–Johansen, cmprsk
    ``cuminc``, log-log CI; 0 without an interval while nobody has had the event). Beyond the group's last
    follow-up the estimate is missing ("—": nothing is known there) unless that last time is an event, after which
    the curve cannot change (e.g. survival 0 % once every patient has died)."""
    times = np.asarray([t for _, t in points], dtype=float)
    frame = pd.DataFrame({"time_label": [label for label, _ in points], "time": times, "estimate": np.nan,
                          "lower": np.nan, "upper": np.nan})  # fmt: skip
    if sub.empty:
        return frame
    t_max = float(sub["time"].max())
    ends_with_event = bool((sub.loc[sub["time"] == t_max, "status"] > 0).any())
    known = (times <= t_max) | ends_with_event
    at_time = np.minimum(times, t_max)
    wanted = np.unique(at_time[known])
    if ctx.plan.endpoint(name).is_competing:
        est = at.cumulative_incidence(sub, "time", "status").at(wanted)
        est = est[est["cause"] == 1].set_index("time")[["estimate", "lower", "upper"]]
        if est.empty:  # no event of interest (yet): the incidence is 0, without an interval
            est = pd.DataFrame({"estimate": 0.0, "lower": np.nan, "upper": np.nan}, index=wanted)
    else:
        km = at.kaplan_meier(sub, "time", "status").at(wanted)
        est = km.set_index("time").rename(columns={"survival": "estimate"})[["estimate", "lower", "upper"]]
    got = est.reindex(at_time[known])
    frame.loc[known, ["estimate", "lower", "upper"]] = got.to_numpy()
    return frame


def _cause_at(fit: Any, cause: int, points: list[tuple[str, float]], sub: pd.DataFrame) -> pd.DataFrame:
    """Cumulative incidence of ``cause`` at the time points (as :func:`_estimates_at`, for either cause)."""
    times = np.asarray([t for _, t in points], dtype=float)
    frame = pd.DataFrame({"estimate": np.nan, "lower": np.nan, "upper": np.nan}, index=range(len(times)))
    if sub.empty:
        return frame
    t_max = float(sub["time"].max())
    known = (times <= t_max) | bool((sub.loc[sub["time"] == t_max, "status"] > 0).any())
    at_time = np.minimum(times, t_max)
    est = fit.at(np.unique(at_time[known]))
    est = est[est["cause"] == cause].set_index("time")[["estimate", "lower", "upper"]]
    if est.empty:
        est = pd.DataFrame({"estimate": 0.0, "lower": np.nan, "upper": np.nan}, index=np.unique(at_time[known]))
    frame.loc[known, ["estimate", "lower", "upper"]] = est.reindex(at_time[known]).to_numpy()
    return frame


def _estimate_cell(r: pd.Series) -> str:
    return "—" if r["estimate"] != r["estimate"] else _ci(r["estimate"], r["lower"], r["upper"])


def landmark_section(ctx: Context, a: sp.LandmarkAnalysis) -> Section:
    rows, data = [], []
    for name in a.endpoints:
        ctx.require_known_at_origin(name, [a.by] if a.by else [])
        ep = ctx.plan.endpoint(name)
        points = ctx.time_points(name, a.times, a.years, default_years=(1, 3, 5))
        d = ctx.timed(name)
        groups: list[tuple[str, pd.DataFrame]] = [("All patients", d)]
        if a.by:
            groups += [(f"{ctx.label(a.by)}: {g}", d[d[a.by].astype(str) == g]) for g in ctx.ordered(d, a.by)]
        for gname, sub in groups:
            est = _estimates_at(ctx, name, sub, points)
            what = "cumulative incidence" if ep.is_competing else "survival"
            row = {"Endpoint": ep.label, "Estimate": what, "Group": gname, "N": len(sub)}
            row |= {r["time_label"]: _estimate_cell(r) for _, r in est.iterrows()}
            rows.append(row)
            data.append(est.assign(endpoint=name, estimate_of=what, group=gname, n=len(sub)))
    frame = pd.DataFrame(rows)
    if set(frame["Estimate"]) == {"survival"}:
        frame = frame.drop(columns="Estimate")
    kinds = set(frame["Estimate"]) if "Estimate" in frame else {"survival"}
    used = ([] if "survival" not in kinds else ["Kaplan–Meier survival (95% CI, log transformation, R survfit)"]) + (
        [] if "cumulative incidence" not in kinds else ["cumulative incidence with competing events (Aalen–Johansen, "
                                                        "95% CI log-log, R cmprsk cuminc)"])  # fmt: skip
    notes = ("; ".join(used) + "; — beyond the group's last follow-up",)
    cols = ["endpoint", "estimate_of", "group", "n", "time_label", "time", "estimate", "lower", "upper"]
    return Section("Estimates at landmark times", (), (TableBlock("Estimates at landmark times", frame, notes,
                                                                  data=pd.concat(data)[cols]),))  # fmt: skip


def _split_term(term: str) -> tuple[str, str]:
    """formulaic's ``C(age_group)[T.> 70]`` as (``age_group``, ``> 70`` — the level compared with the reference);
    a numeric term as (its name, ``per unit``)."""
    if term.startswith("C(") and "[T." in term:
        return term[2 : term.index(")")], term.split("[T.", 1)[1].rstrip("]")
    return term, "per unit"


def _term_rows(summary: pd.DataFrame, ctx: Context, label: str | None = None,
               frame: pd.DataFrame | None = None) -> list[dict[str, Any]]:  # fmt: skip
    data = ctx.data if frame is None else frame
    rows = []
    for term, r in summary.iterrows():
        var, level = _split_term(str(term))
        if level == "per unit" and var in data and set(data[var].dropna().unique()) <= {0, 1}:
            level = "yes vs no"
        elif level != "per unit" and var in data:  # name the reference level (the first category, else sorted)
            values = data[var]
            first = (values.cat.categories[0] if isinstance(values.dtype, pd.CategoricalDtype)
                     else sorted(str(v) for v in values.dropna().unique())[0])  # fmt: skip
            level = f"{level} vs {first}"
        rows.append({"Variable": label or ctx.label(var), "Term": level if label is None else "",
                     "HR (95% CI)": f"{format_ratio(r['hr'])} ({format_ratio(r['hr_lower'])}–"
                                    f"{format_ratio(r['hr_upper'])})",
                     "p-value": format_pvalue(r["p"]), "_hr": r["hr"], "_lo": r["hr_lower"], "_hi": r["hr_upper"],
                     "_p": r["p"]})  # fmt: skip
    return rows


def _unrounded(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The numbers behind Cox term rows: hazard ratio, its 95% CI and the Wald p, unrounded."""
    frame = pd.DataFrame(rows)
    return frame[["Variable", "Term", "_hr", "_lo", "_hi", "_p"]].rename(
        columns={"_hr": "hr", "_lo": "hr_lower", "_hi": "hr_upper", "_p": "p_wald"})


def _formula_term(name: str, data: pd.DataFrame) -> str:
    if pd.api.types.is_numeric_dtype(data[name]) and data[name].dropna().nunique() > 2:
        return name
    return f"C({name})" if not pd.api.types.is_numeric_dtype(data[name]) else name


def _with_reference(d: pd.DataFrame, reference: dict[str, str]) -> pd.DataFrame:
    """The comparator level of each categorical variable first (formulaic's reference level), e.g. the controls
    so that a ratio reads "treated vs controls"."""
    for var, ref in reference.items():
        others = sorted(str(v) for v in d[var].dropna().unique() if str(v) != ref)
        if len(others) == d[var].dropna().astype(str).nunique():
            raise InputError(f"reference {ref!r} is not a value of {var!r} ({others})", table="plan",
                             column=f"reference.{var}")  # fmt: skip
        d = d.assign(**{var: pd.Categorical(d[var].astype(str).where(d[var].notna()), categories=[ref, *others])})
    return d


def cox_section(ctx: Context, a: sp.CoxAnalysis) -> Section:
    """Univariate Cox models, then a multivariate one (R ``coxph``; ``strata``, ``cluster`` and ``weights`` as
    the plan gives them). With a cluster the variable's test is the robust score test (the likelihood-ratio test
    assumes independent observations), and the Wald p-values use the robust variance."""
    ctx.require_known_at_origin(a.endpoint, [*a.univariate, *(a.multivariate or [])])
    ep = ctx.plan.endpoint(a.endpoint)
    d = ctx.timed(a.endpoint)
    uni_rows, p_by_var = [], {}
    design = [c for c in (a.strata, a.cluster, a.weights) if c]
    if design:
        d = d.dropna(subset=design)
    fit: dict[str, Any] = {"strata": a.strata, "cluster": a.cluster, "weights": a.weights,
                           "robust": a.weights is not None}
    variable_test = "robust score" if (a.cluster or a.weights) else "likelihood ratio"
    test_column = "Robust score p¹" if variable_test == "robust score" else "Likelihood-ratio p¹"
    d = _with_reference(d, a.reference)
    for var in a.univariate:
        sub = d.dropna(subset=[var])
        model = at.cox_ph(sub, "time", "status", formula=_formula_term(var, sub), **fit)
        p_by_var[var] = model.test(variable_test).p_value
        rows = _term_rows(model.summary, ctx, frame=sub)
        for k, row in enumerate(rows):  # the test that chose the variables is shown, once per variable
            row[test_column] = format_pvalue(p_by_var[var]) if k == 0 else ""
            row["_lr"] = p_by_var[var]
        uni_rows += rows
    chosen = a.multivariate if a.multivariate is not None else [v for v in a.univariate if p_by_var[v] < a.select_p]
    hidden = ["_hr", "_lo", "_hi", "_p"]
    stratified = f", stratified by {lower_first(ctx.label(a.strata))} (a baseline hazard per level)" if a.strata \
        else ""  # fmt: skip
    if a.weights:
        stratified += f", weighted by {lower_first(ctx.label(a.weights))}"
    if a.cluster or a.weights:
        stratified += ("; robust variance" + (f" clustered by {lower_first(ctx.label(a.cluster))} (R cluster())"
                                              if a.cluster else " (R robust = TRUE)"))  # fmt: skip
    selecting = a.multivariate is None and len(a.univariate) > 1
    first_note = ("¹ Robust score test of the variable (all its terms; R coxph's robust score test)" if a.cluster
                  or a.weights else "¹ Likelihood-ratio test of the variable (all its terms)")  # fmt: skip
    uni_notes = (f"Cox proportional hazards (Efron ties, R coxph){stratified}; p-value: Wald test of each term",
                 first_note + (", the test that chose the multivariate model's variables" if selecting else ""))
    single = len(a.univariate) == 1
    caption = f"{ep.label}: Cox model" if single else f"{ep.label}: univariate Cox models"
    test_values = {f"p_{variable_test.replace(' ', '_')}": [r["_lr"] for r in uni_rows]}
    tables = [TableBlock(caption, pd.DataFrame(uni_rows).drop(columns=[*hidden, "_lr"]), uni_notes,
                         data=_unrounded(uni_rows).assign(**test_values))]
    figures = [] if single else [FigureBlock(f"{ep.label}: hazard ratios, univariate models",
                                             plot_forest(pd.DataFrame(uni_rows)))]  # fmt: skip
    note = f"Variables for the multivariate model: {', '.join(ctx.label(v) for v in chosen) or 'none'}"
    note += "" if a.multivariate is not None else f" (univariate {variable_test} p < {a.select_p:g})."
    notes = (note,) if len(a.univariate) > 1 or a.multivariate is not None else ()
    if len(chosen) >= 2:
        sub = d.dropna(subset=chosen)
        model = at.cox_ph(sub, "time", "status", formula=" + ".join(_formula_term(v, sub) for v in chosen), **fit)
        rows = _term_rows(model.summary, ctx, frame=sub)
        tables.append(TableBlock(f"{ep.label}: multivariate Cox model (n = {model.n}, events = {model.n_events})",
                                 pd.DataFrame(rows).drop(columns=hidden),
                                 (f"Cox proportional hazards (Efron ties, R coxph){stratified}; Wald p-values",),
                                 data=_unrounded(rows)))  # fmt: skip
        figures.append(FigureBlock(f"{ep.label}: hazard ratios, multivariate model", plot_forest(pd.DataFrame(rows))))
    title = f"{ep.label}: Cox regression" + (f", stratified by {lower_first(ctx.label(a.strata))}" if a.strata else "")
    return Section(title, notes, tuple(tables), tuple(figures))


def time_dependent_cox_section(ctx: Context, a: sp.TimeDependentCoxAnalysis) -> Section:
    """"More than N courses" as a covariate that switches on at the start of course N + 1 (no immortal time)."""
    ep = ctx.plan.endpoint(a.endpoint)
    d = ctx.timed(a.endpoint)
    origin = ctx.origin_dates(a.endpoint)
    courses = ctx.records["courses"]
    nth = courses[courses["number"] == a.courses_above + 1]
    day = (nth["start_date"] - nth["patient_id"].map(origin)).dt.days / ctx.scale
    changes = pd.DataFrame({"patient_id": nth["patient_id"], "value": 1.0, "day": day})
    changes = changes.dropna(subset=["day"])
    cp = counting_process(d[["patient_id", "time", "status"]], "time", "status", changes, "more_courses")
    model = at.cox_ph(cp, "stop", "status", covariates=["more_courses"], entry="start")
    fixed = at.cox_ph(d.assign(more_courses=(d["n_courses"] > a.courses_above).astype(float)), "time", "status",
                      covariates=["more_courses"])  # fmt: skip
    rows = _term_rows(model.summary, ctx, f"> {a.courses_above} courses, time-dependent")
    rows += _term_rows(fixed.summary, ctx, f"> {a.courses_above} courses, fixed at baseline (immortal-time biased)")
    text = (f"The number of courses is only known as treatment goes on, so comparing patients by their final number "
            f"of courses credits the survival needed to receive them (immortal-time bias). The time-dependent model "
            f"counts a patient in the '> {a.courses_above} courses' group only from the start of course "
            f"{a.courses_above + 1} ({len(cp)} counting-process intervals for {len(d)} patients).")  # fmt: skip
    table = TableBlock(f"{ep.label}: more than {a.courses_above} courses", pd.DataFrame(rows).drop(
        columns=["Term", "_hr", "_lo", "_hi", "_p"]), ("Cox model on (start, stop] intervals (R coxph with tmerge); "
        f"course starts counted from the endpoint's origin ({ep.origin_label})",),
        data=_unrounded(rows).drop(columns="Term"))  # fmt: skip
    return Section(f"{ep.label}: courses as a time-dependent covariate", (text,), (table,))


KIND_LABELS = {"cgvhd": "chronic GVHD", "cgvhd_systemic": "chronic GVHD needing systemic therapy",
               "agvhd_2_4": "grade II–IV acute GVHD", "agvhd_3_4": "grade III–IV acute GVHD"}  # fmt: skip


def _competing_label(ep: Any) -> str:
    """The competing event as a report names it: "Death without relapse" for relapse with death competing."""
    competing = " or ".join(KIND_LABELS.get(k, k.replace("_", " ")) for k in ep.competing)
    events = " or ".join(KIND_LABELS.get(k, k.replace("_", " ")) for k in ep.events)
    return f"{competing.capitalize()} without {events}" if competing == "death" else competing.capitalize()


def competing_section(ctx: Context, a: sp.CompetingAnalysis) -> Section:
    """Cumulative incidence of the endpoint's event (and, with ``both_causes``, of the competing event, from the
    same fit) overall and per group at the plan's time points, Gray's test of each grouping (stratified by
    ``strata`` if given), a figure per grouping (one of everyone without a grouping), and Fine–Gray models."""
    ctx.require_known_at_origin(a.endpoint, [*a.by, *a.fine_gray, *([a.strata] if a.strata else [])])
    ep = ctx.plan.endpoint(a.endpoint)
    d = ctx.timed(a.endpoint)
    if a.strata:
        d = d.dropna(subset=[a.strata])
    competing = ", ".join(k.replace("_", " ") for k in ep.competing)
    figures, rows, tables = [], [], []
    points = ctx.time_points(a.endpoint, default_years=(1, 3, 5))
    xlabel = f"Time since {ep.origin_label} ({ctx.unit})"
    causes = [(1, ep.label)] + ([(2, f"{_competing_label(ep)} (competing event, same analysis)")]
                                if a.both_causes else [])  # fmt: skip
    test_name = "Gray's test" + (" stratified by " + lower_first(ctx.label(a.strata)) if a.strata else "")
    overall = at.cumulative_incidence(d, "time", "status")
    for cause, what in causes:
        row = {"Event": what, "Group": "All analysed", "N": len(d)}
        est = _cause_at(overall, cause, points, d)
        row |= {label: _estimate_cell(r) for label, (_, r) in zip([p[0] for p in points], est.iterrows(), strict=True)}
        rows.append(row | ({"p-value": ""} if a.by else {}))
    if not a.by:
        figures.append(FigureBlock(f"{ep.label} and {_competing_label(ep).lower()} (Aalen–Johansen, 95% CI)",
                                   plot_cumulative_incidence(overall, xlabel=xlabel, labels=[ep.label.split(" (")[0],
                                                             _competing_label(ep)], figsize=(7.0, 4.6))))  # fmt: skip
    for by in a.by:
        sub = d.dropna(subset=[by])
        order = ctx.ordered(sub, by)
        sub = sub.assign(group=pd.Categorical(sub[by].astype(str), categories=order))
        fit = at.cumulative_incidence(sub, "time", "status", by="group")
        tests = {cause: at.gray_test(sub, "time", "status", by="group", cause=cause, strata=a.strata)
                 for cause, _ in causes}  # fmt: skip
        for cause, what in causes:
            for g in order:
                mine = sub[sub["group"] == g]
                row = {"Event": what, "Group": f"{ctx.label(by)}: {g}", "N": len(mine)}
                est = _cause_at(at.cumulative_incidence(mine, "time", "status"), cause, points, mine)
                row |= {label: _estimate_cell(r) for label, (_, r) in zip([p[0] for p in points], est.iterrows(),
                                                                          strict=True)}  # fmt: skip
                row["p-value"] = format_pvalue(tests[cause].p_value) + "¹" if g == order[0] else ""
                rows.append(row)
        gray = tests[1]
        figures.append(FigureBlock(f"{ep.label} by {ctx.label(by)} ({test_name} p {format_pvalue(gray.p_value)})",
                                   plot_cumulative_incidence(fit, cause=1, pvalue=gray.p_value, labels=order,
                                   test_name=test_name, xlabel=xlabel,
                                   ylabel=f"Cumulative incidence of {lower_first(ep.label.split(' (')[0])}",
                                   figsize=(7.0, 5.0))))  # fmt: skip
    frame = pd.DataFrame(rows)
    if not a.both_causes:
        frame = frame.drop(columns="Event")
    notes = ([f"¹ {test_name} (R cmprsk cuminc)"] if a.by else []) + [
        "Aalen–Johansen estimate, 95% CI log-log (cmprsk); 0% without an interval while no event has occurred; "
        "— beyond the group's last follow-up"]  # fmt: skip
    tables.append(TableBlock(f"{ep.label} (competing: {competing}; from {ep.origin_label})", frame, tuple(notes)))
    fg_rows = []
    for var in a.fine_gray:
        sub = _with_reference(d.dropna(subset=[var, *([a.cluster] if a.cluster else [])]), a.reference)
        model = at.fine_gray(sub, "time", "status", formula=_formula_term(var, sub), cause=1, cluster=a.cluster)
        for term, coefs in model.summary.iterrows():
            shr, lo, hi, p = (float(coefs[k]) for k in ("shr", "shr_lower", "shr_upper", "p"))
            level = _split_term(str(term))[1]
            if level != "per unit" and isinstance(sub[var].dtype, pd.CategoricalDtype):
                level = f"{level} vs {sub[var].cat.categories[0]}"
            fg_rows.append({"Variable": ctx.label(var), "Term": level,
                            "SHR (95% CI)": f"{format_ratio(shr)} ({format_ratio(lo)}–{format_ratio(hi)})",
                            "p-value": format_pvalue(p)})
    if fg_rows:
        tables.append(TableBlock(f"{ep.label}: Fine–Gray subdistribution hazards", pd.DataFrame(fg_rows),
                                 ("Fine–Gray model (R cmprsk crr), sandwich variance" + (
                                     f" clustered by {lower_first(ctx.label(a.cluster))} (Zhou et al. 2012; R "
                                     "crrSC crrc): a marginal comparison that allows for the correlation within "
                                     "clusters but does not compare within them (the stratified Gray test does)"
                                     if a.cluster else ""),)))  # fmt: skip
    return Section(ep.label, (), tuple(tables), tuple(figures))
