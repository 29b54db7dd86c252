"""Prompts are built to the model's context by whole items: never cut JSON, never a lone
tool result."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from agent.context import Context, ModelConfig
from agent.nodes.chat import trim_history
from agent.prompting import compose_input, data_budget_chars
from agent.results import ToolResult
from tools.core.evidence import Evidence


def _result(i: int) -> ToolResult:
    rows = [[f"S{j:03d}", 0.1 * j, "note " * 20] for j in range(40)]
    return ToolResult(id=f"run_sql#{i}", tool="run_sql", result={"rows": rows, "evidence_id": i})


def test_45_results_fit_a_small_budget_as_valid_json_and_say_what_was_dropped() -> None:
    results = [_result(i) for i in range(45)]
    evidence = [
        Evidence(id=f"run_sql#{i}", tool="run_sql", inputs={}, numbers={"rows": 40.0}, summary="")
        for i in range(45)
    ]
    budget = data_budget_chars(8192, 512, fixed_chars=6000)
    data = compose_input({"mode": "ask"}, results, evidence, budget)
    text = json.dumps(data.payload)
    assert len(text) <= budget + 200  # the request itself is small and always sent
    assert json.loads(text) == data.payload
    assert data.dropped_results  # whole results left out, and named
    kept = {r["id"] for r in data.payload["tool_results"]}
    assert kept.isdisjoint(data.dropped_results) and kept | set(data.dropped_results) == {
        r.id for r in results
    }
    everything = compose_input({"mode": "ask"}, results, evidence, None)
    assert len(everything.payload["tool_results"]) == 45 and not everything.dropped_results


def _turn(i: int) -> list[object]:
    call = AIMessage(
        content="", tool_calls=[{"name": "run_sql", "args": {"sql": "SELECT 1"}, "id": f"c{i}"}]
    )
    return [
        HumanMessage(content=f"question {i}"),
        call,
        ToolMessage(content="x" * 4000, tool_call_id=f"c{i}", name="run_sql"),
        AIMessage(content=f"answer {i}"),
    ]


def test_chat_history_keeps_the_current_question_and_whole_earlier_turns() -> None:
    messages = [m for i in range(6) for m in _turn(i)][:-1]  # the last turn is in progress
    context = Context(db="unused.duckdb", model=ModelConfig(context_tokens=4096, max_tokens=512))
    head = [SystemMessage(content="instructions")]
    sent, trimmed = trim_history(messages, context, head, tools=[])  # type: ignore[arg-type]
    assert trimmed > 0 and sent[-3:] == messages[-3:]
    assert isinstance(sent[0], HumanMessage)
    calls = {c["id"] for m in sent if isinstance(m, AIMessage) for c in m.tool_calls}
    assert all(m.tool_call_id in calls for m in sent if isinstance(m, ToolMessage))
    roomy = Context(db="unused.duckdb", model=ModelConfig(context_tokens=128_000))
    assert trim_history(messages, roomy, head, tools=[]) == (messages, 0)  # type: ignore[arg-type]
