"""Per-action decisions: recorded as they come, once each, by who may, within the window;
approved actions delivered through the outbox until acknowledged."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from agent.dispatch import WebhookTransport, deliver_due
from agent.service import AgentService, RunInputError
from agent.settings import Settings
from agent.storage.approvals import outbox
from agent.storage.db import alembic_config
from agent.storage.runs import RunStore
from tests.runs import OLD_RUNS_TABLE, fork_waiting_run
from tests.servers import WebhookSink

TWO_ACTIONS = (date(2026, 2, 22), "store", ["S012"])  # the S012 volume surge: two actions


@pytest.fixture(scope="module")
def waiting(small_world_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """One service, and a triage run waiting on two actions (forked by each test)."""
    state = tmp_path_factory.mktemp("decisions") / "state.sqlite"
    service = AgentService(db=small_world_db, state_db=state, offline=True)
    view = service.triage(*TWO_ACTIONS)
    assert [p["index"] for p in view.pending] == [0, 1]
    yield service, view.run_id
    service.close()


def test_decisions_are_recorded_one_by_one_and_the_run_resumes_on_the_last(waiting) -> None:
    service, source = waiting
    run_id = fork_waiting_run(service, source)
    first = service.decide(run_id, 0, "approve", "ana")
    assert first.status == "waiting_approval"
    assert [p["index"] for p in first.pending] == [1]
    assert first.decisions[0]["by"] == "ana" and first.decisions[0]["at"]
    done = service.decide(run_id, 1, "reject", "ben", note="no drivers free")
    assert done.status == "done"
    assert [(d["index"], d["decision"], d["by"]) for d in done.decisions] == [
        (0, "approve", "ana"),
        (1, "reject", "ben"),
    ]
    (action,) = done.dispatched
    assert action["idx"] == 0 and action["decided_by"] == "ana"
    assert action["decided_at"] is not None  # it was NULL before decisions were stored
    log = service.decision_log(run_id)
    assert [(d.idx, d.decided_by, d.note) for d in log] == [
        (0, "ana", None),
        (1, "ben", "no drivers free"),
    ]


def test_a_second_decision_on_an_action_names_who_decided_first_and_when(waiting) -> None:
    service, source = waiting
    run_id = fork_waiting_run(service, source)
    service.decide(run_id, 0, "approve", "ana")
    with pytest.raises(RunInputError, match=r"already decided \(approve\) by ana at 20\d\d-"):
        service.decide(run_id, 0, "reject", "ben")
    assert [d.decided_by for d in service.decision_log(run_id)] == ["ana"]


def test_decide_the_rest_keeps_what_was_decided(waiting) -> None:
    service, source = waiting
    run_id = fork_waiting_run(service, source)
    service.decide(run_id, 1, "approve", "ana")
    done = service.decide_rest(run_id, "reject", "ben")
    assert done.status == "done"
    assert {d["index"]: d["by"] for d in done.decisions} == {0: "ben", 1: "ana"}
    assert [a["idx"] for a in done.dispatched] == [1]


def test_only_approvers_of_the_store_or_its_region_may_decide(
    waiting, small_world_db: Path
) -> None:
    service, source = waiting
    run_id = fork_waiting_run(service, source)
    region = service._regions()["S012"]
    other = "R1" if region == "R2" else "R2"
    service.settings = Settings(
        approvers={"ana": [f"region:{region}"], "ben": [f"region:{other}"], "cy": ["store:S012"]}
    )
    try:
        with pytest.raises(RunInputError, match=rf"ben may not decide actions on S012 .*{other}"):
            service.decide(run_id, 0, "approve", "ben")
        with pytest.raises(RunInputError, match="not in LASTMILE_APPROVERS"):
            service.decide(run_id, 0, "approve", "mallory")
        assert service.decision_log(run_id) == []  # nothing recorded
        service.decide(run_id, 0, "approve", "ana")
        assert service.decide(run_id, 1, "reject", "cy").status == "done"
    finally:
        service.settings = Settings()


def test_an_expired_approval_dispatches_nothing(waiting) -> None:
    service, source = waiting
    run_id = fork_waiting_run(service, source)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
    service.store.save_run(run_id=run_id, approval_expires_at=past)
    assert service.get(run_id).status == "expired"
    with pytest.raises(
        RunInputError, match=re.escape(f"expired at {past}: nothing was dispatched")
    ):
        service.decide(run_id, 0, "approve", "ana")
    assert outbox(service.store.engine, run_id) == []


def test_a_bad_edit_records_nothing(waiting) -> None:
    service, source = waiting
    run_id = fork_waiting_run(service, source)
    with pytest.raises(RunInputError, match="must be within"):
        service.decide(run_id, 1, "edit", "ana", parameters={"drivers": 999})
    with pytest.raises(RunInputError, match="has no action 7"):
        service.decide(run_id, 7, "approve", "ana")
    assert service.decision_log(run_id) == []


def test_a_webhook_that_fails_is_retried_with_the_same_key_until_acknowledged(
    waiting, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, source = waiting
    sink = WebhookSink()
    sink.fail_next = 1
    service.settings = Settings(dispatch_url=sink.url, dispatch_token="s3cret")
    try:
        run_id = fork_waiting_run(service, source)
        service.decide(run_id, 0, "approve", "ana")
        done = service.decide(run_id, 1, "approve", "ana")
        states = {a["idx"]: a["delivery_status"] for a in done.dispatched}
        assert sorted(states.values()) == ["delivered", "retrying"]
        assert service.deliver().delivered == []  # not due yet: it backs off
        later = datetime.now(UTC) + timedelta(minutes=5)
        transport = WebhookTransport(sink.url, "s3cret")
        report = deliver_due(service.store.engine, transport, now=later)
        assert len(report.delivered) == 1
        keys = [r["key"] for r in sink.requests]
        assert len(keys) == 3 and len(set(keys)) == 2  # the failed one again, same key
        assert {r["auth"] for r in sink.requests} == {"Bearer s3cret"}
        assert all(a.delivery_status == "delivered" for a in outbox(service.store.engine, run_id))
        assert deliver_due(service.store.engine, transport, now=later).delivered == []
    finally:
        service.settings = Settings()
        sink.close()


def test_a_store_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:
        con.execute(OLD_RUNS_TABLE)
        con.execute(
            "CREATE TABLE actions (run_id TEXT NOT NULL, idx INTEGER NOT NULL, action_id TEXT "
            "NOT NULL, target TEXT, parameters TEXT, expected_avoided REAL, avoided_ci TEXT, "
            "cost REAL, decision TEXT, decided_by TEXT, decided_at TEXT, dispatched_at TEXT NOT "
            "NULL, evidence_ids TEXT, PRIMARY KEY (run_id, idx))"
        )
        con.execute(
            "INSERT INTO runs (run_id, kind, status, created_at, updated_at) "
            "VALUES ('old', 'triage', 'done', 'x', 'x')"
        )
        con.execute(
            "INSERT INTO actions VALUES ('old', 0, 'call_backup_drivers', 'S003', '{}', 1.0, "
            "'[1.0, 1.0]', 10.0, 'approve', 'ana', NULL, 'x', '[]')"
        )
    store = RunStore.open(path)
    assert store.get_run("old") is not None
    (action,) = outbox(store.engine)
    assert action.delivery_status == "recorded"  # never sent anywhere: not sent now either
    with store.engine.connect() as con:
        head = con.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert head == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_a_thread_answers_one_question_at_a_time(waiting) -> None:
    service, _ = waiting
    store = service.store
    store.save_run(run_id="busy1", kind="ask", status="running", db="x", thread_id="t-busy")
    assert store.claim_thread("t-busy", "busy1", "first", "ana") is None
    store.save_run(run_id="busy2", kind="ask", status="running", db="x", thread_id="t-busy")
    assert store.claim_thread("t-busy", "busy2", "second", "ben") == "busy1"
    with pytest.raises(RunInputError, match="still answering another question \\(run busy1\\)"):
        service.ask("why was S003 late on 2026-02-10?", thread_id="t-busy")
    store.save_run(run_id="busy1", status="done")  # finished: the thread is free again
    assert store.claim_thread("t-busy", "busy2", "second", "ben") is None


def test_stores_opened_by_parallel_threads_are_each_migrated(tmp_path: Path) -> None:
    """Alembic runs a migration through module globals: threads must take turns."""
    import threading

    errors: list[BaseException] = []

    def open_some(i: int) -> None:
        try:
            for k in range(5):
                store = RunStore.open(tmp_path / f"{i}_{k}.sqlite")
                store.save_run(run_id="r", kind="ask", status="done", db="x")
                assert store.get_run("r") is not None
                store.close()
        except BaseException as exc:  # reported below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=open_some, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_cancelled_run_stops_after_its_step_and_frees_its_thread(waiting) -> None:
    import threading

    service, _ = waiting
    cancel = threading.Event()
    events = []
    for event in service.stream_ask(
        "why was S003 late on 2026-02-10?", thread_id="t-cancel", cancel=cancel
    ):
        events.append(event)
        if event.type == "step":
            cancel.set()
    assert [e.type for e in events][-1] == "run_finished"
    assert events[-1].status == "cancelled"
    assert sum(e.type == "step" for e in events) == 1  # stopped at the next boundary
    assert service.get(events[0].run_id).status == "cancelled"
    assert service.store.get_thread("t-cancel").active_run_id is None


def test_the_page_says_what_an_approval_waits_for_and_what_an_edit_will_do(waiting) -> None:
    from agent.presenter import run_page

    service, source = waiting
    run_id = fork_waiting_run(service, source)
    service.decide(run_id, 1, "approve", "ana")
    page = run_page(service.get(run_id), service.record(run_id), [])
    assert page.actions[1].dispatched is not None
    assert "sent once every action of this plan is decided" in page.actions[1].dispatched.text
    service.decide(run_id, 0, "edit", "ben", parameters={page.actions[0].parameter: 0.1})
    page = run_page(service.get(run_id), service.record(run_id), [])
    sent = page.actions[0].dispatched
    assert sent is not None and f"{page.actions[0].parameter} = 0.1" in sent.text
    assert "re-estimated" in sent.text


def test_an_edit_is_re_estimated_for_the_day_its_action_applies_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A day-ahead action was sized by that day's expected excess: so is its edit."""
    import agent.nodes.approval as approval
    from agent.schemas import Decision
    from agent.state import State

    seen: dict[str, object] = {}

    def fake_call(ctx: object, name: str, args: dict[str, object], node: str) -> object:
        seen.update(args)
        raise RuntimeError("stop here")

    monkeypatch.setattr(approval, "call_tool", fake_call)
    plan = _day_ahead_plan()
    state = State(plan=plan, day="2026-03-14")
    with pytest.raises(RuntimeError, match="stop here"):
        approval._dispatch_record(
            None,  # type: ignore[arg-type]
            state,
            Decision(index=0, decision="edit", parameters={"minutes": 45}, by="ana"),
        )
    assert seen["apply_on"] == "2026-03-15" and seen["day"] == "2026-03-14"


def _day_ahead_plan():  # type: ignore[no-untyped-def]
    from agent.schemas import ActionPlan

    return ActionPlan.model_validate(
        {
            "summary": "R2 storm",
            "actions": [
                {
                    "action_id": "weather_protocol",
                    "target": "R2",
                    "parameters": [{"name": "minutes", "value": 60}],
                    "expected_avoided": 869,
                    "avoided_low": 869,
                    "avoided_high": 869,
                    "cost": 1000,
                    "rationale": "storm",
                    "evidence_ids": ["recommend_actions#1"],
                    "day": "2026-03-14",
                    "apply_on": "2026-03-15",
                }
            ],
        }
    )


def test_a_short_or_empty_web_secret_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"secrets of \['maria'\] are shorter than 8"):
        Settings(web_users={"maria": ""})
    with pytest.raises(ValidationError, match="LASTMILE_WEB_TOKENS"):
        Settings(web_tokens={"bot": "abc"})
    assert Settings(web_users={"maria": "long-enough"}).web_users


def test_a_sender_whose_lease_ran_out_never_overwrites_the_next_outcome(waiting) -> None:
    from agent.storage.approvals import DispatchedAction, claim, enqueue, settle

    service, _ = waiting
    engine = service.store.engine
    action = DispatchedAction(
        run_id="lease-run",
        idx=0,
        action_id="call_backup_drivers",
        target="S003",
        parameters={"drivers": 3},
        expected_avoided=10,
        avoided_ci=[9, 11],
        cost=100,
        decision="approve",
        decided_by="ana",
        decided_at="2026-02-11T07:00:00+00:00",
        dispatched_at="2026-02-11T07:00:00+00:00",
        evidence_ids=["recommend_actions#1"],
    )
    assert enqueue(engine, action)
    key = ("lease-run", 0)
    slow = claim(engine, key, "2026-02-11T07:00:00", "2026-02-11T07:02:00", "slow")
    assert slow is not None
    assert claim(engine, key, "2026-02-11T07:01:00", "2026-02-11T07:03:00", "fast") is None
    fast = claim(engine, key, "2026-02-11T07:05:00", "2026-02-11T07:07:00", "fast")
    assert fast is not None  # the slow sender's lease ran out
    assert settle(engine, fast, "fast", delivered_at="2026-02-11T07:05:01")
    assert not settle(engine, slow, "slow", delivered_at=None, error="timeout")
    (stored,) = outbox(engine, "lease-run")
    assert stored.delivery_status == "delivered" and stored.attempts == 1


def test_an_edit_whose_impact_cannot_be_re_estimated_promises_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import agent.nodes.approval as approval
    from agent.nodes.common import ToolOutcome
    from agent.schemas import Decision
    from agent.state import State, TraceEvent

    def failing(ctx: object, name: str, args: dict[str, object], node: str) -> ToolOutcome:
        return ToolOutcome(
            name=name,
            args=args,
            result=None,
            evidence=None,
            error="too little data",
            trace=TraceEvent(at="x", kind="tool", node=node),
        )

    monkeypatch.setattr(approval, "call_tool", failing)
    monkeypatch.setattr(approval, "run_id", lambda: "edit-run")
    record, _ = approval._dispatch_record(
        None,  # type: ignore[arg-type]
        State(plan=_day_ahead_plan(), day="2026-03-14"),
        Decision(index=0, decision="edit", parameters={"minutes": 45}, by="ana"),
    )
    assert record.parameters == {"minutes": 45}
    assert (record.expected_avoided, record.avoided_ci, record.cost) == (None, None, None)


def test_a_resume_is_not_claimed_after_the_approval_window(waiting) -> None:
    service, source = waiting
    run_id = fork_waiting_run(service, source)
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds")
    service.store.save_run(run_id=run_id, approval_expires_at=past)
    assert not service.store.claim(run_id, "waiting_approval", "resuming", unexpired=True)
    assert service.store.claim(run_id, "waiting_approval", "resuming")  # without the check


def test_automatic_recovery_leaves_a_live_run_alone(waiting) -> None:
    service, source = waiting
    run_id = fork_waiting_run(service, source)
    service.store.save_run(run_id=run_id, status="running")  # a heartbeat just now
    assert service.recover(stale_after_s=60) == []
    old = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")
    service.store.save_run(run_id=run_id, status="running", updated_at=old)  # gone quiet
    assert service.recover(stale_after_s=60) == [run_id]
    assert service.get(run_id).status == "waiting_approval"
