"""Graph state: typed models in the checkpoints, bulky tool results in the store beside them."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

from agent.errors import PostgresUnavailableError
from agent.persistence import state_serializer
from agent.results import NAMESPACE
from agent.schemas import ActionPlan, Decision
from agent.service import AgentService, RunInputError
from agent.settings import Settings
from agent.state import STATE_TYPES, Dispatch, State, TraceEvent
from tools.core.evidence import Evidence

DAY = date(2026, 2, 10)  # S003's driver shortage in the small world


@pytest.fixture
def triaged(small_world_db: Path, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A finished triage's state file and run id (the service closed, as another process)."""
    state = tmp_path / "state.sqlite"
    service = AgentService(Settings(), db=small_world_db, state_db=state, offline=True)
    try:
        view = service.triage(DAY, "store", ["S003"])
    finally:
        service.close()
    yield state, view.run_id


def test_a_resumed_process_reads_typed_models_back(
    triaged: tuple[Path, str], small_world_db: Path
) -> None:
    state, run_id = triaged
    service = AgentService(Settings(), db=small_world_db, state_db=state, offline=True)
    try:
        values = service.graph.get_state({"configurable": {"thread_id": run_id}}).values
        assert isinstance(values["plan"], ActionPlan) and values["plan"].actions
        assert values["evidence"] and all(isinstance(e, Evidence) for e in values["evidence"])
        assert all(isinstance(e, TraceEvent) for e in values["trace"])
        assert "results" not in values
        results = service.results(run_id)
        assert [r.tool for r in results][:3] == ["check_data_health", "scan_anomalies", "diagnose"]
        assert {r.id for r in results} <= {e.id for e in values["evidence"]}
    finally:
        service.close()


def test_tool_results_live_in_the_store_not_in_the_checkpoints(triaged: tuple[Path, str]) -> None:
    state, run_id = triaged
    with sqlite3.connect(state) as con:
        blobs = [
            bytes(row[0])
            for table, column in (("checkpoints", "checkpoint"), ("writes", "value"))
            for row in con.execute(f"SELECT {column} FROM {table} WHERE thread_id = ?", [run_id])
        ]
        keys = [
            k
            for (k,) in con.execute(
                "SELECT key FROM store WHERE prefix = ?", [f"{NAMESPACE}.{run_id}"]
            )
        ]
    # a diagnosis result's own fields (its rankings) are in the store, never in a checkpoint
    assert blobs and not any(b"correlation_ranking" in b for b in blobs)
    assert "diagnose#1" in keys and "scan_anomalies#1" in keys


def _models(annotation: object) -> set[type]:
    """The state's own models an annotation names (fields are annotated as strings)."""
    candidates = (ActionPlan, Decision, Dispatch, Evidence, TraceEvent)
    return {t for t in candidates if re.search(rf"\b{t.__name__}\b", str(annotation))}


class Intruder(BaseModel):
    """A model the state never holds."""

    command: str


def test_the_checkpoint_serializer_rebuilds_only_the_states_own_types() -> None:
    serde = state_serializer()
    decision = Decision(index=0, decision="approve", by="ana", at=datetime(2026, 3, 1, tzinfo=UTC))
    for value in (ActionPlan(summary="s"), decision):
        assert serde.loads_typed(serde.dumps_typed(value)) == value
    # every model a state field holds is one the reader may rebuild
    held = {typ for f in fields(State) for typ in _models(f.type)}
    assert held <= set(STATE_TYPES), held - set(STATE_TYPES)
    # a row naming another class is read as plain data: that class is never constructed
    written = JsonPlusSerializer().dumps_typed(Intruder(command="rm -rf /"))
    assert serde.loads_typed(written) == {"command": "rm -rf /"}


def test_a_run_paused_in_an_untyped_checkpoint_resumes(
    small_world_db: Path, tmp_path: Path
) -> None:
    """Checkpoints written before the state was typed hold dicts: approving still works."""
    service = AgentService(Settings(), db=small_world_db, state_db=tmp_path / "s.db", offline=True)
    try:
        view = service.triage(DAY, "store", ["S003"])
        config = {"configurable": {"thread_id": view.run_id}}
        values = service.graph.get_state(config).values
        old = {
            "plan": values["plan"].model_dump(mode="json"),
            "evidence": [e.model_dump(mode="json") for e in values["evidence"]],
        }
        service.graph.update_state(config, old, as_node="approve_actions")
        service.graph.update_state(config, None, as_node="verify_plan")  # back to the pause
        assert isinstance(service.graph.get_state(config).values["plan"], dict)
        decisions = [Decision(index=p["index"], decision="approve", by="ana") for p in view.pending]
        done = service.approve(view.run_id, decisions)
    finally:
        service.close()
    assert done.status == "done" and done.dispatched[0]["decided_at"]


def test_an_unreachable_postgres_is_a_clear_error(small_world_db: Path, tmp_path: Path) -> None:
    settings = Settings(postgres_url="postgresql://ana:s3cret@127.0.0.1:1/lastmile")
    with pytest.raises(PostgresUnavailableError) as failed:
        AgentService(settings, db=small_world_db, state_db=tmp_path / "s.db", offline=True)
    message = str(failed.value)
    assert "127.0.0.1:1/lastmile" in message and "LASTMILE_POSTGRES_URL" in message
    assert "s3cret" not in message


@pytest.mark.slow
def test_postgres_keeps_checkpoints_and_results_in_one_database(
    small_world_db: Path, tmp_path: Path, postgres_url: str
) -> None:

    settings = Settings(postgres_url=postgres_url)
    service = AgentService(
        settings, db=small_world_db, state_db=tmp_path / "s.sqlite", offline=True
    )
    try:
        view = service.triage(DAY, "store", ["S003"])
        assert view.plan is not None and view.plan.actions
        assert [r.tool for r in service.results(view.run_id)][:3] == [
            "check_data_health",
            "scan_anomalies",
            "diagnose",
        ]
    finally:
        service.close()
    with psycopg.connect(postgres_url) as con:
        (stored,) = con.execute(
            "SELECT count(*) FROM store WHERE prefix = %s", [f"{NAMESPACE}.{view.run_id}"]
        ).fetchone()  # type: ignore[misc]
        (checkpoints,) = con.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", [view.run_id]
        ).fetchone()  # type: ignore[misc]
    assert stored >= 2 and checkpoints > 0


@pytest.mark.slow
def test_run_records_live_with_their_checkpoints_in_postgres(
    small_world_db: Path, tmp_path: Path, postgres_url: str
) -> None:
    """With Postgres, the run record and its decisions are there too, not in the SQLite file."""
    state = tmp_path / "s.sqlite"
    on_postgres = AgentService(
        Settings(postgres_url=postgres_url), db=small_world_db, state_db=state, offline=True
    )
    try:
        view = on_postgres.triage(DAY, "store", ["S003"])
        assert view.status == "waiting_approval"
    finally:
        on_postgres.close()
    local = AgentService(Settings(), db=small_world_db, state_db=state, offline=True)
    try:
        decisions = [Decision(index=p["index"], decision="approve", by="ana") for p in view.pending]
        with pytest.raises(RunInputError, match="no run"):
            local.approve(view.run_id, decisions)
    finally:
        local.close()
    with psycopg.connect(postgres_url) as con:
        (status,) = con.execute(
            "SELECT status FROM runs WHERE run_id = %s", [view.run_id]
        ).fetchone()  # type: ignore[misc]
    assert status == "waiting_approval"
