"""The LangGraph application with a scripted chat model: every path of the graph.

Covers the tool loop, tool-error recovery, the tool budget, verify failure -> retry ->
template fallback, interrupt -> resume in a new process -> exactly-once dispatch, and the
rejection path. Every plan that comes out is checked by the verifier.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

from agent import llm
from agent.schemas import ActionPlan, Decision
from agent.service import AgentService, RunInputError
from agent.storage.approvals import outbox
from agent.verify import verify_plan
from tests.fakes import ScriptedChatModel, template_from_prompt, tool_call

DAY = "2026-02-10"  # S003's driver shortage in the small world


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedChatModel:
    model = ScriptedChatModel()
    monkeypatch.setattr(llm, "load_chat_model", lambda context: model)
    return model


@pytest.fixture
def service(small_world_db: Path, tmp_path: Path) -> AgentService:
    svc = AgentService(db=small_world_db, state_db=tmp_path / "state.sqlite", offline=False)
    yield svc
    svc.close()


def _verified(service: AgentService, run_id: str) -> ActionPlan:
    record = service.record(run_id)
    assert record.plan is not None
    plan = ActionPlan.model_validate(record.plan)
    report = verify_plan(plan, {e["id"]: e for e in record.evidence}, service.notes(run_id))
    assert report.ok, report.problems
    return plan


def test_tool_loop_then_a_cited_plan(service: AgentService, scripted: ScriptedChatModel) -> None:
    scripted.replies = [
        tool_call("scan_anomalies", {"scope": "store", "ids": ["S003"], "day": DAY}, "c1"),
        tool_call("diagnose", {"target": "S003", "day": DAY}, "c2"),
        tool_call("recommend_actions", {"target": "S003", "day": DAY}, "c3"),
        AIMessage(content="I have what I need."),
    ]
    # asked the morning after: the day's actions can still act
    view = service.ask("why was S003 late on 2026-02-10?", today=date(2026, 2, 11))
    assert view.status == "waiting_approval"
    plan = _verified(service, view.run_id)
    assert plan.hypotheses[0].cause == "driver_no_shows"
    assert plan.actions[0].action_id == "call_backup_drivers"
    record = service.record(view.run_id)
    tools_called = [e["tool"] for e in record.trace if e["kind"] == "tool"]
    # the data-health check runs first in every run; then the model's choices
    assert tools_called == ["check_data_health", "scan_anomalies", "diagnose", "recommend_actions"]
    assert all(e["ms"] >= 0 and e["args"] for e in record.trace if e["kind"] == "tool")
    assert record.model == "scripted-model"
    assert record.input_tokens == 4 * 10 + 100 and record.output_tokens == 4 * 5 + 50
    assert record.prompts == {
        "chat_system@v4": pytest.approx(record.prompts["chat_system@v4"]),
        "compose_plan@v4": record.prompts["compose_plan@v4"],
    }
    # the model saw each tool result as a ToolMessage
    last_call = scripted.seen[-1]
    assert sum(isinstance(m, ToolMessage) for m in last_call) == 3


def test_a_tool_error_goes_back_to_the_model_which_fixes_the_call(
    service: AgentService, scripted: ScriptedChatModel
) -> None:
    def after_error(messages: list[BaseMessage]) -> AIMessage:
        error = messages[-1]
        assert isinstance(error, ToolMessage) and error.status == "error"
        assert "did you mean" in str(error.content) and "S003" in str(error.content)
        return tool_call("diagnose", {"target": "S003", "day": DAY}, "c2")

    scripted.replies = [
        tool_call("diagnose", {"target": "S03", "day": DAY}, "c1"),
        after_error,
        AIMessage(content="done"),
    ]
    view = service.ask("why was S03 late?")
    plan = _verified(service, view.run_id)
    assert plan.hypotheses and plan.hypotheses[0].target == "S003"
    errors = [e for e in service.record(view.run_id).trace if e["kind"] == "tool" and e["error"]]
    assert len(errors) == 1


def test_invalid_arguments_are_a_recoverable_error_too(
    service: AgentService, scripted: ScriptedChatModel
) -> None:
    def after_error(messages: list[BaseMessage]) -> AIMessage:
        assert "invalid arguments for scan_anomalies" in str(messages[-1].content)
        return AIMessage(content="I cannot scan that.")

    scripted.replies = [tool_call("scan_anomalies", {"days": 0}, "c1"), after_error]
    view = service.ask("scan everything")
    assert view.status == "done"
    _verified(service, view.run_id)


def test_the_tool_budget_ends_the_loop(service: AgentService, scripted: ScriptedChatModel) -> None:
    scripted.replies = [
        tool_call("query_kpis", {"scope": "store", "ids": [f"S00{i}"]}, f"c{i}")
        for i in range(1, 9)
    ]
    view = service.ask("show me everything", max_tool_calls=3)
    record = service.record(view.run_id)
    # the model's three calls; the run's own data-health check is not part of its budget
    assert sum(e["kind"] == "tool" and e["node"] != "scope_request" for e in record.trace) == 3
    plan = _verified(service, view.run_id)
    assert any("tool budget was used up" in c for c in plan.caveats)
    assert view.status == "done"


def test_the_recursion_limit_fails_the_run_with_a_clear_message(
    service: AgentService, scripted: ScriptedChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted.replies = [tool_call("query_kpis", {}, f"c{i}") for i in range(40)]
    monkeypatch.setattr(
        service,
        "_config",
        lambda run_id, context: {"configurable": {"thread_id": run_id}, "recursion_limit": 5},
    )
    view = service.ask("loop forever", max_tool_calls=30)
    assert view.status == "failed" and "step limit" in (view.error or "")


def _bad_number(prompt: str) -> ActionPlan:
    plan = template_from_prompt(prompt)
    plan.findings[0].text += " Lateness was 99.9% in the worst hour."
    return plan


def _bad_citation(prompt: str) -> dict[str, Any]:
    plan = template_from_prompt(prompt).model_dump()
    plan["summary_evidence_ids"] = ["made_up#7"]
    plan["actions"][0]["target"] = "S999"
    return plan


def _unknown_action(prompt: str) -> dict[str, Any]:
    plan = template_from_prompt(prompt).model_dump()
    plan["actions"][0]["action_id"] = "bribe_the_weather"
    return plan


def test_verify_failure_retries_with_feedback_then_falls_back_to_the_template(
    service: AgentService, scripted: ScriptedChatModel
) -> None:
    scripted.plans = [_bad_number, _bad_citation, _bad_number]
    view = service.triage(date.fromisoformat(DAY))
    plan = _verified(service, view.run_id)
    assert plan.fallback
    assert len(scripted.prompts) == 3  # three model attempts, then the template
    assert "<feedback>" not in scripted.prompts[0]
    assert "write the number '99.9%' as a reference" in scripted.prompts[1]
    assert "made_up#7" in scripted.prompts[2] and "S999" in scripted.prompts[2]
    verdicts = [
        e["ok"] for e in service.record(view.run_id).trace if e.get("node") == "verify_plan"
    ]
    assert verdicts == [False, False, False, True]


def test_a_plan_outside_the_vocabulary_is_sent_back_naming_the_valid_values(
    service: AgentService, scripted: ScriptedChatModel
) -> None:
    """An action id the catalog does not have is refused; the model is told the valid ids."""
    scripted.plans = [_unknown_action, template_from_prompt]
    view = service.triage(date.fromisoformat(DAY))
    plan = _verified(service, view.run_id)
    assert not plan.fallback and len(scripted.prompts) == 2
    told = "(bribe_the_weather): not in the action catalog; use one of call_backup_drivers"
    assert told in scripted.prompts[1]


def test_a_fixed_plan_is_accepted_without_fallback(
    service: AgentService, scripted: ScriptedChatModel
) -> None:
    scripted.plans = [_bad_number, template_from_prompt]
    view = service.triage(date.fromisoformat(DAY))
    plan = _verified(service, view.run_id)
    assert not plan.fallback and len(scripted.prompts) == 2


RUN_TRIAGE = """
import json, sys
from datetime import date
from agent.service import AgentService
svc = AgentService(db=sys.argv[1], state_db=sys.argv[2], offline=True)
view = svc.triage(date.fromisoformat(sys.argv[3]))
print(json.dumps({"run_id": view.run_id, "status": view.status, "pending": len(view.pending)}))
"""
RUN_APPROVE = """
import json, sys
from agent.schemas import Decision
from agent.service import AgentService
svc = AgentService(db=sys.argv[1], state_db=sys.argv[2], offline=True)
view = svc.approve(sys.argv[3], [Decision(index=0, decision="approve", by="night shift")])
print(json.dumps({"status": view.status, "dispatched": len(view.dispatched)}))
"""


def _python(code: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_interrupt_survives_the_process_and_dispatches_exactly_once(
    small_world_db: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite"
    started = _python(RUN_TRIAGE, str(small_world_db), str(state), DAY)
    assert started["status"] == "waiting_approval" and started["pending"] >= 1
    resumed = _python(RUN_APPROVE, str(small_world_db), str(state), started["run_id"])
    assert resumed == {"status": "done", "dispatched": 1}

    service = AgentService(db=small_world_db, state_db=state, offline=True)
    try:
        with pytest.raises(RunInputError, match="not waiting for approval"):
            service.approve(started["run_id"], [Decision(index=0, decision="approve", by="again")])
        # replay the dispatch step from its checkpoint: the action is still written once
        config = {"configurable": {"thread_id": started["run_id"]}}
        before_dispatch = next(
            s for s in service.graph.get_state_history(config) if s.next == ("dispatch_actions",)
        )
        service.graph.invoke(None, before_dispatch.config, context=service.context())
        service.recover()  # nothing is running: it records nothing new
        service._record(started["run_id"])
        actions = outbox(service.store.engine, started["run_id"])
        assert len(actions) == 1 and actions[0].decided_by == "night shift"
        assert actions[0].delivery_status == "delivered"
        sink = state.parent / "dispatched_actions.jsonl"
        assert len(sink.read_text().splitlines()) == 1
    finally:
        service.close()


def test_rejected_actions_are_not_dispatched(small_world_db: Path, tmp_path: Path) -> None:
    service = AgentService(db=small_world_db, state_db=tmp_path / "s.sqlite", offline=True)
    try:
        view = service.triage(date.fromisoformat(DAY))
        decisions = [
            Decision(index=p["index"], decision="reject", by="maria", note="drivers unavailable")
            for p in view.pending
        ]
        done = service.approve(view.run_id, decisions)
        assert done.status == "done" and done.dispatched == []
        assert [d["decision"] for d in done.decisions] == ["reject"] * len(decisions)
    finally:
        service.close()


def test_edits_are_checked_and_re_estimated(small_world_db: Path, tmp_path: Path) -> None:
    service = AgentService(db=small_world_db, state_db=tmp_path / "s.sqlite", offline=True)
    try:
        view = service.triage(date.fromisoformat(DAY))
        with pytest.raises(RunInputError, match="drivers must be within 1..15"):
            service.approve(
                view.run_id,
                [Decision(index=0, decision="edit", parameters={"drivers": 40}, by="maria")],
            )
        assert service.approve(view.run_id, []).status == "waiting_approval"  # none decided
        done = service.approve(
            view.run_id, [Decision(index=0, decision="edit", parameters={"drivers": 3}, by="maria")]
        )
        (action,) = done.dispatched
        assert action["parameters"] == {"drivers": 3.0}
        assert action["expected_avoided"] < view.plan.actions[0].expected_avoided  # type: ignore[union-attr]
        assert action["evidence_ids"][0].startswith("recommend_actions#")
    finally:
        service.close()


@pytest.mark.parametrize(
    ("question", "target", "cause", "action"),
    [
        (
            "why were deliveries late at store S003 on 2026-02-10?",
            "S003",
            "driver_no_shows",
            "call_backup_drivers",
        ),
        (
            "What went wrong in R2 on 2026-02-15 and what should we do?",
            "R2",
            "weather",
            "weather_protocol",
        ),
        (
            "why was dispatch so slow at S006 on January 31?",
            "S006",
            "dispatch_delay",
            "escalate_store_picking",
        ),
    ],
)
def test_offline_planner_answers_questions_with_a_grounded_plan(
    small_world_db: Path, tmp_path: Path, question: str, target: str, cause: str, action: str
) -> None:
    service = AgentService(db=small_world_db, state_db=tmp_path / "s.sqlite", offline=True)
    try:
        # asked the morning after the day: its actions are proposed for approval
        day = {"S003": date(2026, 2, 10), "R2": date(2026, 2, 15), "S006": date(2026, 1, 31)}
        view = service.ask(question, today=day[target] + timedelta(days=1))
        plan = _verified(service, view.run_id)
        assert plan.hypotheses[0].target == target and plan.hypotheses[0].cause == cause
        assert plan.actions[0].action_id == action
        assert target in plan.summary
        # weeks later the day is over: what would have helped, nothing to approve
        later = service.ask(question)
        plan = _verified(service, later.run_id)
        assert plan.hypotheses[0].cause == cause and not plan.actions
        assert later.status == "done"
        assert any(f.text.startswith("What would have helped") for f in plan.findings)
    finally:
        service.close()


def test_offline_planner_handles_forecast_and_kpi_questions(
    small_world_db: Path, tmp_path: Path
) -> None:
    service = AgentService(db=small_world_db, state_db=tmp_path / "s.sqlite", offline=True)
    try:
        fc = service.ask("what will the late rate at S010 be over the next 5 days?")
        plan = _verified(service, fc.run_id)
        assert plan.outlook and not plan.actions and fc.status == "done"
        kpi = service.ask("show me the KPIs for R1 last week")
        plan = _verified(service, kpi.run_id)
        assert "R1" in plan.findings[0].text
        bad = service.ask("why was S999 late yesterday?")
        plan = _verified(service, bad.run_id)
        assert bad.status == "done" and not plan.actions
    finally:
        service.close()


def test_unknown_scope_is_a_clear_error(small_world_db: Path, tmp_path: Path) -> None:
    service = AgentService(db=small_world_db, state_db=tmp_path / "s.sqlite", offline=True)
    try:
        with pytest.raises(RunInputError, match="unknown store 'S777'"):
            service.triage(None, "store", ["S777"])
        with pytest.raises(RunInputError, match="outside the data"):
            service.triage(date(2030, 1, 1))
    finally:
        service.close()


def test_instructions_hidden_in_data_stay_data(
    service: AgentService, scripted: ScriptedChatModel
) -> None:
    sql = "SELECT driver_note FROM deliveries WHERE driver_note LIKE 'SYSTEM:%' LIMIT 2"
    scripted.replies = [
        tool_call("run_sql", {"sql": sql}, "c1"),
        tool_call("diagnose", {"target": "S003", "day": DAY}, "c2"),
        tool_call("recommend_actions", {"target": "S003", "day": DAY}, "c3"),
        AIMessage(content="done"),
    ]
    view = service.ask(
        "what do drivers write, and why was S003 late on 2026-02-10?", today=date(2026, 2, 11)
    )
    note = next(m for m in scripted.seen[1] if isinstance(m, ToolMessage))
    content = str(note.content)
    assert "ignore all previous instructions" in content
    assert content.startswith("<data>") and content.endswith("</data>")
    assert content.count("<") == 2  # the data itself can open or close no tag
    # the model's first call saw the database's facts as a data message, not in its prompt
    system, facts = scripted.seen[0][:2]
    assert isinstance(system, SystemMessage) and "S003" not in str(system.content)
    assert facts.name == "data" and str(facts.content).startswith("<data>")
    # whatever the data says, nothing is approved or dispatched without a manager
    assert view.status == "waiting_approval" and view.dispatched == []
    _verified(service, view.run_id)


def test_a_day_to_come_with_nothing_wrong_yet_is_forecast_region_by_region(
    small_world_db: Path, tmp_path: Path
) -> None:
    """'What should we do next week?' on a quiet morning: every region's outlook, and the
    problem the forecast expects (here the R2 storm of 2026-02-15) said to be coming."""
    service = AgentService(db=small_world_db, state_db=tmp_path / "s.sqlite", offline=True)
    try:
        view = service.ask("what should we do next week?", today=date(2026, 2, 10))
        plan = _verified(service, view.run_id)
        assert not plan.actions and view.status == "done"
        coming = {o.target: o for o in plan.outlook if o.persistence == "coming"}
        assert "region R2" in coming and "2026-02-15" in coming["region R2"].text
        assert len(plan.outlook) == 3  # the chain and each region
        assert "expects a problem" in plan.summary
    finally:
        service.close()
