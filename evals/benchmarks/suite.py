"""The benchmark suite: speed, memory and prompt size of the agent against the targets.

Usage::

    python -m evals.benchmarks.suite --sizes small,medium,national --scaling 50,200,500,2000
    python -m evals.benchmarks.suite --quick        # small and medium, no scaling series

For each world (small = 50 stores x 90 days, medium = 500 x 180, national = 5,000 x 90) it
measures, each step in a fresh process: generation, the Parquet export and its ingest, the
``store_day`` KPI build against a bare scan of the columns it reads, the analytics tools, the
offline triage (model calls and prompt tokens against a naive agent's), a chat answer, a
naive pandas + Prophet + DoWhy pipeline and the triage on Spark ``local[2]``; then the
triage's growth over a series of network sizes. It writes ``bench.json`` and ``bench.md`` to
``--out`` and prints the Markdown. Worlds are generated once into ``OUT/worlds/`` and reused.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evals.benchmarks.agent_steps import TOKEN_COUNTER
from evals.benchmarks.measure import STEP_METRICS, Options, measure_size
from evals.benchmarks.report import (
    SCALING,
    Measurement,
    growth_exponent,
    judge_all,
    render_markdown,
    target_json,
)
from evals.benchmarks.runner import DEFAULT_MEAN_ORDERS, ROOT, World, ensure_world, log, run_step

SIZES: dict[str, tuple[int, int]] = {
    "tiny": (12, 45),  # for developing the suite: not in --help
    "small": (50, 90),
    "medium": (500, 180),
    "national": (5_000, 90),
}
FULL_SIZES = ("small", "medium", "national")
QUICK_SIZES = ("small", "medium")
FULL_SCALING = (50, 200, 500, 2000)
SCALING_DAYS = 90

METHOD = [
    "Each step runs in a fresh Python process; its peak RSS is that process's ru_maxrss "
    "(imports included; child processes such as Spark's JVM or Stan's sampler are not).",
    "Times are wall-clock seconds of the step's work, imports excluded; the triage and the "
    "chat answer include starting the service, with an empty model cache.",
    "KPI build: the store_day view's SQL computed from the deliveries; bare scan: one pass "
    "over the deliveries columns it reads (DuckDB, same connection, file cached).",
    "Naive pipeline: pandas read of the Parquet lake, daily store KPIs in pandas, a Prophet "
    "per store x KPI (late_rate, orders), a DoWhy GCM with automatic mechanisms per anomaly "
    "(evals/benchmarks/naive.py).",
    f"LLM calls are counted from the offline run's record; {TOKEN_COUNTER}. The naive agent's "
    "prompt is store_day of the last 28 days, every store, as CSV.",
]


def _numbers(text: str, what: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"{what}: comma-separated integers, got {text!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``--quick`` sets the defaults of ``--sizes`` and ``--scaling``)."""
    parser = argparse.ArgumentParser(
        description="Benchmark suite (see the module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sizes", help="worlds: small, medium, national (default: all three)")
    parser.add_argument("--scaling", help="stores of the scaling series, e.g. 50,200,500,2000")
    parser.add_argument("--quick", action="store_true", help="small and medium, no scaling")
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip", default="", help=f"steps to leave out: {','.join(STEP_METRICS)}")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds per step")
    parser.add_argument("--max-anomalies", type=int, default=5, help="anomalies diagnosed")
    parser.add_argument(
        "--naive-stores", type=int, default=50, help="stores the naive Prophet fits sample"
    )
    parser.add_argument(
        "--national-mean-orders",
        type=float,
        help="orders per store-day of the national world (default 300, lowered to reach "
        "50 M deliveries only if that world cannot be generated)",
    )
    parser.add_argument("--scaling-days", type=int, default=SCALING_DAYS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = args.sizes.split(",") if args.sizes else list(QUICK_SIZES if args.quick else FULL_SIZES)
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}: choose from {', '.join(FULL_SIZES)}")
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(STEP_METRICS):
        parser.error(f"unknown steps in --skip: {sorted(skip - set(STEP_METRICS))}")
    args.sizes, args.skip = sizes, frozenset(skip)
    default_scaling = "" if args.quick else ",".join(map(str, FULL_SCALING))
    args.scaling = _numbers(
        args.scaling if args.scaling is not None else default_scaling, "--scaling"
    )
    return args


def world_of(size: str, args: argparse.Namespace) -> World:
    """Return the world of a size (the national one with ``--national-mean-orders``)."""
    stores, days = SIZES[size]
    mean = DEFAULT_MEAN_ORDERS
    if size == "national" and args.national_mean_orders:
        mean = args.national_mean_orders
    return World(stores, days, args.seed, mean)


def scaling_series(
    stores: list[int], days: int, seed: int, options: Options
) -> tuple[list[dict[str, Any]], list[Measurement]]:
    """Time the triage on worlds of each number of stores; fit the growth exponents."""
    points: list[dict[str, Any]] = []
    for n in stores:
        point: dict[str, Any] = {"stores": n, "days": days, "status": "skipped"}
        record, reason = ensure_world(
            options.out / "worlds", World(n, days, seed), options.timeout_s
        )
        if record is None:
            points.append({**point, "status": "failed", "reason": f"no world: {reason}"})
            continue
        point["deliveries"] = record["deliveries"]
        log(f"[scaling] triage at {n} stores")
        state = str(options.out / "work" / "scaling" / str(n))
        args = {"db": record["db"], "day": record["last_day"], "state_dir": state}
        run = run_step("triage", args, options.timeout_s)
        if run.result is None:
            points.append({**point, "status": "failed", "reason": run.reason})
        else:
            peak = run.result["peak_rss_mb"]
            points.append(
                {**point, "status": "ok", "triage_s": run.result["seconds"], "peak_rss_mb": peak}
            )
    shutil.rmtree(options.out / "work" / "scaling", ignore_errors=True)
    timed = [(p["stores"], p["triage_s"]) for p in points if p["status"] == "ok"]
    fits = {
        "exponent_500_2000": (growth_exponent(timed, 500, 2000), "between 500 and 2000 stores"),
        "exponent_all": (growth_exponent(timed), "in the series"),
    }
    measurements = [
        Measurement(SCALING, "scaling", metric, value, "")
        if value is not None
        else Measurement.missing(
            SCALING, "scaling", metric, "", f"fewer than two timed network sizes {where}"
        )
        for metric, (value, where) in fits.items()
    ]
    return points, measurements


def machine() -> dict[str, Any]:
    """Return the machine: CPUs, Python, platform."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def git_commit() -> str:
    """Return the short commit of the working tree (with ``-dirty`` when it has changes)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (commit or "unknown") + ("-dirty" if dirty else "")


def run_suite(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Run every world and the scaling series; return the JSON results and the Markdown."""
    options = Options(
        out=args.out,
        timeout_s=args.timeout,
        max_anomalies=args.max_anomalies,
        naive_stores=args.naive_stores,
        skip=args.skip,
        national_mean_orders=args.national_mean_orders,
    )
    measurements: list[Measurement] = []
    for size in args.sizes:
        measurements += measure_size(size, world_of(size, args), options)
    scaling: list[dict[str, Any]] | None = None
    if args.scaling and "triage" not in args.skip:
        scaling, fits = scaling_series(args.scaling, args.scaling_days, args.seed, options)
        measurements += fits
    else:
        why = "no scaling series in this run (--quick, an empty --scaling or --skip triage)"
        measurements += [
            Measurement.missing(SCALING, "scaling", m, "", why)
            for m in ("exponent_500_2000", "exponent_all")
        ]
    with contextlib.suppress(OSError):  # each world removed its own work folder
        (args.out / "work").rmdir()
    targets = judge_all(measurements)
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(),
        "notes": METHOD,
    }
    results = {
        **meta,
        "options": {
            k: sorted(v) if isinstance(v, frozenset) else str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
        },
        "worlds": {s: asdict(world_of(s, args)) for s in args.sizes},
        "measurements": [asdict(m) for m in measurements],
        "scaling": {"days": args.scaling_days, "points": scaling} if scaling is not None else None,
        "targets": [target_json(t) for t in targets],
    }
    return results, render_markdown(meta, measurements, targets, scaling)


def main(argv: list[str] | None = None) -> None:
    """Run the suite, write ``bench.json`` and ``bench.md``, print the Markdown."""
    args = parse_args(argv)
    # a terminated suite unwinds, so the running step (in its own session) is ended too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.out.mkdir(parents=True, exist_ok=True)
    results, markdown = run_suite(args)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "bench.md").write_text(markdown)
    print(markdown)
    log(f"results written to {args.out / 'bench.json'} and {args.out / 'bench.md'}")


if __name__ == "__main__":
    main()
