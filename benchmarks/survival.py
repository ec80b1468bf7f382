"""Time allotrack's Kaplan–Meier and Cox fits beside R survival and lifelines, in one run.

    python benchmarks/survival.py [--sizes 10000,100000,1000000] [--repeat 3]

Each tool runs in its own subprocess on the same simulated data (10 standard-normal covariates, exponential
event times with log-hazard ratios from −0.3 to 0.3, uniform censoring, continuous times). A worker warms up
once, then reports the best of ``--repeat`` wall-clock times and its peak resident memory (ru_maxrss, which
includes the interpreter and the loaded data). A peer that does not finish within 10 minutes is reported as
such. The Markdown table goes to benchmarks/results/survival.md and to stdout.
R's times are measured inside R (``system.time`` around ``survfit``/``coxph``), excluding data loading.
allotrack's Cox time excludes the concordance, which it computes on first access (timed separately);
R's ``coxph`` computes it during the fit.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _harness import best_time, fmt_seconds, parse_args, run_json, tools_available, worker_main

P = 10
HERE = Path(__file__).resolve().parent


def simulate(n: int, path: Path) -> None:
    rng = np.random.default_rng(20261123)
    x = rng.standard_normal((n, P))
    beta = np.linspace(-0.3, 0.3, P)
    t = rng.exponential(np.exp(-(x @ beta)))
    c = rng.uniform(0, 2, n)
    cols = np.column_stack([np.minimum(t, c), (t <= c).astype(float), x])
    np.asfortranarray(cols).T.tofile(path)  # column after column, float64


def load(path: Path, n: int) -> np.ndarray:
    return np.fromfile(path, dtype=np.float64).reshape(P + 2, n)


def worker(tool: str, task: str, path: Path, n: int, repeat: int) -> dict:
    cols = load(path, n)
    time_, event, x = cols[0], cols[1], cols[2:].T
    out: dict = {}
    if tool == "allotrack":
        import pandas as pd

        import allotrack as at

        if task == "km":
            out["seconds"] = best_time(lambda: at.kaplan_meier(None, time_, event), repeat)
        else:
            frame = pd.DataFrame({f"x{j}": x[:, j] for j in range(P)} | {"time": time_, "event": event})
            names = [f"x{j}" for j in range(P)]
            out["seconds"] = best_time(lambda: at.cox_ph(frame, "time", "event", covariates=names), repeat)
            fit = at.cox_ph(frame, "time", "event", covariates=names)
            t0 = time.perf_counter()
            _ = fit.concordance
            out["concordance_seconds"] = time.perf_counter() - t0
            out["coef"] = fit.coef.tolist()
    elif tool == "lifelines":
        import pandas as pd
        from lifelines import CoxPHFitter, KaplanMeierFitter

        if task == "km":
            out["seconds"] = best_time(lambda: KaplanMeierFitter().fit(time_, event), repeat)
        else:
            frame = pd.DataFrame({f"x{j}": x[:, j] for j in range(P)} | {"time": time_, "event": event})
            fitter = CoxPHFitter()
            out["seconds"] = best_time(lambda: fitter.fit(frame, "time", "event"), repeat)
            out["coef"] = fitter.params_.to_numpy().tolist()
    return out


R_SCRIPT = r"""
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
task <- args[1]; path <- args[2]; n <- as.integer(args[3]); repeats <- as.integer(args[4]); p <- 10
m <- matrix(readBin(path, "double", n = n * (p + 2)), nrow = n)
d <- as.data.frame(m); names(d) <- c("time", "event", paste0("x", 0:(p - 1)))
f <- if (task == "km") function() survfit(Surv(time, event) ~ 1, data = d) else
  function() coxph(as.formula(paste("Surv(time, event) ~", paste0("x", 0:(p - 1), collapse = "+"))), data = d)
invisible(f())
best <- Inf
for (i in seq_len(repeats)) best <- min(best, system.time(fit <- f())[["elapsed"]])
coef <- if (task == "cox") unname(coef(fit)) else numeric(0)
cat(jsonlite::toJSON(list(seconds = best, coef = coef), digits = NA, auto_unbox = TRUE), "\n")
"""


def run_worker(tool: str, task: str, path: Path, n: int, repeat: int) -> dict:
    if tool == "R":
        script = path.parent / "bench.R"
        script.write_text(R_SCRIPT)
        cmd = ["Rscript", str(script), task, str(path), str(n), str(repeat)]
    else:
        cmd = [sys.executable, __file__, "--worker", tool, "--task", task, "--data", str(path), "--n", str(n),
               "--repeat", str(repeat)]  # fmt: skip
    return run_json(cmd)


def _peaks(res: dict) -> str:
    return " / ".join(f"{res[t]['peak_mb']:.0f}" if t in res and "peak_mb" in res[t] else "–"
                      for t in ("allotrack", "lifelines", "R"))  # fmt: skip


def main() -> None:
    args = parse_args("10000,100000,1000000", str(HERE / "results" / "survival.md"))
    if worker_main(args, worker):
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    tools = tools_available("lifelines")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"data_{n}.bin"
            simulate(n, path)
            for task in ("km", "cox"):
                results = {tool: run_worker(tool, task, path, n, args.repeat) for tool in tools}
                rows.append((task, n, results))
                print(task, n, {k: v.get("seconds") for k, v in results.items()}, flush=True)
    lines = [
        f"Run {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()} with {os.cpu_count()} cores; "
        f"best of {args.repeat} after a warm-up; peak = resident memory of the worker process.",
        "",
        "| task | n | allotrack s | lifelines s | R survival s | allotrack ÷ fastest peer "
        "| peak MB allotrack / lifelines / R | max rel. coef diff vs R |",
        "|---|---|---|---|---|---|---|---|",
    ]

    for task, n, res in rows:
        peers = [res[t]["seconds"] for t in ("lifelines", "R") if t in res and res[t].get("seconds")]
        ours = res["allotrack"]["seconds"]
        ratio = f"{ours / min(peers):.2f}" if peers and ours else ""
        diff = ""
        if task == "cox" and "R" in res and res["R"].get("coef"):
            a, b = np.asarray(res["allotrack"]["coef"]), np.asarray(res["R"]["coef"])
            diff = f"{np.max(np.abs(a / b - 1)):.1e}"
        label = "Kaplan–Meier" if task == "km" else f"Cox, {P} covariates"
        extra = ""
        if task == "cox" and "concordance_seconds" in res["allotrack"]:
            extra = f" (+{res['allotrack']['concordance_seconds']:.2f} concordance)"
        lines.append(
            f"| {label} | {n:,} | {fmt_seconds(res.get('allotrack'))}{extra} | "
            f"{fmt_seconds(res.get('lifelines'))} | {fmt_seconds(res.get('R'))} "
            f"| {ratio} | {_peaks(res)} | {diff} |"
        )
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
