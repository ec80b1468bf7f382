"""Time allotrack's Fine–Gray and cumulative incidence beside R cmprsk in one run.

    python benchmarks/competing.py [--sizes 1000,5000,10000,100000,1000000] [--repeat 3]

Simulated data: 5 standard-normal covariates, cause-1 times exponential with log-subdistribution-like effects
from −0.4 to 0.4, competing times exponential, uniform censoring; times rounded to 4 decimals (ties).
``fine_gray`` is timed with its sandwich variance (crr's ``variance=TRUE`` equivalent); ``cmprsk::crr`` runs
with its defaults (gtol 1e-6, maxiter 10) and is timed inside R (``system.time``), so R's data loading is
excluded. A peer whose previous size took long enough that this size would exceed 10 minutes (O(n²)
extrapolation) is skipped and marked so. pycmprsk is listed when importable (it needs Python ≥ 3.13).
Results: benchmarks/results/competing.md and stdout.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _harness import TIMEOUT, best_time, fmt_seconds, parse_args, run_json, tools_available, worker_main

P = 5
HERE = Path(__file__).resolve().parent


def simulate(n: int, path: Path) -> None:
    rng = np.random.default_rng(20261123)
    x = rng.standard_normal((n, P))
    beta = np.linspace(-0.4, 0.4, P)
    t1 = rng.exponential(2 * np.exp(-(x @ beta)))
    t2 = rng.exponential(2.0, n)
    c = rng.uniform(0, 3, n)
    t = np.round(np.minimum(np.minimum(t1, t2), c), 4)
    cause = np.where(c <= np.minimum(t1, t2), 0, np.where(t1 <= t2, 1, 2)).astype(float)
    np.column_stack([t, cause, x]).T.tofile(path)


def worker(tool: str, task: str, path: Path, n: int, repeat: int) -> dict:
    cols = np.fromfile(path, dtype=np.float64).reshape(P + 2, n)
    out: dict = {}
    if tool == "allotrack":
        import pandas as pd

        import allotrack as at

        frame = pd.DataFrame({f"x{j}": cols[2 + j] for j in range(P)} | {"time": cols[0], "cause": cols[1]})
        names = [f"x{j}" for j in range(P)]
        if task == "fine_gray":
            out["seconds"] = best_time(lambda: at.fine_gray(frame, "time", "cause", covariates=names), repeat)
            out["coef"] = at.fine_gray(frame, "time", "cause", covariates=names).coef.tolist()
        else:
            out["seconds"] = best_time(lambda: at.cumulative_incidence(frame, "time", "cause"), repeat)
    elif tool == "pycmprsk":  # pragma: no cover - needs Python >= 3.13
        import pycmprsk  # type: ignore[import-not-found]

        if task == "fine_gray":
            out["seconds"] = best_time(lambda: pycmprsk.crr(cols[0], cols[1], cols[2:].T), repeat)
        else:
            out["seconds"] = best_time(lambda: pycmprsk.cuminc(cols[0], cols[1]), repeat)
    return out


R_SCRIPT = r"""
suppressPackageStartupMessages(library(cmprsk))
args <- commandArgs(trailingOnly = TRUE)
task <- args[1]; path <- args[2]; n <- as.integer(args[3]); repeats <- as.integer(args[4]); p <- 5
m <- matrix(readBin(path, "double", n = n * (p + 2)), nrow = n)
f <- if (task == "fine_gray") function() crr(m[, 1], m[, 2], m[, 3:(p + 2)]) else function() cuminc(m[, 1], m[, 2])
best <- Inf
for (i in seq_len(repeats)) best <- min(best, system.time(fit <- f())[["elapsed"]])
coef <- if (task == "fine_gray") unname(fit$coef) else numeric(0)
cat(jsonlite::toJSON(list(seconds = best, coef = coef), digits = NA, auto_unbox = TRUE), "\n")
"""


def main() -> None:
    args = parse_args("1000,5000,10000,100000,1000000", str(HERE / "results" / "competing.md"))
    if worker_main(args, worker):
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    tools = tools_available("pycmprsk")
    rows = []
    last: dict[tuple[str, str], tuple[int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT)
        for n in sizes:
            path = Path(tmp) / f"data_{n}.bin"
            simulate(n, path)
            for task in ("fine_gray", "cuminc"):
                results: dict[str, dict] = {}
                for tool in tools:
                    prev = last.get((tool, task))
                    if prev and prev[1] * (n / prev[0]) ** 2 * args.repeat > TIMEOUT:
                        results[tool] = {"seconds": None, "note": "skipped (O(n²) extrapolation > 10 min)"}
                        continue
                    repeat = args.repeat if tool != "R" or n <= 5000 else 1
                    if tool == "R":
                        cmd = ["Rscript", str(script), task, str(path), str(n), str(repeat)]
                    else:
                        cmd = [sys.executable, __file__, "--worker", tool, "--task", task, "--data", str(path),
                               "--n", str(n), "--repeat", str(repeat)]  # fmt: skip
                    results[tool] = run_json(cmd)
                    if results[tool].get("seconds") is not None:
                        last[(tool, task)] = (n, results[tool]["seconds"])
                rows.append((task, n, results))
                print(task, n, {k: v.get("seconds", v.get("note")) for k, v in results.items()}, flush=True)
    lines = [
        f"Run {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()} with {os.cpu_count()} cores; best of "
        f"{args.repeat} after a warm-up (R at n > 5,000: one run); peak = resident memory of the worker.",
        "",
        "| task | n | allotrack s | R cmprsk s | pycmprsk s | R ÷ allotrack | allotrack peak MB "
        "| max rel. coef diff vs crr |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, n, res in rows:
        ours = res["allotrack"]
        r = res.get("R")
        speed = f"{r['seconds'] / ours['seconds']:,.0f}×" if r and r.get("seconds") and ours.get("seconds") else ""
        diff = ""
        if task == "fine_gray" and r and r.get("coef"):
            a, b = np.asarray(ours["coef"]), np.asarray(r["coef"])
            diff = f"{np.max(np.abs(a / b - 1)):.1e}"
        label = "Fine–Gray, 5 covariates, sandwich SE" if task == "fine_gray" else "cumulative incidence"
        lines.append(
            f"| {label} | {n:,} | {fmt_seconds(ours)} | {fmt_seconds(r)} | {fmt_seconds(res.get('pycmprsk'))} "
            f"| {speed} | {ours.get('peak_mb', 0):.0f} | {diff} |"
        )
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
