"""The Slack bot against a real ``lastmile serve`` and a local fake of the Slack Web API.

Requests to ``/slack/events`` are signed here the way Slack signs them (v0 HMAC); the bot's
calls to Slack land in :class:`tests.slack_fake.FakeSlack`, which records them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import lastmile_server
from tests.slack_fake import (
    FakeSlack,
    block_action,
    dm_event,
    event_callback,
    mention_event,
    sign,
    thread_reply_event,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SECRET = "slack-signing-secret-for-tests"
TOKEN = "xoxb-test-token"
APPROVERS = "S0APPROVERS"
QUESTION = "why were deliveries late at S012 on 2026-02-22 and what should we do?"
MARKUP = "<!channel> see <https://evil.example|this> and <@U0BOSS>"
SERVED: dict[str, Path] = {}
"""The server's world and state store (the CLI's digest writes to the same store)."""


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN) as fake:
        fake.usergroups = {APPROVERS: ["U1"]}
        yield fake


@pytest.fixture(scope="module")
def server(
    small_world_db: Path, tmp_path_factory: pytest.TempPathFactory, slack: FakeSlack
) -> Iterator[str]:
    state = tmp_path_factory.mktemp("slack") / "state.sqlite"
    env = {
        "LASTMILE_TODAY": "2026-02-23",
        "LASTMILE_SLACK_BOT_TOKEN": TOKEN,
        "LASTMILE_SLACK_SIGNING_SECRET": SECRET,
        "LASTMILE_SLACK_API_URL": slack.url,
        "LASTMILE_SLACK_APPROVER_GROUP": APPROVERS,
        "LASTMILE_DISPATCH_URL": str(state.parent / "dispatched.jsonl"),
    }
    SERVED.update(db=small_world_db, state=state)
    with lastmile_server(small_world_db, state, env=env) as url:
        yield url


def post(url: str, body: bytes, ctype: str, *, secret: str = SECRET, **headers: str) -> Any:
    """POST a Slack request to the app, signed unless headers say otherwise."""
    signed = sign(body, secret) if secret else {}
    return httpx.post(
        f"{url}/slack/events",
        content=body,
        headers={"Content-Type": ctype, **signed, **headers},
        timeout=30,
    )


def threads(url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/api/threads", timeout=30).json()


def thread_runs(url: str, thread_id: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/api/threads/{thread_id}", timeout=30).json()["runs"]


def plan_update(slack: FakeSlack, channel: str, ts: str, count: int = 1) -> dict[str, Any]:
    """Wait until the progress message ``ts`` became a plan; return its last update."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = [  # progress and notes start with an emoji; a plan with its summary
            c
            for c in slack.calls_to("chat.update")
            if c.params.get("ts") == ts
            and c.params.get("blocks")
            and not str(c.params.get("text", "")).startswith(":")
        ]
        if len(done) >= count:
            return done[-1].params
        time.sleep(0.2)
    raise AssertionError(f"no plan in message {ts}: {[c.params for c in slack.calls]}")


def _first_message(slack: FakeSlack, channel: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while not slack.messages(channel) and time.monotonic() < deadline:
        time.sleep(0.05)
    return slack.messages(channel)[0]


def texts(params: dict[str, Any]) -> str:
    """Everything a message would show: its text and its blocks, as posted JSON."""
    return json.dumps({"text": params.get("text"), "blocks": params.get("blocks")})


@pytest.fixture(scope="module")
def answered(server: str, slack: FakeSlack) -> dict[str, Any]:
    """A mention answered in its thread; the acknowledgement came before the run started."""
    gate = slack.hold("chat.postMessage")  # the progress message: the first thing after ack
    mention = mention_event(QUESTION, user="U1", channel="C1")
    body, ctype = event_callback(mention, event_id="Ev-mention-1")
    response = post(server, body, ctype)
    # the HTTP answer arrived while the bot's first Slack call is still held: ack came first
    assert response.status_code == 200, response.text
    assert slack.wait_for("chat.postMessage")
    [thread] = threads(server)
    assert thread_runs(server, thread["thread_id"]) == []  # no run had started at ack time
    gate.set()
    [progress] = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "C1"]
    posted_ts = _first_message(slack, "C1")["ts"]
    assert progress.params["thread_ts"] == mention["ts"]
    plan = plan_update(slack, "C1", posted_ts)
    return {"mention": mention, "plan_ts": posted_ts, "plan": plan, "thread": thread}


def test_a_mention_is_answered_in_its_thread_with_the_plan_and_a_chart(
    answered: dict[str, Any], slack: FakeSlack
) -> None:
    plan = answered["plan"]
    shown = texts(plan)
    assert "S012" in shown and "Approve" in shown
    assert all(
        t["verbatim"] for b in plan["blocks"] for t in [b.get("text")] if t and "verbatim" in t
    )
    [done] = slack.wait_for("files.completeUploadExternal", timeout=120)
    assert done.params["thread_ts"] == answered["mention"]["ts"]
    [ask] = slack.calls_to("files.getUploadURLExternal")
    [sent] = slack.calls_to("upload")
    assert ask.seq < sent.seq < done.seq  # the external-upload flow, in order
    [upload] = [u for u in slack.uploads.values() if u.completed]
    assert upload.data and upload.data.startswith(b"\x89PNG")
    assert upload.alt_txt and "late rate" in upload.alt_txt and "normal" in upload.alt_txt
    assert not slack.calls_to("files.upload")  # the retired method is never called


def test_a_reply_in_the_thread_follows_on_from_the_first_question(
    server: str, answered: dict[str, Any], slack: FakeSlack
) -> None:
    before = len(slack.calls_to("chat.postMessage"))
    reply = thread_reply_event(
        "and on 2026-02-21?", thread_ts=answered["mention"]["ts"], user="U1", channel="C1"
    )
    body, ctype = event_callback(reply, event_id="Ev-reply-1")
    assert post(server, body, ctype).status_code == 200
    [progress] = slack.wait_for("chat.postMessage", count=before + 1)[before:]
    ts = slack.messages("C1")[-1]["ts"] if progress else ""
    plan = plan_update(slack, "C1", ts)
    runs = thread_runs(server, answered["thread"]["thread_id"])
    assert len(runs) == 2  # one service thread per Slack thread
    assert "S012" in texts(plan)  # "on 2026-02-21" alone names no store: the context did


def _approve_value(plan: dict[str, Any]) -> str:
    for block in plan["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == "lastmile_approve":
                return str(element["value"])
    raise AssertionError(f"no Approve button in {plan['blocks']}")


def decisions(url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/api/decisions", timeout=30).json()


def test_an_outsider_is_refused_and_a_double_press_records_once(
    server: str, answered: dict[str, Any], slack: FakeSlack
) -> None:
    value = _approve_value(answered["plan"])
    press = {"message_ts": answered["plan_ts"], "channel": "C1", "fake": slack}
    body, ctype = block_action("lastmile_approve", value, user="U9", **press)
    assert post(server, body, ctype).status_code == 200
    [refusal] = slack.wait_for("chat.postEphemeral")
    assert refusal.params["user"] == "U9" and "may not do this" in refusal.params["text"]
    assert decisions(server) == []

    body, ctype = block_action("lastmile_approve", value, user="U1", **press)
    assert post(server, body, ctype).status_code == 200
    assert post(server, body, ctype).status_code == 200  # the same payload again
    slack.wait_for("chat.postEphemeral", count=2)
    deadline = time.monotonic() + 120
    while not decisions(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    recorded = decisions(server)
    assert len(recorded) == 1 and recorded[0]["decided_by"] == "slack:U1"
    assert "already decided" in slack.calls_to("chat.postEphemeral")[-1].params["text"]
    updated = plan_update(slack, "C1", answered["plan_ts"], count=2)
    assert "Approved by <@U1>" in texts(updated)


@pytest.mark.parametrize(
    "headers",
    [
        "unsigned",
        {"X-Slack-Signature": "", "X-Slack-Request-Timestamp": ""},
        {"X-Slack-Signature": "v0=" + "0" * 64},
        "stale",
    ],
    ids=["unsigned", "empty-headers", "bad-signature", "stale"],
)
def test_unsigned_badly_signed_or_stale_requests_get_401_and_do_nothing(
    server: str, slack: FakeSlack, headers: Any
) -> None:
    body, ctype = event_callback(mention_event("hello", channel="C7"), event_id="Ev-forged")
    if headers == "unsigned":
        response = post(server, body, ctype, secret="")
    elif headers == "stale":
        stale = sign(body, SECRET, int(time.time()) - 6 * 60)
        response = post(server, body, ctype, secret="", **stale)
    else:
        response = post(server, body, ctype, **headers)
    assert response.status_code == 401
    time.sleep(0.5)  # give a wrongly accepted event the chance to reach Slack
    assert not [c for c in slack.calls if c.params.get("channel") == "C7"]


def test_an_event_slack_retries_is_handled_once(server: str, slack: FakeSlack) -> None:
    event = mention_event("hello there", channel="C8")
    body, ctype = event_callback(event, event_id="Ev-retried")
    assert post(server, body, ctype).status_code == 200
    for n in (1, 2):
        retry = post(server, body, ctype, **{"X-Slack-Retry-Num": str(n)})
        assert retry.status_code == 200
    slack.wait_for("chat.postMessage")
    time.sleep(1.0)  # the retries, had they been handled, would have posted by now
    assert len([c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "C8"]) == 1


def test_markup_in_a_question_never_reaches_slack_unescaped(server: str, slack: FakeSlack) -> None:
    event = mention_event(f"why late at S012 {MARKUP}", channel="C9")
    body, ctype = event_callback(event, event_id="Ev-markup")
    assert post(server, body, ctype).status_code == 200
    slack.wait_for("chat.postMessage")
    deadline = time.monotonic() + 300
    answered = False
    while time.monotonic() < deadline and not answered:
        sent = [c.params for c in slack.calls if c.params.get("channel") == "C9"]
        answered = any(p.get("blocks") and "run " in json.dumps(p["blocks"]) for p in sent)
        time.sleep(0.2)
    assert answered, "no answer was posted: nothing would have been checked"
    posted = json.dumps([c.params for c in slack.calls if c.params.get("channel") == "C9"])
    for raw in ("<!channel>", "<https://evil.example", "<@U0BOSS>"):
        assert raw not in posted
    assert "&lt;!channel&gt;" in posted


def test_an_incident_is_acknowledged_from_the_digest_by_an_approver_only(
    server: str, slack: FakeSlack, small_world_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The digest posted by the CLI; its Acknowledge button pressed on the server."""
    env = {
        "LASTMILE_SLACK_BOT_TOKEN": TOKEN,
        "LASTMILE_SLACK_API_URL": slack.url,
        "LASTMILE_LLM_OFFLINE": "true",
    }
    assert _digest_via_cli(env, "C5", tmp_path_factory) == 0
    [digest] = [c.params for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "C5"]
    value, block_id = next(
        (e["value"], b["block_id"])
        for b in digest["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == "lastmile_incident_ack"
    )
    ts = slack.messages("C5")[0]["ts"]
    for user in ("U9", "U1"):
        body, ctype = block_action(
            "lastmile_incident_ack",
            value,
            user=user,
            channel="C5",
            message_ts=ts,
            fake=slack,
            block_id=block_id,
        )
        assert post(server, body, ctype).status_code == 200
    refusals = [c for c in slack.calls_to("chat.postEphemeral") if c.params["user"] == "U9"]
    assert refusals and "may not do this" in refusals[-1].params["text"]
    deadline = time.monotonic() + 60
    acknowledged: list[dict[str, Any]] = []
    while not acknowledged and time.monotonic() < deadline:
        incidents = httpx.get(f"{server}/api/incidents", timeout=30).json()
        acknowledged = [i for i in incidents if i["acknowledged_by"] == "slack:U1"]
        time.sleep(0.2)
    assert len(acknowledged) == 1 and acknowledged[0]["status"] == "acknowledged"
    assert all(i["acknowledged_by"] != "slack:U9" for i in incidents)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        "Acknowledged by <@U1>" in texts(c.params)
        for c in slack.calls_to("chat.update")
        if c.params.get("channel") == "C5"
    ):
        time.sleep(0.2)
    [digest_now] = slack.messages("C5")
    assert "Acknowledged by <@U1>" in json.dumps(digest_now["blocks"])  # settled in place

    body, ctype = block_action(
        "lastmile_incident_snooze",
        value,
        user="U1",
        channel="C5",
        message_ts=ts,
        fake=slack,
        block_id=block_id,
    )
    assert post(server, body, ctype).status_code == 200
    deadline = time.monotonic() + 60
    snoozed: list[dict[str, Any]] = []
    while not snoozed and time.monotonic() < deadline:
        incidents = httpx.get(f"{server}/api/incidents", timeout=30).json()
        snoozed = [i for i in incidents if i["status"] == "snoozed"]
        time.sleep(0.2)
    assert snoozed and snoozed[0]["snoozed_until"] == "2026-02-23"


def test_a_direct_message_is_answered_in_its_thread(server: str, slack: FakeSlack) -> None:
    event = dm_event("why were deliveries late at S012 on 2026-02-22?", user="U2", channel="D2")
    body, ctype = event_callback(event, event_id="Ev-dm-1")
    assert post(server, body, ctype).status_code == 200
    progress = _first_message(slack, "D2")
    assert progress["thread_ts"] == event["ts"]
    assert "S012" in texts(plan_update(slack, "D2", progress["ts"]))


def _digest_via_cli(env: dict[str, str], channel: str, tmp: pytest.TempPathFactory) -> int:
    """Post the 2026-02-22 digest with ``lastmile triage --post slack``; its exit code."""
    exe = Path(sys.executable).parent / "lastmile"
    args = ["triage", "--date", "2026-02-22", "--post", "slack", "--channel", channel]
    args += ["--db", str(SERVED["db"]), "--state-db", str(SERVED["state"])]
    log = tmp.mktemp("digest-cli") / "out.log"
    with log.open("wb") as sink:  # a file, not a pipe: joblib workers may outlive the run
        done = subprocess.run(
            [str(exe), *args], env={**os.environ, **env}, stdout=sink, stderr=sink, timeout=600
        )
    assert done.returncode == 0, log.read_text()
    return done.returncode
