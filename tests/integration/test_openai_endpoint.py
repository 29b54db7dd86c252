"""The OpenAI-compatible path end to end, over real HTTP, against a local scripted server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ModelUnavailableError
from agent.llm import load_chat_model
from agent.schemas import ActionPlan
from agent.service import AgentService, RunView
from agent.settings import get_settings
from agent.storage.runs import RunRecord
from agent.verify import verify_plan
from tests.integration.openai_stub import OpenAIStub, StubBehaviour

pytestmark = pytest.mark.integration

QUESTION = "why were deliveries late at store S003 on 2026-02-10?"
ASKED_ON = date(2026, 2, 11)  # the morning after: the day's actions can still act


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIStub]:
    stub = OpenAIStub(StubBehaviour())
    with stub:
        monkeypatch.setenv("LASTMILE_LLM_BASE_URL", stub.base_url)
        monkeypatch.setenv("LASTMILE_LLM_API_KEY", "test-key")
        monkeypatch.setenv("LASTMILE_LLM_MODEL", "stub-model-1")
        monkeypatch.setenv("LASTMILE_LLM_TIMEOUT_S", "1")
        monkeypatch.setenv("LASTMILE_LLM_MAX_RETRIES", "2")
        get_settings.cache_clear()
        yield stub
    get_settings.cache_clear()


def _service(db: Path, tmp_path: Path) -> AgentService:
    service = AgentService(db=db, state_db=tmp_path / "state.sqlite")
    assert not service.offline
    return service


def _ask(db: Path, tmp_path: Path) -> tuple[RunView, RunRecord]:
    """Ask the question through the endpoint; return the run's view and stored record."""
    service = _service(db, tmp_path)
    try:
        view = service.ask(QUESTION, today=ASKED_ON)
        return view, service.record(view.run_id)
    finally:
        service.close()


def test_a_question_is_answered_through_the_endpoint(
    endpoint: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    view, record = _ask(small_world_db, tmp_path)
    assert view.status == "waiting_approval"
    plan = ActionPlan.model_validate(record.plan)
    assert verify_plan(plan, {e["id"]: e for e in record.evidence}).ok
    assert plan.hypotheses[0].cause == "driver_no_shows"
    b = endpoint.behaviour
    chat = [
        r
        for r in b.requests
        if [t["function"]["name"] for t in r.get("tools", [])] != ["ActionPlan"]
    ]
    compose = [r for r in b.requests if r not in chat]
    assert len(chat) == 4 and len(compose) == 1
    # the protocol details small local servers need
    assert all(
        r["tool_choice"] == "auto" and r["max_tokens"] == get_settings().llm_max_tokens
        for r in chat
    )
    assert {t["function"]["name"] for t in chat[0]["tools"]} >= {
        "scan_anomalies",
        "diagnose",
        "recommend_actions",
    }
    # strict servers (llama-cpp-python) reject a null content on a tool-calling turn
    turns = [m for r in chat for m in r["messages"] if m["role"] == "assistant"]
    assert turns and all(isinstance(m["content"], str) for m in turns)
    assert all(h["authorization"] == "Bearer test-key" for h in b.headers)
    assert all(r["model"] == "stub-model-1" for r in b.requests)
    # the tool results went back as tool messages with the matching ids
    last = chat[-1]["messages"]
    assert [m["tool_call_id"] for m in last if m["role"] == "tool"] == [
        "call_1",
        "call_2",
        "call_3",
    ]
    assert record.model == "stub-model-1"
    assert record.input_tokens == 5 * 120 and record.output_tokens == 5 * 30


def test_server_errors_are_retried(
    endpoint: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    endpoint.behaviour.faults = ["500", "500"]
    service = _service(small_world_db, tmp_path)
    try:
        view = service.ask(QUESTION, today=ASKED_ON)
    finally:
        service.close()
    assert view.status == "waiting_approval"
    assert endpoint.behaviour.served == 5 + 2


def test_a_stalled_request_times_out_and_is_retried(
    endpoint: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    endpoint.behaviour.faults = ["hang"]
    endpoint.behaviour.stall_seconds = 2.5  # longer than the 1 s client timeout
    service = _service(small_world_db, tmp_path)
    started = time.perf_counter()
    try:
        view = service.ask(QUESTION, today=ASKED_ON)
    finally:
        service.close()
    assert view.status == "waiting_approval"
    assert time.perf_counter() - started >= 1.0
    assert endpoint.behaviour.served >= 6


def test_a_dead_endpoint_fails_the_run_with_a_clear_error(
    endpoint: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    endpoint.behaviour.always = "500"
    service = _service(small_world_db, tmp_path)
    try:
        with pytest.raises(ModelUnavailableError, match="scripted failure") as failed:
            service.ask(QUESTION, today=ASKED_ON)
        (run,) = service.store.list_runs()
        record = service.record(run["run_id"])
    finally:
        service.close()
    assert "HTTP 500 (scripted failure) on all 3 tries" in str(failed.value)
    assert record.status == "failed" and record.error == failed.value.summary
    assert endpoint.behaviour.served == 3  # one try and two retries


def test_the_factory_picks_the_endpoint_only_when_configured(
    endpoint: OpenAIStub, small_world_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_openai import ChatOpenAI

    from agent.context import Context

    model = load_chat_model(Context(db=str(small_world_db), offline=False))
    assert isinstance(model, ChatOpenAI)
    assert (
        type(load_chat_model(Context(db=str(small_world_db), offline=True))).__name__
        == "OfflinePlanner"
    )
    monkeypatch.setenv("LASTMILE_LLM_OFFLINE", "true")
    get_settings.cache_clear()
    assert not get_settings().uses_llm_endpoint


CONTEXT_TOO_LONG = {
    "message": "This model's maximum context length is 8192 tokens. However, your messages "
    "resulted in 31000 tokens.",
    "type": "invalid_request_error",
    "code": "context_length_exceeded",
}
SCHEMA_REJECTED = {
    "message": "Invalid schema for function 'ActionPlan': 'additionalProperties' is required",
    "type": "invalid_request_error",
    "code": "invalid_function_parameters",
}


def _plan_requests(stub: OpenAIStub) -> list[dict[str, Any]]:
    return [
        r
        for r in stub.behaviour.requests
        if [t["function"]["name"] for t in r.get("tools", [])] == ["ActionPlan"]
    ]


def test_a_context_length_refusal_is_retried_with_a_smaller_input(
    endpoint: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    endpoint.behaviour.plan_errors = [(400, CONTEXT_TOO_LONG)]
    view, record = _ask(small_world_db, tmp_path)
    first, second = _plan_requests(endpoint)
    assert len(json.dumps(second)) < len(json.dumps(first))  # half the result budget
    plan = ActionPlan.model_validate(record.plan)
    assert not plan.fallback and view.status == "waiting_approval"
    (event,) = [e for e in record.trace if e.get("node") == "compose_plan"]
    # the budget and what it left out are in the trace
    assert event["input"]["budget_chars"] < 60_000 and "dropped_results" in event["input"]


def test_a_context_length_refusal_in_chat_is_retried_with_the_questions_own_turn(
    endpoint: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    """A thread whose earlier turns overflow the context is answered from its last question."""
    service = _service(small_world_db, tmp_path)
    try:
        service.ask(QUESTION, today=ASKED_ON, thread_id="t1")
        endpoint.behaviour.chat_errors = [(400, CONTEXT_TOO_LONG)]
        sent = len(endpoint.behaviour.requests)
        view = service.ask("and what should we do about it?", today=ASKED_ON, thread_id="t1")
        record = service.record(view.run_id)
    finally:
        service.close()
    refused, retried = endpoint.behaviour.requests[sent : sent + 2]
    assert len(retried["messages"]) < len(refused["messages"])
    assert QUESTION not in json.dumps(retried["messages"])  # the earlier turn was left out
    assert view.status == "waiting_approval" and record.plan is not None
    first, second = [e for e in record.trace if e.get("node") == "call_model"][:2]
    assert first["error"]["type"] == "model_request_rejected" and first["retried"]
    assert second["history"]["trimmed"] >= 2 and "error" not in second


def test_any_other_refusal_ends_composing_with_the_template_and_says_why(
    endpoint: OpenAIStub, small_world_db: Path, tmp_path: Path
) -> None:
    endpoint.behaviour.plan_errors = [(400, SCHEMA_REJECTED)] * 3
    view, record = _ask(small_world_db, tmp_path)
    assert len(_plan_requests(endpoint)) == 1  # not retried: the same request fails the same
    plan = ActionPlan.model_validate(record.plan)
    assert plan.fallback and plan.actions  # the template plan, verified, still actionable
    assert any("rejected the plan request (HTTP 400)" in c for c in plan.caveats)
    (event,) = [e for e in record.trace if e.get("node") == "compose_plan"]
    assert event["error"]["type"] == "model_request_rejected" and event["error"]["status"] == 400
    assert view.status == "waiting_approval"


def test_tokens_stream_to_chat_surfaces_when_asked(
    endpoint: OpenAIStub, small_world_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LASTMILE_LLM_STREAM_TOKENS", "true")
    get_settings.cache_clear()
    service = _service(small_world_db, tmp_path)
    try:
        events = list(service.stream_ask(QUESTION, today=ASKED_ON))
        tokens = [e.text for e in events if e.type == "token"]
        assert len(tokens) > 1 and "".join(tokens) == "The shortage explains it."
        assert events[-1].type == "run_finished" and events[-1].status == "waiting_approval"
        assert all(r.get("stream") for r in endpoint.behaviour.requests)
        record = service.record(events[-1].run_id)
        assert record.input_tokens == 5 * 120  # usage still counted from the stream
    finally:
        service.close()
