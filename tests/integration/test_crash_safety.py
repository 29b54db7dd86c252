"""Crash safety: a run survives a SIGKILL at any node boundary and a server restart, and
loses or duplicates no decision and no request at the receiving system.

The process kills itself once a named node has finished (``LASTMILE_TEST_KILL_AT``), through
the real command line; ``lastmile runs recover`` (what ``serve`` runs at start) finishes the
run. On the SQLite file and on a real PostgreSQL server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import psycopg
import pytest

from agent.service import AgentService
from agent.settings import Settings
from tests.servers import WebhookSink, start_lastmile

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DAY = "2026-02-10"  # S003: one action, call_backup_drivers
BEFORE_APPROVAL = [
    "scope_request",
    "detect",
    "diagnose",
    "forecast",
    "recommend",
    "compose_plan",
    "verify_plan",
]
AFTER_APPROVAL = ["approve_actions", "dispatch_actions"]
EXE = str(Path(sys.executable).parent / "lastmile")


@pytest.fixture(params=["sqlite", "postgres"])
def setup(
    request: pytest.FixtureRequest, small_world_db: Path, tmp_path: Path
) -> Iterator[tuple[dict[str, str], WebhookSink, Path]]:
    sink = WebhookSink()
    env = {"LASTMILE_DISPATCH_URL": sink.url}
    if request.param == "postgres":
        env["LASTMILE_POSTGRES_URL"] = request.getfixturevalue("postgres_url")
    yield env, sink, tmp_path / "state.sqlite"
    sink.close()


def _lastmile(args: list[str], env: dict[str, str], kill_at: str | None = None) -> int:
    extra = {"LASTMILE_TEST_KILL_AT": kill_at} if kill_at else {}
    # output to a file, not a pipe: worker processes a killed run leaves behind (joblib's)
    # keep a pipe open, and reading it to its end would wait for them
    with tempfile.TemporaryFile() as log:
        done = subprocess.run(
            [EXE, *args], env={**os.environ, **env, **extra}, stdout=log, stderr=log, timeout=600
        )
        if done.returncode not in (0, -9):
            log.seek(0)
            raise AssertionError(f"lastmile {args[0]} failed: {log.read().decode()[-3000:]}")
    return done.returncode


def _own_store(env: dict[str, str], name: str) -> dict[str, str]:
    """Give one boundary its own state store (a Postgres database, or its SQLite file)."""
    url = env.get("LASTMILE_POSTGRES_URL")
    if url is None:
        return env
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return {**env, "LASTMILE_POSTGRES_URL": url.rsplit("/", 1)[0] + f"/{name}"}


def _service(env: dict[str, str], db: Path, state: Path) -> AgentService:
    settings = Settings(
        postgres_url=env.get("LASTMILE_POSTGRES_URL"), dispatch_url=env["LASTMILE_DISPATCH_URL"]
    )
    return AgentService(settings, db=db, state_db=state, offline=True)


def _kill_and_resume(node: str, env: dict[str, str], db: Path, state: Path, sink: WebhookSink):
    """Kill a triage (or its approval) once ``node`` has finished; recover; check the run.

    Only the killed command runs in a process of its own; the rest runs here (what
    ``lastmile runs recover`` and ``serve`` at start do: :meth:`AgentService.recover`).
    """
    env = _own_store(env, f"kill_{node}")
    where = ["--db", str(db), "--state-db", str(state)]
    service = _service(env, db, state)
    try:
        if node in BEFORE_APPROVAL:
            triage = ["triage", *where, "--date", DAY, "--scope", "store:S003", "--json"]
            assert _lastmile(triage, env, kill_at=node) == -9, node  # SIGKILL
            (run_id,) = service.recover()
            assert service.get(run_id).status == "waiting_approval", node
            service.decide_rest(run_id, "approve", "ana")
        else:
            run_id = service.triage(date.fromisoformat(DAY), "store", ["S003"]).run_id
            approve = ["approve", run_id, "--all", "--by", "ana", *where]
            assert _lastmile(approve, env, kill_at=node) == -9, node
            assert service.recover() == [run_id], node
        view = service.get(run_id)
        assert (view.status, len(service.decision_log()), len(view.dispatched)) == (
            "done",
            1,
            1,
        ), node
    finally:
        service.close()
    keys = [r["key"] for r in sink.acknowledged(f"lastmile:{run_id}:")]
    assert keys == [f"lastmile:{run_id}:0"], node  # delivered once, not lost


def test_a_kill_at_any_node_boundary_loses_and_duplicates_nothing(
    setup: tuple[dict[str, str], WebhookSink, Path], small_world_db: Path, tmp_path: Path
) -> None:
    env, sink, _ = setup
    nodes = BEFORE_APPROVAL + AFTER_APPROVAL
    if "LASTMILE_POSTGRES_URL" in env:
        # every boundary runs on SQLite; on PostgreSQL (the same graph, another store) one
        # before the plan, the last before approval, and one after it: CI's time budget
        nodes = ["detect", "verify_plan", "dispatch_actions"]
    # each boundary in its own store and processes, three at a time
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(_kill_and_resume, n, env, small_world_db, tmp_path / f"{n}.sqlite", sink)
            for n in nodes
        ]
        for future in futures:
            future.result()


def test_a_run_waiting_for_approval_survives_a_server_crash(
    setup: tuple[dict[str, str], WebhookSink, Path], small_world_db: Path, tmp_path: Path
) -> None:
    env, sink, _ = setup
    # a store of its own: an action approved for S003's incident by an earlier test would be
    # in effect in a shared one, and not proposed again
    state = tmp_path / "crash.sqlite"
    env = _own_store({**env, "LASTMILE_TODAY": "2026-02-11"}, "waiting")
    served = start_lastmile(small_world_db, state, env=env)
    try:
        thread = httpx.post(
            f"{served.url}/api/threads", json={"title": "S003"}, headers={"X-Lastmile-CSRF": "1"}
        ).json()
        with httpx.stream(
            "POST",
            f"{served.url}/api/threads/{thread['thread_id']}/runs",
            json={"question": "why was S003 late on 2026-02-10 and what should we do?"},
            headers={"X-Lastmile-CSRF": "1"},
            timeout=300,
        ) as response:
            last = [line for line in response.iter_lines() if line.startswith("data: ")][-1]
        page = json.loads(last.removeprefix("data: "))["page"]
        assert page["status"] == "waiting_approval"
    finally:
        served.stop(kill=True)  # SIGKILL: no shutdown hooks
    served = start_lastmile(small_world_db, state, env=env)
    try:
        done = httpx.post(
            f"{served.url}/api/runs/{page['run_id']}/decisions",
            json={"rest": "approve"},
            headers={"X-Lastmile-CSRF": "1"},
            timeout=120,
        ).json()
        assert done["status"] == "done"
        assert len(sink.acknowledged(f"lastmile:{page['run_id']}:")) == len(page["actions"])
    finally:
        served.stop()
