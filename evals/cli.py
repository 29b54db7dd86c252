"""``lastmile eval``, ``backtest`` and ``closed-loop``, registered by the evals package.

The entry point is ``lastmile.commands``.

The agent's command line discovers it, so ``agent/`` never imports ``evals/``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from agent.interfaces.cli.common import DbOption, _db, _late_rule, err, out
from agent.interfaces.cli.errors import user_errors
from agent.settings import get_settings


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
    jobs: Annotated[
        int, typer.Option(min=1, max=16, help="Suites run at once (separate processes).")
    ] = 1,
) -> None:
    """Run eval suites against ground truth; exit 1 when a gated metric misses its bound.

    Modes: offline (the deterministic planner, no endpoint), replay (recorded cassettes, no
    network), record (a real endpoint, writing cassettes), live (a real endpoint).
    """
    from evals.cassettes import CassetteError
    from evals.report import run as run_evals

    _check_eval_args(suite, mode)
    try:
        ok, payload = run_evals(
            suite,
            mode,  # type: ignore[arg-type]
            repeat=repeat,
            report_dir=report,
            work_dir=work_dir,
            server=server,
            jobs=jobs,
        )
    except CassetteError as exc:
        err.print(Text("error: ", style="bold red") + Text(str(exc)), soft_wrap=True)
        raise typer.Exit(1) from None
    _print_eval(payload, mode)
    out.print(f"report: {report / 'report.md'}")
    raise typer.Exit(0 if ok else 1)


def _check_eval_args(suite: str, mode: str) -> None:
    """Exit with status 2 on a bad mode, a mode without an endpoint, or a bad suite file."""
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


def _print_eval(payload: dict[str, Any], mode: str) -> None:
    """Print the headline metrics of each suite, then why the gated ones failed."""
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


def backtest_cmd(
    start: Annotated[
        datetime,
        typer.Option("--from", formats=["%Y-%m-%d"], help="First morning replayed (YYYY-MM-DD)."),
    ],
    end: Annotated[
        datetime,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last morning replayed (YYYY-MM-DD)."),
    ],
    db: DbOption = None,
    report: Annotated[Path, typer.Option(help="Folder for backtest.md and backtest.json.")] = Path(
        "out/backtest"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay the morning triage on your history: alerts per 100 store-weeks before go-live."""
    from evals.backtest import backtest, markdown

    result = backtest(_db(db), start.date(), end.date(), late=_late_rule())
    report.mkdir(parents=True, exist_ok=True)
    (report / "backtest.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    (report / "backtest.md").write_text(markdown(result), encoding="utf-8")
    if as_json:
        out.print_json(result.model_dump_json())
        return
    out.print(markdown(result), markup=False)
    err.print(f"report: {report / 'backtest.md'}")


def closed_loop_cmd(
    stores: Annotated[int, typer.Option(min=2, max=200, help="Stores of the world.")] = 24,
    days: Annotated[int, typer.Option(min=90, max=730, help="Days of the world.")] = 200,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the world and its incidents.")] = 1,
    efficacy: Annotated[
        list[str] | None,
        typer.Option(
            help="ACTION=SHARE: the world delivers only SHARE (0..2, 1 = as modelled) of "
            "that action's effect (repeatable, once per action), e.g. call_backup_drivers=0.5."
        ),
    ] = None,
    min_actions: Annotated[
        int, typer.Option(min=1, help="Stop once this many actions have outcomes.")
    ] = 200,
    report: Annotated[Path, typer.Option(help="Folder for closed_loop.md and .json.")] = Path(
        "out/closed_loop"
    ),
) -> None:
    """Approve every recommended action in a generated world and track what each realised.

    An incident every day from day 60; each morning is triaged, every proposed action
    is approved and simulated, and its outcome corrects the next estimates. Reports the
    coverage of the promised 80 % intervals and when each action type was flagged.
    """
    from evals.closed_loop import make_world, markdown, run_closed_loop
    from tools.data.synthetic import WorldConfig
    from tools.data.synthetic.actions import ACTION_LEVERS

    shares: dict[str, float] = {}
    for item in efficacy or []:
        name, sep, value = item.partition("=")
        if name in shares:
            raise typer.BadParameter(f"{name} is given twice: give each action once")
        try:
            shares[name] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise typer.BadParameter(f"{item!r}: give ACTION=SHARE, e.g. call_backup_drivers=0.5")
    for name, share in shares.items():
        if not 0.0 <= share <= 2.0:
            raise typer.BadParameter(f"{name}={share:g}: SHARE is 0..2 (1 = as modelled)")
    unknown = sorted(set(shares) - set(ACTION_LEVERS))
    if unknown:
        raise typer.BadParameter(
            f"the simulator cannot apply {', '.join(unknown)}; it knows "
            f"{', '.join(sorted(ACTION_LEVERS))}"
        )
    config = WorldConfig(stores=stores, days=days, seed=seed, action_efficacy=shares)
    report.mkdir(parents=True, exist_ok=True)
    db = report / "world.duckdb"
    make_world(db, config, 60)
    result = run_closed_loop(
        db,
        config.start_date + timedelta(days=60),
        config.start_date + timedelta(days=days - 4),
        min_actions=min_actions,
    )
    (report / "closed_loop.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    (report / "closed_loop.md").write_text(markdown(result), encoding="utf-8")
    out.print(markdown(result), markup=False)
    err.print(f"report: {report / 'closed_loop.md'}")


def register(app: typer.Typer) -> None:
    """Add ``eval``, ``backtest`` and ``closed-loop`` to ``app``."""
    app.command("eval")(eval_cmd)
    app.command("backtest")(user_errors(backtest_cmd))
    app.command("closed-loop")(user_errors(closed_loop_cmd))
