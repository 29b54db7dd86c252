"""The morning digest: run the triage of a (service date, scope) and post it to Slack once.

Used by ``lastmile triage --post slack`` (cron, a Kubernetes CronJob) and by ``serve``'s
own schedule. The digest of a (date, scope) is claimed in the state store before the triage
starts, so two runs started together post one digest; the second says where the first is.
A quiet morning posts one "all normal" line (or nothing, if so configured); a triage that
fails posts an alert with the reason, never silence.
"""

from __future__ import annotations

import logging
import shlex
import uuid
from datetime import date
from typing import Literal

import aiohttp
from pydantic import BaseModel
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent.async_service import AsyncAgentService
from agent.errors import RunInputError
from agent.interfaces.slack import blocks as kit
from agent.interfaces.slack.bot import SlackBot
from agent.settings import Settings

logger = logging.getLogger(__name__)


class DigestOutcome(BaseModel):
    """What posting a digest did."""

    status: Literal["posted", "quiet", "already", "failed"]
    day: str
    scope: str
    message: str
    run_id: str | None = None
    channel: str | None = None
    ts: str | None = None


class TriageFailed(RuntimeError):
    """The triage run ended without a plan."""


def scope_name(level: str, ids: list[str]) -> str:
    """Return a scope as stored: 'all', 'region:R1', 'store:S003,S004'."""
    return level if level == "all" else f"{level}:{','.join(sorted(ids))}"


async def post_digest(
    service: AsyncAgentService,
    client: AsyncWebClient,
    settings: Settings,
    *,
    channel: str,
    day: date | None = None,
    scope_level: str = "all",
    scope_ids: list[str] | None = None,
    by: str = "scheduler",
    today: date | None = None,
) -> DigestOutcome:
    """Run the triage of ``day`` (default: the data's latest) and post its digest once.

    Args:
        service: the application service.
        client: a Slack Web API client with the bot token.
        settings: the settings (what to post on a quiet day, the data's allowed age).
        channel: the channel id to post to.
        day: the service date to triage (None: the data's latest).
        scope_level: 'all', 'region' or 'store'.
        scope_ids: the region or store ids of the scope.
        by: who started it ('cli', 'scheduler'), recorded with the claim.
        today: the calendar day of a digest without ``day``: data older than
            ``settings.digest_max_data_age_days`` before it is a stopped feed, alerted once
            a day instead of a digest of old data.

    Returns:
        The outcome: ``posted`` (where), ``quiet`` (nothing to report), ``already`` (another
        run has it: where), or ``failed`` (why; an alert was posted if Slack answered).

    Raises:
        RunInputError: ``day`` or the scope is not in the data (the caller's mistake:
            nothing is posted).
    """
    ids = list(scope_ids or [])
    scope = scope_name(scope_level, ids)
    retry = _retry_command(day, scope, channel)
    try:
        the_day = day or await service.latest_day()
    except Exception as exc:  # no data at all: still an alert, not silence
        return await _alert(client, channel, "latest", scope, _reason(exc), None, retry)
    await service.check_triage(day, scope_level, ids)  # a typo is not a failed triage
    if day is None and today is not None:
        age = (today - the_day).days
        if age > settings.digest_max_data_age_days:
            return await _stale(service, client, channel, today, the_day, scope, by, retry)
    iso = the_day.isoformat()
    token = f"{by}:{uuid.uuid4().hex[:8]}"  # this run's claim, not another run's by the same name
    held, claim = await service.claim_digest(iso, scope, token)
    if not held:
        where = (
            f"posted in {claim.channel} (message {claim.ts}, run {claim.run_id})"
            if claim.status == "posted" and claim.channel
            else f"done (run {claim.run_id}: all normal, nothing posted)"
            if claim.status == "posted"
            else f"being posted by {claim.claimed_by} since {claim.claimed_at}"
        )
        return DigestOutcome(
            status="already",
            day=iso,
            scope=scope,
            message=f"the digest of {iso} ({scope}) is already {where}",
            run_id=claim.run_id,
            channel=claim.channel,
            ts=claim.ts,
        )
    run_id: str | None = None
    try:
        run_id = await _triage(service, the_day, scope_level, ids, by)
        outcome = await _post(service, client, settings, channel, run_id, iso, scope)
    except Exception as exc:
        outcome = await _alert(client, channel, iso, scope, _reason(exc), run_id, retry)
    await service.finish_digest(
        iso,
        scope,
        "failed" if outcome.status == "failed" else "posted",
        run_id=run_id,
        channel=outcome.channel,
        ts=outcome.ts,
        error=outcome.message if outcome.status == "failed" else None,
        claimed_by=token,
    )
    return outcome


async def _triage(
    service: AsyncAgentService, day: date, level: str, ids: list[str], by: str
) -> str:
    """Run the triage to its end; return its run id.

    Raises:
        TriageFailed: the run failed (its reason) or was cancelled.
    """
    run_id, status, error = "", "", None
    async for event in service.triage(day, level, ids, by):
        if event.type == "run_started":
            run_id = event.run_id
        elif event.type == "run_failed":
            error = event.error
        elif event.type == "run_finished":
            status = event.status
    if status not in ("done", "waiting_approval"):
        raise TriageFailed(error or f"the run ended {status or 'without finishing'}")
    return run_id


async def _post(
    service: AsyncAgentService,
    client: AsyncWebClient,
    settings: Settings,
    channel: str,
    run_id: str,
    iso: str,
    scope: str,
) -> DigestOutcome:
    view = await service.digest(run_id)
    if not view.assessed:  # a scan that failed is not an all-normal morning
        caveats = "; ".join(view.page.caveats) or "no reason was recorded"
        raise TriageFailed(f"the anomaly scan did not run ({caveats})")
    if view.quiet:
        if not settings.slack_post_all_normal:
            return DigestOutcome(
                status="quiet", day=iso, scope=scope, run_id=run_id, message="all normal"
            )
        stores = await service.store_count() if scope == "all" else None
        text = kit.all_normal_text(view, stores)
        posted = await client.chat_postMessage(
            channel=channel, **kit.text_message(text), unfurl_links=False
        )
        return DigestOutcome(
            status="quiet",
            day=iso,
            scope=scope,
            run_id=run_id,
            channel=channel,
            ts=str(posted["ts"]),
            message=f"all normal: posted in {channel}",
        )
    posted = await client.chat_postMessage(
        channel=channel,
        text=kit.digest_text(view),
        blocks=kit.digest_blocks(view),
        unfurl_links=False,
        unfurl_media=False,
    )
    ts = str(posted["ts"])
    await SlackBot(settings, service, client).upload_chart(channel, ts, view.page)
    return DigestOutcome(
        status="posted",
        day=iso,
        scope=scope,
        run_id=run_id,
        channel=channel,
        ts=ts,
        message=f"digest of {iso} ({scope}) posted in {channel} (run {run_id})",
    )


def _retry_command(day: date | None, scope: str, channel: str) -> str:
    """Return the command that posts this digest again, with the options it was given."""
    words = ["lastmile", "triage", "--post", "slack", "--channel", channel]
    words += ["--date", day.isoformat()] if day else []
    words += ["--scope", scope] if scope != "all" else []
    return shlex.join(words)


async def _stale(
    service: AsyncAgentService,
    client: AsyncWebClient,
    channel: str,
    today: date,
    newest: date,
    scope: str,
    by: str,
    retry: str,
) -> DigestOutcome:
    """Alert, once per calendar day, that the newest data is too old to triage."""
    key = f"stale:{today.isoformat()}"
    held, claim = await service.claim_digest(key, scope, f"{by}:{uuid.uuid4().hex[:8]}")
    reason = (
        f"the newest data is from {newest}, {(today - newest).days} days before {today}: "
        "the delivery feed may have stopped, so no triage was run"
    )
    if not held:
        return DigestOutcome(
            status="already", day=key, scope=scope, message=f"already alerted: {reason}"
        )
    outcome = await _alert(client, channel, newest.isoformat(), scope, reason, None, retry)
    await service.finish_digest(
        key,
        scope,
        "posted" if outcome.ts else "failed",
        channel=outcome.channel,
        ts=outcome.ts,
        error=reason,
        claimed_by=claim.claimed_by,
    )
    return outcome


async def _alert(
    client: AsyncWebClient,
    channel: str,
    day: str,
    scope: str,
    reason: str,
    run_id: str | None,
    retry: str,
) -> DigestOutcome:
    """Post a failed triage's alert; the outcome says whether Slack took it."""
    message = f"the triage of {day} ({scope}) failed: {reason}"
    ts = None
    try:
        posted = await client.chat_postMessage(
            channel=channel,
            **kit.text_message(kit.alert_text(day, scope, reason, retry)),
            unfurl_links=False,
        )
        ts = str(posted["ts"])
    except SlackApiError as exc:
        message += f"; the alert could not be posted either ({exc.response.get('error')})"
    except Exception as exc:  # Slack unreachable: the caller's exit status carries it
        message += f"; the alert could not be posted either ({exc})"
    logger.error(message)
    return DigestOutcome(
        status="failed",
        day=day,
        scope=scope,
        run_id=run_id,
        channel=channel if ts else None,
        ts=ts,
        message=message,
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, RunInputError | TriageFailed):
        return str(exc)
    if isinstance(exc, SlackApiError):
        return f"Slack refused the digest ({exc.response.get('error')})"
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        return (
            f"Slack could not be reached ({type(exc).__name__}: {exc}); check "
            "LASTMILE_SLACK_API_URL and the network"
        )
    logger.exception("triage digest failed")
    return f"internal error ({type(exc).__name__}); the log has the details"


__all__ = ["DigestOutcome", "post_digest", "scope_name"]
