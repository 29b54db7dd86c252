"""Data commands of ``lastmile``: generate a world, ingest olist / csv, info and kpis."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from agent.interfaces.cli.common import (
    DbOption,
    JsonOption,
    _backend,
    _day,
    _db,
    err,
    out,
)
from agent.interfaces.cli.errors import user_errors
from agent.interfaces.cli.tables import _print_frame, _print_rows
from agent.settings import get_settings
from tools.data.backend import Backend, DuckDBBackend
from tools.data.files import ingest_files
from tools.data.olist import ingest_olist
from tools.data.store import LoadMode
from tools.data.synthetic import WorldConfig, generate_world, load_incident_specs
from tools.data.truth_file import TRUTH_KEY, TruthMissingError, read_truth, truth_path
from tools.data.views import STORE_DAY_COLUMNS

KPI_COLUMNS = [c for c in STORE_DAY_COLUMNS if c not in ("date", "store_id", "region", "market")]
"""The KPIs ``lastmile kpis --json`` prints for each period."""


def _shift(text: str) -> dict[str, object]:
    """Parse ``PARAMETER:DAY:FACTOR`` (a mechanism shift of the generated world)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(
            f"--shift {text!r}: give PARAMETER:DAY:FACTOR, e.g. beta_opd:182:2 (day index, "
            "multiplier)"
        )
    return {"parameter": parts[0], "start_day": parts[1], "factor": parts[2]}


@user_errors
def generate(
    stores: Annotated[int, typer.Option(help="Number of stores (S001, S002, ...).")] = 20,
    days: Annotated[int, typer.Option(help="Number of days.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same world.")] = 0,
    start_date: Annotated[
        date, typer.Option(parser=_day, metavar="YYYY-MM-DD", help="Day 0 of the world.")
    ] = date(2026, 1, 1),
    regions: Annotated[
        int | None, typer.Option(help="Regions R1.. (default: about 15 stores each).")
    ] = None,
    incidents: Annotated[
        Path | None, typer.Option(help="YAML file of incidents to inject (eval-suite entries).")
    ] = None,
    natural_events: Annotated[
        bool, typer.Option(help="Add rare natural disruptions (labelled in ground truth).")
    ] = True,
    mean_orders: Annotated[float, typer.Option(help="Orders per store-day, on average.")] = 300.0,
    weather_feed: Annotated[
        str, typer.Option(help="full, flat (no rain, traffic 1.0) or none (no conditions rows).")
    ] = "full",
    staffing_feed: Annotated[str, typer.Option(help="full or none (no staffing rows).")] = "full",
    carriers: Annotated[
        str, typer.Option(help="mixed or own_fleet (no DSP or crowd deliveries).")
    ] = "mixed",
    shift: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PARAMETER:DAY:FACTOR",
            help="Change how a cause acts on lateness from a day index on (repeatable), e.g. "
            "beta_opd:182:2 (load; also beta_traffic, beta_precip, beta_dispatch).",
        ),
    ] = None,
    through: Annotated[
        date | None,
        typer.Option(
            parser=_day,
            metavar="YYYY-MM-DD",
            help="Write the days up to this one only: `lastmile advance` lives the next ones, "
            "with the actions approved meanwhile carried out.",
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a synthetic world with known causes and ground-truth incidents.

    The feed options shape the data like a real one (the rain still falls without a weather
    feed; only the data stops showing it); an eval suite's world: block has them all.
    """
    config = WorldConfig.model_validate(
        {
            "stores": stores,
            "days": days,
            "seed": seed,
            "regions": regions,
            "start_date": start_date,
            "natural_events": natural_events,
            "mean_orders": mean_orders,
            "weather_feed": weather_feed,
            "staffing_feed": staffing_feed,
            "carriers": carriers,
            "mechanism_shifts": [_shift(s) for s in shift or []],
        }
    )
    specs = load_incident_specs(incidents) if incidents else []
    if incidents and "world:" in incidents.read_text():
        err.print(
            f"note: the world: block of {incidents} is not applied: generate takes the world "
            "from its options (`lastmile eval --suite` builds a suite's world)",
            markup=False,
        )
    report = generate_world(
        _db(db),
        config,
        specs,
        progress=not as_json and sys.stderr.isatty(),
        memory_limit=get_settings().duckdb_memory_limit,
        through=through,
    )
    if as_json:
        out.print_json(report.model_dump_json())
        return
    _print_rows(f"World written to {report.db} in {report.seconds:.1f} s", report.rows)


@user_errors
def ingest_olist_cmd(
    path: Annotated[Path, typer.Option(help="Folder with the Olist Kaggle CSV files.")],
    promise_date: Annotated[
        str,
        typer.Option(
            help="The estimated delivery date as a promise: start_of_day (00:00 Brasilia) "
            "or end_of_day (23:59:59.999999)."
        ),
    ] = "start_of_day",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load the public Olist e-commerce dataset (sellers become stores)."""
    if promise_date not in ("start_of_day", "end_of_day"):
        raise ValueError(
            f"--promise-date must be 'start_of_day' or 'end_of_day', got {promise_date!r}"
        )
    report = ingest_olist(
        path,
        _db(db),
        memory_limit=get_settings().duckdb_memory_limit,
        promise_date="end_of_day" if promise_date == "end_of_day" else "start_of_day",
    )
    if as_json:
        out.print_json(report.model_dump_json())
        return
    _print_rows(
        f"Olist loaded into {report.load.db} in {report.load.seconds:.1f} s", report.load.rows
    )
    out.print(
        f"orders read {report.orders_read:,} ({report.first_purchase} .. {report.last_purchase}); "
        f"skipped without items {report.orders_without_items:,}; "
        f"carrier dates before purchase cleared {report.carrier_dates_cleared:,}; "
        f"'delivered' without a date kept as in_transit {report.delivered_without_date:,}"
    )


@user_errors
def ingest_csv_cmd(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files named after tables (deliveries.csv), TABLE=PATH, or folders "
            "(or none, with --mapping)."
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(help="YAML file mapping your own files and columns onto the contract."),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="replace: swap the tables; append: add rows.")
    ] = "replace",
    assume_timezone: Annotated[
        str | None,
        typer.Option(help="Zone of timestamps written without one, e.g. UTC or Europe/Paris."),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(help="CSV field separator: ',', ';', '|' or tab (default: detected)."),
    ] = None,
    decimal: Annotated[
        str | None,
        typer.Option(help="Decimal mark of CSV numbers: '.' or ',' (default: detected)."),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Encoding of CSV files, e.g. cp1252 (default: UTF-8).")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load contract tables from CSV or Parquet files (one atomic load)."""
    # Imported here to keep this command's dependencies next to it.
    from tools.data.dialect import CsvOptions
    from tools.data.mapping_load import ingest_mapping

    if mode not in ("replace", "append"):
        raise ValueError(f"--mode must be 'replace' or 'append', got {mode!r}")
    load_mode: LoadMode = "replace" if mode == "replace" else "append"
    csv = CsvOptions.from_cli(delimiter=delimiter, decimal=decimal, encoding=encoding)
    limit = get_settings().duckdb_memory_limit
    if mapping is not None and files:
        raise ValueError("give either FILES or --mapping, not both: the mapping names its files")
    if mapping is not None:
        report = ingest_mapping(
            _db(db), mapping, mode=load_mode, assume_tz=assume_timezone, memory_limit=limit, csv=csv
        )
    elif files:
        report = ingest_files(
            _db(db), files, mode=load_mode, assume_tz=assume_timezone, memory_limit=limit, csv=csv
        )
    else:
        raise ValueError("name the files to load (or a folder), or a --mapping file")
    if as_json:
        out.print_json(report.model_dump_json())
        return
    _print_rows(f"Loaded into {report.db} ({report.mode}) in {report.seconds:.1f} s", report.rows)


@user_errors
def info(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Summarise a database: tables, dates, the world it holds and its ground truth."""
    backend = _backend(db)
    counts = backend.table_counts()
    dates = backend.query("SELECT min(date) AS first, max(date) AS last FROM store_day")
    span = (dates["first"].iloc[0], dates["last"].iloc[0]) if len(dates) else None
    world = backend.metadata("world")
    incidents = _ground_truth(backend)
    if as_json:
        payload = {
            "db": str(getattr(backend, "location", _db(db))),
            "backend": backend.name,
            "rows": counts,
            "dates": [str(v.date()) if pd.notna(v) else None for v in span] if span else None,
            "world": world,
            "incidents": json.loads(incidents.to_json(orient="records", date_format="iso")),
        }
        out.print_json(json.dumps(payload))
        return
    spark = "" if isinstance(backend, DuckDBBackend) else " (Spark)"
    _print_rows(f"{getattr(backend, 'location', _db(db))}{spark}", counts)
    if span and pd.notna(span[0]):
        out.print(f"service dates {span[0].date()} .. {span[1].date()}")
    if world:
        out.print(f"synthetic world: {world}")
    if len(incidents):
        _print_frame(
            f"Ground truth (injected first), from {truth_path(_db(db)).name}: no agent tool "
            "reads it",
            incidents,
        )


def _ground_truth(backend: Backend) -> pd.DataFrame:
    """Return the world's incidents from its truth file (empty for data with none)."""
    truth_id = backend.metadata(TRUTH_KEY)
    if truth_id is None or not isinstance(backend, DuckDBBackend):
        return pd.DataFrame()
    try:
        frame, _ = read_truth(backend.path, truth_id)
    except TruthMissingError as exc:
        out.print(f"[yellow]{exc}[/]")
        return pd.DataFrame()
    frame = frame.assign(
        target=frame.store_id.fillna(frame.region), late_pts=(100 * frame.true_effect).round(1)
    )
    columns = ["incident_id", "kind", "target", "start_date", "end_date", "magnitude"]
    return frame.sort_values(
        ["injected", "start_date", "incident_id"], ascending=[False, True, True]
    )[[*columns, "late_pts", "injected"]]


@user_errors
def kpis(
    db: DbOption = None,
    store: Annotated[list[str] | None, typer.Option(help="Store id (repeatable).")] = None,
    region: Annotated[list[str] | None, typer.Option(help="Region id (repeatable).")] = None,
    start: Annotated[
        date | None, typer.Option("--from", parser=_day, metavar="YYYY-MM-DD", help="First date.")
    ] = None,
    end: Annotated[
        date | None, typer.Option("--to", parser=_day, metavar="YYYY-MM-DD", help="Last date.")
    ] = None,
    by: Annotated[str, typer.Option(help="day, week or total.")] = "day",
    as_json: JsonOption = False,
) -> None:
    """Print delivery KPIs (late rate, volume, staffing, weather) for a scope and period."""
    if by not in ("day", "week", "total"):
        raise ValueError(f"--by must be day, week or total, got {by!r}")
    from tools.analytics.scope import ScopeLevel
    from tools.core.context import ToolContext
    from tools.core.errors import ToolError
    from tools.query_kpis import kpi_table

    if store and region:
        raise ValueError("give --store or --region, not both")
    level: ScopeLevel = "store" if store else "region" if region else "all"
    ctx = ToolContext(backend=_backend(db))
    try:
        frame = kpi_table(
            ctx,
            level,
            list(store or region or []),
            start=start,
            end=end,
            grain=by,  # type: ignore[arg-type]
        )
    except ToolError as exc:
        raise ValueError(str(exc)) from None
    if as_json:
        columns = [c for c in ("period", *KPI_COLUMNS) if c in frame.columns]
        out.print_json(frame[columns].to_json(orient="records", date_format="iso"))
        return
    # The terminal table shows the headline KPIs; --json carries every column.
    shown = (
        "period",
        "orders",
        "late_rate",
        "no_show_rate",
        "orders_per_driver",
        "dispatch_delay_min",
        "precip_mm",
        "traffic_index",
        "promo",
    )
    cols = [c for c in shown if c in frame.columns]
    _print_frame(f"KPIs by {by}", frame[cols])


@user_errors
def export(
    parquet: Annotated[
        Path,
        typer.Option(
            "--parquet",
            metavar="DIR",
            help="Folder to write the Parquet data lake to (replaced if it holds an earlier "
            "export; deliveries partitioned by service date).",
        ),
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the database as a Parquet data lake, for the Spark backend (--backend spark)."""
    from tools.data.lake import export_parquet

    report = export_parquet(_db(db), parquet, memory_limit=get_settings().duckdb_memory_limit)
    if as_json:
        out.print_json(report.model_dump_json())
        return
    _print_rows(
        f"Wrote {report.lake} in {report.seconds:.1f} s "
        f"({report.partitions} service-date partitions of deliveries)",
        report.rows,
    )
    err.print(f"read it with: lastmile --backend spark --data {report.lake} triage")


def register(app: typer.Typer) -> None:
    """Add ``generate``, ``info``, ``kpis``, ``export`` and the ``ingest`` group to ``app``."""
    app.command()(generate)
    app.command()(info)
    app.command()(kpis)
    app.command()(export)
    ingest_app = typer.Typer(help="Load real data onto the contract.", no_args_is_help=True)
    ingest_app.command("olist")(ingest_olist_cmd)
    ingest_app.command("csv")(ingest_csv_cmd)
    app.add_typer(ingest_app, name="ingest")
