"""``lastmile monitor``: data health, drift, model decay and agent health, with a report."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from agent.interfaces.cli.common import DbOption, _day, err, out
from agent.interfaces.cli.errors import user_errors
from agent.interfaces.cli.runs import StateOption, _service


@user_errors
def monitor(
    date_: Annotated[
        date | None,
        typer.Option(
            "--date",
            parser=_day,
            metavar="YYYY-MM-DD",
            help="Last day to monitor (default: the latest day in the data).",
        ),
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="Days monitored up to --date.")] = 28,
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Where monitor.md and its charts go.")
    ] = Path("out/monitor"),
    post: Annotated[
        str, typer.Option("--post", help="'slack': post the alerts this run opened.")
    ] = "none",
    channel: Annotated[
        str | None,
        typer.Option("--channel", help="Slack channel id (default: LASTMILE_SLACK_CHANNEL)."),
    ] = None,
    db: DbOption = None,
    state_db: StateOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check the data, the models and the agent day by day; write a report, raise alerts."""
    from agent.monitor_report import write_report

    if post not in ("none", "slack"):
        raise ValueError(f"--post must be none or slack, got {post!r}")
    service = _service(db, state_db)
    try:
        with err.status(f"monitoring {days} day(s): data health, drift, forecast error..."):
            result = service.monitor(date_, days)
        report = write_report(result, out_dir)
        posted = _post(service, channel) if post == "slack" else 0
    finally:
        service.close()
    if as_json:
        out.print_json(result.model_dump_json(exclude={"health"}))
        return
    err.print(
        f"monitored {result.start}..{result.day}: {len(result.opened)} alert(s) opened, "
        f"{len(result.open_alerts)} open; report in {report}"
        + (f"; {posted} posted to Slack" if post == "slack" else "")
    )
    still = {a.alert_id for a in result.open_alerts}
    for alert in result.opened + [a for a in result.open_alerts if a not in result.opened]:
        state = "open" if alert.alert_id in still else f"closed {alert.last_seen}"
        out.print(f"- [{alert.kind}] {alert.opened_on} ({state}): {alert.message}", markup=False)


def _post(service: object, channel: str | None) -> int:
    from agent.interfaces.slack.alerts import post_alerts

    return post_alerts(service, channel)


@user_errors
def advance(
    days: Annotated[int, typer.Option(min=1, max=366, help="Days to live.")] = 1,
    db: DbOption = None,
    state_db: StateOption = None,
) -> None:
    """Live a generated world's next day(s), with the actions approved for them carried out.

    For worlds written with `lastmile generate --through DATE`: the deliveries, rosters and
    conditions of each day are appended as the world lives it with the approved actions.
    """
    service = _service(db, state_db)
    try:
        lived = service.advance_world(days)
        if not service.triages_recorded():
            err.print(
                f"note: {service.state_db} records no triage: approved actions are read from "
                "the state database `triage` and `approve` used (--state-db or "
                "LASTMILE_STATE_DB); none was carried out",
                markup=False,
            )
    finally:
        service.close()
    for day in lived:
        done = "; ".join(
            f"{a.action_id} at {', '.join(a.stores[:3])}{'...' if len(a.stores) > 3 else ''} "
            f"({a.value:g})"
            for a in day.carried_out
        )
        out.print(
            f"{day.day}: {day.deliveries:,} deliveries appended; carried out: {done or 'nothing'}"
            + (f"; cannot carry out {', '.join(day.not_simulable)}" if day.not_simulable else ""),
            markup=False,
        )


def register(app: typer.Typer) -> None:
    """Add ``monitor`` and ``advance`` to ``app``."""
    app.command()(monitor)
    app.command()(advance)
