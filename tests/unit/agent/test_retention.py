"""Stored traces are kept for the retention period, then deleted with their checkpoints."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from agent.results import NAMESPACE
from agent.service import AgentService
from agent.settings import Settings


def test_runs_older_than_the_retention_period_are_purged_with_their_checkpoints(
    small_world_db: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite"
    settings = Settings(trace_retention_days=None)
    service = AgentService(settings, db=small_world_db, state_db=state, offline=True)
    try:
        old = service.ask(
            "how many late deliveries in R1 on 2026-02-10?",
            today=date(2026, 2, 11),
            thread_id="slack-thread-1",  # a conversation: its transcript must go too
        )
        new = service.ask("how many late deliveries in R2 on 2026-02-10?", today=date(2026, 2, 11))
    finally:
        service.close()
    with sqlite3.connect(state) as con:
        con.execute("UPDATE runs SET updated_at = '2000-01-01' WHERE run_id = ?", [old.run_id])
    service = AgentService(
        Settings(trace_retention_days=90), db=small_world_db, state_db=state, offline=True
    )
    try:
        assert service.store.get_run(old.run_id) is None
        assert service.store.get_run(new.run_id) is not None
        config = {"configurable": {"thread_id": old.run_id}}
        assert not service.graph.get_state(config).values  # the checkpoint went too
        assert not service.result_store.search((NAMESPACE, old.run_id))  # and its results
        assert service.result_store.search((NAMESPACE, new.run_id))
        config = {"configurable": {"thread_id": new.run_id}}
        assert service.graph.get_state(config).values
    finally:
        service.close()
