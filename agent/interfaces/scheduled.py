"""The server's own morning triage: on its cron schedule, triage and post the digest."""

from __future__ import annotations

import asyncio
import logging
from datetime import date

from agent.async_service import AsyncAgentService
from agent.scheduler import run_schedule
from agent.settings import Settings

logger = logging.getLogger(__name__)


async def morning_triage(service: AsyncAgentService, settings: Settings, local_day: date) -> None:
    """Triage the data's latest day; post the digest when Slack and a channel are set.

    Without Slack the run is recorded (the web page and ``lastmile runs list`` show it).
    """
    if settings.slack_bot_token is not None and settings.slack_channel:
        from agent.interfaces.slack.bot import slack_client
        from agent.interfaces.slack.digest import post_digest

        outcome = await post_digest(
            service,
            slack_client(settings),
            settings,
            channel=settings.slack_channel,
            today=local_day,
        )
        log = logger.error if outcome.status == "failed" else logger.info
        log("scheduled triage (%s): %s", local_day, outcome.message)
        return
    async for event in service.triage(None, "all", [], "scheduler"):
        if event.type == "run_finished":
            logger.info("scheduled triage (%s): run %s %s", local_day, event.run_id, event.status)


def start_schedule(service: AsyncAgentService, settings: Settings) -> asyncio.Task[None] | None:
    """Start the schedule of ``settings.triage_schedule`` (None when there is none)."""
    if not settings.triage_schedule:
        return None

    async def job(local_day: date) -> None:
        await morning_triage(service, settings, local_day)

    logger.info(
        "morning triage scheduled at '%s' (%s)", settings.triage_schedule, settings.triage_timezone
    )
    return asyncio.create_task(
        run_schedule(settings.triage_schedule, settings.triage_timezone, job)
    )


__all__ = ["morning_triage", "start_schedule"]
