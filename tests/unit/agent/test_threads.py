"""Threads: follow-up questions carry the previous turn's scope and day (issue 10, item 5)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langchain_core.messages import HumanMessage

from agent.service import AgentService
from agent.storage.runs import RunRecord, RunStore
from agent.threads import thread_messages
from tests.conftest import SMALL_WORLD
from tests.runs import OLD_RUNS_TABLE


def _tools(service: AgentService, run_id: str) -> list[tuple[str, dict[str, object]]]:
    trace = service.record(run_id).trace
    return [(e["tool"], e["args"]) for e in trace if e.get("kind") == "tool"]


def test_a_follow_up_keeps_the_store_and_moves_the_day(
    small_world_db: Path, tmp_path: Path
) -> None:
    service = AgentService(db=small_world_db, state_db=tmp_path / "s.sqlite", offline=True)
    day = SMALL_WORLD.day(40)
    try:
        first = service.ask(f"why was S003 late on {day}?", thread_id="t1")
        after = service.ask("and what about the day after?", thread_id="t1")
        store = service.ask("what should we do about that store?", thread_id="t1")
        alone = service.ask("and what about the day after?")  # no thread: nothing to follow
    finally:
        service.close()
    assert ("diagnose", {"target": "S003", "day": day.isoformat(), "window_days": 1}) in _tools(
        service, first.run_id
    )
    diagnosed = [a for t, a in _tools(service, after.run_id) if t == "diagnose"]
    assert diagnosed and diagnosed[0]["target"] == "S003"
    assert diagnosed[0]["day"] == SMALL_WORLD.day(41).isoformat()
    assert any(t == "diagnose" and a["target"] == "S003" for t, a in _tools(service, store.run_id))
    assert not any(a.get("ids") == ["S003"] for _, a in _tools(service, alone.run_id))
    assert [r.run_id for r in service.store.thread_runs("t1")] == [
        first.run_id,
        after.run_id,
        store.run_id,
    ]


def _run(i: int) -> RunRecord:
    return RunRecord(
        run_id=f"r{i}",
        kind="ask",
        question=f"question {i} " + "word " * 100,
        day=None,
        scope=None,
        db=None,
        status="done",
        model=None,
        prompts={},
        created_at="",
        updated_at="",
        plan={"summary": f"answer {i} " + "word " * 100},
        evidence=[],
        trace=[],
        decisions=[],
        error=None,
        input_tokens=0,
        output_tokens=0,
    )


def test_turns_are_trimmed_to_the_budget_newest_first() -> None:
    messages = thread_messages([_run(i) for i in range(30)], budget=1000)
    assert 2 <= len(messages) < 60
    assert isinstance(messages[0], HumanMessage)
    assert "answer 29" in str(messages[-1].content)


def test_an_old_run_store_gains_the_thread_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:
        con.execute(OLD_RUNS_TABLE)
        con.execute(
            "INSERT INTO runs (run_id, kind, status, created_at, updated_at) "
            "VALUES ('old', 'ask', 'done', 'x', 'x')"
        )
    store = RunStore.open(path)
    assert store.get_run("old") is not None
    assert store.thread_runs("none") == []
