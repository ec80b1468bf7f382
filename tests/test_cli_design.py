"""`allotrack power` and `allotrack dose`: the numbers are the library's (and R power.prop.test's), --json parses,
and every bad input is one line naming the problem with exit code 1, never a traceback."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_close, reference
from typer.testing import CliRunner, Result

from allotrack.cli import app
from allotrack.design.dose_finding import boin_boundaries, dose_decisions
from allotrack.design.power import competing_risks, logrank, two_proportions

REF = reference("power_reference")
PROPS = {c["name"]: c for c in REF["two_proportions"]}
SURV = {c["name"]: c for c in REF["survival"]}

BOIN_RECORDS = """patient_id,dose_level,dlt
P1,DL1,0
P2,DL1,0
P3,DL1,0
P4,DL2,0
P5,DL2,1
P6,DL2,0
P7,DL2,0
P8,DL2,0
P9,DL2,0
P10,DL3,1
P11,DL3,1
P12,DL3,0
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def one_line(result: Result) -> str:
    """The failure's only line: exit code 1 through typer.Exit, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def as_json(result: Result) -> dict:
    records = json.loads(ok(result))
    assert isinstance(records, list) and len(records) == 1
    return records[0]


def same_as_library(got: dict, frame: pd.DataFrame) -> None:
    """Every field of the JSON record equals the library's to_frame() (missing values as null)."""
    expected = frame.iloc[0]
    assert list(got) == list(frame.columns)
    for key, value in got.items():
        want = expected[key]
        if pd.isna(want):
            assert value is None, key
        elif isinstance(want, float):
            assert value == want, key  # exact: the JSON floats round-trip
        else:
            assert value == want, key


def table_rows(output: str) -> list[list[str]]:
    """The body rows of a Rich table in the output, cells stripped."""
    return [
        [cell.strip() for cell in line.strip("│ ").split("│")] for line in output.splitlines() if line.startswith("│")
    ]


def power_args(args: dict) -> list[str]:
    """CLI options for the library arguments of a reference case."""
    flags = {"hazard_ratio": "--hr", "subdistribution_hr": "--subdistribution-hr"}
    out = []
    for name, value in args.items():
        if name == "alternative":
            out += ["--one-sided"] if value == "one-sided" else []
        elif name == "strict":
            out += ["--strict"] if value else []
        elif name == "method":
            out += ["--method", value]
        else:
            out += [flags.get(name, "--" + name.replace("_", "-")), repr(float(value))]
    return out


# ---------------------------------------------------------------------------------------------------- power


@pytest.mark.parametrize("name", list(PROPS))
def test_two_proportions_equals_power_prop_test_and_the_library(name):
    case = PROPS[name]
    got = as_json(invoke("power", "two-proportions", *power_args(case["args"]), "--json"))
    assert_close(got["n1_exact"], case["n"], what="n (group 1)")
    assert_close(got["power"], case["power"], what="power")
    assert_close(got["n2_exact"], case.get("n2", case["n"]), what="n (group 2)")
    assert got["n1"] == math.ceil(case["n"] - 1e-9) and got["n_total"] == got["n1"] + got["n2"]
    assert got["solved_for"] == ("n" if "power" in case["args"] else "power") and got["events"] is None
    same_as_library(got, two_proportions(**case["args"]).to_frame())


@pytest.mark.parametrize("name", list(SURV))
def test_logrank_and_competing_risks_equal_the_formulas_in_r_and_the_library(name):
    case = SURV[name]
    command = {"logrank": "logrank", "competing_risks": "competing-risks"}[case["fun"]]
    got = as_json(invoke("power", command, *power_args(case["args"]), "--json"))
    assert_close(got["events_exact"], case["events"], what="events")
    assert got["events"] == math.ceil(case["events"] - 1e-9)
    assert_close(got["power"], case["power"], what="power")
    if "n_total" in case:
        assert_close(got["n1_exact"] + got["n2_exact"], case["n_total"], what="patients")
        assert_close(got["event_probability"], case["event_probability"], what="P(event)")
    else:
        assert got["n1"] is None and got["n_total"] is None and got["n1_exact"] is None
    function = {"logrank": logrank, "competing_risks": competing_risks}[case["fun"]]
    same_as_library(got, function(**case["args"]).to_frame())


def test_two_proportions_table_and_default_power():
    out = ok(invoke("power", "two-proportions", "--p1", "0.55", "--p2", "0.83"))
    res = two_proportions(0.55, 0.83, power=0.8)  # the default power when no --n is given
    rows = dict(row[:2] for row in table_rows(out))
    assert rows["n1"] == rows["n2"] == str(res.n_per_group[0]) == "42" and rows["n_total"] == "84"
    assert rows["n1_exact"] == f"{res.n_exact[0]:.6g}" == "41.6297"
    assert rows["power"] == "0.8" and rows["solved_for"] == "n" and rows["p2"] == "0.83"
    assert "42 + 42 = 84 patients for power 0.8 (alpha 0.05, two-sided)" in out
    computed = ok(invoke("power", "two-proportions", "--p1", "0.55", "--p2", "0.83", "--n", "60"))
    power = two_proportions(0.55, 0.83, n=60).power
    assert (
        f"Power {power:.4f} with 60 + 60 patients" in computed
        and dict(row[:2] for row in table_rows(computed))["power"] == f"{power:.6g}"
    )


def test_logrank_table_events_and_patients():
    out = ok(
        invoke("power", "logrank", "--hr", "0.6", "--median-control", "12", "--accrual", "24", "--follow-up", "12")
    )
    res = logrank(0.6, power=0.8, median_control=12, accrual=24, follow_up=12)
    rows = dict(row[:2] for row in table_rows(out))
    assert rows["events"] == str(res.events) == "121" and rows["n_total"] == str(res.n_total) == "188"
    assert rows["event_probability"] == f"{res.input('event_probability'):.6g}"
    assert "121 events; 94 + 94 = 188 patients for power 0.8" in out
    events_only = ok(invoke("power", "logrank", "--hr", "0.6", "--method", "freedman", "--events", "100"))
    power = logrank(0.6, events=100, method="freedman").power
    assert f"Power {power:.4f} with 100 events" in events_only and "turn events into patients" in events_only


def test_competing_risks_by_its_short_option():
    got = as_json(
        invoke(
            "power",
            "competing-risks",
            "--shr",
            "0.6",
            "--cif-control",
            "0.3",
            "--allocation",
            "0.4",
            "--power",
            "0.9",
            "--one-sided",
            "--alpha",
            "0.025",
            "--json",
        )
    )
    same_as_library(got, competing_risks(0.6, 0.3, 0.025, 0.9, allocation=0.4, alternative="one-sided").to_frame())
    assert got["alternative"] == "one-sided" and got["n1"] < got["n2"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["two-proportions", "--p1", "0.55", "--p2", "0.83", "--power", "0.8", "--n", "60"],
            "give --power or --n, not both",
        ),
        (["logrank", "--hr", "0.6", "--power", "0.8", "--events", "100"], "give --power or --events, not both"),
        (["logrank", "--hr", "0.6", "--events", "100", "--n", "300"], "give one of --events and --n, not both"),
        (
            ["competing-risks", "--shr", "0.6", "--cif-control", "0.3", "--n", "300", "--power", "0.9"],
            "give --power or --n, not both",
        ),
        (["two-proportions", "--p1", "1.5", "--p2", "0.83"], "--p1: p1 must lie strictly between 0 and 1, not 1.5"),
        (["two-proportions", "--p1", "0.5", "--p2", "0.5"], "--p2: p1 and p2 are equal (0.5)"),
        (["two-proportions", "--p1", "0.5", "--p2", "0.7", "--ratio", "0"], "--ratio: ratio must be positive"),
        (["logrank", "--hr", "1"], "--hazard-ratio: hazard_ratio is 1: there is no difference to detect"),
        (["logrank", "--hr", "0.6", "--method", "cox"], "--method: method must be 'schoenfeld' or 'freedman'"),
        (
            ["logrank", "--hr", "0.6", "--method", "freedman", "--allocation", "0.6"],
            "--allocation: Freedman's formula is for 1:1 allocation",
        ),
        (["logrank", "--hr", "0.6", "--n", "300"], "--n: n (patients) needs an event probability"),
        (["logrank", "--hr", "0.6", "--median-control", "12"], "--follow-up: follow_up (after the end of accrual)"),
        (
            ["logrank", "--hr", "0.6", "--event-probability", "0.5", "--median-control", "12"],
            "give at most one of event_probability, median_control and hazard_control",
        ),
        (["competing-risks", "--shr", "0.6", "--cif-control", "1.2"], "--cif-control: cif_control must lie strictly"),
        (["competing-risks", "--shr", "0.6", "--cif-control", "0.3", "--alpha", "0"], "--alpha: alpha must lie"),
    ],
)
def test_bad_power_inputs_are_one_line(args, expected):
    line = one_line(invoke("power", *args))
    assert line.startswith("Power not computed: ") and expected in line, line


# ----------------------------------------------------------------------------------------------------- dose


def test_boin_boundaries_table_is_the_library_table():
    out = ok(invoke("dose", "boundaries", "--target", "0.3", "--max-n", "12"))
    table = boin_boundaries(0.3, 12).table
    rows = table_rows(out)
    assert len(rows) == 12
    for row, (_, want) in zip(rows, table.iterrows(), strict=True):
        elim = want["eliminate_if_at_least"]
        assert row == [
            str(want["n"]),
            str(want["escalate_if_at_most"]),
            str(want["deescalate_if_at_least"]),
            "-" if elim is pd.NA else str(elim),
        ]
    # Liu & Yuan (2015), Table 1, target 0.3: n = 3, 6, 9, 12 → escalate ≤ 0, 1, 2, 2; de-escalate ≥ 2, 3, 4, 5
    assert [rows[i][1:3] for i in (2, 5, 8, 11)] == [["0", "2"], ["1", "3"], ["2", "4"], ["2", "5"]]
    assert rows[2][3] == "3" and rows[0][3] == "-"
    assert f"lambda_e {boin_boundaries(0.3).lambda_e:.6f}" in out


def test_boin_boundaries_with_p_saf_and_p_tox():
    out = ok(
        invoke(
            "dose",
            "boundaries",
            "--target",
            "0.25",
            "--max-n",
            "9",
            "--p-saf",
            "0.15",
            "--p-tox",
            "0.4",
            "--cutoff-eli",
            "0.9",
        )
    )
    table = boin_boundaries(0.25, 9, p_saf=0.15, p_tox=0.4, cutoff_eli=0.9).table
    assert [row[1:3] for row in table_rows(out)] == [
        [str(e), str(d)] for e, d in zip(table["escalate_if_at_most"], table["deescalate_if_at_least"], strict=True)
    ]


def test_bad_boundaries_are_one_line():
    assert "--target: target must lie between 0.05 and 0.6" in one_line(invoke("dose", "boundaries", "--target", "0.9"))
    line = one_line(invoke("dose", "boundaries", "--target", "0.3", "--p-saf", "0.29"))
    assert line.startswith("No boundaries: --p-saf: p_saf must be positive and below the target")


def check_decisions(out: str, design: str, records: pd.DataFrame, levels: list, current) -> None:
    kwargs = {"target": 0.3} if design == "boin" else {}
    res = dose_decisions(records, levels, design, current_level=current, **kwargs)
    rows = table_rows(out)
    assert len(rows) == len(levels)
    for row, (_, want) in zip(rows, res.table.iterrows(), strict=True):
        iso = "-" if pd.isna(want["isotonic"]) else f"{want['isotonic']:.4g}"
        expected = [
            str(want["level"]),
            str(want["n"]),
            str(want["dlt"]),
            want["decision"],
            "yes" if want["eliminated"] else "no",
            iso,
        ]
        if design == "boin":
            expected.append("-" if pd.isna(want["isotonic_boin"]) else f"{want['isotonic_boin']:.4g}")
        assert row == expected
    assert (f"MTD: {res.mtd}" if res.mtd is not None else f"MTD: none ({res.mtd_status})") in out
    if res.stop:
        assert f"Next level: stop the trial (current level {current})" in out
    else:
        assert f"Next level: {res.next_level} (current level {current})" in out


def test_boin_decisions_equal_the_library(tmp_path):
    path = tmp_path / "dlt.csv"
    path.write_text(BOIN_RECORDS)
    out = ok(
        invoke(
            "dose",
            "decide",
            str(path),
            "--design",
            "boin",
            "--target",
            "0.3",
            "--levels",
            "DL1,DL2,DL3,DL4",
            "--current",
            "DL3",
        )
    )
    records = pd.read_csv(path, dtype={"dose_level": str})
    check_decisions(out, "boin", records, ["DL1", "DL2", "DL3", "DL4"], "DL3")
    rows = table_rows(out)
    assert rows[1][:4] == ["DL2", "6", "1", "escalate"] and rows[2][3] == "de-escalate" and rows[3][3] == "not treated"
    assert "MTD: DL2" in out and "Next level: DL2 (current level DL3)" in out


def test_three_plus_three_decisions_equal_the_library(tmp_path):
    path = tmp_path / "dlt.csv"
    path.write_text(BOIN_RECORDS)
    out = ok(
        invoke("dose", "decide", str(path), "--design", "3+3", "--levels", "DL1, DL2, DL3, DL4", "--current", "DL2")
    )
    records = pd.read_csv(path, dtype={"dose_level": str})
    check_decisions(out, "3+3", records, ["DL1", "DL2", "DL3", "DL4"], "DL2")
    assert "MTD: DL2" in out and "Next level: stop the trial (current level DL2)" in out and "BOIN estimate" not in out
    no_current = ok(invoke("dose", "decide", str(path), "--design", "3+3", "--levels", "DL1,DL2,DL3"))
    assert "Next level: give --current LEVEL" in no_current


def test_numeric_levels_need_no_order(tmp_path):
    path = tmp_path / "dlt.csv"
    path.write_text("patient_id,dose_level,dlt\nA,10,0\nB,10,0\nC,10,0\nD,2,0\nE,2,0\nF,2,0\nG,20,1\nH,20,1\n")
    out = ok(invoke("dose", "decide", str(path), "--design", "3+3", "--current", "20"))
    records = pd.DataFrame(
        {"patient_id": list("ABCDEFGH"), "dose_level": [10, 10, 10, 2, 2, 2, 20, 20], "dlt": [0, 0, 0, 0, 0, 0, 1, 1]}
    )
    check_decisions(out, "3+3", records, [2, 10, 20], 20)
    assert [row[0] for row in table_rows(out)] == ["2", "10", "20"]  # numeric order, not text order
    assert "MTD: None" not in out and "not yet determined" in out and "Next level: 10 (current level 20)" in out


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        (
            "patient_id,level,dlt\nP1,DL1,0\n",
            ["--design", "3+3", "--levels", "DL1"],
            "dlt.csv line 1: no column 'dose_level'; DLT records need the columns patient_id, dose_level and dlt",
        ),
        (
            "patient_id,dose_level,dlt\nP1,DL1,0\n\nP2,DL1,2\n",
            ["--design", "3+3", "--levels", "DL1"],
            "dlt.csv line 4, column 'dlt', value '2': dlt must be 0 (no DLT) or 1 (a DLT)",
        ),
        (
            "patient_id,dose_level,dlt\nP1,DL1,0\nP2,DL1,yes\nP3,DL1,3\n",
            ["--design", "3+3", "--levels", "DL1"],
            "dlt.csv line 3, column 'dlt', value 'yes': dlt must be 0 (no DLT) or 1 (a DLT) (and 1 more line)",
        ),
        (
            "patient_id,dose_level,dlt\nP1,DL1,0\nP2,DL5,1\n",
            ["--design", "3+3", "--levels", "DL1,DL2"],
            "dlt.csv line 3, column 'dose_level', value 'DL5': not one of the dose levels given with --levels (DL1, DL2)",
        ),
        (
            "patient_id,dose_level,dlt\nP1,DL1,0\n",
            ["--design", "3+3"],
            "dlt.csv line 2, column 'dose_level', value 'DL1': the dose levels are not numbers, so their order is not "
            "known: give it with --levels",
        ),
        (
            "patient_id,dose_level,dlt\nP1,1,0\nP2,,1\n",
            ["--design", "3+3"],
            "dlt.csv line 3, column 'dose_level': value missing",
        ),
        (
            "patient_id,dose_level,dlt\nP1,1,0\nP1,2,1\n",
            ["--design", "3+3"],
            "dlt.csv line 3, column 'patient_id': the patient of line 2 again; each patient has one DLT record",
        ),
        ("patient_id,dose_level,dlt\n", ["--design", "3+3"], "dlt.csv holds no DLT records"),
        ("", ["--design", "3+3"], "dlt.csv is empty"),
        (
            "patient_id,dose_level,dlt\n" + "".join(f"P{i},1,0\n" for i in range(7)),
            ["--design", "3+3"],
            "dlt.csv: table 'dlt_records', column 'dose_level': the 3 + 3 design treats at most 6 patients at a dose "
            "level; level 1 has 7",
        ),
        (
            "patient_id,dose_level,dlt\nP1,1,0\n",
            ["--design", "boin"],
            "--target (the target DLT rate, e.g. 0.3) is needed for the BOIN design",
        ),
        (
            "patient_id,dose_level,dlt\nP1,1,0\n",
            ["--design", "3+3", "--target", "0.3"],
            "--target is for the BOIN design only",
        ),
        ("patient_id,dose_level,dlt\nP1,1,0\n", ["--design", "crm"], "--design: design must be one of ('boin', '3+3')"),
        ("patient_id,dose_level,dlt\nP1,1,0\n", ["--design", "boin", "--target", "0.9"], "--target: target must lie"),
        (
            "patient_id,dose_level,dlt\nP1,1,0\n",
            ["--design", "3+3", "--current", "high"],
            "--current 'high' is not one of the dose levels 1",
        ),
        (
            "patient_id,dose_level,dlt\nP1,DL1,0\n",
            ["--design", "3+3", "--levels", "DL1,DL2", "--current", "DL3"],
            "--current: current_level 'DL3' is not one of the levels",
        ),
        (
            "patient_id,dose_level,dlt\nP1,DL1,0\n",
            ["--design", "3+3", "--levels", "DL1,DL1"],
            "--levels: levels lists a dose level twice",
        ),
    ],
)
def test_bad_dlt_records_are_one_line(tmp_path, text, args, expected):
    path = tmp_path / "dlt.csv"
    path.write_text(text)
    line = one_line(invoke("dose", "decide", str(path), *args))
    assert line.startswith("No dose decision: ") and expected in line, line


def test_a_missing_file_is_one_line(tmp_path):
    line = one_line(invoke("dose", "decide", str(tmp_path / "none.csv"), "--design", "3+3"))
    assert "no such file" in line and "none.csv" in line


def test_cli_design_imports_without_cli_first():
    """cli imports cli_design; cli_design reaches cli only when a command runs (no import cycle)."""
    code = "import allotrack.cli_design as d; import allotrack.cli as c; assert d.power_app in [g.typer_instance for g in c.app.registered_groups]"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent)
    assert done.returncode == 0, done.stderr
