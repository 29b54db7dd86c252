"""Agent run commands of ``lastmile``: triage, ask, chat and the ``runs`` group."""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from agent.errors import path_problem
from agent.interfaces.cli.common import DbOption, JsonOption, _day, _reading_db, err, out
from agent.interfaces.cli.errors import user_errors
from agent.settings import Settings

StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state-db",
        help="Run store (default: $LASTMILE_STATE_DB, else data/lastmile_state.sqlite).",
    ),
]
FormatOption = Annotated[str, typer.Option("--format", help="md (Markdown) or json.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Same as --format json.")]


def _service(db: Path | None, state_db: Path | None) -> Any:
    from agent.service import AgentService

    return AgentService(db=_reading_db(db), state_db=state_db)


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
    charts = render_charts(service.results(view.run_id), service.backend(), out_dir)
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
    if service.data.kind == "spark":  # a root option: before the command
        words[1:1] = ["--data", service.data.location]
    elif Path(service.db) != defaults["db"].default:
        words += ["--db", str(service.db)]
    if Path(service.state_db) != defaults["state_db"].default:
        words += ["--state-db", str(service.state_db)]
    return shlex.join(words)


@user_errors
def triage(
    date_: Annotated[
        date | None,
        typer.Option(
            "--date",
            parser=_day,
            metavar="YYYY-MM-DD",
            help="Day to triage (default: the latest day in the data).",
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
    post: Annotated[
        str,
        typer.Option(
            "--post",
            help="'slack': post the morning digest (once per date and scope; an alert if the "
            "triage fails) instead of printing the plan.",
        ),
    ] = "none",
    channel: Annotated[
        str | None,
        typer.Option("--channel", help="Slack channel id (default: LASTMILE_SLACK_CHANNEL)."),
    ] = None,
) -> None:
    """Morning triage: scan, diagnose, forecast, recommend; stops for approval."""
    fmt = "json" if as_json else fmt
    level, _, ids = scope.partition(":")
    if level not in ("all", "region", "store") or (level != "all" and not ids):
        raise ValueError(f"--scope must be all, region:ID or store:ID[,ID], got {scope!r}")
    if post not in ("none", "slack"):
        raise ValueError(f"--post must be none or slack, got {post!r}")
    if post == "slack":
        from agent.interfaces.cli.digest import post_to_slack

        ids_list = [i for i in ids.split(",") if i]
        post_to_slack(db, state_db, date_, level, ids_list, channel, as_json)
        return
    service = _service(db, state_db)
    with err.status("triage: scanning, diagnosing, forecasting, recommending..."):
        view = service.triage(
            date_,
            level,  # type: ignore[arg-type]
            [i for i in ids.split(",") if i],
        )
    _emit(service, view, fmt, out_file, out_dir)


TodayOption = Annotated[
    date | None,
    typer.Option(
        parser=_day,
        metavar="YYYY-MM-DD",
        help="The day the question is asked: 'yesterday' and 'tomorrow' count from it, and "
        "actions are only proposed for its eve or later (default: LASTMILE_TODAY, else the "
        "morning after the data ends).",
    ),
]


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
    today: TodayOption = None,
) -> None:
    """Ask a question; the model chooses the tools and writes a cited plan."""
    fmt = "json" if as_json else fmt
    service = _service(db, state_db)
    with err.status("thinking..."):
        view = service.ask(question, **({"today": today} if today else {}))
    _emit(service, view, fmt, out_file, None)


@user_errors
def chat(db: DbOption = None, state_db: StateOption = None, today: TodayOption = None) -> None:
    """Terminal chat: each question streams its tool steps, then the plan."""
    from rich.markdown import Markdown

    from agent.report import render_markdown

    service = _service(db, state_db)
    # one conversation thread per session: follow-ups keep the previous turn's store and day
    thread_id = "chat-" + uuid.uuid4().hex[:12]
    out.print("[bold]lastmile chat[/] - ask about your deliveries; an empty line quits.")
    while True:
        try:
            question = out.input("[bold cyan]you>[/] ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not question:
            break
        view = None
        asked_on = {"today": today} if today else {}
        for event in service.stream_ask(question, thread_id=thread_id, **asked_on):
            if event.type == "tool_finished":
                state = f"-> {event.summary}" if event.ok else f"error: {event.summary}"
                out.print(
                    Text(f"  {event.tool}: {state} ({event.ms:.0f} ms)", style="dim"),
                    soft_wrap=True,
                )
            elif event.type == "step":
                out.print(Text(f"  {event.label}", style="dim"))
            elif event.type == "run_failed":
                err.print(Text(f"error: {event.error}"), soft_wrap=True)
            elif event.type == "run_finished" and event.status != "failed":
                view = service.get(event.run_id)
        if view is not None:
            out.print(Markdown(render_markdown(view, service.record(view.run_id))))


@user_errors
def runs_list(state_db: StateOption = None, db: DbOption = None, limit: int = 20) -> None:
    """Recent runs, newest first."""
    service = _service(db, state_db)
    table = Table(box=box.SIMPLE_HEAD)
    for col in ("run", "kind", "status", "day", "scope / question", "created"):
        # the id is what `runs show` and `approve` need: never cut, the question wraps
        table.add_column(col, no_wrap=col == "run", min_width=12 if col == "run" else None)
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


@user_errors
def runs_show(
    run_id: str,
    as_json: JsonOption = False,
    state_db: StateOption = None,
    db: DbOption = None,
) -> None:
    """Show a run's plan, trace (tool calls, latency, model calls, tokens) and evidence."""
    service = _service(db, state_db)
    run_id = service.resolve(run_id)
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
        elif e.get("kind") == "error":
            what, result = "the run failed", str(e.get("error", ""))[:200]
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


@user_errors
def runs_recover(state_db: StateOption = None, db: DbOption = None) -> None:
    """Finish runs a crash interrupted (run it when no other lastmile process is running)."""
    service = _service(db, state_db)
    touched = service.recover()
    out.print(f"recovered {len(touched)} run(s)" + (f": {', '.join(touched)}" if touched else ""))


def register(app: typer.Typer) -> None:
    """Add ``triage``, ``ask``, ``chat`` and the ``runs`` group to ``app``."""
    app.command()(triage)
    app.command()(ask)
    app.command()(chat)
    runs_app = typer.Typer(help="Past runs: plans, traces, evidence.", no_args_is_help=True)
    runs_app.command("list")(runs_list)
    runs_app.command("show")(runs_show)
    runs_app.command("recover")(runs_recover)
    app.add_typer(runs_app, name="runs")
