"""Journal-style figures: Kaplan–Meier curves with censor marks, CI bands, an aligned numbers-at-risk table
and the test p-value (the layout of ggsurvfit/survminer, in matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from allotrack.report.format import format_pvalue

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from allotrack.stats.competing import CumulativeIncidence
    from allotrack.stats.kaplan_meier import KaplanMeier

# Okabe–Ito colour-blind-safe palette
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def _nice_breaks(tmax: float, n: int = 6) -> np.ndarray:
    raw = tmax / max(n - 1, 1)
    mag = 10 ** np.floor(np.log10(raw)) if raw > 0 else 1.0
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    return np.arange(0, tmax + step * 0.5, step)


def _risk_table(
    fig: Figure, cell: Any, ax: Any, ticks: np.ndarray, names: Sequence[str], counts: Sequence[np.ndarray], xlabel: str
) -> None:
    """Numbers at risk under the main axis, one coloured row per group, aligned with the x ticks."""
    ax.tick_params(labelbottom=False)
    tab = fig.add_subplot(cell, sharex=ax)
    n_rows = len(names)
    for i, row in enumerate(counts):
        y = n_rows - 1 - i
        for t_, n_ in zip(ticks, row, strict=True):
            text = f"{n_:.0f}" if float(n_).is_integer() else f"{n_:.1f}"
            tab.text(t_, y, text, ha="center", va="center", fontsize=8.5, color=PALETTE[i % len(PALETTE)])
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


def _layout(n_rows: int, risk_table: bool, figsize: tuple[float, float] | None) -> tuple[Figure, Any, Any]:
    import matplotlib.pyplot as plt

    height = 4.2 + 0.28 * n_rows + (0.5 if risk_table else 0)
    fig = plt.figure(figsize=figsize or (6.4, height), dpi=150)
    ratios = [4.2, 0.28 * n_rows + 0.45] if risk_table else [1]
    grid = fig.add_gridspec(len(ratios), 1, height_ratios=ratios, hspace=0.22 if risk_table else 0)
    return fig, grid, fig.add_subplot(grid[0])


def _save(fig: Figure, save: str | Path | Sequence[str | Path] | None) -> None:
    if save is None:
        return
    for path in [save] if isinstance(save, str | Path) else list(save):
        fig.savefig(path, bbox_inches="tight")


def _style_axis(ax: Any, ticks: np.ndarray, ylabel: str, title: str | None) -> None:
    span = ticks[-1] - ticks[0]
    ax.set_xlim(ticks[0] - 0.03 * span, ticks[-1] + 0.03 * span)
    ax.set_xticks(ticks)
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="0.9", lw=0.6)
    if title:
        ax.set_title(title, fontsize=11, loc="left")


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
    curves, names = _in_order(list(fit.curves), [str(c.label) for c in fit.curves], labels)
    tmax = max(float(c.time.max()) for c in curves)
    ticks = np.asarray(breaks, dtype=float) if breaks is not None else _nice_breaks(tmax)
    fig, grid, ax = _layout(len(curves) if risk_table else 0, risk_table, figsize)
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
    _style_axis(ax, ticks, ylabel, title)
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
    if risk_table:
        at_risk = fit.at(ticks)
        counts = [at_risk[at_risk["group"] == c.label]["n_risk"].to_numpy() for c in curves]
        _risk_table(fig, grid[1], ax, ticks, names, counts, xlabel)
    else:
        ax.set_xlabel(xlabel)
    fig.align_ylabels()
    _save(fig, save)
    return fig


def _in_order(curves: list[Any], keys: list[str], labels: Sequence[str] | None) -> tuple[list[Any], list[str]]:
    """The curves and their legend names: ``labels`` that name the groups themselves (in any order, e.g. a plan's
    order of levels) reorder the curves to match; other ``labels`` rename the curves in the fit's order."""
    if labels is None:
        return curves, keys
    wanted = [str(x) for x in labels]
    if sorted(wanted) == sorted(keys):
        return [curves[keys.index(k)] for k in wanted], wanted
    if len(wanted) != len(curves):
        raise ValueError(f"{len(wanted)} labels for {len(curves)} curves")
    return curves, wanted


def _at_risk(all_cause: tuple[np.ndarray, np.ndarray, np.ndarray], ticks: np.ndarray) -> np.ndarray:
    """Number at risk at each tick: at the first distinct time ≥ t, 0 beyond the last (as summary.survfit)."""
    ut, n, _ = all_cause
    idx = np.searchsorted(ut, ticks, side="left")
    return np.where(idx < ut.size, n[np.minimum(idx, ut.size - 1)], 0.0)


def plot_cumulative_incidence(
    fit: CumulativeIncidence,
    *,
    cause: Any = None,
    conf_int: bool = True,
    risk_table: bool = True,
    pvalue: float | None = None,
    test_name: str = "Gray's test",
    breaks: Sequence[float] | None = None,
    xlabel: str = "Time",
    ylabel: str = "Cumulative incidence",
    title: str | None = None,
    labels: Sequence[str] | None = None,
    figsize: tuple[float, float] | None = None,
    save: str | Path | Sequence[str | Path] | None = None,
) -> Figure:
    """Cumulative incidence curves (one per group; one per cause when there is one group, else ``cause``
    chooses the cause, default the first) with CI bands, numbers at risk and the Gray's-test p-value."""
    curves = [c for c in fit.curves if cause is None or c.cause == cause]
    if len(fit.groups) > 1:
        chosen = fit.causes[0] if cause is None else cause
        curves = [c for c in fit.curves if c.cause == chosen]
    default = [str(c.group) if len(fit.groups) > 1 else str(c.cause) for c in curves]
    curves, names = _in_order(curves, default, labels)
    tmax = max(c.last_time for c in curves)
    ticks = np.asarray(breaks, dtype=float) if breaks is not None else _nice_breaks(tmax)
    n_table = len(fit.groups) if risk_table else 0
    fig, grid, ax = _layout(n_table, risk_table, figsize)
    for i, c in enumerate(curves):
        color = PALETTE[i % len(PALETTE)]
        t = np.concatenate(([0.0], c.time, [c.last_time]))
        f = np.concatenate(([0.0], c.estimate, [c.estimate[-1] if c.estimate.size else 0.0]))
        ax.step(t, f, where="post", color=color, lw=1.6, label=names[i])
        if conf_int and c.estimate.size:
            from allotrack.stats.competing import cif_confint

            lo, hi = cif_confint(c.estimate, c.variance, fit.conf_type, fit.conf_level)
            lo = np.concatenate(([0.0], lo, [lo[-1]]))
            hi = np.concatenate(([0.0], hi, [hi[-1]]))
            ax.fill_between(t, lo, hi, step="post", color=color, alpha=0.15, lw=0)
    top = max(float(np.nanmax(np.concatenate(([0.05], c.estimate)))) for c in curves)
    ax.set_ylim(0, min(1.02, max(0.1, top * 1.25)))
    _style_axis(ax, ticks, ylabel, title)
    if len(curves) > 1:
        ax.legend(frameon=False, loc="upper left", fontsize=9)
    if pvalue is not None:
        ax.text(0.97, 0.05, f"{test_name} {format_pvalue(pvalue, prepend_p=True)}", transform=ax.transAxes,
                fontsize=9, ha="right")  # fmt: skip
    if risk_table:
        group_names = [str(g) for g in fit.groups] if len(fit.groups) > 1 else ["All"]
        counts = [_at_risk(ac, ticks) for ac in fit.all_cause]
        if len(fit.groups) > 1:  # the rows in the order (and with the names) of the curves
            shown = [str(c.group) for c in curves]
            counts = [counts[group_names.index(g)] for g in shown]
            group_names = names
        _risk_table(fig, grid[1], ax, ticks, group_names, counts, xlabel)
    else:
        ax.set_xlabel(xlabel)
    fig.align_ylabels()
    _save(fig, save)
    return fig


def plot_stacked_incidence(
    fit: CumulativeIncidence,
    *,
    group: Any = None,
    labels: Sequence[str] | None = None,
    remainder_label: str = "Alive without event",
    breaks: Sequence[float] | None = None,
    xlabel: str = "Time",
    ylabel: str = "Probability",
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    save: str | Path | Sequence[str | Path] | None = None,
) -> Figure:
    """Stacked cumulative incidence of every cause plus the remaining probability (e.g. relapse, NRM and
    alive in remission), which add to 1 at every time, for one group."""
    import matplotlib.pyplot as plt

    chosen = fit.groups[0] if group is None else group
    if chosen not in fit.groups:
        from allotrack.errors import InputError

        raise InputError(f"group {chosen!r} is not in the fit (groups: {fit.groups})")
    curves = [c for c in fit.curves if c.group == chosen]
    grid_t = np.unique(np.concatenate([[0.0], *[c.time for c in curves], [curves[0].last_time]]))
    layers = []
    for c in curves:
        idx = np.searchsorted(c.time, grid_t, side="right") - 1
        layers.append(np.concatenate(([0.0], c.estimate))[idx + 1])
    remainder = 1 - np.sum(layers, axis=0)
    names = list(labels) if labels is not None else [str(c.cause) for c in curves]
    fig, ax = plt.subplots(figsize=figsize or (6.4, 4.2), dpi=150)
    ax.stackplot(grid_t, *layers, remainder, labels=[*names, remainder_label], step="post",
                 colors=[*PALETTE[: len(curves)], "#E8E8E8"], alpha=0.9)  # fmt: skip
    ticks = np.asarray(breaks, dtype=float) if breaks is not None else _nice_breaks(float(grid_t[-1]))
    ax.set_ylim(0, 1)
    _style_axis(ax, ticks, ylabel, title)
    ax.set_xlabel(xlabel)
    ax.legend(frameon=False, loc="upper right", fontsize=8.5)
    _save(fig, save)
    return fig
