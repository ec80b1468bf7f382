"""``allotrack power`` and ``allotrack dose``: sample size / power and dose finding from the command line.

Front door only: every command calls :mod:`allotrack.design.power` or :mod:`allotrack.design.dose_finding`.
``allotrack.cli`` imports this module to register the sub-apps, so this module reaches ``cli``'s helpers (the
console, ``_one_line_errors``, ``_frame_table``) only when a command runs, never at import.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd
import typer
from rich.markup import escape

from allotrack.errors import InputError

if TYPE_CHECKING:
    from allotrack.design.power import SampleSize

__all__ = ["dose_app", "power_app"]

power_app = typer.Typer(help="Sample size and power: two proportions, the log-rank test, competing risks (Fine–Gray).")
dose_app = typer.Typer(help="Dose finding: BOIN boundaries; 3 + 3 / BOIN decisions and the MTD from DLT records.")

P = ParamSpec("P")
R = TypeVar("R")

ALPHA_OPTION = typer.Option(0.05, "--alpha", help="Significance level.")
POWER_OPTION = typer.Option(
    None, "--power", help="Power to reach: solve for the size (default 0.8 when no size is given)."
)
ONE_SIDED_OPTION = typer.Option(False, "--one-sided", help="One-sided test at level alpha (default two-sided).")
ALLOCATION_OPTION = typer.Option(0.5, "--allocation", help="Share of the patients in group 1 (experimental).")
JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON records (for scripts).")
P_SAF_OPTION = typer.Option(None, "--p-saf", help="BOIN φ₁, the highest subtherapeutic DLT rate (default 0.6 target).")
P_TOX_OPTION = typer.Option(None, "--p-tox", help="BOIN φ₂, the lowest overly toxic DLT rate (default 1.4 target).")
CUTOFF_ELI_OPTION = typer.Option(
    None, "--cutoff-eli", help="BOIN elimination cut-off for P(DLT rate > target) (default 0.95)."
)

_DLT_COLUMNS = ("patient_id", "dose_level", "dlt")
_FLAGS = {"current_level": "--current"}  # library parameter → option, where the names differ


def _one_line_errors(prefix: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """``allotrack.cli._one_line_errors``, looked up when the command runs (cli imports this module)."""

    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(command)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            from allotrack import cli

            return cli._one_line_errors(prefix)(command)(*args, **kwargs)

        return wrapper

    return decorate


def _flag(parameter: str) -> str:
    return _FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


@contextmanager
def _options_named(*parameters: str, file: str | None = None) -> Iterator[None]:
    """Re-raise the library's InputError about one of ``parameters`` as one about its option (``--hazard-ratio:
    ...``), and one about the DLT records with the file's name."""
    try:
        yield
    except InputError as err:
        if err.column in parameters:
            raise InputError(f"{_flag(err.column)}: {err.rule}") from None
        if file is not None and err.table == "dlt_records":
            raise InputError(f"{file}: {err}") from None
        raise


def _alternative(one_sided: bool) -> str:
    return "one-sided" if one_sided else "two-sided"


def _target_power(power: float | None, **sizes: float | None) -> float | None:
    """The power to solve for: ``--power``, or 0.8 when no size (``--n``, ``--events``) is given; None when the
    power is computed. Refuses ``--power`` with a size, and two sizes."""
    given = [_flag(name) for name, value in sizes.items() if value is not None]
    if power is not None and given:
        raise InputError(
            f"give --power or {given[0]}, not both: --power solves for the size, {given[0]} computes the power"
        )
    if len(given) > 1:
        raise InputError(f"give one of {' and '.join(given)}, not both: the power is computed from one of them")
    return 0.8 if power is None and not given else power


# -------------------------------------------------------------------------------------------------------- power


def _size_summary(res: SampleSize) -> str:
    if res.n_per_group is not None and res.n_exact is not None:
        n1, n2 = res.n_per_group
        patients = (
            f"{n1} + {n2} = {res.n_total} patients"
            if res.solved_for != "power"
            else f"{res.n_exact[0]:g} + {res.n_exact[1]:g} patients"
        )
    else:
        patients = ""
    parts = []
    if res.events_exact is not None:
        parts.append(f"{res.events} events" if res.solved_for != "power" else f"{res.events_exact:g} events")
    if patients:
        parts.append(patients)
    if res.solved_for == "power":
        return f"Power {res.power:.4f} with {' and '.join(parts)} (alpha {res.alpha:g}, {res.alternative})"
    return f"{'; '.join(parts)} for power {res.power:g} (alpha {res.alpha:g}, {res.alternative})"


def _show_size(res: SampleSize, as_json: bool) -> None:
    """The result's ``to_frame()`` as JSON records, or as a table of its inputs and results and a summary line."""
    from allotrack import cli

    frame = res.to_frame()
    if as_json:  # exact floats (shortest round-trip repr); missing values as null
        records = [
            {key: None if pd.isna(value) else value for key, value in record.items()}
            for record in frame.to_dict(orient="records")
        ]
        typer.echo(json.dumps(records, allow_nan=False))
        return
    row = frame.iloc[0]
    shown = [
        (str(name), value) for name, value in row.items() if name not in ("design", "method") and not pd.isna(value)
    ]
    table = pd.DataFrame(
        {"quantity": [name for name, _ in shown], "value": pd.Series([value for _, value in shown], dtype=object)}
    )
    cli.console.print(cli._frame_table(res.method, table, digits=6))
    if res.n_per_group is None and res.design == "log-rank":
        cli.console.print(
            "Patients: give --event-probability, or --median-control / --hazard-control with "
            "--follow-up, to turn events into patients.",
            soft_wrap=True,
        )
    cli.console.print(_size_summary(res), soft_wrap=True)


@power_app.command("two-proportions")
@_one_line_errors("Power not computed:")
def power_two_proportions(
    p1: float = typer.Option(..., "--p1", help="Proportion in group 1 (experimental)."),
    p2: float = typer.Option(..., "--p2", help="Proportion in group 2 (control)."),
    alpha: float = ALPHA_OPTION,
    power: float | None = POWER_OPTION,
    n: float | None = typer.Option(None, "--n", help="Patients in group 1: compute the power for this size."),
    ratio: float = typer.Option(1.0, "--ratio", help="n2 / n1 (1: R power.prop.test; else Fleiss, Tytun & Ury)."),
    one_sided: bool = ONE_SIDED_OPTION,
    strict: bool = typer.Option(
        False, "--strict", help="Two-sided: add the rejections in the wrong direction (power.prop.test strict = TRUE)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Group sizes (or power) to compare two proportions (chi-square / z test without continuity correction)."""
    from allotrack.design.power import two_proportions

    target = _target_power(power, n=n)
    with _options_named("p1", "p2", "alpha", "power", "n", "ratio"):
        res = two_proportions(p1, p2, alpha, target, n, _alternative(one_sided), ratio, strict=strict)
    _show_size(res, as_json)


@power_app.command("logrank")
@_one_line_errors("Power not computed:")
def power_logrank(
    hazard_ratio: float = typer.Option(..., "--hazard-ratio", "--hr", help="Hazard ratio, group 1 / group 2."),
    method: str = typer.Option("schoenfeld", "--method", help="schoenfeld or freedman (1:1 only)."),
    alpha: float = ALPHA_OPTION,
    power: float | None = POWER_OPTION,
    events: float | None = typer.Option(None, "--events", help="Events: compute the power for this number."),
    n: float | None = typer.Option(
        None, "--n", help="Patients (both groups): compute the power; needs an event probability."
    ),
    allocation: float = ALLOCATION_OPTION,
    one_sided: bool = ONE_SIDED_OPTION,
    event_probability: float | None = typer.Option(
        None, "--event-probability", help="Probability that a patient's event is observed (turns events into patients)."
    ),
    median_control: float | None = typer.Option(
        None, "--median-control", help="Median survival of group 2 (exponential; with --follow-up)."
    ),
    hazard_control: float | None = typer.Option(
        None, "--hazard-control", help="Hazard of group 2 (exponential; with --follow-up)."
    ),
    accrual: float = typer.Option(
        0.0, "--accrual", help="Accrual period (uniform entry), in the time unit of the median / hazard."
    ),
    follow_up: float | None = typer.Option(None, "--follow-up", help="Follow-up after accrual closes."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Events (and patients) or power for the log-rank test: Schoenfeld (1981) or Freedman (1982)."""
    from allotrack.design.power import logrank

    target = _target_power(power, events=events, n=n)
    names = (
        "hazard_ratio",
        "method",
        "alpha",
        "power",
        "events",
        "n",
        "allocation",
        "event_probability",
        "median_control",
        "hazard_control",
        "accrual",
        "follow_up",
    )
    with _options_named(*names):
        res = logrank(
            hazard_ratio,
            alpha,
            target,
            events,
            n,
            method=method,
            allocation=allocation,
            alternative=_alternative(one_sided),
            event_probability=event_probability,
            median_control=median_control,
            hazard_control=hazard_control,
            accrual=accrual,
            follow_up=follow_up,
        )
    _show_size(res, as_json)


@power_app.command("competing-risks")
@_one_line_errors("Power not computed:")
def power_competing_risks(
    subdistribution_hr: float = typer.Option(
        ..., "--subdistribution-hr", "--shr", help="Subdistribution hazard ratio (Fine–Gray), group 1 / group 2."
    ),
    cif_control: float = typer.Option(
        ..., "--cif-control", help="Cumulative incidence of the cause of interest in group 2 at the end of follow-up."
    ),
    alpha: float = ALPHA_OPTION,
    power: float | None = POWER_OPTION,
    events: float | None = typer.Option(None, "--events", help="Events of the cause: compute the power."),
    n: float | None = typer.Option(None, "--n", help="Patients (both groups): compute the power."),
    allocation: float = ALLOCATION_OPTION,
    one_sided: bool = ONE_SIDED_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Events of the cause of interest and patients (or power) for a Fine–Gray comparison (Latouche et al. 2004)."""
    from allotrack.design.power import competing_risks

    target = _target_power(power, events=events, n=n)
    with _options_named("subdistribution_hr", "cif_control", "alpha", "power", "events", "n", "allocation"):
        res = competing_risks(
            subdistribution_hr,
            cif_control,
            alpha,
            target,
            events,
            n,
            allocation=allocation,
            alternative=_alternative(one_sided),
        )
    _show_size(res, as_json)


# --------------------------------------------------------------------------------------------------------- dose


def _estimate(value: float) -> str:
    return "-" if value != value else f"{value:.4g}"


@dose_app.command("boundaries")
@_one_line_errors("No boundaries:")
def dose_boundaries(
    target: float = typer.Option(..., "--target", help="Target DLT rate φ (0.05 to 0.6)."),
    max_n: int = typer.Option(30, "--max-n", help="Boundaries for 1 … max-n patients at a dose."),
    p_saf: float | None = P_SAF_OPTION,
    p_tox: float | None = P_TOX_OPTION,
    cutoff_eli: float | None = CUTOFF_ELI_OPTION,
) -> None:
    """The BOIN decision table (Liu & Yuan 2015; BOIN::get.boundary): DLTs among n patients at the current dose
    to escalate, de-escalate or eliminate it."""
    from allotrack import cli
    from allotrack.design.dose_finding import boin_boundaries

    with _options_named("target", "max_n", "p_saf", "p_tox", "cutoff_eli"):
        bounds = boin_boundaries(
            target, max_n, p_saf=p_saf, p_tox=p_tox, cutoff_eli=0.95 if cutoff_eli is None else cutoff_eli
        )
    table = bounds.table
    shown = pd.DataFrame(
        {
            "n": table["n"],
            "escalate if DLTs ≤": table["escalate_if_at_most"],
            "de-escalate if DLTs ≥": table["deescalate_if_at_least"],
            "eliminate if DLTs ≥": [str(v) if v is not pd.NA else "-" for v in table["eliminate_if_at_least"]],
        }
    )
    title = (
        f"BOIN boundaries, target {bounds.target:g} (p_saf {bounds.p_saf:g}, p_tox {bounds.p_tox:g}, "
        f"cutoff_eli {bounds.cutoff_eli:g})"
    )
    cli.console.print(cli._frame_table(title, shown))
    cli.console.print(
        f"lambda_e {bounds.lambda_e:.6f}, lambda_d {bounds.lambda_d:.6f}; '-': no elimination "
        "below 3 patients or where no count reaches the cut-off",
        soft_wrap=True,
    )


def _bad_lines(
    source: str, lines: np.ndarray, mask: np.ndarray, column: str, rule: str, values: Sequence[Any] | None = None
) -> InputError:
    """One line naming the first offending line (and how many more), the column, the value and the rule."""
    where = np.flatnonzero(mask)
    first = int(where[0])
    more = f" (and {where.size - 1} more line{'s' if where.size > 2 else ''})" if where.size > 1 else ""
    value = "" if values is None else f", value {values[first]!r}"
    return InputError(f"{source} line {int(lines[first])}, column '{column}'{value}: {rule}{more}")


def _number_label(text: str) -> int | float | None:
    """A numeric dose level as a number (whole numbers as int); None when the text is not a number."""
    try:
        x = float(text)
    except ValueError:
        return None
    if x != x or x in (float("inf"), float("-inf")):
        return None
    return int(x) if x.is_integer() else x


def _read_dlt_records(path: Path, levels: list[str] | None) -> tuple[pd.DataFrame, list[Any], str]:
    """The DLT records (patient_id, dose_level, dlt as 0/1), the dose levels lowest first and the file's name;
    every fault refused with the file, line, column, value and rule."""
    from allotrack.records.importers.files import read_source

    tables, _ = read_source(path)
    if len(tables) != 1:
        raise InputError(f"{path.name} holds {len(tables)} tables; give the DLT records as one CSV table")
    source = tables[0]
    name, lines = source.label, source.lines
    frame = source.frame.rename(columns=lambda c: str(c).strip())
    missing = [c for c in _DLT_COLUMNS if c not in frame.columns]
    if missing:
        header = ", ".join(str(c) for c in frame.columns)
        raise InputError(
            f"{name} line 1: no column {', '.join(repr(c) for c in missing)}; DLT records need the "
            f"columns patient_id, dose_level and dlt (the header has: {header})"
        )
    if not len(frame):
        raise InputError(f"{name} holds no DLT records (a header but no rows)")
    cells = {
        c: [v.strip() if isinstance(v, str) else "" if v is None or v != v else str(v) for v in frame[c]]
        for c in _DLT_COLUMNS
    }
    for column in _DLT_COLUMNS:
        empty = np.array([v == "" for v in cells[column]])
        if empty.any():
            raise _bad_lines(
                name, lines, empty, column, "value missing; every DLT record needs patient_id, dose_level and dlt"
            )
    seen: dict[str, int] = {}
    for i, pid in enumerate(cells["patient_id"]):  # the id itself is not shown: it may identify a patient
        if pid in seen:
            raise InputError(
                f"{name} line {int(lines[i])}, column 'patient_id': the patient of line "
                f"{int(lines[seen[pid]])} again; each patient has one DLT record (one dose level)"
            )
        seen[pid] = i
    dlt = [_number_label(v) for v in cells["dlt"]]
    bad = np.array([v not in (0, 1) for v in dlt])
    if bad.any():
        raise _bad_lines(name, lines, bad, "dlt", "dlt must be 0 (no DLT) or 1 (a DLT)", cells["dlt"])
    raw_levels = cells["dose_level"]
    labels: list[Any]
    if levels is not None:
        known = set(levels)
        unknown = np.array([v not in known for v in raw_levels])
        if unknown.any():
            raise _bad_lines(
                name,
                lines,
                unknown,
                "dose_level",
                f"not one of the dose levels given with --levels ({', '.join(levels)})",
                raw_levels,
            )
        dose: list[Any] = list(raw_levels)
        labels = list(levels)
    else:
        numbers = [_number_label(v) for v in raw_levels]
        text = np.array([v is None for v in numbers])
        if text.any():
            raise _bad_lines(
                name,
                lines,
                text,
                "dose_level",
                "the dose levels are not numbers, so their order is "
                "not known: give it with --levels (lowest first, comma-separated)",
                raw_levels,
            )
        dose = numbers
        labels = sorted(set(numbers))
    records = pd.DataFrame(
        {
            "patient_id": cells["patient_id"],
            "dose_level": pd.Series(dose, dtype=object),
            "dlt": np.array(dlt, dtype=np.int64),
        }
    )
    return records, labels, name


@dose_app.command("decide")
@_one_line_errors("No dose decision:")
def dose_decide(
    dlt_file: Path = typer.Argument(..., help="CSV, one row per patient: patient_id, dose_level, dlt (0/1)."),
    design: str = typer.Option(..., "--design", help="boin or 3+3."),
    target: float | None = typer.Option(None, "--target", help="Target DLT rate (BOIN, e.g. 0.3)."),
    levels: str | None = typer.Option(
        None,
        "--levels",
        help="Dose levels lowest first, comma-separated, untreated "
        "ones included (default: the numeric levels in the file, sorted).",
    ),
    current: str | None = typer.Option(
        None, "--current", help="Level the last cohort was treated at: gives the next cohort's level."
    ),
    p_saf: float | None = P_SAF_OPTION,
    p_tox: float | None = P_TOX_OPTION,
    cutoff_eli: float | None = CUTOFF_ELI_OPTION,
) -> None:
    """Per dose level: patients, DLTs, the 3 + 3 or BOIN decision and the isotonic DLT estimates; the selected MTD
    and, with --current, the level for the next cohort."""
    from allotrack import cli
    from allotrack.design.dose_finding import dose_decisions

    if design == "boin" and target is None:
        raise InputError("--target (the target DLT rate, e.g. 0.3) is needed for the BOIN design")
    boin_only = [
        flag
        for flag, v in (("--target", target), ("--p-saf", p_saf), ("--p-tox", p_tox), ("--cutoff-eli", cutoff_eli))
        if v is not None
    ]
    if design == "3+3" and boin_only:
        raise InputError(
            f"{', '.join(boin_only)} {'is' if len(boin_only) == 1 else 'are'} for the BOIN design only, not for 3+3"
        )
    level_list = None if levels is None else [v.strip() for v in levels.split(",") if v.strip()]
    records, labels, name = _read_dlt_records(dlt_file, level_list)
    current_level: Any = None if current is None else current.strip()
    if current is not None and level_list is None:
        current_level = _number_label(current_level)
        if current_level is None:
            raise InputError(f"--current {current!r} is not one of the dose levels {', '.join(map(str, labels))}")
    with _options_named("design", "target", "levels", "current_level", "p_saf", "p_tox", "cutoff_eli", file=name):
        res = dose_decisions(
            records,
            labels,
            design,
            target,
            current_level=current_level,
            p_saf=p_saf,
            p_tox=p_tox,
            cutoff_eli=0.95 if cutoff_eli is None else cutoff_eli,
        )
    t = res.table
    shown = pd.DataFrame(
        {
            "level": [escape(str(v)) for v in t["level"]],
            "n": t["n"],
            "DLTs": t["dlt"],
            "decision": t["decision"],
            "eliminated": ["yes" if v else "no" for v in t["eliminated"]],
            "isotonic": [_estimate(v) for v in t["isotonic"]],
        }
    )
    if design == "boin":
        shown["BOIN estimate"] = [_estimate(v) for v in t["isotonic_boin"]]
        title = f"BOIN, target {res.target:g}: decisions by dose level ({escape(name)})"
    else:
        title = f"3 + 3: decisions by dose level ({escape(name)})"
    cli.console.print(cli._frame_table(title, shown))
    if res.mtd is not None:
        cli.console.print(f"MTD: {escape(str(res.mtd))}", soft_wrap=True)
    else:
        cli.console.print(f"MTD: none ({res.mtd_status})", soft_wrap=True)
    if res.current_level is None:
        cli.console.print("Next level: give --current LEVEL (the last cohort's level).", soft_wrap=True)
    elif res.stop:
        cli.console.print(
            f"Next level: stop the trial (current level {escape(str(res.current_level))})", soft_wrap=True
        )
    else:
        cli.console.print(
            f"Next level: {escape(str(res.next_level))} (current level {escape(str(res.current_level))})",
            soft_wrap=True,
        )
