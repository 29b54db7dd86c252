"""The Slack fake speaks the Web API as slack_sdk's clients use it, and signs like Slack."""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookClient

from tests.aio import run_async
from tests.slack_fake import (
    FakeSlack,
    block_action,
    event_callback,
    mention_event,
    sign,
    thread_reply_event,
)

TOKEN = "xoxb-test-token"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]


def test_post_and_update_a_message() -> None:
    with FakeSlack(token=TOKEN) as slack:
        client = WebClient(token=TOKEN, base_url=slack.url)
        posted = client.chat_postMessage(channel="C1", text="hi", blocks=BLOCKS)
        second = client.chat_postMessage(channel="C1", text="reply", thread_ts=posted["ts"])
        assert posted["ok"] and posted["message"]["blocks"] == BLOCKS
        assert float(second["ts"]) > float(posted["ts"])
        assert second["message"]["thread_ts"] == posted["ts"]
        client.chat_update(channel="C1", ts=posted["ts"], text="bye", blocks=[])
        assert [m["text"] for m in slack.messages("C1")] == ["bye", "reply"]
        assert slack.calls_to("chat.postMessage")[0].params["blocks"] == BLOCKS
        assert slack.calls_to("chat.update")[0].headers["authorization"] == f"Bearer {TOKEN}"
        with pytest.raises(SlackApiError) as err:
            client.chat_update(channel="C1", ts="1.2", text="x")
        assert err.value.response["error"] == "message_not_found"


def _assert_upload_flow(slack: FakeSlack, file_id: str) -> None:
    methods = [c.method for c in slack.calls]
    assert methods == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    assert [c.seq for c in slack.calls] == sorted(c.seq for c in slack.calls)
    complete = slack.calls_to("files.completeUploadExternal")[0].params
    assert complete["files"] == [{"id": file_id, "title": "t"}]
    assert complete["thread_ts"] == "1767225600.000100" and complete["channel_id"] == "C1"
    upload = slack.uploads[file_id]
    assert upload.data == PNG and upload.length == len(PNG) and upload.filename == "chart.png"
    assert upload.alt_txt == "alt text" and upload.thread_ts == "1767225600.000100"
    assert upload.completed and upload.channel_id == "C1" and upload.title == "t"


def test_files_upload_v2_with_the_sync_client() -> None:
    with FakeSlack(token=TOKEN) as slack:
        client = WebClient(token=TOKEN, base_url=slack.url)
        done = client.files_upload_v2(
            channel="C1", thread_ts="1767225600.000100", file=PNG, filename="chart.png",
            title="t", alt_txt="alt text",
        )  # fmt: skip
        assert done["file"]["alt_txt"] == "alt text"
        _assert_upload_flow(slack, done["file"]["id"])


def test_files_upload_v2_with_the_async_client() -> None:
    async def upload(url: str) -> str:
        client = AsyncWebClient(token=TOKEN, base_url=url)
        done = await client.files_upload_v2(
            channel="C1", thread_ts="1767225600.000100", file=PNG, filename="chart.png",
            title="t", alt_txt="alt text",
        )  # fmt: skip
        return str(done["file"]["id"])

    with FakeSlack(token=TOKEN) as slack:
        _assert_upload_flow(slack, run_async(upload(slack.url)))


def test_completing_an_unknown_upload_fails() -> None:
    with FakeSlack(token=TOKEN) as slack:
        client = WebClient(token=TOKEN, base_url=slack.url)
        with pytest.raises(SlackApiError) as err:
            client.files_completeUploadExternal(files=[{"id": "F404", "title": "x"}])
        assert err.value.response["error"] == "file_not_found"


def test_a_wrong_token_is_refused() -> None:
    with FakeSlack(token=TOKEN) as slack:
        with pytest.raises(SlackApiError) as err:
            WebClient(token="xoxb-wrong", base_url=slack.url).auth_test()
        assert err.value.response["error"] == "invalid_auth"
        assert WebClient(token=TOKEN, base_url=slack.url).auth_test()["user_id"] == "UBOT"


def test_hold_blocks_a_call_until_released() -> None:
    with FakeSlack(token=TOKEN) as slack:
        release = slack.hold("chat.postMessage")
        result: dict[str, object] = {}

        def post() -> None:
            client = WebClient(token=TOKEN, base_url=slack.url)
            result["ts"] = client.chat_postMessage(channel="C1", text="held")["ts"]

        thread = threading.Thread(target=post, daemon=True)
        thread.start()
        slack.wait_for("chat.postMessage")
        assert thread.is_alive() and "ts" not in result
        release.set()
        thread.join(timeout=30)
        assert not thread.is_alive() and result["ts"] == slack.messages()[0]["ts"]


def test_fail_unknown_methods_and_members_pagination() -> None:
    with FakeSlack(token=TOKEN) as slack:
        client = WebClient(token=TOKEN, base_url=slack.url)
        slack.fail("reactions.add", "internal_error")
        with pytest.raises(SlackApiError):
            client.reactions_add(channel="C1", timestamp="1.0", name="eyes")
        assert client.reactions_add(channel="C1", timestamp="1.0", name="eyes")["ok"]
        with pytest.raises(SlackApiError) as err:
            client.api_call("nope.nothing")
        assert err.value.response["error"] == "unknown_method"
        slack.channel_members["C1"] = ["U1", "U2", "U3"]
        first = client.conversations_members(channel="C1", limit=2)
        cursor = first["response_metadata"]["next_cursor"]
        rest = client.conversations_members(channel="C1", limit=2, cursor=cursor)
        assert first["members"] + rest["members"] == ["U1", "U2", "U3"]
        assert rest["response_metadata"]["next_cursor"] == ""
        with pytest.raises(AssertionError):
            slack.wait_for("chat.postMessage", timeout=0.01)


def test_sign_matches_slack_sdk() -> None:
    body, ctype = event_callback(mention_event("status?"), event_id="Ev1")
    headers = sign(body, "s3cret")
    ts, sig = headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    assert ctype == "application/json"
    assert SignatureVerifier("s3cret").is_valid(body, ts, sig)
    assert not SignatureVerifier("other").is_valid(body, ts, sig)
    event = json.loads(body)["event"]
    assert event["type"] == "app_mention" and event["text"] == "<@UBOT> status?"


def test_block_action_carries_the_message_and_a_served_response_url() -> None:
    with FakeSlack(token=TOKEN) as slack:
        client = WebClient(token=TOKEN, base_url=slack.url)
        ts = client.chat_postMessage(channel="C1", text="approve?", blocks=BLOCKS)["ts"]
        body, ctype = block_action("approve", "v1", message_ts=ts, thread_ts="1.0", fake=slack)
        assert ctype == "application/x-www-form-urlencoded"
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        assert payload["type"] == "block_actions" and payload["actions"][0]["value"] == "v1"
        assert payload["message"]["blocks"] == BLOCKS and payload["message"]["thread_ts"] == "1.0"
        assert payload["container"]["message_ts"] == ts
        assert WebhookClient(payload["response_url"]).send(text="done").status_code == 200
        assert slack.wait_for("response_url")[0].params["text"] == "done"
        assert thread_reply_event("x", thread_ts=ts)["thread_ts"] == ts
