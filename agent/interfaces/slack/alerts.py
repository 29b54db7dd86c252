"""Monitor alerts to Slack: each alert once, in one message per monitor run.

An alert is posted when it opens (:mod:`agent.storage.monitoring`); one whose post failed
stays unposted and goes with the next run's message, so Slack being down loses nothing and
a long episode is not posted every day.
"""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient

from agent.errors import RunInputError
from agent.interfaces.slack import blocks as kit
from agent.interfaces.slack.bot import slack_client
from agent.storage import monitoring as store
from agent.storage.monitoring import Alert

MAX_LISTED = 15
"""Alerts listed in one message; the rest are counted (the report has them all)."""


def alert_message(alerts: list[Alert]) -> dict[str, Any]:
    """Return the message for ``alerts``: one verbatim section, data escaped."""
    lines = [
        f"• {a.opened_on}"
        + (f" to {a.last_seen} (over)" if a.closed_on else " (ongoing)")
        + f": {kit.escape(a.message)}"
        for a in alerts[:MAX_LISTED]
    ]
    if len(alerts) > MAX_LISTED:
        lines.append(f"• …and {len(alerts) - MAX_LISTED} more (`lastmile monitor` report)")
    head = f":warning: *Monitor: {len(alerts)} new alert{'s' * (len(alerts) != 1)}*"
    return kit.text_message(head + "\n" + "\n".join(lines))


def post_alerts(service: Any, channel: str | None) -> int:
    """Post the alerts not yet posted to ``channel``; return how many were posted.

    Raises:
        RunInputError: Slack or the channel is not configured.
        slack_sdk.errors.SlackApiError: Slack refused the post (the alerts stay unposted).
    """
    settings = service.settings
    channel = channel or settings.slack_channel
    if not channel:
        raise RunInputError("no Slack channel: pass --channel C0123 or set LASTMILE_SLACK_CHANNEL")
    if settings.slack_bot_token is None:
        slack_client(settings)  # raises the setup error the other Slack commands give
    pending = store.unposted(service.store.engine)
    if not pending:
        return 0
    # the synchronous client: a command-line post needs no event loop of its own
    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    client.chat_postMessage(channel=channel, **alert_message(alerts=pending), unfurl_links=False)
    store.mark_posted(service.store.engine, [a.alert_id for a in pending])
    return len(pending)
