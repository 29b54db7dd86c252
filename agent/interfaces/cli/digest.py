"""``lastmile triage --post slack``: the morning digest from cron or a Kubernetes CronJob."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from agent.interfaces.cli.common import _reading_db, err, out


def post_to_slack(
    db: Path | None,
    state_db: Path | None,
    day: date | None,
    level: str,
    ids: list[str],
    channel: str | None,
    as_json: bool,
) -> None:
    """Run the triage and post its digest once per (date, scope); exit 1 if it failed.

    Raises:
        RunInputError: Slack or the channel is not configured.
        typer.Exit: code 1 when the triage (or its post) failed; the alert says why.
    """
    from agent.async_service import AsyncAgentService
    from agent.errors import RunInputError
    from agent.interfaces.slack.bot import slack_client
    from agent.interfaces.slack.digest import post_digest
    from agent.service import AgentService
    from agent.settings import get_settings

    settings = get_settings()
    channel = channel or settings.slack_channel
    if not channel:
        raise RunInputError("no Slack channel: pass --channel C0123 or set LASTMILE_SLACK_CHANNEL")
    client = slack_client(settings)
    # without --date, the newest data is checked against today (a stopped feed is alerted)
    today = settings.today or datetime.now(ZoneInfo(settings.triage_timezone)).date()
    service = AgentService(settings, db=_reading_db(db), state_db=state_db)
    try:
        outcome = asyncio.run(
            post_digest(
                AsyncAgentService(service),
                client,
                settings,
                channel=channel,
                day=day,
                scope_level=level,
                scope_ids=ids,
                by="cli",
                today=today,
            )
        )
    finally:
        service.close()
    if as_json:
        out.print_json(outcome.model_dump_json())
    else:
        err.print(outcome.message)
    if outcome.status == "failed":
        raise typer.Exit(1)


__all__ = ["post_to_slack"]
