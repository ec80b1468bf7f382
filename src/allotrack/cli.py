"""The ``allotrack`` command line (Typer). Front door only: every command calls library functions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="allotrack: clinical-outcome studies of allogeneic cell therapies.", no_args_is_help=True)
console = Console()


@app.callback()
def main() -> None:
    """allotrack command line."""


def _frame_table(title: str, frame: pd.DataFrame, digits: int = 4) -> Table:
    table = Table(title=title, title_justify="left")
    for col in frame.columns:
        table.add_column(str(col), justify="right" if frame[col].dtype.kind in "fiu" else "left")
    for _, row in frame.iterrows():
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append(f"{v:.{digits}g}")
            else:
                cells.append(str(v))
        table.add_row(*cells)
    return table


@app.command()
def example(
    out: Path = typer.Option(Path("allotrack-output"), help="Folder for the Kaplan–Meier figure."),
) -> None:
    """Kaplan–Meier, log-rank and Cox on the bundled public AML trial data (R survival's ``myeloid``)."""
    import allotrack as at
    from allotrack.datasets import load_myeloid
    from allotrack.report.format import format_pvalue, format_ratio

    data = load_myeloid()
    data["futime_months"] = data["futime"] / 30.4375
    console.print(f"[bold]myeloid[/bold] AML trial: {len(data)} patients, {int(data['death'].sum())} deaths")
    km = at.kaplan_meier(data, "futime_months", "death", by="trt")
    console.print(_frame_table("Median overall survival (months), 95% CI", km.median()))
    console.print(
        _frame_table(
            "Overall survival at 12, 24 and 60 months",
            km.at([12, 24, 60])[["group", "time", "n_risk", "survival", "lower", "upper"]],
        )
    )
    lr = at.logrank_test(data, "futime_months", "death", by="trt")
    console.print(f"Log-rank test: chi-square {lr.statistic:.3f} on {lr.dof} df, p = {format_pvalue(lr.p_value)}")
    cox = at.cox_ph(data, "futime_months", "death", formula="trt + sex")
    summary = cox.summary.reset_index()
    summary["HR (95% CI)"] = [
        f"{format_ratio(h)} ({format_ratio(lo)}, {format_ratio(hi)})"
        for h, lo, hi in zip(summary["hr"], summary["hr_lower"], summary["hr_upper"], strict=True)
    ]
    summary["p"] = [format_pvalue(p) for p in summary["p"]]
    console.print(_frame_table("Cox model (Efron ties)", summary[["term", "coef", "se", "HR (95% CI)", "p"]]))
    lr_p = cox.test("likelihood ratio").p_value
    console.print(f"Concordance {cox.concordance:.3f}; likelihood-ratio p = {format_pvalue(lr_p)}")
    zph = cox.test_proportional_hazards().reset_index()
    console.print(_frame_table("Proportional-hazards test (cox.zph, KM transform)", zph))
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / "myeloid_km.png", out / "myeloid_km.svg"
    km.plot(
        pvalue=lr.p_value,
        xlabel="Months since randomisation",
        ylabel="Overall survival",
        labels=["Arm A", "Arm B"],
        breaks=[0, 12, 24, 36, 48, 60, 72, 84],
        save=[png, svg],
    )
    console.print(f"Kaplan–Meier figure written to [bold]{png}[/bold] and {svg}")


if __name__ == "__main__":  # pragma: no cover
    app()
