"""The chat loop: a model chooses tools in a bounded loop, the tools node runs them.

The tools node is ours rather than LangGraph's ``ToolNode`` so that every call's evidence
joins the run state (a run resumed in another process continues the same evidence ids) and
the trace records arguments and latency; it keeps ToolNode's contract: every tool call gets
a ToolMessage, recoverable errors (bad arguments, an unknown tool, ``ToolError``) go back to
the model with ``status="error"``, anything else fails the run. Calls of one turn run one
after another, not in parallel as ToolNode would: evidence ids are numbered in call order
(``diagnose#2``), which plans cite and cassettes replay, and the tools share one DuckDB
file whose analyses already use the machine's cores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

import openai
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)
from langchain_core.messages.utils import count_tokens_approximately
from langgraph.runtime import Runtime

from agent import llm
from agent.context import Context
from agent.errors import is_context_length
from agent.nodes.common import call_tool, llm_event, merge, tool_context
from agent.offline import OfflinePlanner
from agent.periods import latest_known_day
from agent.prompting import CHARS_PER_TOKEN, TOKEN_MARGIN, bounded_result
from agent.state import State, TraceEvent
from agent.tool_schemas import tool_definitions, tool_input
from agent.untrusted import DATA_NAME, fence, neutralise
from prompts import load_prompt
from tools.analytics.scope import load_catalog

MAX_TOOL_MESSAGE_CHARS = 12_000
TOOL_MESSAGE_SHARE = 0.2
"""Share of the context (after the reply) one tool result may take: a turn of a few calls
still fits a small model."""


def tool_message_chars(context: Context) -> int:
    """Return the characters one tool result may take in the model's context."""
    room = (context.model.context_tokens - context.model.max_tokens) * CHARS_PER_TOKEN
    return max(1_500, min(MAX_TOOL_MESSAGE_CHARS, int(room * TOOL_MESSAGE_SHARE)))


def system_prompt(context: Context) -> tuple[str, str, str]:
    """Build the chat system prompt (instructions and dates only): (text, prompt id, sha256)."""
    name, _, version = context.chat_prompt.partition("@")
    prompt = load_prompt(name, version or None)
    catalog = load_catalog(context.backend())
    text = prompt.format(
        first_day=catalog.first_day.isoformat(),
        last_day=catalog.last_day.isoformat(),
        today=(context.today or catalog.last_day + timedelta(days=1)).isoformat(),
        known_day=latest_known_day(context.today, catalog.first_day, catalog.last_day),
    )
    return text, prompt.id, prompt.sha256


def data_message(context: Context) -> HumanMessage:
    """Return the database's regions and store ids, fenced: names from the field are data."""
    catalog = load_catalog(context.backend())
    stores = catalog.stores.store_id.astype(str).tolist()
    facts = {
        "regions": list(catalog.regions[:30]),
        "region_count": len(catalog.regions),
        "store_count": len(stores),
        "store_examples": stores[:5],
    }
    return HumanMessage(content=fence(facts), name=DATA_NAME)


def current_turn(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """Return the latest question and what followed it (its tool calls and results)."""
    last_question = max(
        (i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=0
    )
    return list(messages[last_question:])


def trim_history(
    messages: list[AnyMessage],
    context: Context,
    head: list[BaseMessage],
    tools: list[dict[str, Any]],
) -> tuple[list[BaseMessage], int]:
    """Fit the thread into the model's context: (messages to send, messages left out).

    The current question and its tool calls are always sent; earlier turns are kept newest
    first, whole turns only (LangChain's ``trim_messages`` starting on a question, so no
    tool result is sent without its call), within the tokens the context has left.
    """
    current = current_turn(messages)
    earlier = messages[: len(messages) - len(current)]
    fixed = count_tokens_approximately([*head, *current]) + len(json.dumps(tools)) // 4
    room = int((context.model.context_tokens - context.model.max_tokens) * TOKEN_MARGIN - fixed)
    if not earlier:
        return list(current), 0
    kept = (
        trim_messages(
            earlier,
            max_tokens=room,
            token_counter=count_tokens_approximately,
            strategy="last",
            start_on="human",
        )
        if room > 0
        else []
    )
    out: list[BaseMessage] = [*kept, *current]
    return out, len(earlier) - len(kept)


def call_model(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the model for the next tool calls (or its final reply)."""
    context = runtime.context
    if state.tool_calls >= context.max_tool_calls:
        note = (
            "The tool budget was used up before the question was fully answered; "
            "the plan uses what was found."
        )
        return {"messages": [AIMessage(content=note)], "notes": [note]}
    model = llm.load_chat_model(context)
    text, prompt_id, sha = system_prompt(context)
    tools = tool_definitions(context)
    head: list[BaseMessage] = [SystemMessage(content=text), data_message(context)]
    history: list[BaseMessage] = list(state.messages)
    trimmed = 0
    if not isinstance(model, OfflinePlanner):  # the offline planner has no context limit
        history, trimmed = trim_history(state.messages, context, head, tools)
    bound = model.bind_tools(tools, tool_choice="auto")
    refused: list[TraceEvent] = []  # a call the endpoint refused is in the trace too
    started = time.perf_counter()
    try:
        try:
            reply = bound.invoke([*head, *history])
        except openai.BadRequestError as exc:
            current = current_turn(list(state.messages))
            if not is_context_length(exc) or len(history) <= len(current):
                raise
            refused.append(
                llm_event(
                    "call_model",
                    llm.model_name(model),
                    (prompt_id, sha),
                    started,
                    error=_rejection(exc),
                    retried="with the question's own turn only",
                )
            )
            # the approximate count let too much through: the question's own turn only
            trimmed, history = trimmed + len(history) - len(current), list[BaseMessage](current)
            started = time.perf_counter()
            reply = bound.invoke([*head, *history])
    except openai.BadRequestError as exc:  # e.g. the question's own turn outgrew the context
        note = "The model could not continue the conversation; the plan uses what was found."
        event = llm_event(
            "call_model", llm.model_name(model), (prompt_id, sha), started, error=_rejection(exc)
        )
        return {"messages": [AIMessage(content=note)], "notes": [note], "trace": [*refused, event]}
    event = llm_event(
        "call_model",
        llm.model_name(model),
        (prompt_id, sha),
        started,
        reply,
        tool_calls=[c["name"] for c in getattr(reply, "tool_calls", [])],
        history={"sent": len(history), "trimmed": trimmed},
    )
    update: dict[str, Any] = {"messages": [reply], "trace": [*refused, event]}
    if not getattr(reply, "tool_calls", None) and state.tool_calls == 0 and reply.content:
        # an answer given without looking at the data says why (a date that does not exist):
        # it is part of the answer
        update["notes"] = [neutralise(str(reply.content))]
    return update


def _rejection(exc: openai.APIStatusError) -> dict[str, Any]:
    """Return a refused model request as a trace event's typed error."""
    return {"type": "model_request_rejected", "status": exc.status_code, "message": str(exc)[:500]}


def route_after_model(state: State) -> Literal["run_tools", "compose_plan"]:
    """Run the requested tools, or compose when the model is done."""
    last = state.messages[-1] if state.messages else None
    if not isinstance(last, AIMessage):
        raise ValueError(f"expected an AIMessage after call_model, got {type(last).__name__}")
    return "run_tools" if last.tool_calls or last.invalid_tool_calls else "compose_plan"


def run_tools(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run the model's tool calls within the budget; errors go back to the model."""
    last = state.messages[-1]
    assert isinstance(last, AIMessage)
    ctx = tool_context(state, runtime.context)
    budget = runtime.context.max_tool_calls - state.tool_calls
    outcomes, messages = [], []
    for i, call in enumerate(last.tool_calls):
        if i >= budget:
            messages.append(
                ToolMessage(
                    content="not run: the tool budget of "
                    f"{runtime.context.max_tool_calls} calls is used up",
                    tool_call_id=call["id"],
                    name=call["name"],
                    status="error",
                )
            )
            continue
        args = tool_input(call["name"], dict(call["args"]), runtime.context)
        outcome = call_tool(ctx, call["name"], args, "run_tools")
        outcomes.append(outcome)
        if outcome.error is not None:
            messages.append(
                ToolMessage(
                    # an error can echo data (a value the database could not convert)
                    content=fence({"error": outcome.error}),
                    tool_call_id=call["id"],
                    name=call["name"],
                    status="error",
                )
            )
        else:
            # Results carry data (store names, driver notes, SQL rows): fenced, never orders.
            limit = tool_message_chars(runtime.context)
            content = fence(bounded_result(call["name"], outcome.result or {}, limit))
            messages.append(
                ToolMessage(content=content, tool_call_id=call["id"], name=call["name"])
            )
    # calls whose arguments are not JSON (LangChain's invalid_tool_calls): the model is told,
    # and they count against the budget (a model repeating one cannot loop for ever)
    unreadable = [
        ToolMessage(
            content=f"invalid arguments for {bad['name']}: not a JSON object; "
            "call it again with its arguments as JSON",
            tool_call_id=bad["id"] or "",
            name=bad["name"] or "",
            status="error",
        )
        for bad in last.invalid_tool_calls
    ]
    return merge(
        outcomes,
        runtime,
        notes=False,
        messages=[*messages, *unreadable],
        tool_calls=state.tool_calls + len(outcomes) + len(unreadable),
    )
