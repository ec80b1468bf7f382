"""Journal-style figures: Kaplan–Meier curves with censor marks, CI bands, an aligned numbers-at-risk table
and the test p-value (the layout of ggsurvfit/survminer, in matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from allotrack.report.format import format_pvalue

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from allotrack.stats.kaplan_meier import KaplanMeier

# Okabe–Ito colour-blind-safe palette
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def _nice_breaks(tmax: float, n: int = 6) -> np.ndarray:
    raw = tmax / max(n - 1, 1)
    mag = 10 ** np.floor(np.log10(raw)) if raw > 0 else 1.0
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    return np.arange(0, tmax + step * 0.5, step)


def plot_survival(
    fit: KaplanMeier,
    *,
    conf_int: bool = True,
    risk_table: bool = True,
    censor_marks: bool = True,
    pvalue: float | None = None,
    test_name: str = "Log-rank",
    breaks: Sequence[float] | None = None,
    xlabel: str = "Time",
    ylabel: str = "Survival probability",
    title: str | None = None,
    labels: Sequence[str] | None = None,
    figsize: tuple[float, float] | None = None,
    save: str | Path | Sequence[str | Path] | None = None,
) -> Figure:
    """Draw ``fit`` and return the matplotlib Figure; ``save`` writes one or more files (.png, .svg, .pdf).

    The numbers at risk under the axis are ``fit.at(breaks).n_risk`` (R ``summary(fit, times)``), one row
    per group, aligned with the x-axis ticks.
    """
    import matplotlib.pyplot as plt

    curves = fit.curves
    names = list(labels) if labels is not None else [str(c.label) for c in curves]
    tmax = max(float(c.time.max()) for c in curves)
    ticks = np.asarray(breaks, dtype=float) if breaks is not None else _nice_breaks(tmax)
    n_rows = len(curves) if risk_table else 0
    height = 4.2 + 0.28 * n_rows + (0.5 if risk_table else 0)
    fig = plt.figure(figsize=figsize or (6.4, height), dpi=150)
    ratios = [4.2, 0.28 * n_rows + 0.45] if risk_table else [1]
    grid = fig.add_gridspec(len(ratios), 1, height_ratios=ratios, hspace=0.22 if risk_table else 0)
    ax = fig.add_subplot(grid[0])
    for i, c in enumerate(curves):
        color = PALETTE[i % len(PALETTE)]
        t = np.concatenate(([0.0], c.time))
        s = np.concatenate(([1.0], c.surv))
        ax.step(t, s, where="post", color=color, lw=1.6, label=names[i])
        if conf_int:
            lo = np.concatenate(([1.0], c.lower))
            hi = np.concatenate(([1.0], c.upper))
            ok = ~(np.isnan(lo) | np.isnan(hi))
            ax.fill_between(t[ok], lo[ok], hi[ok], step="post", color=color, alpha=0.15, lw=0)
        if censor_marks:
            cens = c.n_censor > 0
            ax.plot(c.time[cens], c.surv[cens], ls="none", marker="|", ms=6, mew=1.1, color=color)
    ax.set_ylim(0, 1.02)
    span = ticks[-1] - ticks[0]
    ax.set_xlim(ticks[0] - 0.03 * span, ticks[-1] + 0.03 * span)
    ax.set_xticks(ticks)
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="0.9", lw=0.6)
    if len(curves) > 1:
        ax.legend(frameon=False, loc="upper right", fontsize=9)
    if pvalue is not None:
        ax.text(
            0.03,
            0.05,
            f"{test_name} {format_pvalue(pvalue, prepend_p=True)}",
            transform=ax.transAxes,
            fontsize=9,
        )
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    if risk_table:
        ax.tick_params(labelbottom=False)
        tab = fig.add_subplot(grid[1], sharex=ax)
        at_risk = fit.at(ticks)
        for i, c in enumerate(curves):
            row = at_risk[at_risk["group"] == c.label]
            y = n_rows - 1 - i
            for t_, n_ in zip(row["time"], row["n_risk"], strict=True):
                tab.text(
                    t_,
                    y,
                    f"{n_:.0f}" if float(n_).is_integer() else f"{n_:.1f}",
                    ha="center",
                    va="center",
                    fontsize=8.5,
                    color=PALETTE[i % len(PALETTE)],
                )
        tab.set_ylim(-0.6, n_rows - 0.4)
        tab.set_yticks(range(n_rows))
        tab.set_yticklabels(list(reversed(names)), fontsize=8.5)
        for lbl, i in zip(tab.get_yticklabels(), reversed(range(n_rows)), strict=True):
            lbl.set_color(PALETTE[i % len(PALETTE)])
        tab.tick_params(axis="y", length=0, pad=14)
        tab.spines[["top", "right", "left", "bottom"]].set_visible(False)
        tab.tick_params(axis="x", length=0)
        tab.set_xlabel(xlabel)
        tab.set_title("Number at risk", fontsize=9, loc="left", pad=2)
    else:
        ax.set_xlabel(xlabel)
    fig.align_ylabels()
    if save is not None:
        paths = [save] if isinstance(save, str | Path) else list(save)
        for path in paths:
            fig.savefig(path, bbox_inches="tight")
    return fig
