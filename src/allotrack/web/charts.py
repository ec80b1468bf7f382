"""Plotly figure specifications for the web pages' charts: plain JSON-ready dicts (``data``, ``layout``,
``config``), no HTML and no plotly import. The pages put each one in a ``<script type="application/json">`` data
element; ``static/app.js`` draws it with plotly.js served from our own origin (:mod:`allotrack.web.routes.assets`).

Only presentation: the numbers come computed from :mod:`allotrack.web.timeline` (a patient's counts, recovery
windows, chimerism, events) and :mod:`allotrack.web.dashboard` (Kaplan–Meier and cumulative-incidence curves with
their numbers at risk and test). Plotly chooses the ticks (dates, log decades); tooltips are written here, so each
names the date, the day from infusion, the value and its unit.
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape
from typing import Any

from allotrack.report.figures import PALETTE
from allotrack.web.dashboard import Curve, CurveSet
from allotrack.web.timeline import Event, Series, Timeline

Figure = dict[str, Any]
THRESHOLDS = {"ANC": 0.5, "PLT": 20.0}  # ×10⁹/L: neutrophil and platelet recovery (CIBMTR)
FLOOR = {"ANC": 0.01, "PLT": 1.0, "Donor chimerism": 0.001}  # a 0 is drawn here on the log axis (tooltip: 0)
TITLES = {"ANC": "ANC (×10⁹/L)", "PLT": "Platelets (×10⁹/L)"}
WINDOW = "rgba(0, 158, 115, 0.16)"  # recovery windows: light green
EVENT_STYLE = {  # lane: (marker symbol, colour)
    "Infusion": ("triangle-up", "#0072B2"), "Assessment": ("diamond", "#CC79A7"),
    "Adverse event": ("x", "#E69F00"), "Relapse": ("star", "#D55E00"), "Death": ("square", "#000000"),
}  # fmt: skip
FONT = {"family": "-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif", "size": 13, "color": "#1b1b1b"}
CONFIG = {"displaylogo": False, "responsive": True,
          "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
          "toImageButtonOptions": {"format": "png", "scale": 2}}  # fmt: skip
GRID = "#e6e6e6"
LOG = {"type": "log", "dtick": "D2", "minorloglabels": "complete"}  # ticks 0.1 0.2 0.5 1 2 5 10 …, written out
PATIENT_LEFT = 112  # px: room for the event lanes' names, the same in both patient charts so their dates align
GAP_DAYS = 7  # counts further apart are not joined by a line (no values between courses)


def _text(value: object) -> str:
    """Record text for a tooltip, legend or tick: plotly reads <b>, <a href> … in them; escaped, it shows them."""
    return escape(str(value), quote=False)


def _number(v: float) -> str:
    return f"{v:g}"


def day_text(day: int | None, infusion: int | None) -> str:
    """"day +7 after infusion 2", "day 0 (infusion 1)", "7 days before infusion 1", or "" without infusions."""
    if day is None or infusion is None:
        return ""
    if day == 0:
        return f"day 0 (infusion {infusion})"
    if day < 0:
        return f"{-day} day{'s' if day < -1 else ''} before infusion {infusion}"
    return f"day +{day} after infusion {infusion}"


def hover_texts(series: Series, label: str) -> list[str]:
    """One tooltip per value: date, day from infusion, the value with its unit (and the method, if recorded)."""
    notes = [_text(n) for n in series.notes] or [""] * len(series.values)
    return ["<br>".join(p for p in (f"{d} · {day_text(n, k)}" if k else f"{d}",
                                    f"{label} {_number(v)} {series.unit}", note) if p)
            for d, v, n, k, note in zip(series.dates, series.values, series.days, series.infusions, notes,
                                        strict=True)]  # fmt: skip


def _base_layout(height: int) -> dict[str, Any]:
    return {"height": height, "font": FONT, "paper_bgcolor": "white", "plot_bgcolor": "white",
            "margin": {"l": 70, "r": 20, "t": 40, "b": 50}, "hovermode": "closest",
            "hoverlabel": {"bgcolor": "white", "font": {"size": 12}, "align": "left"},
            "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"}}  # fmt: skip


def _axis(**extra: Any) -> dict[str, Any]:
    return {"showline": True, "linecolor": "#555", "ticks": "outside", "gridcolor": GRID, "zeroline": False,
            "automargin": True, **extra}  # fmt: skip


def _with_gaps(dates: list[str], values: list[Any], texts: list[str]) -> tuple[list[str], list[Any], list[str]]:
    """A break (None) between values more than ``GAP_DAYS`` apart, so the line does not bridge weeks without
    counts."""
    if len(dates) < 2:
        return dates, values, texts
    ordinal = [date.fromisoformat(d).toordinal() for d in dates]
    xs, ys, ts = [dates[0]], [values[0]], [texts[0]]
    for i in range(1, len(dates)):
        if ordinal[i] - ordinal[i - 1] > GAP_DAYS:
            xs.append(dates[i - 1])
            ys.append(None)
            ts.append("")
        xs.append(dates[i])
        ys.append(values[i])
        ts.append(texts[i])
    return xs, ys, ts


def date_range(t: Timeline) -> list[str]:
    """The x range shared by a patient's charts: every charted date, with 5 days either side."""
    dates = [*t.counts["ANC"].dates, *t.counts["PLT"].dates, *t.chimerism.dates, *(e.date for e in t.events)]
    lo, hi = date.fromisoformat(min(dates)), date.fromisoformat(max(dates))
    return [(lo - timedelta(days=5)).isoformat(), (hi + timedelta(days=5)).isoformat()]


def _line(series: Series, name: str, colour: str, yaxis: str, gaps: bool = True) -> dict[str, Any]:
    floor = FLOOR.get(series.name, 0.0)
    x, y, text = series.dates, [max(v, floor) for v in series.values], hover_texts(series, name)
    if gaps:
        x, y, text = _with_gaps(x, y, text)
    return {"type": "scatter", "mode": "lines+markers", "name": name, "x": x, "y": y, "xaxis": "x", "yaxis": yaxis,
            "connectgaps": False, "line": {"color": colour, "width": 1.5}, "marker": {"size": 4, "color": colour},
            "text": text, "hovertemplate": "%{text}<extra></extra>"}  # fmt: skip


def _threshold(value: float, text: str, yaxis: str) -> dict[str, Any]:
    return {"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": yaxis, "y0": value, "y1": value,
            "line": {"color": "#666", "width": 1, "dash": "dash"}, "layer": "above",
            "label": {"text": text, "textposition": "end", "yanchor": "bottom", "font": {"size": 11, "color": "#444"}}}


def _infusion_lines(events: list[Event]) -> list[dict[str, Any]]:
    return [{"type": "line", "xref": "x", "x0": e.date, "x1": e.date, "yref": "paper", "y0": 0, "y1": 1,
             "line": {"color": EVENT_STYLE["Infusion"][1], "width": 1, "dash": "dot"}, "layer": "below"}
            for e in events if e.kind == "Infusion"]  # fmt: skip


def _event_traces(events: list[Event], yaxis: str) -> list[dict[str, Any]]:
    out = []
    for kind, (symbol, colour) in EVENT_STYLE.items():
        mine = [e for e in events if e.kind == kind]
        if mine:
            out.append({"type": "scatter", "mode": "markers", "name": kind, "showlegend": False, "xaxis": "x",
                        "yaxis": yaxis, "x": [e.date for e in mine], "y": [kind] * len(mine),
                        "marker": {"symbol": symbol, "size": 10, "color": colour, "line": {"width": 1.5,
                                                                                           "color": colour}},
                        "text": [f"{e.date} · {day_text(e.day, e.infusion)}<br>{_text(e.label)}" if e.infusion
                                 else f"{e.date}<br>{_text(e.label)}" for e in mine],
                        "hovertemplate": "%{text}<extra></extra>"})  # fmt: skip
    return out


def counts_figure(t: Timeline) -> Figure | None:
    """ANC and platelets in two log panels sharing the date axis, with the recovery thresholds (ANC 0.5, platelets
    20 ×10⁹/L), each course's recovery window shaded in both panels, and a lane of dated events above; None when
    no count is recorded."""
    anc, plt = t.counts["ANC"], t.counts["PLT"]
    if not anc.values and not plt.values:
        return None
    lanes = [k for k in EVENT_STYLE if any(e.kind == k for e in t.events)]
    top = 0.13 + 0.035 * len(lanes) if lanes else 0.0
    gap = 0.07
    panel = (1 - top - gap) / 2 if lanes else (1 - gap) / 2
    layout = _base_layout(560 + 22 * len(lanes))
    layout["margin"].update(t=30, l=PATIENT_LEFT)
    layout["xaxis"] = _axis(type="date", anchor="y2", title={"text": "Date"}, hoverformat="%Y-%m-%d",
                            range=date_range(t))  # fmt: skip
    layout["yaxis"] = _axis(**LOG, domain=[panel + gap, 2 * panel + gap], title={"text": TITLES["ANC"]})
    layout["yaxis2"] = _axis(**LOG, domain=[0, panel], title={"text": TITLES["PLT"]})
    data = [_line(anc, "ANC", PALETTE[0], "y"), _line(plt, "Platelets", PALETTE[1], "y2")]
    if lanes:
        layout["yaxis3"] = _axis(type="category", domain=[1 - top + 0.05, 1], categoryorder="array",
                                 categoryarray=list(reversed(lanes)), showgrid=True, ticks="", showline=False,
                                 fixedrange=True, range=[-0.6, len(lanes) - 0.4])  # fmt: skip
        data += _event_traces(t.events, "y3")
    shapes = [_threshold(THRESHOLDS["ANC"], "ANC 0.5", "y"), _threshold(THRESHOLDS["PLT"], "PLT 20", "y2")]
    for i, w in enumerate(t.windows):
        for k, ref in enumerate(("y domain", "y2 domain")):
            shapes.append({"type": "rect", "xref": "x", "x0": w.start, "x1": w.end, "yref": ref, "y0": 0, "y1": 1,
                           "fillcolor": WINDOW, "line": {"width": 0}, "layer": "below",
                           "name": "Recovery window (MST rule)", "showlegend": i == 0 and k == 0,
                           "legendgroup": "windows"})  # fmt: skip
    layout["shapes"] = shapes + _infusion_lines(t.events)
    layout["meta"] = {"description": f"ANC and platelet counts with {len(t.windows)} recovery window(s)"}
    return {"data": data, "layout": layout, "config": CONFIG}


def chimerism_figure(t: Timeline) -> Figure | None:
    """Donor chimerism (%) on a log axis with the limit of detection; None when none is recorded."""
    ch = t.chimerism
    if not ch.values:
        return None
    layout = _base_layout(300)
    layout["xaxis"] = _axis(type="date", title={"text": "Date"}, hoverformat="%Y-%m-%d", range=date_range(t))
    layout["yaxis"] = _axis(**LOG, title={"text": "Donor chimerism (%)"})
    layout["shapes"] = [_threshold(t.lod, f"limit of detection {_number(t.lod)} %", "y")] if t.lod else []
    layout["shapes"] += _infusion_lines(t.events)
    layout["showlegend"] = False
    layout["margin"].update(t=12, l=PATIENT_LEFT)  # the dates under those of the counts
    layout["meta"] = {"description": f"donor chimerism, {len(ch.values)} values"}
    return {"data": [_line(ch, "Donor", PALETTE[2], "y", gaps=False)], "layout": layout, "config": CONFIG}


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _percent(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def _curve_traces(c: Curve, colour: str, unit: str, bands: bool) -> list[dict[str, Any]]:
    name = _text(c.group)
    band = {"type": "scatter", "mode": "lines", "x": c.time, "line": {"width": 0, "shape": "hv"}, "xaxis": "x",
            "yaxis": "y", "hoverinfo": "skip", "showlegend": False, "legendgroup": name}  # fmt: skip
    text = [f"{name} · {unit} {_number(round(t, 1))}<br>{_percent(e)} (95 % CI {_percent(lo)}–"
            f"{_percent(hi)})" + (f"<br>{n:.0f} at risk" if n is not None else "")
            for t, e, lo, hi, n in zip(c.time, c.estimate, c.lower, c.upper, c.n_risk, strict=True)]  # fmt: skip
    out: list[dict[str, Any]] = [{**band, "y": c.upper, "name": f"{name} upper"},
                                 {**band, "y": c.lower, "name": f"{name} lower", "fill": "tonexty",
                                  "fillcolor": _rgba(colour, 0.13)}] if bands else []  # fmt: skip
    out += [{"type": "scatter", "mode": "lines", "name": name, "x": c.time, "y": c.estimate, "xaxis": "x",
            "yaxis": "y", "line": {"color": colour, "width": 2, "shape": "hv"}, "legendgroup": name,
            "text": text, "hovertemplate": "%{text}<extra></extra>"}]  # fmt: skip
    if c.censored_time:
        out.append({"type": "scatter", "mode": "markers", "name": f"{name} censored", "x": c.censored_time,
                    "y": c.censored_estimate, "xaxis": "x", "yaxis": "y", "showlegend": False,
                    "legendgroup": name, "hoverinfo": "skip",
                    "marker": {"symbol": "line-ns-open", "size": 9, "color": colour, "line": {"width": 1.5}}})
    return out


def curves_figure(cs: CurveSet) -> Figure:
    """Step curves by group with 95 % confidence bands (two groups; with more the overlapping bands would hide
    the curves: the limits are in the tooltips) and censoring marks for Kaplan–Meier, the test's p-value as the
    title, and the numbers at risk under the axis at its ticks, one coloured row per group."""
    unit = "month" if cs.xlabel.lower().startswith("months") else "time"
    data = []
    for i, c in enumerate(cs.curves):
        data += _curve_traces(c, PALETTE[i % len(PALETTE)], unit, bands=len(cs.curves) <= 2)
    groups = [c.group for c in cs.curves]
    for i, g in enumerate(groups):
        counts = cs.at_risk.get(g, [])
        data.append({"type": "scatter", "mode": "text", "name": f"{_text(g)} at risk",
                     "x": cs.breaks[: len(counts)], "y": [_text(g)] * len(counts),
                     "text": [f"{n:.0f}" for n in counts], "xaxis": "x2", "yaxis": "y2",
                     "textfont": {"color": PALETTE[i % len(PALETTE)], "size": 12}, "showlegend": False,
                     "hoverinfo": "skip", "cliponaxis": False})  # fmt: skip
    top = max((e for c in cs.curves for e in c.estimate), default=0.0)
    y_max = 1.02 if cs.kind == "survival" else min(1.02, max(0.1, top * 1.25))
    span = cs.breaks[-1] - cs.breaks[0] if len(cs.breaks) > 1 else 1.0
    x_range = [cs.breaks[0] - 0.02 * span, cs.breaks[-1] + 0.02 * span]
    table = 0.055 * len(groups) + 0.04
    layout = _base_layout(440 + 22 * len(groups))
    layout["margin"] = {"l": 90, "r": 20, "t": 58, "b": 20}
    layout["title"] = {"text": cs.p_text, "x": 0, "xref": "paper", "y": 0.985, "yref": "container",
                       "font": {"size": 13}}  # fmt: skip
    layout["legend"] = {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.01, "yanchor": "bottom"}
    layout["xaxis"] = _axis(anchor="y", range=x_range, tickvals=cs.breaks, title={"text": cs.xlabel})
    layout["yaxis"] = _axis(domain=[table + 0.14, 1], range=[0, y_max], tickformat=".0%", title={"text": cs.ylabel})
    layout["xaxis2"] = {"anchor": "y2", "matches": "x", "range": x_range, "visible": False}
    layout["yaxis2"] = {"domain": [0, table], "type": "category", "categoryorder": "array",
                        "categoryarray": [_text(g) for g in reversed(groups)], "showgrid": False, "showline": False,
                        "ticks": "",
                        "fixedrange": True, "range": [-0.5, len(groups) - 0.5]}  # fmt: skip
    layout["annotations"] = [{"text": "Number at risk", "xref": "paper", "yref": "paper", "x": 0, "y": table + 0.01,
                              "xanchor": "left", "yanchor": "bottom", "showarrow": False, "font": {"size": 12}}]
    layout["meta"] = {"description": f"{cs.ylabel} by group; {cs.p_text}"}
    return {"data": data, "layout": layout, "config": CONFIG}


def patient_charts(t: Timeline) -> dict[str, Figure | None]:
    return {"counts": counts_figure(t), "chimerism": chimerism_figure(t)}


def dashboard_charts(figures: dict[str, CurveSet | str]) -> dict[str, Figure | str]:
    """Each dashboard figure drawn, or its message when it could not be estimated."""
    return {k: curves_figure(v) if isinstance(v, CurveSet) else v for k, v in figures.items()}
