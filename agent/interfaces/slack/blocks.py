"""Block Kit for runs and digests: the plan, its actions with buttons, the morning digest.

Every string that comes from data (store names, notes, evidence summaries, a question) is
escaped for mrkdwn (``&``, ``<``, ``>``), and every text object is ``verbatim``, so Slack
neither parses ``<!channel>``, ``<@U123>`` or ``<https://...|...>`` in it nor turns a bare
URL or ``@here`` into a link or a mention. The only mentions are the bot's own: the user who
decided (``<@U...>`` from Slack's payload, never from data).

Limits (https://docs.slack.dev/reference/block-kit/blocks): 50 blocks a message, 3,000
characters a section; lists are cut to fit and say how many were left out.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from agent.digest import DigestAnomaly, DigestView
from agent.presenter import ActionLine, RunPage

MAX_TEXT = 2900
MAX_ITEMS = 6
APPROVE, REJECT = "lastmile_approve", "lastmile_reject"
ACK, SNOOZE = "lastmile_incident_ack", "lastmile_incident_snooze"


def escape(text: str) -> str:
    """Escape text from data for mrkdwn: ``&``, ``<`` and ``>`` become entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn(text: str) -> dict[str, Any]:
    """Return a verbatim mrkdwn text object (text already escaped where it came from data)."""
    return {"type": "mrkdwn", "text": _cut(text), "verbatim": True}


def section(text: str) -> dict[str, Any]:
    """Return a section block of verbatim mrkdwn."""
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> dict[str, Any]:
    """Return a context block (small grey text)."""
    return {"type": "context", "elements": [mrkdwn(text)]}


def plain(text: str) -> dict[str, Any]:
    """Return a plain_text object (never parsed for markup)."""
    return {"type": "plain_text", "text": _cut(text, 150), "emoji": False}


def text_message(text: str) -> dict[str, Any]:
    """Return a one-section message: blocks (verbatim: no auto-links) and its fallback text."""
    return {"text": _cut(text, 3000), "blocks": [section(text)]}


def _bullets(items: list[str], what: str) -> str:
    shown = [f"• {escape(t)}" for t in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        shown.append(f"• …and {len(items) - MAX_ITEMS} more {what} (see the web page)")
    return "\n".join(shown)


def _value(data: dict[str, Any]) -> str:
    """Return a button's JSON value with ``<``, ``>`` and ``&`` as JSON escapes.

    Values are not shown, but ids come from data: no markup goes to Slack, even unshown.
    """
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def button_value(run_id: str, index: int, kind: str) -> str:
    """Return the value a decision button carries: the run, the action and the message kind."""
    return _value({"r": run_id, "i": index, "k": kind})


def progress_text(question: str, steps: list[str]) -> str:
    """Return the progress message's text while a run works."""
    done = "".join(f"\n:white_check_mark: {escape(s)}" for s in steps[-8:])
    return f":hourglass_flowing_sand: Working on: _{escape(_cut(question, 300))}_{done}"


def _decided(a: ActionLine) -> str:
    d = a.decision
    if d is None:
        return ""
    verb = {"approve": "Approved", "reject": "Rejected", "edit": "Approved with an edit"}
    who = f"<@{d.by.removeprefix('slack:')}>" if d.by.startswith("slack:") else escape(d.by)
    text = f"{verb.get(d.decision, d.decision)} by {who}" + (f" at {d.at}" if d.at else "")
    if a.dispatched is not None:
        text += f" · {escape(a.dispatched.text)}"
    return text


def action_blocks(page: RunPage, kind: str) -> list[dict[str, Any]]:
    """One section per action (setting, effect, cost) and its buttons or its decision."""
    blocks: list[dict[str, Any]] = []
    waiting = page.status == "waiting_approval"
    for a in page.actions[:MAX_ITEMS]:
        blocks.append(
            section(
                f"*{escape(a.label)}* at {escape(a.target)}: {escape(a.setting)}\n"
                f"Expected: {escape(a.avoided)}; cost {escape(a.cost)}\n_{escape(a.rationale)}_"
            )
        )
        if a.decision is not None:
            blocks.append({**context(_decided(a)), "block_id": f"decided-{a.index}"})
        elif waiting and a.needs_approval:
            value = button_value(page.run_id, a.index, kind)
            blocks.append(
                {
                    "type": "actions",
                    "block_id": f"decide-{a.index}",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": APPROVE,
                            "text": plain("Approve"),
                            "style": "primary",
                            "value": value,
                        },
                        {
                            "type": "button",
                            "action_id": REJECT,
                            "text": plain("Reject"),
                            "value": value,
                        },
                    ],
                }
            )
    if len(page.actions) > MAX_ITEMS:
        blocks.append(context(f"{len(page.actions) - MAX_ITEMS} more actions on the web page"))
    return blocks


def settle(
    blocks: list[dict[str, Any]], page: RunPage | None, settled: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Return a posted message's blocks with decided actions (and ``settled`` ones) as text.

    A digest is updated in place this way, not redrawn: it stays the morning's picture.

    Args:
        blocks: the message's blocks as Slack sent them back.
        page: the run's page now (its actions' decisions and dispatch), or None.
        settled: block id -> text for other buttons pressed (an incident acknowledged).
    """
    decided = {
        a.index: _decided(a) for a in (page.actions if page else []) if a.decision is not None
    }
    out = []
    for block in blocks:
        block_id = str(block.get("block_id", ""))
        index = block_id.rpartition("-")[2]
        if (
            block_id.startswith(("decide-", "decided-"))
            and index.isdigit()
            and int(index) in decided
        ):
            out.append({**context(decided[int(index)]), "block_id": f"decided-{index}"})
        elif settled and block_id in settled:
            out.append(context(settled[block_id]))
        elif block_id == "status" and page is not None:
            out += _small_print(page)  # the run's status now (waiting, done)
        else:
            out.append(block)
    return out


def plan_blocks(page: RunPage) -> list[dict[str, Any]]:
    """Return the answer to a question: summary, findings, causes, outlook, actions, caveats."""
    blocks = [section(escape(page.summary or page.error or "No plan was made."))]
    if page.findings:
        blocks.append(section("*Findings*\n" + _bullets([f.text for f in page.findings], "")))
    if page.causes:
        lines = [f"{c.target}: {c.cause} ({c.confidence}). {c.text}" for c in page.causes]
        blocks.append(section("*Causes*\n" + _bullets(lines, "causes")))
    if page.outlook:
        blocks.append(
            section("*What happens next*\n" + _bullets([o.text for o in page.outlook], ""))
        )
    if page.actions:
        blocks.append(section("*Proposed actions*"))
        blocks += action_blocks(page, "plan")
    blocks += _small_print(page)
    return blocks[:50]


def _small_print(page: RunPage) -> list[dict[str, Any]]:
    lines = [escape(c) for c in page.caveats[:3]]
    if page.not_assessed:
        lines.append(
            "Not assessed: "
            + "; ".join(escape(f"{n.cause} ({n.reason})") for n in page.not_assessed[:4])
        )
    status = f"run {page.run_id} · {page.status.replace('_', ' ')}"
    if page.expires_at:
        status += f" · decisions accepted until {page.expires_at}"
    return [{**context(_cut("\n".join([*lines, status]))), "block_id": "status"}]


def plan_text(page: RunPage) -> str:
    """Return the notification text of a plan message (shown where blocks are not)."""
    return _cut(escape(page.summary or page.error or "No plan was made."), 300)


def _anomaly_line(a: DigestAnomaly) -> str:
    grain = "the day" if a.grain_days == 1 else f"the {a.grain_days} days to it"
    kpis = ", ".join(a.drivers[:3]) or "late rate"
    # the excess is the plan's (its diagnosis): the scan's own estimate would disagree
    text = f"*{escape(a.name)}* ({a.level}, {grain}): {a.severity}; {escape(kpis)} off"
    if a.since is not None and a.days_seen > 1:
        text += f"\n    ongoing since {a.since} ({a.days_seen} triaged days)"
    elif a.since is not None:
        text += "\n    new today"
    if a.incident_status in ("acknowledged",):
        text += " · acknowledged"
    return text


def _incident_buttons(a: DigestAnomaly, run_id: str) -> dict[str, Any]:
    value = _value({"n": a.incident_id, "r": run_id})
    digest = hashlib.sha256(str(a.incident_id).encode()).hexdigest()[:16]
    return {
        "type": "actions",
        "block_id": f"incident-{digest}",
        "elements": [
            {"type": "button", "action_id": ACK, "text": plain("Acknowledge"), "value": value},
            {"type": "button", "action_id": SNOOZE, "text": plain("Snooze 1 day"), "value": value},
        ],
    }


def digest_blocks(view: DigestView) -> list[dict[str, Any]]:
    """Return the morning digest's blocks: anomalies and incidents, causes, actions, gaps."""
    page = view.page
    head = f"Morning triage of {view.day} ({escape(view.scope)})"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": plain(head)}]
    if page.summary:  # Slack refuses an empty section
        blocks.append(section(escape(page.summary)))
    if view.anomalies:
        blocks.append(section("*Anomalies*"))
        for a in view.anomalies:
            blocks.append(section(_anomaly_line(a)))
            if a.incident_id and a.incident_status == "open":
                blocks.append(_incident_buttons(a, view.run_id))
        if view.more:
            blocks.append(context(f"…and {view.more} more anomalies (see the web page)"))
    if view.snoozed:
        names = ", ".join(
            escape(a.name) + (f" (until {a.snoozed_until})" if a.snoozed_until else "")
            for a in view.snoozed
        )
        blocks.append(context(f"Snoozed: {names}"))
    if page.causes:
        lines = [f"{c.target}: {c.cause} ({c.confidence}). {c.text}" for c in page.causes]
        blocks.append(section("*Causes*\n" + _bullets(lines, "causes")))
    if view.in_effect:
        lines = [
            f"{e.action_id.replace('_', ' ')} at {e.target}: {e.reason}" for e in view.in_effect
        ]
        blocks.append(section("*Already in effect*\n" + _bullets(lines, "actions")))
    if page.actions:
        blocks.append(section("*Proposed actions*"))
        blocks += action_blocks(page, "digest")
    blocks += _small_print(page)
    return blocks[:50]


def digest_text(view: DigestView) -> str:
    """Return the digest's notification text."""
    return _cut(f"Morning triage of {view.day}: {escape(view.page.summary or '')}", 300)


def all_normal_text(view: DigestView, stores: int | None = None) -> str:
    """Return the one line of a quiet morning."""
    where = f"{stores} stores" if stores else escape(view.scope)
    return f":white_check_mark: All normal on {view.day} ({where}): no anomaly to report."


def alert_text(day: str, scope: str, reason: str, retry: str) -> str:
    """Return the alert a failed triage posts instead of silence, with its retry command."""
    return (
        f":warning: The morning triage of {escape(day)} ({escape(scope)}) failed: "
        f"{escape(_cut(reason, 1500))}\nNothing was proposed. Once the cause is fixed, "
        f"retry with `{escape(retry)}`."
    )


__all__ = [
    "ACK",
    "APPROVE",
    "REJECT",
    "SNOOZE",
    "action_blocks",
    "alert_text",
    "all_normal_text",
    "digest_blocks",
    "digest_text",
    "escape",
    "plan_blocks",
    "plan_text",
    "progress_text",
    "settle",
    "text_message",
]
