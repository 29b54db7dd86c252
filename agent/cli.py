"""The ``lastmile`` command line: generate worlds, ingest data, inspect KPIs.

A thin surface: every command parses arguments, calls ``tools``, and prints. Errors about the
user's input exit with status 2 and a message that names the problem.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shlex
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import numpy as np
import pandas as pd
import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup
from typer.models import ArgumentInfo, OptionInfo

from agent.errors import (
    RunFailedError,
    StateStoreUnavailableError,
    path_problem,
    validation_problems,
)
from agent.settings import Settings, get_settings
from tools.data import DataValidationError
from tools.data.backend import DuckDBBackend
from tools.data.files import ingest_files
from tools.data.olist import ingest_olist
from tools.data.store import DatabaseUnavailableError, LoadMode
from tools.data.synthetic import WorldConfig, generate_world, load_incident_specs
from tools.data.views import STORE_DAY_COLUMNS, LateRule

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _print_error(message: str) -> None:
    # Messages quote user data (file names, values): print them verbatim, no markup.
    err.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)


class _RootGroup(TyperGroup):
    """The ``lastmile`` group: whatever escapes a command ends as one line, not a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's base class takes its private click Context
        """Run the sub-command; print usage errors and unexpected failures as one line."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except typer.TyperException as exc:  # click's usage errors: bad option values, ...
            if type(exc).__name__ == "NoArgsIsHelpError" or exc.exit_code != 2:
                raise  # the help screen is printed by typer itself
            for line in _usage_problems(exc):
                _print_error(line)
            raise typer.Exit(2) from None
        except Exception as exc:  # a bug or an unforeseen failure; KeyboardInterrupt passes
            if ctx.params.get("verbose"):
                err.print(Text("".join(traceback.format_exception(exc))), soft_wrap=True)
            summary = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, always
            _print_error(f"{summary} (run with --verbose for the traceback)")
            raise typer.Exit(1) from None


def _usage_problems(exc: typer.TyperException) -> list[str]:
    """Phrase a command-line error (e.g. a value typer could not convert) as lines."""
    param = getattr(exc, "param", None)
    flags = getattr(param, "opts", None) or []
    if flags and isinstance(exc.__cause__, ValidationError):
        return validation_problems(exc.__cause__, root=flags[0])
    ctx = getattr(exc, "ctx", None)
    help_hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return [exc.format_message() + help_hint]


app = typer.Typer(
    name="lastmile",
    help="Proactive recommendation agent for last-mile delivery operations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_RootGroup,
)
ingest_app = typer.Typer(help="Load real data onto the contract.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB file [default: $LASTMILE_DB or data/lastmile.duckdb]."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _db(db: Path | None) -> Path:
    return db if db is not None else get_settings().db


def _late_rule() -> LateRule:
    """Return the definition of late the settings give (LASTMILE_LATE_*)."""
    settings = get_settings()
    return LateRule(grace_min=settings.late_grace_min, failed_is_late=settings.late_failed_is_late)


KPI_COLUMNS = [c for c in STORE_DAY_COLUMNS if c not in ("date", "store_id", "region", "market")]
"""The KPIs ``lastmile kpis --json`` prints for each period."""


def _day(value: str | date) -> date:
    """Parse a date option (typer calls this; a ValueError becomes a usage error)."""
    if isinstance(value, date):  # a default given as a date
        return value
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", value):  # the form is right, the day is not
            raise ValueError(f"must be a real date: {exc}") from None
        raise ValueError("must be a date as YYYY-MM-DD") from None


def _flags(fn: Callable[..., Any]) -> dict[str, str]:
    """How users write each parameter of a command: ``start_date`` -> ``--start-date``."""
    flags: dict[str, str] = {}
    for name, hint in get_type_hints(fn, include_extras=True).items():
        for info in getattr(hint, "__metadata__", ()):
            if isinstance(info, ArgumentInfo):
                flags[name] = name.upper()
            elif isinstance(info, OptionInfo):
                # typer takes the first positional argument of Option() as the flag
                given = (info.default, *(info.param_decls or ()))
                decls = [d for d in given if str(d).startswith("--")]
                flags[name] = str(decls[0]) if decls else "--" + name.replace("_", "-")
    return flags


_KNOBS = {"db": ("--db", "LASTMILE_DB"), "state_db": ("--state-db", "LASTMILE_STATE_DB")}


def _knob(name: str, kwargs: dict[str, Any]) -> str:
    """Name the option that sets a path, or the variable when the option was not given."""
    flag, env = _KNOBS[name]
    return flag if kwargs.get(name) is not None else f"{env} (or {flag})"


def _related(filename: str | bytes | None, path: Path) -> bool:
    """Tell whether an OS error about ``filename`` concerns ``path``.

    That is ``path`` itself, a folder above it, or a companion file such as ``path.wal``.
    """
    if filename is None:
        return False
    failed = Path(str(filename)).absolute()
    target = path.absolute()
    return failed in target.parents or str(failed).startswith(str(target))


def _problems(fn: Callable[..., Any], exc: Exception, kwargs: dict[str, Any]) -> list[str] | None:
    """Explain an error about the user's input or setup in lines; None for anything else."""
    if isinstance(exc, ValidationError):
        names = _flags(fn)
        if exc.title == Settings.__name__:  # settings come from LASTMILE_* variables
            names = {field: f"LASTMILE_{field.upper()}" for field in Settings.model_fields}
        return validation_problems(exc, names)
    if isinstance(exc, DatabaseUnavailableError):
        knob = _knob("db", kwargs)
        if exc.cause == "not_duckdb":
            made = "made by `lastmile generate` or `lastmile ingest`"
            return [f"{exc}; {knob} takes a database {made}"]
        if exc.cause == "unreachable":
            return [f"{exc}: choose a {'readable' if exc.read_only else 'writable'} {knob}"]
        return [str(exc)]
    if isinstance(exc, StateStoreUnavailableError):
        return [f"{exc}: choose a writable {_knob('state_db', kwargs)}"]
    if isinstance(exc, OSError) and "db" in kwargs and _related(exc.filename, _db(kwargs["db"])):
        db = _db(kwargs["db"])
        return [
            f"cannot write the database at {db} ({path_problem(db, exc)}): "
            f"choose a writable {_knob('db', kwargs)}"
        ]
    if isinstance(exc, DataValidationError | ValueError | FileNotFoundError):
        return [str(exc)]  # incl. RunInputError: already written for people
    return None


def user_errors(fn: F) -> F:
    """Turn errors about the user's input or setup into messages and exit status 2.

    Anything else goes on to the root group, which prints it as one line with exit status 1.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RunFailedError as exc:
            _print_error(str(exc))
            raise typer.Exit(1) from None
        except Exception as exc:
            problems = _problems(fn, exc, kwargs)
            if problems is None:
                raise
            for line in problems:
                _print_error(line)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
@user_errors
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
    if not verbose:  # one line per HTTP request, or a whole recorded exchange, is noise here
        for name in ("httpx", "httpx2", "openai", "vcr"):
            logging.getLogger(name).setLevel(logging.WARNING)


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
        date, typer.Option(parser=_day, metavar="YYYY-MM-DD", help="Day 0 of the world.")
    ] = date(2026, 1, 1),
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
        start_date=start_date,
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


@ingest_app.command("csv")
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


@app.command()
@user_errors
def info(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Summarise a database: tables, dates, the world it holds and its ground truth."""
    backend = DuckDBBackend(_db(db))
    counts = backend.table_counts()
    dates = backend.query("SELECT min(date) AS first, max(date) AS last FROM store_day")
    span = (dates["first"].iloc[0], dates["last"].iloc[0]) if len(dates) else None
    world = backend.metadata("world")
    incidents = backend.query(
        "SELECT incident_id, kind, coalesce(store_id, region) AS target, start_date, end_date, "
        "magnitude, round(100 * true_effect, 1) AS late_pts, injected FROM incidents "
        "ORDER BY injected DESC, start_date, incident_id"
    )
    if as_json:
        payload = {
            "db": str(_db(db)),
            "rows": counts,
            "dates": [str(v.date()) if pd.notna(v) else None for v in span] if span else None,
            "world": world,
            "incidents": json.loads(incidents.to_json(orient="records", date_format="iso")),
        }
        out.print_json(json.dumps(payload))
        return
    _print_rows(f"{_db(db)}", counts)
    if span and pd.notna(span[0]):
        out.print(f"service dates {span[0].date()} .. {span[1].date()}")
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
    ctx = ToolContext(backend=DuckDBBackend(_db(db), late=_late_rule()))
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


runs_app = typer.Typer(help="Past runs: plans, traces, evidence.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state-db", help="Run store [default: $LASTMILE_STATE_DB or data/lastmile_state.sqlite]."
    ),
]
FormatOption = Annotated[str, typer.Option("--format", help="md (Markdown) or json.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Same as --format json.")]


def _service(db: Path | None, state_db: Path | None) -> Any:
    from agent.service import AgentService

    return AgentService(db=_db(db), state_db=state_db)


def _emit(service: Any, view: Any, fmt: str, out_file: Path | None, out_dir: Path | None) -> None:
    """Print (or write) a run: Markdown or JSON; with --out-dir also plan.json and charts."""
    from agent.report import render_markdown

    if fmt not in ("md", "json"):
        raise ValueError(f"--format must be md or json, got {fmt!r}")
    record = service.record(view.run_id)
    markdown = render_markdown(view, record)
    payload = json.dumps(
        {"run": view.model_dump(mode="json"), "evidence": record.evidence}, indent=2, default=str
    )
    text = markdown if fmt == "md" else payload
    if out_dir is not None:
        with _writing(view, out_dir, "--out-dir"):
            _write_dir(service, view, markdown, payload, out_dir)
    if out_file is not None:
        with _writing(view, out_file, "--out"):
            out_file.parent.mkdir(parents=True, exist_ok=True)
            out_file.write_text(text)
        err.print(f"wrote {out_file}")
    if out_file is None and out_dir is None:
        if fmt == "json":
            out.print_json(payload)
        else:
            from rich.markdown import Markdown

            out.print(Markdown(markdown))
    if view.status == "waiting_approval":
        err.print(
            Text(
                f"run {view.run_id} waits for approval: {_approve_command(service, view.run_id)} "
                "(or --approve/--reject/--edit)"
            ),
            soft_wrap=True,
        )


def _write_dir(service: Any, view: Any, markdown: str, payload: str, out_dir: Path) -> None:
    """Write plan.md, plan.json and the charts of a run into ``out_dir``."""
    from agent.report import render_charts

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "plan.md").write_text(markdown)
    (out_dir / "plan.json").write_text(payload)
    charts = render_charts(service.results(view.run_id), service.db, out_dir)
    err.print(f"wrote {out_dir / 'plan.md'}, {out_dir / 'plan.json'} and {len(charts)} chart(s)")


_STATUS = {"waiting_approval": "waiting for approval"}


@contextmanager
def _writing(view: Any, target: Path, flag: str) -> Iterator[None]:
    """Report a plan that cannot be written as such: the run itself is over and recorded."""
    try:
        yield
    except OSError as exc:
        failed = Path(str(exc.filename)) if exc.filename is not None else target
        raise ValueError(
            f"run {view.run_id} finished ({_STATUS.get(view.status, view.status)}) but its plan "
            f"could not be written to {target} ({path_problem(failed, exc)}): choose a writable "
            f"{flag}; `lastmile runs show {view.run_id}` shows it"
        ) from exc


def _approve_command(service: Any, run_id: str) -> str:
    """Write the command that approves a run, naming its databases unless they are defaults.

    The defaults are the built-in ones, not the environment's: the line must work verbatim
    in another shell too.
    """
    words = ["lastmile", "approve", run_id, "--all"]
    defaults = Settings.model_fields
    if Path(service.db) != defaults["db"].default:
        words += ["--db", str(service.db)]
    if Path(service.state_db) != defaults["state_db"].default:
        words += ["--state-db", str(service.state_db)]
    return shlex.join(words)


@app.command()
@user_errors
def triage(
    date_: Annotated[
        date | None,
        typer.Option(
            "--date", parser=_day, metavar="YYYY-MM-DD", help="Day to triage [default: latest]."
        ),
    ] = None,
    scope: Annotated[str, typer.Option(help="all, region:R2 or store:S003,S004.")] = "all",
    fmt: FormatOption = "md",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the plan here.")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", help="Write plan.md, plan.json, charts.")
    ] = None,
    db: DbOption = None,
    state_db: StateOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Morning triage: scan, diagnose, forecast, recommend; stops for approval."""
    fmt = "json" if as_json else fmt
    level, _, ids = scope.partition(":")
    if level not in ("all", "region", "store") or (level != "all" and not ids):
        raise ValueError(f"--scope must be all, region:ID or store:ID[,ID], got {scope!r}")
    service = _service(db, state_db)
    with err.status("triage: scanning, diagnosing, forecasting, recommending..."):
        view = service.triage(
            date_,
            level,  # type: ignore[arg-type]
            [i for i in ids.split(",") if i],
        )
    _emit(service, view, fmt, out_file, out_dir)


@app.command()
@user_errors
def ask(
    question: Annotated[
        str, typer.Argument(help="e.g. 'why were deliveries late at S003 on 2026-03-14?'")
    ],
    fmt: FormatOption = "md",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the answer here.")] = None,
    db: DbOption = None,
    state_db: StateOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Ask a question; the model chooses the tools and writes a cited plan."""
    fmt = "json" if as_json else fmt
    service = _service(db, state_db)
    with err.status("thinking..."):
        view = service.ask(question)
    _emit(service, view, fmt, out_file, None)


@app.command()
@user_errors
def chat(db: DbOption = None, state_db: StateOption = None) -> None:
    """Terminal chat: each question streams its tool steps, then the plan."""
    from rich.markdown import Markdown

    from agent.report import render_markdown

    service = _service(db, state_db)
    out.print("[bold]lastmile chat[/] - ask about your deliveries; an empty line quits.")
    while True:
        try:
            question = out.input("[bold cyan]you>[/] ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not question:
            break
        view = None
        for step in service.stream_ask(question):
            if "done" in step:
                view = step["done"]
                continue
            for event in step["events"]:
                if event.get("kind") == "tool":
                    state = (
                        "error: " + event["error"]
                        if event.get("error")
                        else f"-> {event['evidence_id']}"
                    )
                    out.print(
                        f"  [dim]{event['tool']}({json.dumps(event['args'], default=str)}) "
                        f"{state} ({event['ms']:.0f} ms)[/]"
                    )
                elif event.get("kind") == "llm":
                    out.print(f"  [dim]{event['node']}: {event['model']} ({event['ms']:.0f} ms)[/]")
        if view is not None:
            out.print(Markdown(render_markdown(view, service.record(view.run_id))))


@app.command()
@user_errors
def approve(
    run_id: Annotated[str, typer.Argument(help="Run waiting for approval.")],
    all_: Annotated[bool, typer.Option("--all", help="Approve every pending action.")] = False,
    approve_: Annotated[
        list[int] | None, typer.Option("--approve", help="Approve action # (repeatable).")
    ] = None,
    reject: Annotated[
        list[int] | None, typer.Option("--reject", help="Reject action # (repeatable).")
    ] = None,
    edit: Annotated[
        list[str] | None,
        typer.Option("--edit", help="Approve with a new setting: '#:parameter=value'."),
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Who decides (recorded).")] = "cli",
    db: DbOption = None,
    state_db: StateOption = None,
    fmt: FormatOption = "md",
    as_json: JsonFlag = False,
) -> None:
    """Approve, reject or edit the pending actions of a run; approved ones are dispatched."""
    fmt = "json" if as_json else fmt
    from agent.schemas import Decision

    service = _service(db, state_db)
    view = service.get(run_id)
    pending = [p["index"] for p in view.pending]
    chosen: dict[int, Decision] = {}
    for i in approve_ or []:
        chosen[i] = Decision(index=i, decision="approve", by=by)
    for i in reject or []:
        chosen[i] = Decision(index=i, decision="reject", by=by)
    for spec in edit or []:
        m = re.fullmatch(r"(\d+):(\w+)=([-+]?\d+(?:\.\d+)?)", spec.strip())
        if not m:
            raise ValueError(f"--edit takes '#:parameter=value', got {spec!r}")
        chosen[int(m.group(1))] = Decision(
            index=int(m.group(1)),
            decision="edit",
            parameters={m.group(2): float(m.group(3))},
            by=by,
        )
    if all_:
        for i in pending:
            chosen.setdefault(i, Decision(index=i, decision="approve", by=by))
    view = service.approve(run_id, [chosen[i] for i in sorted(chosen)])
    _emit(service, view, fmt, None, None)


@runs_app.command("list")
@user_errors
def runs_list(state_db: StateOption = None, db: DbOption = None, limit: int = 20) -> None:
    """Recent runs, newest first."""
    service = _service(db, state_db)
    table = Table(box=box.SIMPLE_HEAD)
    for col in ("run", "kind", "status", "day", "scope / question", "created"):
        table.add_column(col)
    for r in service.store.list_runs(limit):
        table.add_row(
            r["run_id"],
            r["kind"],
            r["status"],
            r["day"] or "",
            (r["question"] or r["scope"] or "")[:60],
            r["created_at"],
        )
    out.print(table)


@runs_app.command("show")
@user_errors
def runs_show(
    run_id: str,
    as_json: JsonOption = False,
    state_db: StateOption = None,
    db: DbOption = None,
) -> None:
    """Show a run's plan, trace (tool calls, latency, model calls, tokens) and evidence."""
    service = _service(db, state_db)
    record = service.record(run_id)
    if as_json:
        out.print_json(record.model_dump_json())
        return
    from rich.markdown import Markdown

    from agent.report import render_markdown

    out.print(Markdown(render_markdown(service.get(run_id), record)))
    table = Table(title="Trace", box=box.SIMPLE_HEAD)
    for col in ("at", "step", "what", "ms", "result"):
        table.add_column(col)
    for e in record.trace:
        if e.get("kind") == "tool":
            what = f"{e['tool']}({json.dumps(e['args'], default=str)[:60]})"
            result = e.get("evidence_id") or f"error: {e.get('error')}"
        elif e.get("kind") == "llm":
            what = f"{e['model']} {e.get('prompt', '')}"
            result = f"tokens {e.get('input_tokens', 0)}/{e.get('output_tokens', 0)}" + (
                f" {e['error']}" if e.get("error") else ""
            )
        else:
            what = e.get("node", "")
            result = "ok" if e.get("ok", True) else f"{len(e.get('problems', []))} problem(s)"
        table.add_row(
            str(e.get("at", ""))[11:23],
            str(e.get("node", "")),
            what,
            f"{e.get('ms', '')}",
            str(result),
        )
    out.print(table)


@app.command("eval")
def eval_cmd(
    suite: Annotated[str, typer.Option(help="Suite YAML, folder, shipped name, or 'all'.")] = "all",
    mode: Annotated[str, typer.Option(help="offline, replay, record or live.")] = "offline",
    repeat: Annotated[int, typer.Option(min=1, max=20, help="Runs per case (pass^k).")] = 1,
    report: Annotated[Path, typer.Option(help="Folder for report.json and report.md.")] = Path(
        "out/eval"
    ),
    work_dir: Annotated[Path, typer.Option(help="Where worlds and run stores are kept.")] = Path(
        "out/eval/work"
    ),
    server: Annotated[
        str | None,
        typer.Option(help="With --mode record: what serves the model, kept in meta.json."),
    ] = None,
) -> None:
    """Run eval suites against ground truth; exit 1 when a gated metric misses its bound.

    Modes: offline (the deterministic planner, no endpoint), replay (recorded cassettes, no
    network), record (a real endpoint, writing cassettes), live (a real endpoint).
    """
    from evals.cassettes import CassetteError
    from evals.report import run as run_evals
    from evals.suite import load_suite, suite_paths

    if mode not in ("offline", "replay", "record", "live"):
        err.print(
            Text(
                f"error: --mode must be offline, replay, record or live, got {mode!r}",
                style="bold red",
            )
        )
        raise typer.Exit(2)
    if mode in ("record", "live") and not get_settings().uses_llm_endpoint:
        err.print(
            Text(
                "error: --mode record/live needs LASTMILE_LLM_BASE_URL (or an API key)",
                style="bold red",
            )
        )
        raise typer.Exit(2)
    try:  # a bad suite file is the user's input: check them all before running any
        for path in suite_paths(suite):
            load_suite(path)
    except ValueError as exc:
        err.print(Text("error: ", style="bold red") + Text(str(exc)), soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        ok, payload = run_evals(
            suite,
            mode,  # type: ignore[arg-type]
            repeat=repeat,
            report_dir=report,
            work_dir=work_dir,
            server=server,
        )
    except CassetteError as exc:
        err.print(Text("error: ", style="bold red") + Text(str(exc)), soft_wrap=True)
        raise typer.Exit(1) from None
    table = Table(title=f"eval ({mode})", box=box.SIMPLE_HEAD)
    for col in ("suite", "verdict", "recall", "precision", "top-1", "action", "grounded"):
        table.add_column(col)
    for s in payload["suites"]:
        m = s["metrics"]

        def v(name: str, metrics: dict[str, Any] = m) -> str:
            value = metrics.get(name, {}).get("value")
            return "-" if value is None else f"{value:g}"

        verdict = (
            "pass" if not s["failures"] else ("FAIL" if s["gate"] else "below bar (not gated)")
        )
        table.add_row(
            s["name"],
            verdict,
            v("detection_recall"),
            v("event_precision"),
            v("root_cause_top1"),
            v("action_correct"),
            v("groundedness"),
        )
    out.print(table)
    for s in payload["suites"]:
        if s["failures"] and s["gate"]:
            err.print(Text(f"{s['name']}: " + "; ".join(s["failures"]), style="red"))
    out.print(f"report: {report / 'report.md'}")
    raise typer.Exit(0 if ok else 1)


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
        problems = "; ".join(validation_problems(exc))
        raise ValueError(f"invalid arguments for {name}: {problems}") from None
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
