"""The benchmark steps, each run alone in a fresh process so its peak RSS is its own.

Usage (the suite calls it; by hand only to debug a step)::

    python -m evals.benchmarks.steps STEP '{"db": "...", ...}'

The step's result is printed as one JSON line after :data:`MARKER`, with ``peak_rss_mb``
(``ru_maxrss`` of this process: child processes such as Spark's JVM or Stan's sampler are not
in it). This module holds the data steps (generate, export, ingest, KPI build, the analytics
tools); :mod:`evals.benchmarks.agent_steps` the agent's and :mod:`evals.benchmarks.naive`
the naive pipeline.
"""

from __future__ import annotations

import importlib
import json
import resource
import shutil
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

MARKER = "BENCH_RESULT "
"""Prefix of the result line on a step's standard output."""

StepFn = Callable[[dict[str, Any]], dict[str, Any]]

STEPS: dict[str, str] = {
    "generate": "evals.benchmarks.steps:generate",
    "export": "evals.benchmarks.steps:export",
    "ingest": "evals.benchmarks.steps:ingest",
    "kpi": "evals.benchmarks.steps:kpi_build",
    "scan": "evals.benchmarks.steps:scan",
    "diagnose": "evals.benchmarks.steps:diagnose_each",
    "forecast": "evals.benchmarks.steps:forecast_each",
    "triage": "evals.benchmarks.agent_steps:triage",
    "chat": "evals.benchmarks.agent_steps:chat",
    "spark": "evals.benchmarks.agent_steps:spark_triage",
    "naive": "evals.benchmarks.naive:naive_pipeline",
}
"""Step name -> ``module:function`` (imported in the child only: each step loads what it uses)."""

BARE_SCAN_SQL = """
SELECT count(*), sum(hash(store_id)), sum(hash(carrier)), sum(epoch(order_ts)),
  sum(epoch(promised_start)), sum(epoch(promised_end)), sum(epoch(dispatched_ts)),
  sum(epoch(delivered_ts)), sum(hash(status)), sum(distance_km), sum(items)
FROM deliveries
"""
"""The bare scan: every column the KPI build reads from ``deliveries``, read once, no grouping."""


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def incidents(stores: int, days: int) -> list[Any]:
    """Incidents on the world's last day, as the old triage benchmark injected them.

    A driver shortage at the tenth store, severe weather in the second region and a dispatch
    delay at the store 60 % down the list (store and region ids that exist at any size).
    """
    from tools.data.synthetic import IncidentSpec, WorldConfig

    config = WorldConfig(stores=stores, days=days)
    ids, regions, last = config.store_ids, config.region_ids, days - 1
    return [
        IncidentSpec(kind="driver_shortage", store=ids[min(9, len(ids) - 1)], start_day=last),
        IncidentSpec(
            kind="severe_weather", region=regions[min(1, len(regions) - 1)], start_day=last
        ),
        IncidentSpec(kind="dispatch_delay", store=ids[int(len(ids) * 0.6)], start_day=last),
    ]


def generate(args: dict[str, Any]) -> dict[str, Any]:
    """Generate a world (with :func:`incidents`) into ``args['db']``."""
    from tools.data.synthetic import WorldConfig, generate_world

    stores, days = int(args["stores"]), int(args["days"])
    config = WorldConfig(
        stores=stores, days=days, seed=int(args["seed"]), mean_orders=float(args["mean_orders"])
    )
    started = time.perf_counter()
    report = generate_world(args["db"], config, incidents(stores, days), progress=False)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "deliveries": report.rows["deliveries"],
        "db_mb": Path(args["db"]).stat().st_size / 2**20,
        "last_day": config.day(days - 1).isoformat(),
    }


def _tree_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def export(args: dict[str, Any]) -> dict[str, Any]:
    """Export the world's contract as a Parquet lake (:func:`tools.data.lake.export_parquet`)."""
    from tools.data.lake import export_parquet

    started = time.perf_counter()
    report = export_parquet(args["db"], args["lake"])
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "partitions": report.partitions,
        "lake_mb": _tree_mb(Path(args["lake"])),
    }


def lake_specs(lake: Path) -> list[str]:
    """Return ``table=file`` arguments of :func:`tools.data.files.ingest_files` for a lake.

    The deliveries are one file per service-date partition (the partition column is in the
    folder's name, not in the file).
    """
    from tools.data.schema import LOAD_ORDER

    specs = []
    for table in LOAD_ORDER:
        specs += [f"{table}={p}" for p in sorted((lake / table).rglob("*.parquet"))]
    return specs


def ingest(args: dict[str, Any]) -> dict[str, Any]:
    """Load the lake's Parquet files into a new DuckDB file (validated, ``store_day`` built).

    The lake's timestamps are UTC written without a zone (as DuckDB stores them): they are
    loaded with ``assume_tz="UTC"``.
    """
    from tools.data.files import ingest_files

    target = Path(args["db"])
    target.unlink(missing_ok=True)
    specs = lake_specs(Path(args["lake"]))
    started = time.perf_counter()
    report = ingest_files(target, specs, assume_tz="UTC")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "files": len(specs), "deliveries": report.rows.get("deliveries")}


def kpi_build(args: dict[str, Any]) -> dict[str, Any]:
    """Time the bare scan, the full ``store_day`` build, and reading the materialised table.

    The build is the ``store_day`` view's SQL run from the deliveries (what every load's full
    refresh computes); ``SELECT * FROM store_day`` through the backend reads the table loads
    keep. The bare scan runs once untimed first, so both timed queries find the file cached.
    """
    from tools.data.backend import DuckDBBackend
    from tools.data.connection import connect
    from tools.data.views import store_day_sql

    backend = DuckDBBackend(args["db"])
    con = connect(args["db"], read_only=True)
    try:
        con.execute(BARE_SCAN_SQL).fetchall()
        started = time.perf_counter()
        con.execute(BARE_SCAN_SQL).fetchall()
        bare = time.perf_counter() - started
        started = time.perf_counter()
        built = con.execute(
            f"SELECT * FROM ({store_day_sql(has_timezone=backend.has_timezone)})"
        ).df()
        build = time.perf_counter() - started
    finally:
        con.close()
    started = time.perf_counter()
    read = backend.query("SELECT * FROM store_day")
    return {
        "bare_scan_s": bare,
        "build_s": build,
        "read_s": time.perf_counter() - started,
        "rows": len(built),
        "rows_read": len(read),
    }


def scan(args: dict[str, Any]) -> dict[str, Any]:
    """Run ``scan_anomalies`` over the whole network on the day."""
    from tools.core.context import ToolContext
    from tools.scan_anomalies import ScanAnomaliesInput, scan_anomalies

    ctx = ToolContext.for_duckdb(args["db"])
    started = time.perf_counter()
    result = scan_anomalies(ctx, ScanAnomaliesInput(day=date.fromisoformat(args["day"])))
    seconds = time.perf_counter() - started
    anomalies = [
        {"level": a.level, "target": a.target, "day": a.date.isoformat(), "grain": a.grain_days}
        for a in result.anomalies
    ]
    return {
        "seconds": seconds,
        "anomalies": anomalies,
        "store_days_scanned": result.store_days_scanned,
    }


def diagnose_each(args: dict[str, Any]) -> dict[str, Any]:
    """Run ``diagnose`` on each anomaly in ``args['anomalies']``, one context for all."""
    from tools.core.context import ToolContext
    from tools.diagnose import DiagnoseInput, diagnose

    ctx = ToolContext.for_duckdb(args["db"])
    seconds = []
    for a in args["anomalies"]:
        started = time.perf_counter()
        diagnose(
            ctx,
            DiagnoseInput(
                target=a["target"], day=date.fromisoformat(a["day"]), window_days=a["grain"]
            ),
        )
        seconds.append(time.perf_counter() - started)
    return {"seconds": seconds}


def forecast_each(args: dict[str, Any]) -> dict[str, Any]:
    """Forecast the late rate of each anomaly's target (its store, region or the chain)."""
    from tools.core.context import ToolContext
    from tools.forecast import ForecastInput, forecast

    ctx = ToolContext.for_duckdb(args["db"])
    seconds = []
    for a in args["anomalies"]:
        scope = "all" if a["level"] == "chain" else a["level"]
        ids = [] if scope == "all" else [a["target"]]
        started = time.perf_counter()
        forecast(
            ctx,
            ForecastInput(
                scope=scope, ids=ids, kpi="late_rate", as_of=date.fromisoformat(args["day"])
            ),
        )
        seconds.append(time.perf_counter() - started)
    return {"seconds": seconds}


def state_dir(path: str) -> Path:
    """Return an empty folder for a run's state database and fitted models (cold caches)."""
    folder = Path(path)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _resolve(step: str) -> StepFn:
    module, name = STEPS[step].split(":")
    fn: StepFn = getattr(importlib.import_module(module), name)
    return fn


def main(argv: list[str]) -> None:
    """Run one step and print its result line (exceptions propagate: the parent reads them)."""
    if len(argv) != 2 or argv[0] not in STEPS:
        raise SystemExit(f"usage: python -m evals.benchmarks.steps {{{','.join(STEPS)}}} JSON")
    result = _resolve(argv[0])(json.loads(argv[1]))
    result.setdefault("peak_rss_mb", peak_rss_mb())
    print(MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
