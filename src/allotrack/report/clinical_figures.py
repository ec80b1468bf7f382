"""Study figures beyond survival curves: forest plot of hazard ratios, donor-chimerism kinetics per patient and
a swimmer plot of each patient's courses, infusions, remission, relapse and death."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from allotrack.records import views
from allotrack.records.dates import DAYS_PER_MONTH
from allotrack.records.schema import REMISSIONS, Records
from allotrack.report.format import format_pvalue, format_ratio


def plot_forest(rows: pd.DataFrame, xlabel: str = "Hazard ratio (95% CI, log scale)", p_label: str = "p") -> Figure:
    """Ratios with CIs on a log axis; ``rows`` has Variable, Term, _hr, _lo, _hi, _p (one row per term); each row's
    p-value is annotated as ``p_label`` (e.g. "interaction p" for subgroups)."""
    n = len(rows)
    fig, ax = plt.subplots(figsize=(8.0, 0.45 * n + 1.4))
    y = np.arange(n)[::-1]
    ax.errorbar(rows["_hr"], y, xerr=[rows["_hr"] - rows["_lo"], rows["_hi"] - rows["_hr"]], fmt="s", color="#1f4e79",
                ecolor="#1f4e79", capsize=3, markersize=5)  # fmt: skip
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    _ratio_ticks(ax, float(np.nanmin(rows["_lo"])), float(np.nanmax(rows["_hi"])))
    names = [f"{v}: {t}" if v and t and t != "per unit" else str(v or t)
             for v, t in zip(rows.get("Variable", [""] * n), rows["Term"], strict=True)]  # fmt: skip
    ax.set_yticks(y, names)
    for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
        ax.annotate(f"{format_ratio(r['_hr'])} ({format_ratio(r['_lo'])}–{format_ratio(r['_hi'])}), "
                    f"{p_label} {format_pvalue(r['_p'])}", (1.02, yi), xycoords=("axes fraction", "data"), va="center",
                    fontsize=8)  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.spines[["top", "right"]].set_visible(False)
    fig.subplots_adjust(left=0.35, right=0.68)
    return fig


def _ratio_ticks(ax: Any, low: float, high: float) -> None:
    """Plain ratio ticks on a log axis (0.1, 0.2, 0.5, 1, 2, 5, 10 …: no 10⁻¹ and no overlapping minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    candidates = [b * 10.0**e for e in range(-3, 4) for b in (1, 2, 5)]
    lo, hi = min(low, 1.0) if low > 0 else 0.1, max(high, 1.0)
    ticks = [t for t in candidates if lo / 1.5 <= t <= hi * 1.5]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_chimerism(chimerism: pd.DataFrame, patients: pd.DataFrame | None = None, unit: str = "months",
                   scale: float = DAYS_PER_MONTH, lod: float | None = None,
                   xlabel: str | None = None) -> Figure:  # fmt: skip
    """Donor chimerism (%) over time, one line per patient, log scale, with the limit of detection as a dashed
    line (the assay's ``lod_percent`` unless given); a result below it is drawn on the line. The time is the
    frame's ``time`` column if it has one (e.g. days since the latest infusion, with ``xlabel``), else the time
    since diagnosis (``patients``' ``diagnosis_date``) in ``unit``."""
    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    data = chimerism if "time" in chimerism.columns or patients is None else chimerism.merge(patients, on="patient_id")
    data = data.sort_values(["patient_id", "date"])
    lods = pd.to_numeric(data["lod_percent"], errors="coerce") if "lod_percent" in data else pd.Series(dtype=float)
    floor = lod if lod is not None else float(lods.min())
    for _, g in data.groupby("patient_id"):
        t = g["time"] if "time" in g.columns else (g["date"] - g["diagnosis_date"]).dt.days / scale
        shown = g["donor_percent"].astype(float).fillna(floor if floor == floor else 1e-3)  # below detection
        ax.plot(t, np.maximum(shown, floor if floor == floor else 1e-3), marker="o",
                markersize=3, linewidth=0.8, alpha=0.7)  # fmt: skip
    if floor == floor:
        ax.axhline(floor, color="black", linestyle="--", linewidth=1, label=f"Limit of detection ({floor:g} %)")
        ax.legend(frameon=False, loc="upper right")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel or f"Time since diagnosis ({unit})")
    ax.set_ylabel("Donor chimerism (%)")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def plot_swimmer(records: Records, unit: str = "months", scale: float = DAYS_PER_MONTH) -> Figure:
    """One bar per patient from diagnosis to last contact or death; markers for course starts, infusions, first
    remission, relapse and death; alive patients end in an arrow."""
    p = records["patients"].set_index("patient_id")["diagnosis_date"]
    fu = records["follow_up"].set_index("patient_id")["last_contact_date"]
    deaths = records["deaths"].set_index("patient_id")["date"]
    end = fu.reindex(p.index).combine_first(deaths.reindex(p.index))
    length = ((end - p).dt.days / scale).sort_values()
    order = list(length.index)
    ypos = {pid: i for i, pid in enumerate(order)}
    fig, ax = plt.subplots(figsize=(8.0, 0.22 * len(order) + 1.8))
    ax.barh(range(len(order)), length.to_numpy(), color="#d9e2ec", height=0.6)

    def marks(frame: pd.DataFrame, col: str, **style: object) -> None:
        f = frame[frame["patient_id"].isin(ypos)]
        t = (f[col] - f["patient_id"].map(p)).dt.days / scale
        ax.scatter(t, f["patient_id"].map(ypos), **style)  # type: ignore[arg-type]

    marks(records["courses"], "start_date", marker="|", color="#1f4e79", s=40, label="Course start")
    marks(records["infusions"], "date", marker=".", color="#2e7d32", s=12, label="Donor cell infusion")
    responses = views.responses(records)
    rem = responses[responses["category"].isin(REMISSIONS)]
    marks(rem.sort_values("date").drop_duplicates("patient_id"), "date", marker="D", color="#f9a825", s=18,
          label="First remission")  # fmt: skip
    marks(records["relapses"], "date", marker="X", color="#c62828", s=28, label="Relapse")
    marks(records["deaths"], "date", marker="s", color="black", s=18, label="Death")
    alive = [pid for pid in order if pid not in deaths.index]
    ax.scatter(length[alive], [ypos[a] for a in alive], marker=">", color="#1f4e79", s=22, label="Alive")
    ax.set_yticks(range(len(order)), order, fontsize=6)
    ax.set_xlabel(f"Time since diagnosis ({unit})")
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig
