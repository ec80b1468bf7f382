"""Shared pieces of the benchmark scripts: best-of timing and subprocess workers with a time limit."""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Callable

TIMEOUT = 600  # a peer that needs more than 10 minutes is reported as such


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Best wall-clock time of ``repeat`` runs after one warm-up run."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_json(cmd: list[str], timeout: int = TIMEOUT) -> dict:
    """Run a worker that prints one JSON object on its last stdout line; peak memory via /usr/bin/time."""
    try:
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True,
                              timeout=timeout, check=True)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"seconds": None, "note": f"> {timeout} s"}
    except subprocess.CalledProcessError as err:
        return {"seconds": None, "note": "failed: " + (err.stderr.strip().splitlines() or ["?"])[-1][:80]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["peak_mb"] = int(proc.stderr.strip().splitlines()[-1]) / 1024
    return result


def fmt_seconds(result: dict | None) -> str:
    if result is None:
        return "not installed"
    return f"{result['seconds']:.3f}" if result.get("seconds") is not None else result.get("note", "")


def tools_available(python_peer: str) -> list[str]:
    """allotrack, the Python peer if importable, and R if Rscript is on the PATH."""
    import importlib.util

    tools = ["allotrack"]
    if importlib.util.find_spec(python_peer) is not None:
        tools.append(python_peer)
    if subprocess.run(["which", "Rscript"], capture_output=True).returncode == 0:
        tools.append("R")
    return tools


def parse_args(default_sizes: str, default_out: str) -> argparse.Namespace:
    """Common options; ``--worker`` turns the script into a worker process for one tool, task and size."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=default_sizes)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=default_out)
    parser.add_argument("--worker")
    parser.add_argument("--task")
    parser.add_argument("--data")
    parser.add_argument("--n", type=int)
    return parser.parse_args()


def worker_main(args: argparse.Namespace, worker: Callable[..., dict]) -> bool:
    """Run the worker and print its JSON if this process is one; return whether it was."""
    if not args.worker:
        return False
    from pathlib import Path

    print(json.dumps(worker(args.worker, args.task, Path(args.data), args.n, args.repeat)))
    return True
