"""Measure one world: every step in its own process, each number recorded with its unit.

The order: generate, Parquet export, ingest of that Parquet, KPI build against the bare scan,
the analytics tools one by one, the triage (with model calls and prompt tokens), a chat
answer, the naive pipeline, the triage on Spark. A step that cannot run is recorded as
skipped or failed with the reason, for every number it would have given.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.benchmarks.report import Measurement
from evals.benchmarks.runner import StepRun, World, ensure_world, log, run_step

Value = Callable[[dict[str, Any]], float | None]
Note = Callable[[dict[str, Any]], str | None]


def _key(name: str) -> Value:
    return lambda r: r[name]


def _mean(name: str) -> Value:
    return lambda r: sum(r[name]) / len(r[name]) if r[name] else None


def _ratio(num: str, den: str) -> Value:
    return lambda r: r[num] / r[den] if r[den] else None


@dataclass(frozen=True)
class Metric:
    """One number a step gives: its name, unit, how to read it from the result, a note."""

    name: str
    unit: str
    value: Value
    note: Note | None = None


PEAK = "peak_rss_mb"
INGEST_NOTE = (
    "tools.data.files.ingest_files of the lake's files into a new DuckDB file: validated, "
    "store_day built; the lake's zone-less timestamps loaded as UTC (assume_tz)"
)
READ_NOTE = (
    "SELECT * FROM store_day through DuckDBBackend: the table each load keeps materialised "
    "(the build's cost is paid at load time)"
)
JVM_NOTE = "the Python driver's peak only: Spark's JVM is another process"


def _prophet_note(r: dict[str, Any]) -> str | None:
    if r["prophet_sampled_stores"] >= r["stores"]:
        return None
    return (
        f"Prophet fitted for {r['prophet_sampled_stores']} of {r['stores']} stores (x2 KPIs) "
        "and the time extrapolated linearly to all stores"
    )


STEP_METRICS: dict[str, list[Metric]] = {
    "export": [
        Metric("export_parquet_s", "s", _key("seconds")),
        Metric("export_peak_rss", "MB", _key(PEAK)),
        Metric("lake_size", "MB", _key("lake_mb")),
    ],
    "ingest": [
        Metric("ingest_parquet_s", "s", _key("seconds"), lambda r: INGEST_NOTE),
        Metric("ingest_peak_rss", "MB", _key(PEAK)),
    ],
    "kpi": [
        Metric("bare_scan_s", "s", _key("bare_scan_s")),
        Metric("kpi_build_s", "s", _key("build_s")),
        Metric("kpi_build_ratio", "x", _ratio("build_s", "bare_scan_s")),
        Metric("store_day_read_s", "s", _key("read_s"), lambda r: READ_NOTE),
        Metric("store_day_read_ratio", "x", _ratio("read_s", "bare_scan_s"), lambda r: READ_NOTE),
        Metric("store_day_rows", "rows", _key("rows")),
        Metric("kpi_peak_rss", "MB", _key(PEAK)),
    ],
    "scan": [
        Metric("scan_s", "s", _key("seconds")),
        Metric("anomalies", "count", lambda r: len(r["anomalies"])),
        Metric("scan_peak_rss", "MB", _key(PEAK)),
    ],
    "diagnose": [
        Metric("diagnose_s_per_anomaly", "s", _mean("seconds")),
        Metric("diagnosed", "count", lambda r: len(r["seconds"])),
        Metric("diagnose_peak_rss", "MB", _key(PEAK)),
    ],
    "forecast": [
        Metric("forecast_s_per_series", "s", _mean("seconds")),
        Metric("forecasts", "count", lambda r: len(r["seconds"])),
        Metric("forecast_peak_rss", "MB", _key(PEAK)),
    ],
    "triage": [
        Metric("triage_s", "s", _key("seconds")),
        Metric("triage_peak_rss", "MB", _key(PEAK)),
        Metric("triage_targets", "count", lambda r: len(r["targets"])),
        Metric("triage_actions", "count", _key("actions")),
        Metric("llm_calls", "calls", _key("llm_calls")),
        Metric("prompt_tokens", "tokens", _key("prompt_tokens")),
        Metric("naive_prompt_tokens", "tokens", _key("naive_tokens")),
        Metric("token_reduction", "x", _ratio("naive_tokens", "prompt_tokens")),
    ],
    "chat": [
        Metric("chat_s", "s", _key("seconds")),
        Metric("chat_llm_calls", "calls", _key("llm_calls")),
        Metric("chat_prompt_tokens", "tokens", _key("prompt_tokens")),
        Metric("chat_peak_rss", "MB", _key(PEAK)),
    ],
    "naive": [
        Metric("naive_read_parquet_s", "s", _key("read_s")),
        Metric("naive_kpis_s", "s", _key("kpis_s")),
        Metric("naive_prophet_s", "s", _key("prophet_s"), _prophet_note),
        Metric("naive_gcm_s", "s", lambda r: sum(r["gcm_s"])),
        Metric("naive_total_s", "s", _key("total_s")),
        Metric("naive_peak_rss", "MB", _key(PEAK)),
    ],
    "spark": [
        Metric("spark_triage_s", "s", _key("seconds")),
        Metric("spark_start_s", "s", _key("start_s")),
        Metric("spark_peak_rss", "MB", _key(PEAK), lambda r: JVM_NOTE),
    ],
}
"""What each step's result gives, in the order the table shows it."""

BASELINE_SIZES = ("tiny", "small", "medium")
"""Worlds the naive pipeline and the Spark triage run on (national is too big for pandas)."""


@dataclass
class Options:
    """How to measure: where, with what limits, which steps to leave out."""

    out: Path
    timeout_s: float = 7200.0
    max_anomalies: int = 5
    naive_stores: int = 50
    skip: frozenset[str] = frozenset()
    national_mean_orders: float | None = None


@dataclass
class SizeRun:
    """The measurements of one world, as they are taken."""

    size: str
    options: Options
    measurements: list[Measurement] = field(default_factory=list)

    def record(self, step: str, run: StepRun | None, reason: str = "") -> dict[str, Any] | None:
        """Record a step's numbers (or, without a result, why each is missing)."""
        result = run.result if run is not None else None
        why = reason or (run.reason if run is not None else None) or "not run"
        failed = run is not None and result is None
        for m in STEP_METRICS[step]:
            if result is None:
                self.measurements.append(
                    Measurement.missing(self.size, step, m.name, m.unit, why, failed=failed)
                )
                continue
            value = m.value(result)
            note = m.note(result) if m.note else None
            self.measurements.append(
                Measurement(self.size, step, m.name, value, m.unit, note=note)
                if value is not None
                else Measurement.missing(
                    self.size,
                    step,
                    m.name,
                    m.unit,
                    "no value (nothing to average, or a division by 0)",
                )
            )
        return result

    def step(self, step: str, args: dict[str, Any], blocked: str = "") -> dict[str, Any] | None:
        """Run a step unless skipped or ``blocked`` (the reason); record and return its result."""
        if step in self.options.skip:
            return self.record(step, None, "left out with --skip")
        if blocked:
            return self.record(step, None, blocked)
        log(f"[{self.size}] {step}")
        run = run_step(step, args, self.options.timeout_s)
        if run.result is None:
            log(f"[{self.size}] {step} failed: {run.reason}")
        return self.record(step, run)


GENERATE_METRICS = (
    ("generate_s", "s"),
    ("generate_peak_rss", "MB"),
    ("deliveries", "rows"),
    ("generate_rate", "deliveries/s"),
    ("db_size", "MB"),
    ("mean_orders", "orders/store-day"),
)


def _generate(run: SizeRun, world: World) -> dict[str, Any] | None:
    """Generate (or reuse) the world; a national one that fails is made smaller, saying so."""
    worlds, timeout = run.options.out / "worlds", run.options.timeout_s
    record, reason = ensure_world(worlds, world, timeout)
    lowered = None
    if record is None and run.size == "national" and run.options.national_mean_orders is None:
        smaller = world.smaller()
        lowered = (
            f"mean_orders lowered from {world.mean_orders:g} to {smaller.mean_orders:g} "
            f"(>= 50 M deliveries): the default world could not be generated ({reason})"
        )
        log(f"[national] {lowered}")
        record, reason = ensure_world(worlds, smaller, timeout)
    if record is None:
        for metric, unit in GENERATE_METRICS:
            run.measurements.append(
                Measurement.missing(run.size, "generate", metric, unit, reason, failed=True)
            )
        return None
    reused = "timed when the world was generated (kept in worlds/, reused since)"
    values = (
        record["seconds"],
        record["peak_rss_mb"],
        record["deliveries"],
        record["deliveries"] / record["seconds"],
        record["db_mb"],
        record["mean_orders"],
    )
    notes = (reused, reused, None, reused, None, lowered)
    for (metric, unit), value, note in zip(GENERATE_METRICS, values, notes, strict=True):
        if note is reused and not record["reused"]:
            note = None
        run.measurements.append(Measurement(run.size, "generate", metric, value, unit, note=note))
    return record


def _tools(run: SizeRun, db: str, day: str) -> list[dict[str, Any]]:
    """Scan, then diagnose and forecast each anomaly found (at most ``max_anomalies``)."""
    scanned = run.step("scan", {"db": db, "day": day})
    anomalies: list[dict[str, Any]] = (scanned or {}).get("anomalies", [])
    anomalies = anomalies[: run.options.max_anomalies]
    blocked = (
        "the scan failed or was left out"
        if scanned is None
        else ("" if anomalies else "the scan found no anomaly to diagnose")
    )
    args = {"db": db, "day": day, "anomalies": anomalies}
    run.step("diagnose", args, blocked)
    run.step("forecast", args, blocked)
    return anomalies


def spark_missing() -> str:
    """Why Spark cannot run here ("" when it can: pyspark importable and java on the PATH)."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (the [spark] extra)"
    if shutil.which("java") is None:
        return "no java on the PATH (Spark needs a Java runtime 17+)"
    return ""


def _speedup(run: SizeRun, triage: dict[str, Any] | None, naive: dict[str, Any] | None) -> None:
    """Record how many times faster the triage is than the naive pipeline."""
    if triage is None or naive is None:
        why = "no triage time" if triage is None else "no naive pipeline time (see naive_total_s)"
        run.measurements.append(Measurement.missing(run.size, "naive", "naive_speedup", "x", why))
        return
    speedup = naive["total_s"] / triage["seconds"]
    run.measurements.append(Measurement(run.size, "naive", "naive_speedup", speedup, "x"))


def measure_size(size: str, world: World, options: Options) -> list[Measurement]:
    """Measure every step on one world; return the measurements (missing ones with reasons)."""
    run = SizeRun(size, options)
    record = _generate(run, world)
    if record is None:
        for step in STEP_METRICS:
            run.record(step, None, "no world: its generation failed")
        _speedup(run, None, None)
        return run.measurements
    db, day = record["db"], record["last_day"]
    work = options.out / "work" / size
    lake = work / "lake"
    exported = run.step("export", {"db": db, "lake": str(lake)})
    no_lake = "" if exported else "no Parquet lake: the export failed or was left out"
    ingested = work / "ingested.duckdb"
    run.step("ingest", {"lake": str(lake), "db": str(ingested)}, no_lake)
    ingested.unlink(missing_ok=True)
    run.step("kpi", {"db": db})
    anomalies = _tools(run, db, day)
    triage = run.step("triage", {"db": db, "day": day, "state_dir": str(work / "triage")})
    run.step("chat", {"db": db, "day": day, "state_dir": str(work / "chat")})
    baseline = "" if size in BASELINE_SIZES else "run on small and medium worlds only"
    targets = (triage or {}).get("targets") or sorted({a["target"] for a in anomalies})
    naive_args = {
        "lake": str(lake),
        "day": day,
        "targets": targets,
        "sample_stores": options.naive_stores,
    }
    naive = run.step("naive", naive_args, baseline or no_lake)
    _speedup(run, triage, naive)
    spark_args = {"db": db, "lake": str(lake), "day": day, "state_dir": str(work / "spark")}
    run.step("spark", spark_args, baseline or spark_missing() or no_lake)
    shutil.rmtree(work, ignore_errors=True)
    return run.measurements
