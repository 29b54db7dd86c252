"""The ``lastmile`` command line: generate worlds, ingest data, inspect KPIs.

A thin surface: every command parses arguments, calls ``tools``, and prints. Errors about the
user's input exit with status 2 and a message that names the problem.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import pandas as pd
import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from agent.settings import get_settings
from tools.data import DataValidationError, connect, table_counts
from tools.data.files import ingest_files
from tools.data.kpis import Grain, aggregate_kpis
from tools.data.olist import ingest_olist
from tools.data.store import LoadMode, read_metadata
from tools.data.synthetic import WorldConfig, generate_world, load_incident_specs

app = typer.Typer(
    name="lastmile",
    help="Proactive recommendation agent for last-mile delivery operations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ingest_app = typer.Typer(help="Load real data onto the contract.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB file [default: $LASTMILE_DB or data/lastmile.duckdb]."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _db(db: Path | None) -> Path:
    return db if db is not None else get_settings().db


def user_errors(fn: F) -> F:
    """Turn errors about the user's input into a message and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (DataValidationError, ValueError, FileNotFoundError) as exc:
            # Messages quote user data (file names, values): print them verbatim, no markup.
            err.print(Text("error: ", style="bold red") + Text(str(exc)), soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main_callback(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Detect, diagnose, forecast and prescribe for late deliveries."""
    level = "DEBUG" if verbose else get_settings().log_level
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)],
        force=True,
    )
    logging.getLogger("cmdstanpy").disabled = True


def _print_rows(title: str, rows: dict[str, int]) -> None:
    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in rows.items():
        table.add_row(name, f"{n:,}")
    out.print(table)


@app.command()
@user_errors
def generate(
    stores: Annotated[int, typer.Option(help="Number of stores (S001, S002, ...).")] = 20,
    days: Annotated[int, typer.Option(help="Number of days.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same world.")] = 0,
    start_date: Annotated[
        str, typer.Option(help="Day 0 of the world (YYYY-MM-DD).")
    ] = "2026-01-01",
    regions: Annotated[
        int | None, typer.Option(help="Regions R1.. [default: ~15 stores each].")
    ] = None,
    incidents: Annotated[
        Path | None, typer.Option(help="YAML file of incidents to inject (eval-suite entries).")
    ] = None,
    natural_events: Annotated[
        bool, typer.Option(help="Add rare natural disruptions (labelled in ground truth).")
    ] = True,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a synthetic world with known causes and ground-truth incidents."""
    config = WorldConfig(
        stores=stores,
        days=days,
        seed=seed,
        regions=regions,
        start_date=date.fromisoformat(start_date),
        natural_events=natural_events,
    )
    specs = load_incident_specs(incidents) if incidents else []
    report = generate_world(
        _db(db),
        config,
        specs,
        progress=not as_json and sys.stderr.isatty(),
        memory_limit=get_settings().duckdb_memory_limit,
    )
    if as_json:
        out.print_json(report.model_dump_json())
        return
    _print_rows(f"World written to {report.db} in {report.seconds:.1f} s", report.rows)


@ingest_app.command("olist")
@user_errors
def ingest_olist_cmd(
    path: Annotated[Path, typer.Option(help="Folder with the Olist Kaggle CSV files.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load the public Olist e-commerce dataset (sellers become stores)."""
    report = ingest_olist(path, _db(db), memory_limit=get_settings().duckdb_memory_limit)
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


@ingest_app.command("csv")
@user_errors
def ingest_csv_cmd(
    files: Annotated[
        list[str],
        typer.Argument(help="Files named after tables (deliveries.csv), TABLE=PATH, or folders."),
    ],
    mode: Annotated[
        str, typer.Option(help="replace: swap the tables; append: add rows.")
    ] = "replace",
    assume_timezone: Annotated[
        str | None,
        typer.Option(help="Zone of timestamps written without one, e.g. UTC or Europe/Paris."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load contract tables from CSV or Parquet files (one atomic load)."""
    if mode not in ("replace", "append"):
        raise ValueError(f"--mode must be 'replace' or 'append', got {mode!r}")
    load_mode: LoadMode = "replace" if mode == "replace" else "append"
    report = ingest_files(
        _db(db),
        files,
        mode=load_mode,
        assume_tz=assume_timezone,
        memory_limit=get_settings().duckdb_memory_limit,
    )
    if as_json:
        out.print_json(report.model_dump_json())
        return
    _print_rows(f"Loaded into {report.db} ({report.mode}) in {report.seconds:.1f} s", report.rows)


@app.command()
@user_errors
def info(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Summarise a database: tables, dates, the world it holds and its ground truth."""
    con = connect(_db(db), read_only=True)
    try:
        counts = table_counts(con)
        span = con.execute("SELECT min(date), max(date) FROM store_day").fetchone()
        world = read_metadata(con, "world")
        incidents = con.execute(
            "SELECT incident_id, kind, coalesce(store_id, region) AS target, start_date, end_date, "
            "magnitude, round(100 * true_effect, 1) AS late_pts, injected FROM incidents "
            "ORDER BY injected DESC, start_date, incident_id"
        ).df()
    finally:
        con.close()
    if as_json:
        payload = {
            "db": str(_db(db)),
            "rows": counts,
            "dates": [str(span[0]) if span else None, str(span[1]) if span else None],
            "world": world,
            "incidents": json.loads(incidents.to_json(orient="records", date_format="iso")),
        }
        out.print_json(json.dumps(payload))
        return
    _print_rows(f"{_db(db)}", counts)
    if span and span[0]:
        out.print(f"service dates {span[0]} .. {span[1]}")
    if world:
        out.print(f"synthetic world: {world}")
    if len(incidents):
        _print_frame("Ground truth (injected first)", incidents)


def _cell(column: str, value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else ""
    if isinstance(value, pd.Timestamp):
        return str(value.date())
    if isinstance(value, float):
        if column.endswith(("_rate", "_share")):
            return f"{100 * value:.1f}%"
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    return str(value)


# Short headers keep the tables readable in an 80-column terminal.
_HEADERS = {
    "period": "date",
    "orders": "orders",
    "late_rate": "late",
    "failed_rate": "failed",
    "avg_delay_min": "delay\nmin",
    "dispatch_delay_min": "dispatch\nmin",
    "no_show_rate": "no-show",
    "orders_per_driver": "orders/\ndriver",
    "precip_mm": "rain\nmm",
    "traffic_index": "traffic",
    "promo": "promo",
    "incident_id": "id",
    "target": "where",
    "start_date": "from",
    "end_date": "to",
    "magnitude": "mag",
    "late_pts": "late\n+pts",
    "injected": "injected",
}


def _print_frame(title: str, frame: pd.DataFrame) -> None:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for col in frame.columns:
        dated = str(col) in ("period", "start_date", "end_date")
        table.add_column(
            _HEADERS.get(str(col), str(col)),
            justify="right" if frame[col].dtype.kind in "fiu" else "left",
            min_width=10 if dated else None,
            no_wrap=dated,
        )
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(str(c), v) for c, v in zip(frame.columns, row, strict=True)))
    out.print(table)


@app.command()
@user_errors
def kpis(
    db: DbOption = None,
    store: Annotated[list[str] | None, typer.Option(help="Store id (repeatable).")] = None,
    region: Annotated[list[str] | None, typer.Option(help="Region id (repeatable).")] = None,
    start: Annotated[str | None, typer.Option("--from", help="First date (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last date (YYYY-MM-DD).")] = None,
    by: Annotated[str, typer.Option(help="day, week or total.")] = "day",
    as_json: JsonOption = False,
) -> None:
    """Print delivery KPIs (late rate, volume, staffing, weather) for a scope and period."""
    if by not in ("day", "week", "total"):
        raise ValueError(f"--by must be day, week or total, got {by!r}")
    grain: Grain = by  # type: ignore[assignment]
    con = connect(_db(db), read_only=True)
    try:
        frame = aggregate_kpis(
            con,
            store_ids=store,
            regions=region,
            start=date.fromisoformat(start) if start else None,
            end=date.fromisoformat(end) if end else None,
            grain=grain,
        )
    finally:
        con.close()
    if frame.empty or frame["orders"].isna().all():
        raise ValueError("no store-days match that scope and period")
    if as_json:
        out.print_json(frame.to_json(orient="records", date_format="iso"))
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


@app.command("tool")
@user_errors
def tool_cmd(
    name: Annotated[str, typer.Argument(help="Tool name (see `lastmile tools`).")],
    args: Annotated[
        str, typer.Argument(help='Arguments as JSON, e.g. \'{"day": "2026-03-09"}\'.')
    ] = "{}",
    db: DbOption = None,
) -> None:
    """Run one analytics tool without the agent and print its JSON result."""
    import tools

    if name not in tools.TOOLS:
        raise ValueError(f"unknown tool {name!r}; tools: {', '.join(tools.TOOLS)}")
    try:
        payload = json.loads(args)
    except json.JSONDecodeError as exc:
        raise ValueError(f"arguments are not valid JSON: {exc}") from None
    ctx = tools.ToolContext.for_duckdb(_db(db))
    try:
        result = tools.TOOLS[name](ctx, payload)
    except ValidationError as exc:
        raise ValueError(f"invalid arguments for {name}: {exc}") from None
    except tools.ToolError as exc:
        raise ValueError(f"{name}: {exc}") from None
    out.print_json(result.model_dump_json())


@app.command("tools")
def tools_cmd() -> None:
    """List the analytics tools and their arguments."""
    import tools

    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("tool")
    table.add_column("what it does")
    table.add_column("arguments")
    for name, spec in tools.TOOLS.items():
        table.add_row(name, spec.description, ", ".join(spec.input_model.model_fields))
    out.print(table)


def main() -> None:
    """Entry point of the ``lastmile`` console script."""
    app()


if __name__ == "__main__":
    main()
