"""The morning digest posted to a local fake of Slack: once per date, alerts, incidents.

The world has a driver shortage at S003 lasting five days, so three mornings running flag
the same store: one incident, and the action approved on the first morning is not proposed
again on the next ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.async_service import AsyncAgentService
from agent.errors import RunInputError
from agent.interfaces.slack.bot import slack_client
from agent.interfaces.slack.digest import DigestOutcome, post_digest
from agent.service import AgentService
from agent.settings import Settings
from tests.aio import run_async
from tests.runs import rename_store
from tests.slack_fake import FakeSlack
from tools.data.synthetic import IncidentSpec, WorldConfig, generate_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "xoxb-test-token"
FIRST = date(2026, 2, 10)  # day 40 of the world: the shortage's first day
QUIET = date(2026, 1, 26)
MARKUP_ID = "S003<!channel><https://evil.example|x><@U0BOSS>"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("digest") / "shortage.duckdb"
    spec = IncidentSpec(kind="driver_shortage", store="S003", start_day=40, days=5)
    generate_world(path, WorldConfig(stores=12, days=50, seed=3), [spec], progress=False)
    return path


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN) as fake:
        yield fake


def settings_for(slack: FakeSlack) -> Settings:
    return Settings(slack_bot_token=TOKEN, slack_api_url=slack.url, llm_offline=True, today=None)  # type: ignore[call-arg]


def digest(
    service: AgentService, slack: FakeSlack, day: date | None, channel: str
) -> DigestOutcome:
    settings = service.settings
    coroutine = post_digest(
        AsyncAgentService(service), slack_client(settings), settings, channel=channel, day=day
    )
    return run_async(coroutine)


def posted(slack: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [c.params for c in slack.calls_to("chat.postMessage") if c.params["channel"] == channel]


def test_three_mornings_running_are_one_incident_and_its_approved_action_is_not_proposed_again(
    world: Path, slack: FakeSlack, tmp_path: Path
) -> None:
    service = AgentService(settings_for(slack), db=world, state_db=tmp_path / "state.sqlite")
    first = digest(service, slack, FIRST, "C1")
    assert first.status == "posted", first.message
    assert first.run_id is not None
    view = service.get(first.run_id)
    proposed = [(a.action_id, a.target) for a in view.plan.actions] if view.plan else []
    assert ("call_backup_drivers", "S003") in proposed
    service.decide_rest(first.run_id, "approve", "ana")

    for k in (1, 2):
        outcome = digest(service, slack, FIRST + timedelta(days=k), "C1")
        assert outcome.status == "posted", outcome.message
    [incident] = [i for i in service.incidents() if i.target == "S003"]
    assert (incident.opened_on, incident.days_seen, incident.status) == (FIRST, 3, "open")
    third = service.get(outcome.run_id or "")
    again = [(a.action_id, a.target) for a in third.plan.actions] if third.plan else []
    assert ("call_backup_drivers", "S003") not in again
    shown = json.dumps(posted(slack, "C1")[-1]["blocks"])
    assert f"ongoing since {FIRST} (3 triaged days)" in shown
    assert "Already in effect" in shown and "call backup drivers" in shown.lower()
    assert third.plan is not None and "Already in effect at" in third.plan.summary
    service.close()


def test_a_quiet_morning_posts_one_all_normal_line(
    world: Path, slack: FakeSlack, tmp_path: Path
) -> None:
    service = AgentService(settings_for(slack), db=world, state_db=tmp_path / "state.sqlite")
    outcome = digest(service, slack, QUIET, "C2")
    assert outcome.status == "quiet"
    [line] = posted(slack, "C2")
    assert line["text"].startswith(":white_check_mark: All normal on 2026-01-26 (12 stores)")
    assert [b["type"] for b in line["blocks"]] == ["section"]  # one line, verbatim
    service.close()


def lastmile(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "lastmile"
    with log.open("wb") as sink:  # a file, not a pipe: joblib workers may outlive the run
        return subprocess.Popen(
            [str(exe), *args], env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT
        )


def test_two_triages_started_together_post_one_digest_and_a_failure_posts_an_alert(
    world: Path, slack: FakeSlack, tmp_path: Path
) -> None:
    env = {
        "LASTMILE_SLACK_BOT_TOKEN": TOKEN,
        "LASTMILE_SLACK_API_URL": slack.url,
        "LASTMILE_SLACK_CHANNEL": "C3",
        "LASTMILE_LLM_OFFLINE": "true",
    }
    args = ["triage", "--date", str(FIRST), "--post", "slack", "--db", str(world)]
    args += ["--state-db", str(tmp_path / "state.sqlite")]
    gate = slack.hold("chat.postMessage")  # the winner waits at its post: the two overlap
    try:
        runs = [lastmile(args, env, tmp_path / f"run{i}.log") for i in (1, 2)]
        deadline = time.monotonic() + 600
        while all(p.poll() is None for p in runs) and time.monotonic() < deadline:
            time.sleep(0.1)
        logs = [(tmp_path / f"run{i}.log").read_text() for i in (1, 2)]
        [loser] = [i for i, p in enumerate(runs) if p.poll() is not None]
        assert runs[loser].returncode == 0, logs
        assert "is already being posted" in logs[loser], logs
    finally:
        gate.set()  # later tests post too
    assert runs[1 - loser].wait(timeout=600) == 0, (tmp_path / f"run{2 - loser}.log").read_text()
    digests = [p for p in posted(slack, "C3") if "Morning triage" in json.dumps(p.get("blocks"))]
    assert len(digests) == 1

    before = len(posted(slack, "C3"))
    service = AgentService(settings_for(slack), db=world, state_db=tmp_path / "state.sqlite")
    with pytest.raises(RunInputError, match="outside the data"):  # the caller's mistake
        digest(service, slack, date(2031, 1, 1), "C3")
    service.close()
    assert len(posted(slack, "C3")) == before  # said to them (exit 2), not posted

    # a day too early to judge: the scan cannot run, and the triage alerts instead of
    # posting an "all normal" it does not know
    failing = lastmile([*args[:2], "2026-01-03", *args[3:]], env, tmp_path / "fail.log")
    assert failing.wait(timeout=600) == 1, (tmp_path / "fail.log").read_text()
    [alert] = [p for p in posted(slack, "C3") if "failed" in p["text"]]
    assert "2026-01-03" in alert["text"] and "too little history" in alert["text"]
    assert "--date 2026-01-03" in alert["text"] and "--channel C3" in alert["text"]


def test_a_stopped_feed_is_alerted_once_a_day_instead_of_a_digest_of_old_data(
    world: Path, slack: FakeSlack, tmp_path: Path
) -> None:
    service = AgentService(settings_for(slack), db=world, state_db=tmp_path / "state.sqlite")
    front = AsyncAgentService(service)
    settings = service.settings

    def run() -> DigestOutcome:
        coroutine = post_digest(
            front, slack_client(settings), settings, channel="C7", today=date(2026, 3, 1)
        )
        return run_async(coroutine)

    first, second = run(), run()
    assert (first.status, second.status) == ("failed", "already")
    [alert] = posted(slack, "C7")
    assert "newest data is from 2026-02-19, 10 days before 2026-03-01" in alert["text"]
    service.close()


def test_markup_in_a_store_id_never_reaches_slack_unescaped(
    world: Path, slack: FakeSlack, tmp_path: Path
) -> None:
    copy = tmp_path / "markup.duckdb"
    shutil.copy(world, copy)
    rename_store(copy, "S003", MARKUP_ID)
    service = AgentService(settings_for(slack), db=copy, state_db=tmp_path / "state.sqlite")
    start = len(slack.calls)
    outcome = digest(service, slack, FIRST, "C4")
    assert outcome.status == "posted", outcome.message
    # every call of the digest: messages, and the chart's upload (title, alt text)
    sent = json.dumps([c.params for c in slack.calls[start:]])
    assert "completeUploadExternal" in json.dumps([c.method for c in slack.calls[start:]])
    assert "S003" in sent
    for raw in ("<!channel>", "<https://evil.example", "<@U0BOSS>"):
        at = sent.find(raw)
        assert at < 0, sent[max(0, at - 300) : at + 60]
    assert "&lt;!channel&gt;" in sent
    service.close()


def test_a_run_whose_process_died_is_posted_to_slack_once_recovered(
    world: Path, slack: FakeSlack, tmp_path: Path
) -> None:
    """The catch-up pass: a finished run never posted becomes the plan in its message."""
    import sqlalchemy as sa

    from agent.interfaces.slack.bot import SlackBot
    from agent.storage.schema import runs

    service = AgentService(settings_for(slack), db=world, state_db=tmp_path / "state.sqlite")
    view = service.ask(f"why were deliveries late at S003 on {FIRST}?")
    progress = slack_client(service.settings)

    async def crash_then_catch_up() -> tuple[int, int]:
        front = AsyncAgentService(service)
        posted_msg = await progress.chat_postMessage(channel="C6", text=":hourglass: working")
        await front.record_slack_run(view.run_id, "C6", posted_msg["ts"], posted_msg["ts"])
        bot = SlackBot(service.settings, front, progress)
        assert await bot.catch_up() == 0  # just finished: its own process is posting it
        with service.store.engine.begin() as con:  # the process died a while ago
            con.execute(sa.update(runs).values(updated_at="2026-01-01T00:00:00+00:00"))
        return await bot.catch_up(), await bot.catch_up()

    first, second = run_async(crash_then_catch_up())
    assert (first, second) == (1, 0)  # posted once
    [message] = slack.messages("C6")
    assert "S003" in json.dumps(message["blocks"])
    service.close()


def test_members_of_the_approver_channel_may_decide_others_may_not(slack: FakeSlack) -> None:
    from agent.interfaces.slack.bot import SlackBot

    slack.channel_members = {"C0APPROVE": ["U5", "U6"]}
    settings = settings_for(slack).model_copy(update={"slack_approver_channel": "C0APPROVE"})
    bot = SlackBot(settings, None, slack_client(settings))  # type: ignore[arg-type]

    async def check() -> list[bool]:
        return [await bot.may_decide(u) for u in ("U5", "U7")]

    assert run_async(check()) == [True, False]
