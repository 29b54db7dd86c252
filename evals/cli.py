"""``lastmile eval`` and ``lastmile backtest``, registered by the evals package.

The entry point is ``lastmile.commands``.

The agent's command line discovers it, so ``agent/`` never imports ``evals/``.
"""

from __future__ import annotations

from datetime import datetime
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


def register(app: typer.Typer) -> None:
    """Add ``eval`` and ``backtest`` to ``app``."""
    app.command("eval")(eval_cmd)
    app.command("backtest")(user_errors(backtest_cmd))
