"""The ``allotrack`` command line (Typer). Front door only: every command calls library functions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from allotrack.records.dates import DAYS_PER_MONTH
from allotrack.records.schema import Records

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
    data["futime_months"] = data["futime"] / DAYS_PER_MONTH
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


db_app = typer.Typer(help="The record store (SQLite file by default; ALLOTRACK_DATABASE_URL or --db for PostgreSQL).")
app.add_typer(db_app, name="db")
DB_OPTION = typer.Option(None, "--db", help="Database URL (default: ALLOTRACK_DATABASE_URL or sqlite:///allotrack.db)")


@db_app.command("init")
def db_init(db: str | None = DB_OPTION) -> None:
    """Create or upgrade the record store's tables (Alembic migrations)."""
    from allotrack.records.store import Store

    store = Store(db)
    store.init()
    console.print(f"Record store ready at [bold]{_safe_url(store.url)}[/bold]")


def _safe_url(url: str) -> str:
    """The URL without a password, fit to print."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command("import")
def import_files(
    files: list[Path] = typer.Argument(..., help="CSV files named after their table, or an Excel workbook"),
    mapping: Path | None = typer.Option(None, help="TOML mapping file (tables, column renames, recodes)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; write nothing"),
    user: str = typer.Option("import", help="Recorded as the creator of the new rows"),
    centre: str | None = typer.Option(None, help="Centre code stored with the new rows"),
    db: str | None = DB_OPTION,
) -> None:
    """Validate files against the stored records and import them (all or nothing)."""
    from allotrack.errors import AllotrackError
    from allotrack.records.importers import read_tables
    from allotrack.records.store import Store

    try:
        records = read_tables(files, mapping)
        store = Store(db)
        store.init()
        report = store.import_records(records, user=user, centre=centre, dry_run=dry_run)
    except AllotrackError as err:
        console.print(f"[red]Import refused[/red]: {err}")
        raise typer.Exit(code=1) from err
    verb = "would add" if dry_run else "added"
    added = ", ".join(f"{n} {t}" for t, n in report.added.items()) or "nothing new"
    console.print(f"Valid. {verb.capitalize()}: {added}.")


@app.command()
def derive(
    out: Path = typer.Option(Path("dataset.csv"), help="Analysis dataset (.csv or .parquet)"),
    endpoints: str = typer.Option("os,lfs,cir,nrm,grfs,efs", help="Comma-separated endpoint names"),
    explain: Path | None = typer.Option(None, help="Also write the per-patient explanation here (.csv)"),
    db: str | None = DB_OPTION,
) -> None:
    """Derive one row per patient with <endpoint>_time (days) and <endpoint>_status from the stored records."""
    from allotrack.endpoints import derive_endpoints
    from allotrack.errors import AllotrackError
    from allotrack.records.store import Store

    try:
        # stored records were validated when they were imported
        names = [e.strip() for e in endpoints.split(",") if e.strip()]
        derived = derive_endpoints(Store(db).load(), endpoints=names, validate=False)
    except (AllotrackError, KeyError) as err:
        console.print(f"[red]Derivation refused[/red]: {err}")
        raise typer.Exit(code=1) from err
    if out.suffix == ".parquet":
        derived.data.to_parquet(out, index=False)
    else:
        derived.data.to_csv(out, index=False)
    if explain is not None:
        derived.explanation.to_csv(explain, index=False)
    console.print(f"{len(derived.data)} patients, {len(derived.endpoints)} endpoints written to [bold]{out}[/bold]")


export_app = typer.Typer(help="Exports: CDISC ADaM ADTTE, de-identified copies.")
app.add_typer(export_app, name="export")


@export_app.command("adtte")
def export_adtte(
    out: Path = typer.Option(Path("adtte.csv"), help="ADTTE file (.csv or .parquet)"),
    endpoints: str = typer.Option("os,lfs,cir,nrm,grfs,efs", help="Comma-separated endpoint names"),
    db: str | None = DB_OPTION,
) -> None:
    """CDISC ADaM ADTTE: one row per patient and endpoint (CNSR 0 event, 1 censored, 2 competing event)."""
    from allotrack.endpoints import derive_endpoints
    from allotrack.endpoints.adtte import adtte
    from allotrack.records.store import Store

    names = [e.strip() for e in endpoints.split(",") if e.strip()]
    rows = adtte(derive_endpoints(Store(db).load(), endpoints=names, validate=False))
    rows.to_parquet(out, index=False) if out.suffix == ".parquet" else rows.to_csv(out, index=False)
    console.print(f"{len(rows)} ADTTE rows written to [bold]{out}[/bold]")


@export_app.command("deidentified")
def export_deidentified(
    out_dir: Path = typer.Option(Path("deidentified"), help="Folder for one CSV per table"),
    secret_file: Path = typer.Option(..., help="File holding the date-shift secret (≥ 16 characters)"),
    key_out: Path = typer.Option(Path("deidentification-key.csv"), help="Private key table (keep it apart)"),
    db: str | None = DB_OPTION,
) -> None:
    """De-identified copy of the records: study codes, per-patient date shifts, ages over 89 as 90+."""
    from allotrack.records.deidentify import deidentify
    from allotrack.records.store import Store

    result = deidentify(Store(db).load(), secret=secret_file.read_text().strip())
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in result.records.tables.items():
        frame.to_csv(out_dir / f"{name}.csv", index=False)
    result.key.to_csv(key_out, index=False)
    console.print(f"De-identified tables in [bold]{out_dir}[/bold]; key table (private) in {key_out}")



FORMAT_OPTION = typer.Option("html,docx", "--format", help="Comma-separated report formats: html, docx.")


def _run_and_write(plan_path: Path, out: Path, formats: str, records: Records | None = None) -> dict[str, Path]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from allotrack.study.plan import load_plan
    from allotrack.study.run import run_study, write_report

    plan = load_plan(plan_path)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:  # fmt: skip
        task = progress.add_task("starting", total=None)
        result = run_study(plan, records=records, base_dir=plan_path.parent, validated=records is not None,
                           progress=lambda msg: progress.update(task, description=msg))  # fmt: skip
        progress.update(task, description="writing the report")
        written = write_report(result, out, tuple(f.strip() for f in formats.split(",") if f.strip()))
    return written


def _print_written(written: dict[str, Path]) -> None:
    for kind, path in written.items():
        console.print(f"{kind:>8}: {path.resolve()}")


@app.command()
def run(
    plan: Path = typer.Argument(..., exists=True, dir_okay=False, help="The study plan (TOML)."),
    out: Path = typer.Option(Path("report"), "--out", help="Directory for the report and the dataset."),
    formats: str = FORMAT_OPTION,
) -> None:
    """Run a study plan and write its report (HTML, DOCX) and analysis dataset."""
    from allotrack.study.plan import PlanError

    try:
        written = _run_and_write(plan, out, formats)
    except PlanError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    _print_written(written)


@app.command()
def demo(
    out: Path = typer.Option(Path("allotrack-demo"), "--out", help="Directory for the store, report and dataset."),
    formats: str = FORMAT_OPTION,
) -> None:
    """Build the bundled demo study (29 synthetic MST patients) into an embedded SQLite store, run its plan and
    write the report."""
    from allotrack.study.run import build_demo_store, demo_plan_path

    out.mkdir(parents=True, exist_ok=True)
    records = build_demo_store(out / "demo.db")
    written = _run_and_write(demo_plan_path(), out, formats, records=records)
    console.print("[bold]Demo study report written:[/bold]")
    _print_written({"store": out / "demo.db", **written, "plan": demo_plan_path()})


plan_app = typer.Typer(help="Study plans.")
app.add_typer(plan_app, name="plan")


@plan_app.command("check")
def plan_check(plan: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Validate a study plan; print every problem with its line and key."""
    from allotrack.study.plan import PlanError, load_plan

    try:
        p = load_plan(plan)
    except PlanError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"[green]{plan}: valid[/green] — {len(p.analyses)} analyses on {', '.join(p.endpoints.use)}")


@app.command()
def serve(
    db: str | None = DB_OPTION,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port."),
    workers: int = typer.Option(1, help="Worker processes (PostgreSQL: several; SQLite: 1 is plenty)."),
) -> None:
    """Run the web application (FastAPI) over the record store."""
    import logging

    import uvicorn

    from allotrack.records.store import database_url

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    url = database_url(db)
    console.print(f"allotrack web on http://{host}:{port} — store {_safe_url(url)}")
    if workers > 1:  # each worker imports allotrack.web.server, which reads the URL from the environment
        import os

        os.environ["ALLOTRACK_DATABASE_URL"] = url
        uvicorn.run("allotrack.web.server:app", host=host, port=port, workers=workers, access_log=False)
    else:
        from allotrack.web.app import create_app

        uvicorn.run(create_app(url), host=host, port=port, access_log=False)  # access log off: paths hold ids


user_app = typer.Typer(help="Web application accounts.")
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    username: str = typer.Argument(...),
    role: str = typer.Option("administrator", help="administrator, data_manager, analyst or viewer."),
    centre: str | None = typer.Option(None, help="The user's centre (data access group); required except for "
                                      "administrators."),
    db: str | None = DB_OPTION,
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Create a web account (the first one: an administrator)."""
    from allotrack.errors import InputError
    from allotrack.records.store import Store
    from allotrack.web.auth import add_user

    store = Store(db)
    store.init()
    try:
        user = add_user(store.engine, username, password, role, centre)
    except InputError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"created {user.role} '{user.username}'" + (f" for centre {user.centre_code}" if user.centre_code
                                                              else ""))  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    app()
