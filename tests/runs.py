"""Test helpers for runs waiting for approval.

A triage takes seconds; tests that need many waiting runs (the concurrency test decides 50)
fork one: a new thread gets the paused run's state as written by ``verify_plan``, and running
it reaches the same ``interrupt()`` in ``approve_actions``, with its own run record.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from agent.service import AgentService

OLD_RUNS_TABLE = (
    "CREATE TABLE runs (run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, question TEXT, "
    "day TEXT, scope TEXT, db TEXT, status TEXT NOT NULL, model TEXT, prompts TEXT, "
    "created_at TEXT NOT NULL, updated_at TEXT NOT NULL, plan TEXT, evidence TEXT, "
    "trace TEXT, decisions TEXT, error TEXT, input_tokens INTEGER, output_tokens INTEGER)"
)
"""The runs table as stores made before versioned migrations had it (no thread_id)."""


def fork_waiting_run(service: AgentService, run_id: str) -> str:
    """Return a new run waiting for approval on the same plan as ``run_id``."""
    source = service.graph.get_state(RunnableConfig(configurable={"thread_id": run_id}))
    assert source.interrupts, f"run {run_id} is not waiting for approval"
    new_id = uuid.uuid4().hex[:12]
    config = RunnableConfig(configurable={"thread_id": new_id})
    values: dict[str, Any] = dict(source.values)
    service.graph.update_state(config, values, as_node="verify_plan")
    record = service.record(run_id)
    service.store.save_run(
        run_id=new_id, kind=record.kind, status="running", db=record.db, day=record.day
    )
    service._invoke(new_id, None, service.context())
    return new_id


MARKUP_STORE = "S012<script>alert(1)</script>"
"""A store id carrying markup (real ids are free text): plans must stay valid, pages escape it."""


def rename_store(db: Path, old: str, new: str) -> None:
    """Rename a store in every table of a world copy (views follow)."""
    import duckdb

    with duckdb.connect(str(db)) as con:
        tables = con.execute(
            "SELECT c.table_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_name) "
            "WHERE c.column_name = 'store_id' AND t.table_type = 'BASE TABLE'"
        ).fetchall()
        for (table,) in tables:
            con.execute(f'UPDATE "{table}" SET store_id = ? WHERE store_id = ?', [new, old])
