"""The morning digest posted to a local fake of Slack: once per date, alerts, incidents.

The world has a driver shortage at S003 lasting five days, so three mornings running flag
the same store: one incident, and the action approved on the first morning is not proposed
again on the next ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.async_service import AsyncAgentService
from agent.interfaces.slack.bot import slack_client
from agent.interfaces.slack.digest import DigestOutcome, post_digest
from agent.service import AgentService
from agent.settings import Settings
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
    return asyncio.run(
        post_digest(
            AsyncAgentService(service), slack_client(settings), settings, channel=channel, day=day
        )
    )


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
    assert not line.get("blocks")
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
    runs = [lastmile(args, env, tmp_path / f"run{i}.log") for i in (1, 2)]
    codes = [p.wait(timeout=600) for p in runs]
    logs = [(tmp_path / f"run{i}.log").read_text() for i in (1, 2)]
    assert codes == [0, 0], logs
    digests = [p for p in posted(slack, "C3") if p.get("blocks")]
    assert len(digests) == 1
    assert sum("is already" in log for log in logs) == 1, logs

    failing = lastmile([*args[:2], "2031-01-01", *args[3:]], env, tmp_path / "fail.log")
    assert failing.wait(timeout=600) == 1
    [alert] = [p for p in posted(slack, "C3") if "failed" in p["text"]]
    assert "2031-01-01" in alert["text"] and "outside the data" in alert["text"]


def test_markup_in_a_store_id_never_reaches_slack_unescaped(
    world: Path, slack: FakeSlack, tmp_path: Path
) -> None:
    copy = tmp_path / "markup.duckdb"
    shutil.copy(world, copy)
    rename_store(copy, "S003", MARKUP_ID)
    service = AgentService(settings_for(slack), db=copy, state_db=tmp_path / "state.sqlite")
    outcome = digest(service, slack, FIRST, "C4")
    assert outcome.status == "posted", outcome.message
    sent = json.dumps([c.params for c in slack.calls if c.params.get("channel") in ("C4",)])
    assert "S003" in sent
    for raw in ("<!channel>", "<https://evil.example", "<@U0BOSS>"):
        at = sent.find(raw)
        assert at < 0, sent[max(0, at - 300) : at + 60]
    assert "&lt;!channel&gt;" in sent
    service.close()
