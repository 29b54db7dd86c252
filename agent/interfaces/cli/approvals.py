"""Approval commands of ``lastmile``: approve, the decision log, and delivery of actions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer

from agent.interfaces.cli.common import DbOption, out
from agent.interfaces.cli.errors import user_errors
from agent.interfaces.cli.runs import FormatOption, JsonFlag, StateOption, _emit, _service
from agent.storage.approvals import decisions_csv


@user_errors
def approve(
    run_id: Annotated[
        str, typer.Argument(help="Run waiting for approval (its id, or a unique start of it).")
    ],
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
    run_id = service.resolve(run_id)
    view = service.get(run_id)
    pending = [p["index"] for p in view.pending]
    chosen: dict[int, Decision] = {}

    def once(i: int) -> int:  # "--approve 0 --reject 0" says two things: refuse, not guess
        if i in chosen:
            raise ValueError(f"action {i} is decided twice; give each action one decision")
        return i

    for i in approve_ or []:
        chosen[once(i)] = Decision(index=i, decision="approve", by=by)
    for i in reject or []:
        chosen[once(i)] = Decision(index=i, decision="reject", by=by)
    for spec in edit or []:
        m = re.fullmatch(r"(\d+):(\w+)=([-+]?\d+(?:\.\d+)?)", spec.strip())
        if not m:
            raise ValueError(f"--edit takes '#:parameter=value', got {spec!r}")
        chosen[once(int(m.group(1)))] = Decision(
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


@user_errors
def decisions(
    run_id: Annotated[
        str | None, typer.Option("--run", help="One run's decisions (default: all).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
    db: DbOption = None,
    state_db: StateOption = None,
) -> None:
    """Export the decision log: who decided which action of which run, when, and how."""
    if fmt not in ("csv", "json"):
        raise ValueError(f"--format must be csv or json, got {fmt!r}")
    service = _service(db, state_db)
    records = service.decision_log(service.resolve(run_id) if run_id else None)
    if fmt == "json":
        text = json.dumps([d.model_dump(mode="json") for d in records], indent=2)
    else:
        text = decisions_csv(records)
    if out_file is None:
        out.print(text, end="", markup=False, highlight=False, soft_wrap=True)
    else:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text)
        out.print(f"wrote {len(records)} decision(s) to {out_file}")


@user_errors
def deliver(db: DbOption = None, state_db: StateOption = None) -> None:
    """Send approved actions still waiting for delivery (failed ones whose retry is due)."""
    report = _service(db, state_db).deliver()
    out.print(f"delivered {len(report.delivered)} action(s)")
    for key, error in report.failed.items():
        out.print(f"  {key}: {error} (retried later)", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``approve``, ``decisions`` and ``deliver`` to ``app``."""
    app.command()(approve)
    app.command()(decisions)
    app.command()(deliver)
