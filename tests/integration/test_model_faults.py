"""The LLM fault family (issue 11): every fault of a model endpoint has one right outcome.

The question goes over real HTTP to the scripted OpenAI-compatible server
(:mod:`tests.integration.openai_stub`), which misbehaves in one way per case:

======================================  ===============================================
fault                                   right outcome
======================================  ===============================================
429 with Retry-After, 429 without,      retried by the client, then the same plan as
500 once, connection reset              without the fault (status waiting_approval)
500, 429 or a reset on every try        a typed ``ModelUnavailableError`` after the
                                        configured retries (LASTMILE_LLM_MAX_RETRIES);
                                        the CLI shows it on one line
a hang on every try                     a typed ``ModelTimeoutError`` when the
                                        configured timeout (LASTMILE_LLM_TIMEOUT_S) fires
malformed JSON or an empty reply to     once: repaired on the next compose attempt; on
the plan request                        every attempt: the template plan with a caveat
invalid tool arguments, an unknown      a tool error the model sees (a ToolMessage with
tool, arguments that are not JSON       status error), then the right answer
an endless tool loop                    stopped at the tool budget (LASTMILE_MAX_TOOL_CALLS)
                                        with a plan from the evidence gathered
======================================  ===============================================

In every case no tool call is left dangling in the stored (checkpointed) thread. The
family's figure ("LLM fault family: n/m cases as stated") is printed at the end of the
session by ``tests/integration/conftest.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from typer.testing import CliRunner

from agent.errors import ModelTimeoutError, ModelUnavailableError, RunFailedError
from agent.interfaces.cli import app
from agent.schemas import ActionPlan
from agent.service import AgentService
from agent.settings import get_settings
from agent.storage.runs import RunRecord
from agent.verify import verify_plan
from tests.integration.openai_stub import Fault, OpenAIStub, StubBehaviour, wants_plan

pytestmark = pytest.mark.integration

QUESTION = "why were deliveries late at store S003 on 2026-02-10?"
ASKED_ON = date(2026, 2, 11)  # the morning after: the day's actions can still act
TIMEOUT_S = 1.0
RETRIES = 2
TRIES = RETRIES + 1
TOOL_BUDGET = 5
COMPOSE_ATTEMPTS = 3  # Context.max_compose_attempts


def _point_at(monkeypatch: pytest.MonkeyPatch, stub: OpenAIStub) -> None:
    monkeypatch.setenv("LASTMILE_LLM_BASE_URL", stub.base_url)
    monkeypatch.setenv("LASTMILE_LLM_API_KEY", "test-key")
    monkeypatch.setenv("LASTMILE_LLM_MODEL", "stub-model-1")
    monkeypatch.setenv("LASTMILE_LLM_TIMEOUT_S", str(TIMEOUT_S))
    monkeypatch.setenv("LASTMILE_LLM_MAX_RETRIES", str(RETRIES))
    monkeypatch.setenv("LASTMILE_MAX_TOOL_CALLS", str(TOOL_BUDGET))
    get_settings.cache_clear()


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIStub]:
    """The scripted endpoint, well behaved until a test scripts its fault."""
    with OpenAIStub(StubBehaviour()) as server:
        _point_at(monkeypatch, server)
        yield server
    get_settings.cache_clear()


@dataclass
class Run:
    """One question asked through the endpoint, as stored."""

    record: RunRecord
    messages: list[BaseMessage]
    """The checkpointed thread."""
    error: RunFailedError | None
    seconds: float

    @property
    def plan(self) -> ActionPlan:
        assert self.record.plan is not None, self.record.error
        return ActionPlan.model_validate(self.record.plan)


def _ask(db: Path, state_db: Path) -> Run:
    service = AgentService(db=db, state_db=state_db)
    assert not service.offline
    error = None
    started = time.perf_counter()
    try:
        try:
            run_id = service.ask(QUESTION, today=ASKED_ON).run_id
        except RunFailedError as exc:
            error, run_id = exc, exc.run_id
        seconds = time.perf_counter() - started
        snapshot = service.graph.get_state(RunnableConfig(configurable={"thread_id": run_id}))
        messages = list((snapshot.values or {}).get("messages", []))
        return Run(service.record(run_id), messages, error, seconds)
    finally:
        service.close()


@pytest.fixture(scope="module")
def clean(small_world_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The question answered without any fault: what a faulty run must end like."""
    with pytest.MonkeyPatch.context() as monkeypatch, OpenAIStub() as server:
        _point_at(monkeypatch, server)
        try:
            run = _ask(small_world_db, tmp_path_factory.mktemp("clean") / "state.sqlite")
        finally:
            get_settings.cache_clear()
    assert run.record.status == "waiting_approval" and not run.plan.fallback
    assert run.plan.hypotheses[0].cause == "driver_no_shows"
    return run


def thread_problems(messages: list[BaseMessage]) -> list[str]:
    """What makes a stored thread unsendable: a tool call without its result, or the reverse.

    Every call an AIMessage makes (valid or not: OpenAI sends invalid ones back as calls
    too) must be answered by a ToolMessage among the messages right after it.
    """
    problems, open_calls = [], set[str]()
    for message in [*messages, None]:
        if isinstance(message, ToolMessage):
            if message.tool_call_id not in open_calls:
                problems.append(f"tool result {message.tool_call_id} answers no open call")
            open_calls.discard(message.tool_call_id)
            continue
        problems += [f"tool call {c} has no result" for c in sorted(open_calls)]
        open_calls = set()
        if isinstance(message, AIMessage):
            calls = [*message.tool_calls, *message.invalid_tool_calls]
            open_calls = {str(c["id"]) for c in calls}
    return problems


def _verified(run: Run) -> ActionPlan:
    plan = run.plan
    assert verify_plan(plan, {e["id"]: e for e in run.record.evidence}).ok
    return plan


def _without_caveats(plan: ActionPlan) -> dict[str, Any]:
    return plan.model_dump(mode="json", exclude={"caveats"})


def _model_calls(run: Run) -> list[dict[str, Any]]:
    """The run's model calls (one trace event each, however many tries each took)."""
    return [e for e in run.record.trace if e.get("kind") == "llm"]


def _chat_requests(stub: OpenAIStub) -> list[dict[str, Any]]:
    return [r for r in stub.behaviour.requests if not wants_plan(r)]


def _plan_requests(stub: OpenAIStub) -> list[dict[str, Any]]:
    return [r for r in stub.behaviour.requests if wants_plan(r)]


# -- transport faults the client retries --------------------------------------------------
@pytest.mark.parametrize("fault", ["429-retry-after", "429", "500", "reset"])
def test_a_passing_fault_is_retried_then_answered_as_without_it(
    fault: Fault, stub: OpenAIStub, clean: Run, small_world_db: Path, tmp_path: Path
) -> None:
    stub.behaviour.faults = [fault]
    run = _ask(small_world_db, tmp_path / "state.sqlite")
    assert run.error is None and run.record.status == "waiting_approval"
    assert run.record.plan == clean.record.plan  # the same plan as without the fault
    assert stub.behaviour.served == len(_model_calls(clean)) + 1  # one request was retried
    assert stub.behaviour.requests[0] == stub.behaviour.requests[1]  # by the client, as sent
    first, retry = stub.behaviour.arrived[:2]
    if fault == "429-retry-after":  # the client waited as told (1 s)
        assert retry - first >= 0.9
    assert thread_problems(run.messages) == []


# -- transport faults on every try: typed errors -------------------------------------------
@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("500", "is unavailable: HTTP 500 (scripted failure)"),
        ("429", "is unavailable: rate limited (HTTP 429: Rate limit reached: scripted)"),
        ("reset", "is unavailable: no response ("),
    ],
    ids=["500", "429", "reset"],
)
def test_an_endpoint_failing_every_try_fails_the_run_as_unavailable(
    fault: Fault, said: str, stub: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    stub.behaviour.always = fault
    run = _ask(small_world_db, tmp_path / "state.sqlite")
    assert isinstance(run.error, ModelUnavailableError)
    message = str(run.error)
    assert f"the model endpoint {stub.base_url} {said}" in message
    assert f"on all {TRIES} tries (LASTMILE_LLM_MAX_RETRIES={RETRIES})" in message
    assert "LASTMILE_LLM_BASE_URL" in message or "LASTMILE_LLM_API_KEY" in message
    assert stub.behaviour.served == TRIES  # one try, then the configured retries
    assert run.record.status == "failed" and run.record.error == run.error.summary
    assert thread_problems(run.messages) == []


def test_a_hung_endpoint_fails_the_run_with_a_timeout(
    stub: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    stub.behaviour.always = "hang"
    stub.behaviour.stall_seconds = 3 * TIMEOUT_S
    run = _ask(small_world_db, tmp_path / "state.sqlite")
    assert isinstance(run.error, ModelTimeoutError)
    message = str(run.error)
    assert f"the model endpoint {stub.base_url} timed out" in message
    assert f"within LASTMILE_LLM_TIMEOUT_S={TIMEOUT_S:g} s on any of {TRIES} tries" in message
    assert "raise LASTMILE_LLM_TIMEOUT_S" in message
    assert stub.behaviour.served == TRIES
    # each try waited for the timeout to fire, not for the hang to end
    assert TRIES * TIMEOUT_S <= run.seconds < TRIES * stub.behaviour.stall_seconds
    assert run.record.status == "failed" and run.record.error == run.error.summary
    assert thread_problems(run.messages) == []


def test_the_cli_shows_an_unavailable_endpoint_on_one_line(
    stub: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    stub.behaviour.always = "500"
    argv = ["ask", QUESTION, "--db", str(small_world_db), "--state-db", str(tmp_path / "s.db")]
    result = CliRunner().invoke(app, [*argv, "--today", ASKED_ON.isoformat()])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("error: ")]
    assert f"the model endpoint {stub.base_url} is unavailable: HTTP 500" in line
    assert f"on all {TRIES} tries" in line and "LASTMILE_LLM_BASE_URL" in line


# -- broken plans ---------------------------------------------------------------------------
@pytest.mark.parametrize("reply", ["malformed", "empty"])
def test_a_broken_plan_reply_is_repaired_on_the_next_attempt(
    reply: Any, stub: OpenAIStub, clean: Run, small_world_db: Path, tmp_path: Path
) -> None:
    stub.behaviour.plan_replies = [reply]
    run = _ask(small_world_db, tmp_path / "state.sqlite")
    assert len(_plan_requests(stub)) == 2  # the broken one, then the repaired one
    assert run.record.status == "waiting_approval"
    assert run.record.plan == clean.record.plan and not _verified(run).fallback
    (failed, _) = [e for e in run.record.trace if e.get("node") == "compose_plan"]
    assert "no readable plan came back" in failed["error"]
    assert thread_problems(run.messages) == []


@pytest.mark.parametrize("reply", ["malformed", "empty"])
def test_a_plan_reply_broken_every_time_ends_in_the_template_plan_with_a_caveat(
    reply: Any, stub: OpenAIStub, clean: Run, small_world_db: Path, tmp_path: Path
) -> None:
    stub.behaviour.plan_replies = [reply] * COMPOSE_ATTEMPTS
    run = _ask(small_world_db, tmp_path / "state.sqlite")
    assert len(_plan_requests(stub)) == COMPOSE_ATTEMPTS
    plan = _verified(run)
    assert plan.fallback and run.record.status == "waiting_approval"
    assert _without_caveats(plan) == _without_caveats(clean.plan) | {"fallback": True}
    assert thread_problems(run.messages) == []
    # what a reader of the plan (not of the trace) must be told
    assert any("template" in c.lower() for c in plan.caveats), plan.caveats


# -- bad tool calls -----------------------------------------------------------------------
BAD_CALLS = {
    "invalid-args": ("diagnose", "invalid arguments for diagnose: day"),
    "unknown-tool": ("get_weather", "unknown tool 'get_weather'"),
    "not-json": ("diagnose", "invalid arguments for diagnose"),
}


@pytest.mark.parametrize(
    "bad",
    [
        "invalid-args",
        "unknown-tool",
        "not-json",
    ],
)
def test_a_bad_tool_call_is_a_tool_error_the_model_sees_then_the_right_answer(
    bad: Any, stub: OpenAIStub, clean: Run, small_world_db: Path, tmp_path: Path
) -> None:
    stub.behaviour.bad_calls = [bad]
    tool, error = BAD_CALLS[bad]
    run = _ask(small_world_db, tmp_path / "state.sqlite")
    assert thread_problems(run.messages) == []
    # the stored thread has the error ...
    (result,) = [
        m for m in run.messages if isinstance(m, ToolMessage) and m.tool_call_id == "call_bad_1"
    ]
    assert result.status == "error" and result.name == tool and error in str(result.content)
    # ... and the model saw it, on the next turn
    seen = [
        m
        for m in _chat_requests(stub)[1]["messages"]
        if m["role"] == "tool" and m["tool_call_id"] == "call_bad_1"
    ]
    assert len(seen) == 1 and error in seen[0]["content"]
    # then the right answer: the clean run's plan (an error left standing is a caveat)
    assert run.record.status == "waiting_approval"
    assert _without_caveats(_verified(run)) == _without_caveats(clean.plan)


# -- an endless tool loop -------------------------------------------------------------------
def test_an_endless_tool_loop_stops_at_the_budget_with_a_plan_from_what_was_found(
    stub: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    stub.behaviour.endless = True
    run = _ask(small_world_db, tmp_path / "state.sqlite")
    tools = [e for e in run.record.trace if e.get("kind") == "tool" and e["node"] == "run_tools"]
    assert len(tools) == TOOL_BUDGET  # no call past the budget ran (the run's own check aside)
    assert thread_problems(run.messages) == []
    over = [m for m in run.messages if isinstance(m, ToolMessage) and "not run" in m.text]
    assert over and all(m.status == "error" for m in over)  # a call past the budget is told
    assert len(_chat_requests(stub)) == 3  # two calls a turn: the third turn spent the budget
    plan = _verified(run)
    assert run.record.status == "waiting_approval" and plan.actions
    assert plan.hypotheses[0].cause == "driver_no_shows"  # from the evidence gathered
    assert any("tool budget" in c for c in plan.caveats)
