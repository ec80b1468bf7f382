"""Every CLI failure is one clear line and a non-zero exit, never a traceback; no record store is created by
accident (a mistyped --db must not start a new, empty registry)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parent / "endpoints"))
from test_derive import history

import allotrack.cli as cli
from allotrack.cli import app
from allotrack.errors import AllotrackError
from allotrack.records.store import Store

SECRET = "0123456789abcdef-secret"


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def one_line(result: Result, code: int = 1) -> str:
    """The failure's only line of output; the command left through typer.Exit (no exception escaped)."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an uncaught exception
    assert "Traceback" not in result.output and "sqlalchemy" not in result.output.lower()
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def write_history_csvs(folder: Path) -> list[str]:
    for name, frame in history().tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return sorted(str(p) for p in folder.glob("*.csv"))


def no_database_files(folder: Path) -> bool:
    return not [p.name for p in folder.iterdir() if ".db" in p.name]


@pytest.fixture(autouse=True)
def no_server(monkeypatch):
    """`serve` must refuse before it listens: a server that starts fails the test instead of blocking it."""
    import uvicorn

    def refuse(*args, **kwargs):
        raise AssertionError("the web server was started")

    monkeypatch.setattr(uvicorn, "run", refuse)


@pytest.fixture
def initialised(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'ok.db'}"
    store = Store(url)
    store.init()
    store.engine.dispose()
    return url


# --- a store that does not exist or was never initialised -------------------------------------------------------


def _commands(tmp_path: Path, url: str) -> dict[str, list[str]]:
    (tmp_path / "secret.txt").write_text(SECRET)
    files = write_history_csvs(tmp_path)
    plan = tmp_path / "plan.toml"
    plan.write_text(f'[study]\ntitle = "x"\n[data]\nsource = "{url}"\n[endpoints]\nuse = ["os"]\n'
                    '[[analyses]]\nkind = "km"\nendpoint = "os"\n')  # fmt: skip
    out = str(tmp_path / "out")
    return {
        "derive": ["derive", "--db", url, "--out", f"{out}.csv"],
        "export adtte": ["export", "adtte", "--db", url, "--out", f"{out}.csv"],
        "export deidentified": ["export", "deidentified", "--db", url, "--secret-file", str(tmp_path / "secret.txt"),
                                "--out-dir", out, "--key-out", f"{out}-key.csv"],
        "import": ["import", *files, "--db", url],
        "run": ["run", str(plan), "--out", out],
        "serve": ["serve", "--db", url],
    }


COMMANDS = ["derive", "export adtte", "export deidentified", "import", "run", "serve"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_sqlite_store_is_one_line_and_is_not_created(tmp_path, command):
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    line = one_line(invoke(*_commands(tmp_path, url)[command]))
    assert line == f"No record store at {url}: run 'allotrack db init --db {url}' first."
    assert no_database_files(tmp_path)


@pytest.mark.parametrize("command", COMMANDS)
def test_an_uninitialised_sqlite_file_is_refused_and_left_untouched(tmp_path, command):
    empty = tmp_path / "empty.db"
    empty.touch()
    url = f"sqlite:///{empty}"
    line = one_line(invoke(*_commands(tmp_path, url)[command]))
    assert line.startswith(f"No record store at {url}: run 'allotrack db init")
    assert empty.stat().st_size == 0 and [p.name for p in tmp_path.glob("empty.db*")] == ["empty.db"]


def test_the_default_store_is_not_created_either(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALLOTRACK_DATABASE_URL", raising=False)
    line = one_line(invoke("derive"))
    assert line == "No record store at sqlite:///allotrack.db: run 'allotrack db init' first."
    assert no_database_files(tmp_path)


def test_an_unreachable_postgresql_server_is_one_line_with_the_password_hidden():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://analyst:s3cret-pw@127.0.0.1:{port}/registry"
    for args in (["derive", "--db", url], ["db", "init", "--db", url]):
        line = one_line(invoke(*args))
        assert f"postgresql+psycopg://analyst:***@127.0.0.1:{port}/registry" in line
        assert "s3cret-pw" not in line


def test_a_database_url_that_is_not_one_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_line(invoke("derive", "--db", "registry.db"))
    assert "not a database URL: 'registry.db'" in line
    assert no_database_files(tmp_path)


def _sqlalchemy_error() -> Exception:
    return sa.exc.OperationalError("SELECT * FROM patients WHERE patient_id = ?", ("p1",),
                                   Exception("database is locked"))  # fmt: skip


def _adbc_error() -> Exception:  # PostgreSQL reads go through ADBC, whose messages carry the query
    import adbc_driver_manager as adbc

    return adbc.ProgrammingError("database is locked\nQuery was: SELECT * FROM patients WHERE patient_id = 'p1'",
                                 status_code=adbc.AdbcStatusCode.IO)  # fmt: skip


@pytest.mark.parametrize("error", [_sqlalchemy_error, _adbc_error])
def test_database_errors_during_a_command_name_no_statement_and_no_patient(initialised, monkeypatch, tmp_path,
                                                                           error):  # fmt: skip
    def failing_load(self, centre=None, patient_id=None):
        raise error()

    monkeypatch.setattr(Store, "load", failing_load)
    line = one_line(invoke("derive", "--db", initialised, "--out", str(tmp_path / "d.csv")))
    assert line == "Derivation refused: the record store cannot be used: database is locked"


# --- unknown endpoints ----------------------------------------------------------------------------------------------


def test_unknown_endpoints_are_named_with_the_known_ones(initialised, tmp_path):
    line = one_line(invoke("derive", "--db", initialised, "--endpoints", "os,xyz", "--out", str(tmp_path / "d.csv")))
    assert line.startswith("Derivation refused: unknown endpoint(s) xyz; known endpoints: os, ")
    assert "cir" in line and "grfs" in line
    line = one_line(invoke("export", "adtte", "--db", initialised, "--endpoints", "xyz", "--out",
                           str(tmp_path / "a.csv")))  # fmt: skip
    assert line.startswith("Export refused: unknown endpoint(s) xyz; known endpoints: os, ")
    assert not (tmp_path / "d.csv").exists() and not (tmp_path / "a.csv").exists()


# --- plan files ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["run"], ["plan", "check"]])
def test_a_missing_plan_file_is_one_line(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    assert one_line(invoke(*command, "missing.toml"), code=2) == "No such plan file: missing.toml"


@pytest.mark.parametrize("command", [["run"], ["plan", "check"]])
@pytest.mark.parametrize("kind", ["directory", "not utf-8", "not toml", "unreadable"])
def test_a_plan_that_cannot_be_read_is_one_line(tmp_path, monkeypatch, command, kind):
    monkeypatch.chdir(tmp_path)
    plan = Path("plan.toml")
    if kind == "directory":
        plan.mkdir()
    elif kind == "not utf-8":
        plan.write_bytes(b'\xff\xfe[study]\ntitle = "x"\n')
    elif kind == "not toml":
        plan.write_text("this is = = not toml\n")
    else:  # root reads files whatever their mode: the read itself is refused
        plan.write_text('[study]\ntitle = "x"\n')
        real_read = Path.read_text

        def refuse(self, *args, **kwargs):
            if self.name == "plan.toml":
                raise PermissionError(13, "Permission denied", str(self))
            return real_read(self, *args, **kwargs)

        monkeypatch.setattr(Path, "read_text", refuse)
    line = one_line(invoke(*command, "plan.toml"), code=2)
    expected = {"directory": "Invalid study plan: plan.toml: cannot read the file: Is a directory",
                "not utf-8": "Invalid study plan: plan.toml: not UTF-8 text (invalid byte at offset 0)",
                "not toml": "Invalid study plan: plan.toml:1: Expected '=' after a key",
                "unreadable": "Invalid study plan: plan.toml: cannot read the file: Permission denied"}  # fmt: skip
    assert line.startswith(expected[kind]), line


def test_a_plan_with_several_problems_still_lists_every_one(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('[study]\n[data]\nsource = "demo"\n[endpoints]\nuse = ["nope"]\n')
    result = invoke("plan", "check", str(plan))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "2 problem(s)" in result.output and "study.title" in result.output and "nope" in result.output


# --- files named on the command line --------------------------------------------------------------------------------


def test_a_missing_secret_file_is_one_line(initialised, tmp_path):
    line = one_line(invoke("export", "deidentified", "--db", initialised, "--secret-file", str(tmp_path / "nope"),
                           "--out-dir", str(tmp_path / "deid")))  # fmt: skip
    assert line == f"Export refused: cannot read the secret file {tmp_path / 'nope'}: No such file or directory"
    assert not (tmp_path / "deid").exists()


def test_a_missing_import_file_is_one_line_naming_it(initialised, tmp_path):
    line = one_line(invoke("import", str(tmp_path / "patients.csv"), "--db", initialised))
    assert line == f"Import refused: no such file: {tmp_path / 'patients.csv'}"


def test_an_import_file_that_is_a_directory_is_one_line(initialised, tmp_path):
    (tmp_path / "patients.csv").mkdir()
    line = one_line(invoke("import", str(tmp_path / "patients.csv"), "--db", initialised))
    assert line.startswith("Import refused:") and "patients.csv" in line


def test_an_output_that_cannot_be_written_is_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(url)
    store.init()
    store.import_records(history())
    store.engine.dispose()
    line = one_line(invoke("derive", "--db", url, "--endpoints", "os", "--out", str(tmp_path / "no" / "d.csv")))
    assert line.startswith("Derivation refused:") and "no" in line


# --- import: corrections (--update), duplicates, warnings (a stand-in store keeps to the Store contract) -------------


class FakeStore:
    """Records the calls of the import command; answers as ``Store.import_records`` would."""

    def __init__(self, changes=(), warnings=(), error: Exception | None = None) -> None:
        self.calls: list[dict] = []
        self.changes = list(changes)
        self.warnings = list(warnings)
        self.error = error

    def init(self) -> None:
        pass

    def needs_upgrade(self) -> bool:
        return False

    def dictionary(self):
        from allotrack.records.dictionary import default_dictionary

        return default_dictionary()

    def import_records(self, records, user="import", centre=None, dry_run=False, update=False, reason=None,
                       drop_duplicates=False):  # fmt: skip
        self.calls.append({"dry_run": dry_run, "update": update, "reason": reason, "drop_duplicates": drop_duplicates})
        if self.error is not None:
            raise self.error
        changes = self.changes if update else []
        return SimpleNamespace(added={"patients": 0, "deaths": 1}, already_present={"patients": 5},
                               updated={"patients": len({c.record for c in changes})} if changes else {},
                               changes=changes, warnings=self.warnings, dry_run=dry_run)  # fmt: skip

    @property
    def writes(self) -> list[dict]:
        return [c for c in self.calls if not c["dry_run"]]


CHANGE = SimpleNamespace(table="patients", record="patient_id 'p1'", column="sex", old="M", new="F")
CHANGE2 = SimpleNamespace(table="patients", record="patient_id 'p1'", column="birth_date", old=None, new="1950-06-01")


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake store behind the import command, and the history's CSV files."""
    holder = SimpleNamespace(store=FakeStore(changes=[CHANGE, CHANGE2]), files=write_history_csvs(tmp_path))
    monkeypatch.setattr(cli, "_open_store", lambda db, must_exist=True: holder.store)
    return holder


def test_update_without_a_reason_writes_nothing(fake):
    for reason in ([], ["--reason", "   "]):
        fake.store.calls.clear()
        result = invoke("import", *fake.files, "--update", *reason, "--yes")
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert "Import refused: --reason is required" in result.output and "Traceback" not in result.output
        assert fake.store.writes == []


def test_update_shows_the_changes_and_asks_before_applying(fake):
    declined = invoke("import", *fake.files, "--update", "--reason", "sex was mistyped", input="n\n")
    assert declined.exit_code == 1 and isinstance(declined.exception, SystemExit), declined.output
    assert "Apply 2 change(s) to 1 record(s)? [y/N]" in declined.output
    assert "patient_id 'p1'" in declined.output and "M → F" in declined.output and "(missing) → 1950-06-01" in \
        declined.output  # fmt: skip
    assert "Import cancelled" in declined.output and fake.store.writes == []
    accepted = invoke("import", *fake.files, "--update", "--reason", "sex was mistyped", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert fake.store.writes == [{"dry_run": False, "update": True, "reason": "sex was mistyped",
                                  "drop_duplicates": False}]  # fmt: skip
    assert "Valid. Added: 1 deaths. Updated: 1 patients." in accepted.output


def test_update_with_yes_or_dry_run_does_not_ask(fake):
    applied = invoke("import", *fake.files, "--update", "--reason", "typo", "--yes")
    assert applied.exit_code == 0 and "[y/N]" not in applied.output, applied.output
    assert [c["dry_run"] for c in fake.store.calls] == [True, False]
    fake.store.calls.clear()
    preview = invoke("import", *fake.files, "--update", "--dry-run")
    assert preview.exit_code == 0 and "[y/N]" not in preview.output, preview.output
    assert "M → F" in preview.output and "Would update: 1 patients." in preview.output
    assert fake.store.writes == []


def test_import_prints_warnings_once_and_passes_drop_duplicates(fake):
    fake.store.warnings = ["patients: 1 exact duplicate row was imported once (file line 3)"]
    result = invoke("import", *fake.files, "--drop-duplicates")
    assert result.exit_code == 0, result.output
    assert result.output.count("Warning: patients: 1 exact duplicate row was imported once") == 1
    assert fake.store.calls == [{"dry_run": False, "update": False, "reason": None, "drop_duplicates": True}]
    fake.store.calls.clear()
    result = invoke("import", *fake.files, "--update", "--reason", "typo", "--yes", "--drop-duplicates")
    assert result.output.count("Warning: patients: 1 exact duplicate") == 1  # preview and write warn alike
    assert all(c["drop_duplicates"] for c in fake.store.calls)


def test_a_lost_import_race_is_one_line(fake):
    fake.store.error = type("ImportConflict", (AllotrackError,), {})(
        "another import changed the records meanwhile; nothing was imported: run the import again")
    line = one_line(invoke("import", *fake.files))
    assert line == "Import refused: another import changed the records meanwhile; nothing was imported: run the " \
        "import again"  # fmt: skip


# --- import: the same on a real store --------------------------------------------------------------------------------


def _stored_sex(url: str, patient_id: str) -> str:
    store = Store(url)
    try:
        return str(store.load().tables["patients"].set_index("patient_id").loc[patient_id, "sex"])
    finally:
        store.engine.dispose()


def test_a_correction_needs_update_a_reason_and_a_yes(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert invoke("db", "init", "--db", url).exit_code == 0
    assert invoke("import", *write_history_csvs(tmp_path), "--db", url).exit_code == 0
    (tmp_path / "fix").mkdir()
    patients = history().tables["patients"].copy()
    patients.loc[patients["patient_id"] == "p1", "sex"] = "F"
    patients.to_csv(tmp_path / "fix" / "patients.csv", index=False)
    fix = str(tmp_path / "fix" / "patients.csv")
    plain = invoke("import", fix, "--db", url)
    assert plain.exit_code == 1 and "--update" in plain.output and "Traceback" not in plain.output
    no_reason = invoke("import", fix, "--db", url, "--update", "--yes")
    assert no_reason.exit_code == 1 and "Import refused: --reason is required" in no_reason.output
    declined = invoke("import", fix, "--db", url, "--update", "--reason", "sex mistyped", input="n\n")
    assert declined.exit_code == 1 and "Apply 1 change(s) to 1 record(s)? [y/N]" in declined.output
    assert _stored_sex(url, "p1") == "M"
    applied = invoke("import", fix, "--db", url, "--update", "--reason", "sex mistyped", input="y\n")
    assert applied.exit_code == 0 and "M → F" in applied.output, applied.output
    assert "Valid. Added: nothing new. Updated: 1 patients." in applied.output
    assert _stored_sex(url, "p1") == "F"


def test_exact_duplicates_are_refused_unless_dropped(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert invoke("db", "init", "--db", url).exit_code == 0
    patients = history().tables["patients"]
    patients.iloc[[0, 1, 2, 3, 4, 1]].to_csv(tmp_path / "patients.csv", index=False)
    refused = invoke("import", str(tmp_path / "patients.csv"), "--db", url)
    assert refused.exit_code == 1 and "--drop-duplicates" in refused.output and "Traceback" not in refused.output
    dropped = invoke("import", str(tmp_path / "patients.csv"), "--db", url, "--drop-duplicates")
    assert dropped.exit_code == 0, dropped.output
    assert "Warning:" in dropped.output and "Valid. Added: 5 patients." in dropped.output


def test_import_does_not_upgrade_an_older_store_by_itself(tmp_path):
    """Upgrades change stored data (0005 retires duplicate natural keys), so they happen only through db init."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    Store(url).init("0004")
    (tmp_path / "csv").mkdir()
    files = write_history_csvs(tmp_path / "csv")
    refused = invoke("import", *files, "--db", url)
    assert one_line(refused) == ("Import refused: the record store's schema (revision 0004) is older than this "
                                 f"allotrack; upgrade it first with 'allotrack db init --db {url}'")  # fmt: skip
    assert Store(url).revision() == "0004"
    assert invoke("db", "init", "--db", url).exit_code == 0
    assert "Added: 5 patients" in invoke("import", *files, "--db", url).output
