"""Two managers deciding at the same moment: exactly one decision wins, the other is told
who decided and when, and exactly one request reaches the receiving system.

Two services (two server workers) share one state store: the SQLite file, then a real
PostgreSQL server. Each round forks a fresh run waiting for approval and releases both
decisions together behind a barrier.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agent.errors import RunInputError
from agent.service import AgentService
from agent.settings import Settings
from agent.storage.approvals import outbox
from tests.runs import fork_waiting_run
from tests.servers import WebhookSink

ROUNDS = 50
ONE_ACTION = (date(2026, 2, 10), "store", ["S003"])  # call_backup_drivers at S003
TWO_ACTIONS = (date(2026, 2, 22), "store", ["S012"])

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(params=["sqlite", "postgres"])
def workers(
    request: pytest.FixtureRequest, small_world_db: Path, tmp_path: Path
) -> Iterator[tuple[AgentService, AgentService, WebhookSink]]:
    sink = WebhookSink()
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = Settings(postgres_url=url, dispatch_url=sink.url)
    state = tmp_path / "state.sqlite"
    pair = [AgentService(settings, db=small_world_db, state_db=state, offline=True) for _ in "ab"]
    yield pair[0], pair[1], sink
    for service in pair:
        service.close()
    sink.close()


def _race(calls: list[Any]) -> list[Any]:
    """Run the calls in threads released together; return each one's result or error."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except RunInputError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_two_decisions_on_one_action_record_one_and_dispatch_once(workers) -> None:
    a, b, sink = workers
    source = a.triage(*ONE_ACTION).run_id
    for _ in range(ROUNDS):
        run_id = fork_waiting_run(a, source)
        results = _race(
            [
                lambda r=run_id: a.decide(r, 0, "approve", "ana"),
                lambda r=run_id: b.decide(r, 0, "edit", "ben", parameters={"drivers": 3}),
            ]
        )
        errors = [r for r in results if isinstance(r, RunInputError)]
        assert len(errors) == 1, results
        (log,) = a.decision_log(run_id)
        loser = "ben" if log.decided_by == "ana" else "ana"
        assert f"already decided ({log.decision}) by {log.decided_by} at " in str(errors[0])
        assert loser not in str(errors[0])
        (action,) = outbox(a.store.engine, run_id)
        assert (action.decided_by, action.decision) == (log.decided_by, log.decision)
        if log.decision == "edit":  # the winner's parameters, never the loser's
            assert action.parameters == {"drivers": 3.0}
        assert len(sink.acknowledged(f"lastmile:{run_id}:")) == 1


def test_decisions_on_two_actions_at_once_resume_the_run_once(workers) -> None:
    a, b, sink = workers
    source = a.triage(*TWO_ACTIONS).run_id
    for _ in range(ROUNDS // 5):
        run_id = fork_waiting_run(a, source)
        results = _race(
            [
                lambda r=run_id: a.decide(r, 0, "approve", "ana"),
                lambda r=run_id: b.decide(r, 1, "approve", "ben"),
            ]
        )
        assert not [r for r in results if isinstance(r, RunInputError)], results
        assert a.get(run_id).status == "done"
        assert sorted(x.idx for x in outbox(a.store.engine, run_id)) == [0, 1]
        assert len(sink.acknowledged(f"lastmile:{run_id}:")) == 2
