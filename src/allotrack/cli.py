"""The ``allotrack`` command line (Typer). Front door only: every command calls library functions."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from allotrack.errors import AllotrackError, InputError
from allotrack.records.dates import DAYS_PER_MONTH
from allotrack.records.schema import Records

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from allotrack.records.importing import FieldChange, ImportReport
    from allotrack.records.store import Store
    from allotrack.study.plan import PlanError

app = typer.Typer(help="allotrack: clinical-outcome studies of allogeneic cell therapies.", no_args_is_help=True)
console = Console()


@app.callback()
def main() -> None:
    """allotrack command line."""


P = ParamSpec("P")
R = TypeVar("R")


def _fail(message: str, prefix: str | None = "Error:", code: int = 1) -> NoReturn:
    """Print one message (never wrapped, never read as Rich markup) and leave with exit ``code``."""
    text = f"[red]{escape(prefix)}[/red] {escape(message)}" if prefix else f"[red]{escape(message)}[/red]"
    console.print(text, soft_wrap=True)
    raise typer.Exit(code)


def _db_reason(err: Exception) -> str:
    """The driver's own first line (e.g. "no such table: patients"), never the SQL statement or its parameters,
    which may hold patient identifiers."""
    text = str(err.orig if isinstance(err, DBAPIError) else err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _database_errors() -> tuple[type[Exception], ...]:
    """A database that cannot be used mid-command: through SQLAlchemy, or through ADBC (PostgreSQL reads).
    Called only when an exception reaches the ``except`` clause, so ADBC is imported only then."""
    try:
        import adbc_driver_manager as adbc
    except ImportError:
        return OperationalError, ProgrammingError
    return OperationalError, ProgrammingError, adbc.OperationalError, adbc.ProgrammingError


def _os_reason(err: OSError) -> str:
    reason = err.strerror or str(err) or type(err).__name__
    return f"{err.filename}: {reason}" if err.filename is not None else reason


def _one_line_errors(prefix: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn the expected failures of a command (allotrack's own errors, files that cannot be read or written, a
    database that cannot be used) into one red line and exit code 1 instead of a traceback."""

    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(command)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return command(*args, **kwargs)
            except AllotrackError as err:
                _fail(str(err), prefix)
            except UnicodeDecodeError as err:
                _fail(f"a file is not UTF-8 text (invalid byte at offset {err.start})", prefix)
            except OSError as err:
                _fail(_os_reason(err), prefix)
            except _database_errors() as err:
                _fail(f"the record store cannot be used: {_db_reason(err)}", prefix)

        return wrapper

    return decorate


def _sqlite_file(url: URL) -> Path | None:
    """The file an SQLite URL names; None for an in-memory database."""
    name = url.database or ""
    if str(url.query.get("uri", "")).lower() in ("true", "1") and name.startswith("file:"):
        if "mode=memory" in name or url.query.get("mode") == "memory":
            return None
        name = name.removeprefix("file:").split("?", 1)[0]
    return None if name in ("", ":memory:") else Path(name)


def _open_store(db: str | None, *, must_exist: bool = True) -> Store:
    """The record store at ``db`` (or ALLOTRACK_DATABASE_URL, or the SQLite default).

    ``must_exist``: refuse, with one line, a store that was never initialised (``allotrack db init``) — and create
    nothing: an SQLite file is looked for before any connection (connecting would create it). Otherwise create or
    upgrade the store. An unreachable server or an unusable URL is one line too (the password hidden)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DatabaseError

    from allotrack.records.store import Store, database_url

    url = database_url(db)
    try:
        parsed = make_url(url)
    except ArgumentError:
        shown = repr(url) if "@" not in url else "(not shown: an unparsable URL's password cannot be hidden)"
        _fail(f"not a database URL: {shown}; for example sqlite:///allotrack.db or "
              "postgresql+psycopg://user@host/dbname")  # fmt: skip
    safe = parsed.render_as_string(hide_password=True)
    missing = f"No record store at {safe}: run 'allotrack db init{f' --db {safe}' if db else ''}' first."
    if must_exist and parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None and not path.is_file():
            _fail(missing, prefix=None)
    try:
        if must_exist:  # a plain engine (no SQLite pragmas): looking changes nothing
            probe = sa.create_engine(parsed)
            try:
                with probe.connect() as conn:
                    initialised = sa.inspect(conn).has_table("alembic_version")
            finally:
                probe.dispose()
            if not initialised:
                _fail(missing, prefix=None)
        store = Store(url)
        if not must_exist:
            store.init()
    except ArgumentError as err:  # e.g. an unknown dialect
        _fail(f"cannot use the database URL {safe}: {err}")
    except ImportError as err:  # the URL's driver is not installed (postgresql:// means psycopg2)
        _fail(f"cannot use the database URL {safe}: its driver is not installed ({err}); "
              "for PostgreSQL use postgresql+psycopg://")  # fmt: skip
    except DatabaseError as err:
        _fail(f"cannot open the record store at {safe}: {_db_reason(err)}")
    return store


def _endpoint_names(text: str) -> list[str]:
    """The comma-separated endpoint names, each known to the registry."""
    from allotrack.endpoints.definitions import ENDPOINTS

    names = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [n for n in names if n not in ENDPOINTS]
    if unknown:
        raise InputError(f"unknown endpoint(s) {', '.join(unknown)}; known endpoints: {', '.join(ENDPOINTS)}")
    if not names:
        raise InputError(f"no endpoint given; known endpoints: {', '.join(ENDPOINTS)}")
    return names


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
@_one_line_errors("Example failed:")
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
@_one_line_errors("Store not initialised:")
def db_init(db: str | None = DB_OPTION) -> None:
    """Create or upgrade the record store's tables (Alembic migrations)."""
    store = _open_store(db, must_exist=False)
    console.print(f"Record store ready at [bold]{_safe_url(store.url)}[/bold]")


def _safe_url(url: str) -> str:
    """The URL without a password, fit to print."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _cell(value: object) -> str:
    """A stored or incoming value as the changes table shows it."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return "(missing)"
    if isinstance(value, pd.Timestamp) and value == value.normalize():
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _changes_table(changes: Sequence[FieldChange]) -> Table:
    table = Table(title="Corrections of stored records", title_justify="left")
    for name in ("table", "record", "field", "old → new"):
        table.add_column(name)
    for c in changes:
        table.add_row(escape(c.table), escape(c.record), escape(c.column),
                      f"{escape(_cell(c.old))} → {escape(_cell(c.new))}")  # fmt: skip
    return table


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {t}" for t, n in counts.items() if n)


@app.command("import")
@_one_line_errors("Import refused:")
def import_files(
    files: list[Path] = typer.Argument(..., help="CSV files named after their table, or an Excel workbook"),
    mapping: Path | None = typer.Option(None, help="TOML mapping file (tables, column renames, recodes, wide files)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; write nothing"),
    update: bool = typer.Option(False, "--update", help="Allow corrections: rows whose key is stored with other "
                                "values replace the stored values (the changes are shown and confirmed first)"),
    reason: str | None = typer.Option(None, "--reason", help="Why stored records are corrected (required when "
                                      "--update changes anything, and by a locked study; kept in the audit trail)"),
    drop_duplicates: bool = typer.Option(False, "--drop-duplicates", help="Import rows that are exact duplicates "
                                         "within the files once, with a warning, instead of refusing them"),
    yes: bool = typer.Option(False, "--yes", help="Apply corrections (--update) without asking"),
    user: str = typer.Option("import", help="Recorded as the creator of the new rows; a web account's name makes "
                             "the import act as that account (its right 'import', its centre)"),
    centre: str | None = typer.Option(None, help="Centre code stored with the new rows"),
    db: str | None = DB_OPTION,
) -> None:
    """Validate files against the stored records and import them (all or nothing)."""
    from allotrack.records.importers import read_tables

    store = _open_store(db)  # an existing store only: a mistyped --db must not start a new, empty registry
    if store.needs_upgrade():  # upgrades change stored data (0005 retires duplicate keys): only on request
        _fail(f"the record store's schema (revision {store.revision()}) is older than this allotrack; upgrade it "
              f"first with 'allotrack db init{' --db ' + _safe_url(store.url) if db else ''}'", "Import refused:")
    if user != "import":  # the default label is no account
        centre = _importer_centre(store, user, centre)
    records = read_tables(files, mapping, dictionary=store.dictionary())  # wide files are read through it
    shown: set[str] = set()

    def warn(report: ImportReport) -> None:
        for warning in report.warnings:
            if warning not in shown:
                shown.add(warning)
                console.print(f"[yellow]Warning:[/yellow] {escape(warning)}", soft_wrap=True)

    if not update:
        report = store.import_records(records, user=user, centre=centre, dry_run=dry_run, reason=reason,
                                      drop_duplicates=drop_duplicates)  # fmt: skip
        warn(report)
    else:  # corrections: see them first, then confirm them
        report = store.import_records(records, user=user, centre=centre, dry_run=True, update=True,
                                      reason=reason, drop_duplicates=drop_duplicates)  # fmt: skip
        warn(report)
        if report.changes:
            console.print(_changes_table(report.changes))
            n_records = len({(c.table, c.record) for c in report.changes})
            if not (reason and reason.strip()):
                if not dry_run:
                    _fail("--reason is required to correct stored records (it is kept in the audit trail); "
                          "nothing was imported", "Import refused:")  # fmt: skip
                console.print("[yellow]Note:[/yellow] the import itself needs --reason for these corrections")
            elif not dry_run and not yes and not typer.confirm(
                f"Apply {len(report.changes)} change(s) to {n_records} record(s)?", default=False
            ):
                _fail("the corrections were not confirmed; nothing was imported", "Import cancelled:")
        if not dry_run:
            report = store.import_records(records, user=user, centre=centre, dry_run=False, update=True,
                                          reason=reason.strip() if reason else None,
                                          drop_duplicates=drop_duplicates)  # fmt: skip
            warn(report)
    line = f"Valid. {'Would add' if dry_run else 'Added'}: {_counts(report.added) or 'nothing new'}."
    if _counts(report.updated):
        line += f" {'Would update' if dry_run else 'Updated'}: {_counts(report.updated)}."
    console.print(line, soft_wrap=True)


@app.command()
@_one_line_errors("Derivation refused:")
def derive(
    out: Path = typer.Option(Path("dataset.csv"), help="Analysis dataset (.csv or .parquet)"),
    endpoints: str = typer.Option("os,lfs,cir,nrm,grfs,efs", help="Comma-separated endpoint names"),
    explain: Path | None = typer.Option(None, help="Also write the per-patient explanation here (.csv)"),
    db: str | None = DB_OPTION,
) -> None:
    """Derive one row per patient with <endpoint>_time (days) and <endpoint>_status from the stored records."""
    from allotrack.endpoints import derive_endpoints
    from allotrack.records.safe_csv import write_csv

    names = _endpoint_names(endpoints)
    # stored records were validated when they were imported
    derived = derive_endpoints(_open_store(db).load(), endpoints=names, validate=False)
    if out.suffix == ".parquet":
        derived.data.to_parquet(out, index=False)
    else:
        write_csv(derived.data, out)
    if explain is not None:
        write_csv(derived.explanation, explain)
    console.print(f"{len(derived.data)} patients, {len(derived.endpoints)} endpoints written to [bold]{out}[/bold]")


@app.command()
@_one_line_errors("Template:")
def template(
    out: Path = typer.Option(Path("allotrack-template"), "--out", help="Folder for the table templates."),
) -> None:
    """Write an empty CSV per record table (its columns in order) and, in example/, the bundled demo study's
    records as filled examples of the same files."""
    from allotrack.records.safe_csv import write_csv
    from allotrack.records.schema import TABLES
    from allotrack.study.demo import demo_records

    (out / "example").mkdir(parents=True, exist_ok=True)
    demo = demo_records()
    for name, spec in TABLES.items():
        columns = [c.name for c in spec.columns]
        write_csv(pd.DataFrame(columns=columns), out / f"{name}.csv")
        example = demo[name]
        if len(example):
            write_csv(example.reindex(columns=columns), out / "example" / f"{name}.csv")
    console.print(f"{len(TABLES)} empty table files in [bold]{out}[/bold]; the demo study's records in "
                  f"{out / 'example'}")


dictionary_app = typer.Typer(help="The store's data dictionary: the items observations, interventions, assessments "
                              "and attributes are validated against (TOML, or REDCap's data dictionary CSV).")
app.add_typer(dictionary_app, name="dictionary")


@dictionary_app.command("show")
@_one_line_errors("Dictionary:")
def dictionary_show(
    kind: str | None = typer.Option(None, help="Only items of this kind: observation, intervention, assessment, "
                                    "attribute, design."),
    db: str | None = DB_OPTION,
) -> None:
    """List the dictionary in force: code, label, type, kind, unit, allowed range and choices."""
    store = _open_store(db)
    dictionary = store.dictionary()
    items = dictionary.of_kind(kind) if kind else tuple(dictionary)
    table = Table(title=f"{dictionary.name or 'data dictionary'} {dictionary.version}".strip(), title_justify="left")
    for column in ("code", "label", "type", "kind", "unit", "range", "choices"):
        table.add_column(column, no_wrap=column in ("code", "type", "unit"), overflow="fold")
    for item in items:
        bounds = "" if item.low is None and item.high is None else f"{_bound(item.low)}–{_bound(item.high)}"
        choices = ", ".join(f"{c.code}={c.label}" for c in item.choices)
        table.add_row(item.code, item.label, item.type, item.kind, item.unit or "", bounds, choices)
    console.print(table)
    console.print(f"{len(items)} item(s)")


def _bound(value: object) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float | int) else str(value)


@dictionary_app.command("import")
@_one_line_errors("Dictionary refused:")
def dictionary_import(
    path: Path = typer.Argument(..., help="A dictionary as TOML, or REDCap's data dictionary CSV."),
    reason: str | None = typer.Option(None, help="Why the dictionary changes (kept in the audit trail)."),
    user: str = typer.Option("import", help="Recorded as who saved this version."),
    db: str | None = DB_OPTION,
) -> None:
    """Save a new version of the store's dictionary (items in use by stored records must stay)."""
    from allotrack.records.dictionary import DataDictionary

    store = _open_store(db)
    dictionary = DataDictionary.load(path)
    before = set(store.dictionary().codes)
    store.save_dictionary(dictionary, user=user, reason=reason)
    added = sorted(set(dictionary.codes) - before)
    console.print(f"Dictionary saved: {len(dictionary)} items" + (f"; new: {', '.join(added)}" if added else "") + ".",
                  soft_wrap=True)  # fmt: skip


@dictionary_app.command("export")
@_one_line_errors("Dictionary:")
def dictionary_export(
    path: Path = typer.Argument(..., help="Where to write it: .toml, or .csv for REDCap's data dictionary."),
    db: str | None = DB_OPTION,
) -> None:
    """Write the dictionary in force as TOML or as REDCap's data dictionary CSV."""
    _open_store(db).dictionary().save(path)
    console.print(f"Dictionary written to [bold]{path}[/bold]")


def _importer_centre(store: Store, username: str, centre: str | None) -> str | None:
    """An import whose ``--user`` names a web account acts as that account: it needs to be active with the right
    ``import``, and a centre's account imports into its own centre only (its centre is the default)."""
    import sqlalchemy as sa

    from allotrack.records.tables import USERS
    from allotrack.web.auth import user_by_id
    from allotrack.web.rights import Forbidden, require

    with store.engine.connect() as conn:
        found = conn.execute(sa.select(USERS.c.user_id).where(USERS.c.username == username)).scalar()
    if found is None:
        return centre  # a label only (the default "import")
    account = user_by_id(store.engine, int(found))
    if account is None:
        raise Forbidden(f"the account {username!r} is deactivated")
    require(account, "import", "this account cannot import records")
    if account.centre_code is not None and centre not in (None, account.centre_code):
        raise Forbidden(f"the account {username!r} imports records of its own centre only")
    return centre or account.centre_code


export_app = typer.Typer(help="Exports: CDISC ADaM ADTTE, de-identified copies.")
app.add_typer(export_app, name="export")


@export_app.command("adtte")
@_one_line_errors("Export refused:")
def export_adtte(
    out: Path = typer.Option(Path("adtte.csv"), help="ADTTE file (.csv or .parquet)"),
    endpoints: str = typer.Option("os,lfs,cir,nrm,grfs,efs", help="Comma-separated endpoint names"),
    db: str | None = DB_OPTION,
) -> None:
    """CDISC ADaM ADTTE: one row per patient and endpoint (CNSR 0 event, 1 censored, 2 competing event)."""
    from allotrack.endpoints import derive_endpoints
    from allotrack.endpoints.adtte import adtte
    from allotrack.records.safe_csv import write_csv

    names = _endpoint_names(endpoints)
    rows = adtte(derive_endpoints(_open_store(db).load(), endpoints=names, validate=False))
    rows.to_parquet(out, index=False) if out.suffix == ".parquet" else write_csv(rows, out)
    console.print(f"{len(rows)} ADTTE rows written to [bold]{out}[/bold]")


@export_app.command("deidentified")
@_one_line_errors("Export refused:")
def export_deidentified(
    out_dir: Path = typer.Option(Path("deidentified"), help="Folder for one CSV per table"),
    secret_file: Path = typer.Option(..., help="File holding the date-shift secret (≥ 16 characters)"),
    key_out: Path = typer.Option(Path("deidentification-key.csv"), help="Private key table (keep it apart)"),
    db: str | None = DB_OPTION,
) -> None:
    """De-identified copy of the records: study codes, per-patient date shifts, ages over 89 as 90+."""
    from allotrack.records.deidentify import deidentify
    from allotrack.records.safe_csv import write_csv

    try:
        secret = secret_file.read_text(encoding="utf-8").strip()
    except OSError as err:
        _fail(f"cannot read the secret file {secret_file}: {err.strerror or type(err).__name__}", "Export refused:")
    except UnicodeDecodeError:
        _fail(f"the secret file {secret_file} is not UTF-8 text", "Export refused:")
    store = _open_store(db)
    result = deidentify(store.load(), secret=secret, dictionary=store.dictionary())
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in result.records.tables.items():
        write_csv(frame, out_dir / f"{name}.csv")
    write_csv(result.key, key_out)
    console.print(f"De-identified tables in [bold]{out_dir}[/bold]; key table (private) in {key_out}")


@export_app.command("sdtm")
@_one_line_errors("Export refused:")
def export_sdtm(
    out_dir: Path = typer.Option(Path("sdtm"), "--out-dir", help="Folder for one CSV per SDTM domain"),
    study_id: str | None = typer.Option(None, "--study-id", help="STUDYID of every row (no STUDYID column if omitted)"),
    db: str | None = DB_OPTION,
) -> None:
    """SDTM-like domains as long CSVs: LB (observations, labs), EX (interventions, infusions; SUPPEX), RS
    (responses), AE (adverse events). See allotrack.records.sdtm for the mapping."""
    from allotrack.records.sdtm import SOURCE_TABLES, sdtm_domains, write_domains

    store = _open_store(db)
    domains = sdtm_domains(store.load(tables=SOURCE_TABLES), store.dictionary(), study_id=study_id)
    written = write_domains(domains, out_dir, study_id=study_id)
    rows = {name: len(domains[name]) if name in domains else 0 for name in written}
    counts = ", ".join(f"{name} {n} row{'' if n == 1 else 's'}" for name, n in rows.items())
    console.print(f"SDTM domains written to [bold]{escape(str(out_dir))}[/bold]: {counts}", soft_wrap=True)



FORMAT_OPTION = typer.Option("html,docx", "--format", help="Comma-separated report formats: html, docx.")


def _run_and_write(plan_path: Path, out: Path, formats: str, records: Records | None = None) -> dict[str, Path]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from allotrack.study.plan import load_plan
    from allotrack.study.run import run_study, write_report

    plan = load_plan(plan_path)
    dictionary = None
    if records is None and plan.data.source not in (None, "demo") and not plan.data.source.startswith("example:"):
        # a database URL: an initialised store
        store = _open_store(plan.data.source)
        records, dictionary = store.load(), store.dictionary()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as progress:  # fmt: skip
        task = progress.add_task("starting", total=None)
        result = run_study(plan, records=records, base_dir=plan_path.parent, validated=records is not None,
                           progress=lambda msg: progress.update(task, description=msg),
                           dictionary=dictionary)  # fmt: skip
        progress.update(task, description="writing the report")
        written = write_report(result, out, tuple(f.strip() for f in formats.split(",") if f.strip()))
    return written


def _print_written(written: dict[str, Path]) -> None:
    for kind, path in written.items():
        console.print(f"{kind:>8}: {path.resolve()}")


def _require_plan_file(plan: Path) -> None:
    if not plan.exists():
        _fail(f"No such plan file: {plan}", prefix=None, code=2)


def _plan_refused(plan: Path, exc: PlanError) -> NoReturn:
    """Exit 2 with the plan's problems: one line when there is one, else every problem on its own line."""
    if len(exc.problems) != 1:
        _fail(str(exc), prefix=None, code=2)
    line, key, msg = exc.problems[0]
    where = f"{plan}:{line}" if line is not None else str(plan)
    _fail(f"{where}: {msg}" if key == "(file)" else f"{where}: {key}: {msg}", "Invalid study plan:", code=2)


@app.command()
@_one_line_errors("Run failed:")
def run(
    plan: Path = typer.Argument(..., help="The study plan (TOML)."),
    out: Path = typer.Option(Path("report"), "--out", help="Directory for the report and the dataset."),
    formats: str = FORMAT_OPTION,
) -> None:
    """Run a study plan and write its report (HTML, DOCX) and analysis dataset."""
    from allotrack.study.plan import PlanError

    _require_plan_file(plan)
    try:
        written = _run_and_write(plan, out, formats)
    except PlanError as exc:
        _plan_refused(plan, exc)
    _print_written(written)


@app.command()
@_one_line_errors("Demo failed:")
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
@_one_line_errors("Plan check failed:")
def plan_check(plan: Path = typer.Argument(..., help="The study plan (TOML).")) -> None:
    """Validate a study plan; print every problem with its line and key."""
    from allotrack.study.plan import PlanError, load_plan

    _require_plan_file(plan)
    try:
        p = load_plan(plan)
    except PlanError as exc:
        _plan_refused(plan, exc)
    console.print(f"[green]{plan}: valid[/green] — {len(p.analyses)} analyses on {', '.join(p.endpoints.use)}")


@plan_app.command("copy")
@_one_line_errors("Cannot copy the plan:")
def plan_copy(
    study: str = typer.Argument(..., help="A bundled study: demo, msc_rct, myeloma_mst, imak, nk_cells or "
                                "nk_registry."),
    to: Path = typer.Argument(..., help="Where to write the plan (TOML) for editing."),
) -> None:
    """Write a bundled study's plan to a file, to run as it is (allotrack run FILE) or to edit for your study."""
    from allotrack.study.five_studies import EXAMPLES
    from allotrack.study.run import demo_plan_path, example_plan_path

    known = ["demo", *(c for c in EXAMPLES if example_plan_path(c).exists())]
    if study not in known:
        _fail(f"no bundled plan {study!r}; the bundled plans are {', '.join(known)}")
    if to.exists():
        _fail(f"{to} exists; choose another name (nothing was overwritten)")
    source = demo_plan_path() if study == "demo" else example_plan_path(study)
    to.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    console.print(f"wrote {to}; run it with: allotrack run {to}")


@app.command()
@_one_line_errors("Cannot serve:")
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

    url = database_url(db)
    _open_store(db).engine.dispose()  # an initialised, reachable store (serving creates none)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
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
@_one_line_errors("Account not created:")
def user_add(
    username: str = typer.Argument(...),
    role: str = typer.Option("administrator", help="administrator, data_manager, analyst or viewer."),
    centre: str | None = typer.Option(None, help="The user's centre (data access group); required except for "
                                      "administrators."),
    db: str | None = DB_OPTION,
    blinded: bool = typer.Option(False, help="A blinded account never sees a randomised arm."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Create a web account (the first one: an administrator)."""
    from allotrack.web.auth import add_user

    store = _open_store(db, must_exist=False)
    try:
        user = add_user(store.engine, username, password, role, centre, blinded)
    except InputError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"created {user.role} '{user.username}'" + (f" for centre {user.centre_code}" if user.centre_code
                                                              else ""))  # fmt: skip


@user_app.command("unlock")
@_one_line_errors("Account not unlocked:")
def user_unlock(username: str = typer.Argument(...), db: str | None = DB_OPTION) -> None:
    """Unlock an account throttled by failed logins (its failures so far no longer count, in every server)."""
    from allotrack.web.auth import unlock_user

    if not unlock_user(_open_store(db).engine, username):
        _fail(f"no account {username!r}", "Account not unlocked:")
    console.print(f"unlocked '{username}'", markup=False)


@user_app.command("deactivate")
@_one_line_errors("Account not deactivated:")
def user_deactivate(username: str = typer.Argument(...), db: str | None = DB_OPTION) -> None:
    """Deactivate an account: no more logins; its sessions end and its API tokens are revoked."""
    from allotrack.web.auth import deactivate_user

    if not deactivate_user(_open_store(db).engine, username):
        _fail(f"no account {username!r}", "Account not deactivated:")
    console.print(f"deactivated '{username}'", markup=False)


@user_app.command("tokens")
@_one_line_errors("Tokens not listed:")
def user_tokens(
    username: str = typer.Argument(...),
    db: str | None = DB_OPTION,
    revoke: list[int] = typer.Option([], help="Revoke the token of this id (repeatable)."),
    revoke_all: bool = typer.Option(False, help="Revoke every token of the account."),
) -> None:
    """List an account's API tokens (id, label, scopes, expiry, state), or revoke some or all of them."""
    import sqlalchemy as sa

    from allotrack.records.tables import USERS
    from allotrack.web.auth import list_tokens, revoke_token

    store = _open_store(db)
    with store.engine.connect() as conn:
        user_id = conn.execute(sa.select(USERS.c.user_id).where(USERS.c.username == username)).scalar()
    if user_id is None:
        _fail(f"no account {username!r}", "Tokens not listed:")
    found = list_tokens(store.engine, int(user_id))
    for token_id in [t.token_id for t in found if not t.revoked] if revoke_all else revoke:
        if not revoke_token(store.engine, int(user_id), token_id):
            _fail(f"{username!r} has no token {token_id}", "Token not revoked:")
        console.print(f"revoked token {token_id}")
    for t in list_tokens(store.engine, int(user_id)) if (revoke or revoke_all) else found:
        state = "revoked" if t.revoked else ("usable" if t.usable else "expired")
        expires = f"{t.expires_at:%Y-%m-%d %H:%M} UTC" if t.expires_at is not None else "no expiry"
        console.print(f"{t.token_id}\t{t.label or '-'}\t{' '.join(t.scopes)}\texpires {expires}\t{state}",
                      markup=False, soft_wrap=True)  # fmt: skip


@user_app.command("rights")
@_one_line_errors("Rights not changed:")
def user_rights(
    username: str | None = typer.Argument(None, help="The account (none: list every right and the roles' defaults)."),
    grant: list[str] = typer.Option([], "--grant", help="Grant this right (repeatable)."),
    revoke: list[str] = typer.Option([], "--revoke", help="Revoke this right (repeatable)."),
    admin: str | None = typer.Option(None, "--user", help="The administrator's account granting or revoking."),
    db: str | None = DB_OPTION,
) -> None:
    """Show an account's effective rights (its role's defaults, + granted, - revoked), change them with --grant /
    --revoke (an administrator's --user; audited), or list every right with the roles that have it by default."""
    import sqlalchemy as sa

    from allotrack.records.tables import USERS
    from allotrack.web.rights import RIGHTS, ROLE_RIGHTS, effective_rights, set_user_rights, stored_rights

    if username is None:
        for name, meaning in RIGHTS.items():
            roles = ", ".join(r for r, rights in ROLE_RIGHTS.items() if name in rights)
            console.print(f"{name}\t{meaning}\t(default: {roles or 'none'})", markup=False, soft_wrap=True)
        return
    if grant or revoke:
        if admin is None:
            _fail("--user: the administrator's account that grants or revokes", "Rights not changed:")
        store, account = _account(db, admin)
        set_user_rights(store.engine, account, username, grant, revoke)
    else:
        store = _open_store(db)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(USERS).where(USERS.c.username == username)).first()
    if row is None:
        _fail(f"no account {username!r}", "No rights shown:")
    granted, revoked = stored_rights(row.rights_granted), stored_rights(row.rights_revoked)
    rights = effective_rights(row.role, granted, revoked)
    changes = "".join([f" +{r}" for r in sorted(granted)] + [f" -{r}" for r in sorted(revoked)])
    console.print(f"{username} ({row.role}{changes}): {' '.join(r for r in RIGHTS if r in rights) or 'no rights'}",
                  markup=False, soft_wrap=True)  # fmt: skip


randomise_app = typer.Typer(help="Randomisation: set up a study's allocation, randomise patients, read the log.")
app.add_typer(randomise_app, name="randomise")
from allotrack.cli_design import dose_app, power_app  # noqa: E402  (no cycle: cli_design imports cli lazily)

app.add_typer(power_app, name="power")
app.add_typer(dose_app, name="dose")


def _account(db: str | None, username: str) -> tuple[Store, Any]:
    """The store and the active account the command acts as (its role and centre apply as on the web)."""
    import sqlalchemy as sa

    from allotrack.records.tables import USERS
    from allotrack.web.auth import user_by_id

    store = _open_store(db)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(USERS.c.user_id).where(USERS.c.username == username)).first()
    user = user_by_id(store.engine, int(row.user_id)) if row is not None else None
    if user is None:
        _fail(f"no active account {username!r} (allotrack user add)", "Refused:")
    return store, user


@randomise_app.command("setup")
@_one_line_errors("Randomisation not set up:")
def randomise_setup(
    study: str = typer.Argument(..., help="The study (as in the enrolment records)."),
    arms: str = typer.Option(..., help='Arms and ratio, e.g. "MSC + basiliximab:1,basiliximab:1".'),
    seed: int = typer.Option(..., help="The seed the statistician keeps (the list is reproducible from it)."),
    user: str = typer.Option(..., help="An administrator's account."),
    stratify_by: str = typer.Option("", help="Patient factors, comma-separated: centre, sex, diagnosis."),
    strata: str = typer.Option("", help='Every stratum, comma-separated, e.g. "centre=C1,centre=C2" (blocks).'),
    method: str = typer.Option("blocks", help="blocks (permuted blocks of random sizes) or minimisation."),
    block_sizes: str = typer.Option("", help="Block sizes, e.g. 4,6 (default: 2 and 3 times the ratio's sum)."),
    per_stratum: int = typer.Option(100, help="List positions per stratum (whole blocks)."),
    db: str | None = DB_OPTION,
) -> None:
    """Set up a study's randomisation once: its design and, for permuted blocks, the concealed list."""
    from allotrack.design.randomisation import RandomisationDesign
    from allotrack.web.allocation import set_up

    try:
        ratio = {a.rsplit(":", 1)[0].strip(): int(a.rsplit(":", 1)[1]) for a in arms.split(",")}
        sizes = tuple(int(b) for b in block_sizes.split(",")) if block_sizes else None
    except (ValueError, IndexError):
        _fail(f"--arms must read name:ratio,name:ratio and --block-sizes numbers, not {arms!r} / {block_sizes!r}",
              "Randomisation not set up:")  # fmt: skip
    factors = tuple(f.strip() for f in stratify_by.split(",") if f.strip())
    design = RandomisationDesign(ratio, factors, method, sizes)
    store, account = _account(db, user)
    labels = [s.strip() for s in strata.split(",") if s.strip()]
    n = set_up(store.engine, account, study, design, seed, labels, per_stratum)
    console.print(f"randomisation of {study} set up ({method}; {n} list positions)")


@randomise_app.command("allocate")
@_one_line_errors("Not randomised:")
def randomise_allocate(
    study: str = typer.Argument(...),
    patient: str = typer.Argument(..., help="An enrolled, eligible patient."),
    user: str = typer.Option(..., help="A data manager's or administrator's account."),
    db: str | None = DB_OPTION,
) -> None:
    """Randomise one patient; prints the arm and the allocation number."""
    from allotrack.web.allocation import allocate

    store, account = _account(db, user)
    a = allocate(store.engine, account, study, patient)
    if account.blinded:
        console.print(f"{patient}: randomised (allocation {a.number}; the arm is concealed from blinded accounts)")
    else:
        console.print(f"{patient}: {a.arm} (allocation {a.number}, stratum {a.stratum})")


@randomise_app.command("log")
@_one_line_errors("No log:")
def randomise_log(
    study: str = typer.Argument(...),
    user: str = typer.Option(..., help="An administrator's account."),
    out: Path = typer.Option(Path("allocation_log.csv"), help="CSV file for the log."),
    db: str | None = DB_OPTION,
) -> None:
    """Export the allocation log (who, when, stratum, arm, list position) and print the balance by stratum."""
    from allotrack.records.safe_csv import write_csv
    from allotrack.web.allocation import allocation_balance, allocation_log

    store, account = _account(db, user)
    write_csv(allocation_log(store.engine, account, study), out)
    console.print(_frame_table(f"{study}: patients by stratum and arm", allocation_balance(store.engine, account,
                                                                                          study)))  # fmt: skip
    console.print(f"log written to {out}")


record_app = typer.Typer(help="Stored records: restore a deleted patient.")
app.add_typer(record_app, name="record")


@record_app.command("restore")
@_one_line_errors("Not restored:")
def record_restore(
    patient: str = typer.Argument(..., help="The deleted patient's id."),
    reason: str = typer.Option(..., help="Why the patient is restored (kept in the audit trail)."),
    user: str = typer.Option(..., help="An administrator's account."),
    db: str | None = DB_OPTION,
) -> None:
    """Restore a deleted patient with the records deleted with it (administrators only; audited)."""
    from allotrack.web.data import restore_patient

    store, account = _account(db, user)
    restored = restore_patient(store.engine, account, patient, reason)
    console.print(f"{patient} restored: {_counts(restored)}", soft_wrap=True)


@app.command("match")
@_one_line_errors("Not matched:")
def match(
    plan: Path = typer.Argument(..., help="A study plan with a [matching] table."),
    study: str = typer.Option(..., help="The study the matched sets belong to (as in the enrolment records)."),
    user: str = typer.Option(..., help="An administrator's account."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Match and validate; store nothing"),
    db: str | None = DB_OPTION,
) -> None:
    """Match controls to the treated patients of the stored records as the plan's [matching] says, and store
    the matched sets as study-design records (all or nothing, audited; the same sets again add nothing)."""
    from allotrack.study.dataset import analysis_dataset, plan_matching
    from allotrack.study.plan import PlanError, load_plan
    from allotrack.web.matched_sets import store_matched_sets

    _require_plan_file(plan)
    try:
        p = load_plan(plan)
    except PlanError as exc:
        _plan_refused(plan, exc)
    if p.matching is None:
        _fail(f"{plan} has no [matching] table", "Not matched:")
    store, account = _account(db, user)
    records = store.load()
    data = analysis_dataset(records, p.model_copy(update={"matching": None}), validate=False,
                            dictionary=store.dictionary())  # fmt: skip
    result = plan_matching(data, p.matching)
    sets = result.sets_frame(study)
    report = store_matched_sets(store, account, study, sets, dry_run=dry_run)
    n_sets, n_controls = sets["set_id"].nunique(), int((sets["role"] == "control").sum())
    added = report.added.get("matched_sets", 0)
    console.print(f"{n_sets} matched sets ({n_controls} controls, {len(result.unmatched_treated)} treated "
                  f"patients without a control); {'would add' if dry_run else 'added'} {added} matched-set "
                  f"record(s) of {study}" + ("" if added or dry_run else " (already stored)"),
                  soft_wrap=True)  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    app()
