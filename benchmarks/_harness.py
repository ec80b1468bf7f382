"""Shared pieces of the benchmark scripts: best-of timing and subprocess workers with a time limit."""

from __future__ import annotations

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
