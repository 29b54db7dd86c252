"""The ``lastmile`` command line: generate worlds, ingest data, inspect KPIs.

A thin surface: every command parses arguments, calls ``tools``, and prints. Errors about the
user's input exit with status 2 and a message that names the problem.
"""

from __future__ import annotations

import functools
import json
import logging
import re
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

from agent.errors import RunFailedError
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
        except (DataValidationError, ValueError, FileNotFoundError) as exc:  # incl. RunInputError
            # Messages quote user data (file names, values): print them verbatim, no markup.
            err.print(Text("error: ", style="bold red") + Text(str(exc)), soft_wrap=True)
            raise typer.Exit(2) from None
        except RunFailedError as exc:
            err.print(Text("error: ", style="bold red") + Text(str(exc)), soft_wrap=True)
            raise typer.Exit(1) from None

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
    from agent.report import render_charts, render_markdown

    if fmt not in ("md", "json"):
        raise ValueError(f"--format must be md or json, got {fmt!r}")
    record = service.record(view.run_id)
    markdown = render_markdown(view, record)
    payload = json.dumps(
        {"run": view.model_dump(mode="json"), "evidence": record.evidence}, indent=2, default=str
    )
    text = markdown if fmt == "md" else payload
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "plan.md").write_text(markdown)
        (out_dir / "plan.json").write_text(payload)
        charts = render_charts(service.results(view.run_id), service.db, out_dir)
        err.print(
            f"wrote {out_dir / 'plan.md'}, {out_dir / 'plan.json'} and {len(charts)} chart(s)"
        )
    if out_file is not None:
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
            f"run {view.run_id} waits for approval: lastmile approve {view.run_id} --all "
            "(or --approve/--reject/--edit)"
        )


@app.command()
@user_errors
def triage(
    date_: Annotated[
        str | None, typer.Option("--date", help="Day to triage [default: latest].")
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
            date.fromisoformat(date_) if date_ else None,
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
