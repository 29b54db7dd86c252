"""The Slack bot (slack-bolt, HTTP mode at ``/slack/events``; Socket Mode optional).

A mention or a direct message starts a run in its Slack thread (one service thread per
Slack thread, so replies in it follow on); a progress message is updated as steps finish
and then becomes the plan, with Approve / Reject buttons per action, and the late-rate chart
is uploaded into the thread. Buttons decide through the service, for members of the
configured user group or channel only.

Bolt verifies every request's signature (401 for a missing, bad or 5-minute-old one) and
acknowledges events before the listener runs (``process_before_response`` off); listeners
acknowledge interactions first, then work. An event Slack retries is handled once (its
``event_id`` is recorded); a button pressed twice records one decision (the service's).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent.async_service import AsyncAgentService
from agent.charts import kpi_alt_text, kpi_png
from agent.errors import RunInputError
from agent.interfaces.slack import blocks as kit
from agent.presenter import RunPage
from agent.settings import Settings
from agent.storage.incidents import IncidentError

logger = logging.getLogger(__name__)
MENTION = re.compile(r"<@[A-Z0-9]+>")


def slack_client(settings: Settings) -> AsyncWebClient:
    """Return a Web API client with the bot token, at the configured API base URL.

    Raises:
        RunInputError: no bot token is configured.
    """
    if settings.slack_bot_token is None:
        raise RunInputError(
            "Slack is not configured: set LASTMILE_SLACK_BOT_TOKEN (and, to receive events, "
            "LASTMILE_SLACK_SIGNING_SECRET); the README's Slack section says how"
        )
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )


class SlackBot:
    """The bot's behaviour, independent of how requests arrive (HTTP or Socket Mode)."""

    def __init__(self, settings: Settings, service: AsyncAgentService, client: AsyncWebClient):
        self.settings = settings
        self.service = service
        self.client = client

    # -- messages --------------------------------------------------------------------------
    async def on_message(self, event: dict[str, Any], event_id: str | None) -> None:
        """Answer a mention, a direct message or a reply in a thread the bot answers in."""
        if event_id and not await self.service.first_delivery(event_id):
            logger.info("slack event %s was already handled (a retry)", event_id)
            return
        channel, user = event["channel"], event.get("user", "")
        thread_ts = event.get("thread_ts") or event["ts"]
        question = MENTION.sub("", event.get("text", "")).strip()
        if not question:
            await self._say(
                channel,
                thread_ts,
                "Ask me about late deliveries, e.g. _why were deliveries late at S003 yesterday?_",
            )
            return
        by = f"slack:{user}"
        thread_id = await self.service.slack_thread(channel, thread_ts, question, by)
        progress = await self._say(channel, thread_ts, kit.progress_text(question, []))
        steps: list[str] = []
        try:
            async for ev in self.service.ask(thread_id, question, by):
                if ev.type == "run_started":  # a crash from here on is caught up (catch_up)
                    await self.service.record_slack_run(ev.run_id, channel, thread_ts, progress)
                elif ev.type == "step":
                    steps.append(ev.label)
                    await self._update(channel, progress, kit.progress_text(question, steps))
                elif ev.type == "run_finished":
                    page = RunPage.model_validate(ev.page)
                    await self.post_plan(channel, thread_ts, progress, page)
        except RunInputError as exc:  # a busy thread, a question it cannot take: say so
            await self._update(channel, progress, f":information_source: {kit.escape(str(exc))}")
        except Exception:
            logger.exception("slack run in %s/%s failed", channel, thread_ts)
            await self._update(
                channel,
                progress,
                ":warning: Something went wrong answering this; the server log has the details.",
            )

    async def post_plan(self, channel: str, thread_ts: str, ts: str, page: RunPage) -> None:
        """Turn the progress message into the plan; upload its first chart into the thread."""
        await self.client.chat_update(
            channel=channel,
            ts=ts,
            text=kit.plan_text(page),
            blocks=kit.plan_blocks(page),
            **_PLAIN,
        )
        await self.service.mark_slack_posted(page.run_id)
        await self.upload_chart(channel, thread_ts, page)

    async def catch_up(self) -> int:
        """Post the answers of runs whose process died before posting them; return how many.

        The server calls it after recovering interrupted runs: their progress message
        becomes the plan (or the failure) as if nothing had happened.
        """
        done = 0
        for missed in await self.service.unposted_slack_runs():
            page = await self.service.page(missed.run_id)
            try:
                await self.post_plan(missed.channel, missed.thread_ts, missed.progress_ts, page)
                done += 1
            except SlackApiError as exc:  # tried again on the next pass
                logger.warning("run %s not posted: %s", missed.run_id, exc.response.get("error"))
        return done

    async def upload_chart(self, channel: str, thread_ts: str, page: RunPage) -> None:
        """Upload the first diagnosed target's late-rate chart, with alt text, to the thread."""
        if not page.charts:
            return
        chart = page.charts[0].kpi
        try:
            await self.client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                file=await asyncio.to_thread(kpi_png, chart),  # drawing: off the event loop
                filename=f"late-rate-{page.run_id}.png",
                # plain text, never parsed; escaped all the same (ids come from data)
                title=kit.escape(chart.title),
                alt_txt=kit.escape(kpi_alt_text(chart))[:1000],
            )
        except SlackApiError as exc:  # the plan stands without its chart
            logger.warning("chart upload failed: %s", exc.response.get("error"))

    async def _say(self, channel: str, thread_ts: str | None, text: str) -> str:
        posted = await self.client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, **kit.text_message(text), **_PLAIN
        )
        return str(posted["ts"])

    async def _update(self, channel: str, ts: str, text: str) -> None:
        await self.client.chat_update(channel=channel, ts=ts, **kit.text_message(text), **_PLAIN)

    # -- buttons ---------------------------------------------------------------------------
    async def may_decide(self, user: str) -> bool:
        """Whether a Slack user is in the configured approver group or channel."""
        group, channel = self.settings.slack_approver_group, self.settings.slack_approver_channel
        if group:
            members = await self.client.usergroups_users_list(usergroup=group)
            if user in members.get("users", []):
                return True
        if channel:
            cursor = None
            while True:
                page = await self.client.conversations_members(
                    channel=channel, cursor=cursor, limit=1000
                )
                if user in page.get("members", []):
                    return True
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        return False

    async def on_decision(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Record an Approve / Reject press (after ``ack``); refresh the message it came from."""
        user, channel, ts = _who_where(body)
        if not await self._checked(channel, user):
            return
        value = json.loads(action["value"])
        decision = "approve" if action["action_id"] == kit.APPROVE else "reject"
        try:
            page = await self.service.decide(value["r"], int(value["i"]), decision, f"slack:{user}")
        except RunInputError as exc:  # decided already, expired, not allowed: only they see it
            await self._tell(channel, user, str(exc))
            return
        if value.get("k") == "digest":
            await self._settle(body, channel, ts, page)
        else:
            await self.client.chat_update(
                channel=channel,
                ts=ts,
                text=kit.plan_text(page),
                blocks=kit.plan_blocks(page),
                **_PLAIN,
            )

    async def on_incident(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Acknowledge or snooze an incident from the digest (after ``ack``)."""
        user, channel, ts = _who_where(body)
        if not await self._checked(channel, user):
            return
        value = json.loads(action["value"])
        try:
            if action["action_id"] == kit.ACK:
                done = await self.service.acknowledge_incident(value["n"], f"slack:{user}")
                said = f"Acknowledged by <@{user}> at {done.acknowledged_at}"
            else:
                done = await self.service.snooze_incident(value["n"], f"slack:{user}", 1)
                said = f"Snoozed until {done.snoozed_until} by <@{user}>"
        except (IncidentError, RunInputError) as exc:  # resolved, unknown, not allowed
            await self._tell(channel, user, str(exc))
            return
        await self._settle(body, channel, ts, None, {str(action.get("block_id")): said})

    async def _settle(
        self,
        body: dict[str, Any],
        channel: str,
        ts: str,
        page: RunPage | None,
        settled: dict[str, str] | None = None,
    ) -> None:
        """Update a digest in place: the pressed buttons become who did what, and when."""
        message = body.get("message") or {}
        blocks = kit.settle(list(message.get("blocks") or []), page, settled)
        await self.client.chat_update(
            channel=channel, ts=ts, text=message.get("text") or "", blocks=blocks, **_PLAIN
        )

    async def _checked(self, channel: str, user: str) -> bool:
        """Whether ``user`` may decide; if not (or unknown), tell them and nobody else."""
        try:
            if await self.may_decide(user):
                return True
        except SlackApiError as exc:  # a wrong group id, a missing scope, a rate limit
            error = str(exc.response.get("error"))
            wrong = {
                "no_such_subteam": "LASTMILE_SLACK_APPROVER_GROUP names no user group of this "
                "workspace",
                "channel_not_found": "LASTMILE_SLACK_APPROVER_CHANNEL names no channel the "
                "bot can see",
                "missing_scope": "the Slack app lacks a scope (usergroups:read, channels:read): "
                "reinstall it from deploy/slack-manifest.yaml",
            }.get(error)
            logger.error("approver check failed: %s", wrong or error)
            why = (
                f"{wrong}; ask whoever runs lastmile to fix it"
                if wrong
                else f"Slack answered {error}; try again shortly"
            )
            await self._tell(
                channel,
                user,
                f"Your right to decide could not be checked: {why}. Nothing was recorded.",
            )
            return False
        await self._deny(channel, user)
        return False

    async def _deny(self, channel: str, user: str) -> None:
        where = self.settings.slack_approver_group or self.settings.slack_approver_channel
        why = (
            "only members of the approver "
            + ("group" if self.settings.slack_approver_group else "channel")
            + f" ({where}) may decide actions and handle incidents from Slack"
            if where
            else "no approver group or channel is configured (LASTMILE_SLACK_APPROVER_GROUP)"
        )
        await self._tell(channel, user, f"You may not do this: {why}. Nothing was recorded.")

    async def _tell(self, channel: str, user: str, text: str) -> None:
        await self.client.chat_postEphemeral(
            channel=channel, user=user, **kit.text_message(kit.escape(text)), **_PLAIN
        )


_PLAIN: dict[str, Any] = {"unfurl_links": False, "unfurl_media": False, "link_names": False}
"""Message options: no link previews, no @name linking in the fallback text."""


def _who_where(body: dict[str, Any]) -> tuple[str, str, str]:
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id", "")
    return body["user"]["id"], channel, container.get("message_ts", "")


def build_app(settings: Settings, service: AsyncAgentService) -> tuple[AsyncApp, SlackBot]:
    """Return the bolt app with the bot's listeners, and the bot.

    Raises:
        RunInputError: the bot token or the signing secret is missing.
    """
    client = slack_client(settings)
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        raise RunInputError(
            "LASTMILE_SLACK_SIGNING_SECRET is not set: Slack requests cannot be verified"
        )
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    app = AsyncApp(
        client=client,
        signing_secret=secret,
        process_before_response=False,
        request_verification_enabled=secret is not None,
    )
    bot = SlackBot(settings, service, client)

    @app.event("app_mention")
    async def _mention(event: dict[str, Any], body: dict[str, Any]) -> None:
        await bot.on_message(event, body.get("event_id"))

    @app.event("message")
    async def _message(event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        if event.get("subtype") or event.get("bot_id"):
            return  # edits, joins, the bot's own messages
        mentions_bot = f"<@{context.get('bot_user_id')}>" in event.get("text", "")
        if event.get("channel_type") == "im":
            await bot.on_message(event, body.get("event_id"))
        elif event.get("thread_ts") and not mentions_bot:
            # a reply without a mention follows on only in a thread the bot answers in
            if await service.knows_slack_thread(event["channel"], event["thread_ts"]):
                await bot.on_message(event, body.get("event_id"))

    for action_id in (kit.APPROVE, kit.REJECT):

        @app.action(action_id)
        async def _decide(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            await bot.on_decision(body, action)

    for action_id in (kit.ACK, kit.SNOOZE):

        @app.action(action_id)
        async def _incident(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            await bot.on_incident(body, action)

    return app, bot


def mount(web: FastAPI, settings: Settings, service: AsyncAgentService) -> SlackBot:
    """Serve the bot at ``POST /slack/events`` of the web app; return the bot."""
    bolt, bot = build_app(settings, service)
    handler = AsyncSlackRequestHandler(bolt)

    @web.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        if not request.headers.get("x-slack-request-timestamp", "").isdigit():
            # bolt verifies the signature; a missing or malformed timestamp is refused here,
            # as unsigned, rather than failing inside it
            return JSONResponse({"error": "unsigned request"}, status_code=401)
        return await handler.handle(request)

    return bot


def over_http(settings: Settings) -> bool:
    """Whether Slack's requests come over HTTP: a token, a signing secret, no app token."""
    return (
        settings.slack_bot_token is not None
        and settings.slack_signing_secret is not None
        and settings.slack_app_token is None
    )


async def socket_mode(
    settings: Settings, service: AsyncAgentService
) -> tuple[Any, SlackBot] | None:
    """Connect the bot over Socket Mode when an app-level token is set; its handler and bot."""
    if settings.slack_app_token is None or settings.slack_bot_token is None:
        return None
    from slack_bolt.adapter.socket_mode.websockets import AsyncSocketModeHandler

    bolt, bot = build_app(settings, service)
    handler = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
    await handler.connect_async()  # type: ignore[no-untyped-call]
    return handler, bot


__all__ = ["SlackBot", "build_app", "mount", "over_http", "slack_client", "socket_mode"]
