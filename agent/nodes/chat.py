"""The chat loop: a model chooses tools in a bounded loop, the tools node runs them.

The tools node is ours rather than LangGraph's ``ToolNode`` so that every call's evidence
joins the run state (a run resumed in another process continues the same evidence ids) and
the trace records arguments and latency; it keeps ToolNode's contract: every tool call gets
a ToolMessage, recoverable errors (bad arguments, ``ToolError``) go back to the model with
``status="error"``, anything else fails the run.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from functools import lru_cache
from typing import Any, Literal

import openai
from langchain_core.messages import AIMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.runtime import Runtime

from agent import llm
from agent.context import Context
from agent.nodes.common import call_tool, llm_event, merge, tool_context
from agent.periods import latest_known_day
from agent.state import State
from agent.untrusted import untrusted
from prompts import load_prompt
from tools import TOOLS
from tools.analytics.scope import load_catalog
from tools.data.backend import DuckDBBackend

MAX_TOOL_MESSAGE_CHARS = 12_000


@lru_cache(maxsize=1)
def tool_schemas() -> list[BaseTool]:
    """Return the registry as LangChain tools for ``bind_tools`` (schemas only: we run them)."""

    def never_called(**_: Any) -> str:  # pragma: no cover - the tools node runs the tools
        raise RuntimeError("tool schemas are not executed directly")

    return [
        StructuredTool.from_function(
            func=never_called,
            name=name,
            description=spec.fn.__doc__ or spec.description,
            args_schema=spec.input_model,
        )
        for name, spec in TOOLS.items()
    ]


def system_prompt(context: Context) -> tuple[str, str, str]:
    """Build the chat system prompt for this database: (text, prompt id, sha256)."""
    name, _, version = context.chat_prompt.partition("@")
    prompt = load_prompt(name, version or None)
    catalog = load_catalog(DuckDBBackend(context.db))
    stores = catalog.stores.store_id.astype(str).tolist()
    text = prompt.format(
        first_day=catalog.first_day.isoformat(),
        last_day=catalog.last_day.isoformat(),
        regions=", ".join(catalog.regions[:30]),
        store_count=len(stores),
        store_examples=", ".join(stores[:5]),
        today=(context.today or catalog.last_day + timedelta(days=1)).isoformat(),
        known_day=latest_known_day(context.today, catalog.first_day, catalog.last_day),
    )
    return text, prompt.id, prompt.sha256


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
    bound = model.bind_tools(tool_schemas(), tool_choice="auto")
    started = time.perf_counter()
    try:
        reply = bound.invoke([SystemMessage(content=text), *state.messages])
    except openai.BadRequestError as exc:  # e.g. the transcript outgrew a small model's context
        note = "The model could not continue the conversation; the plan uses what was found."
        return {
            "messages": [AIMessage(content=note)],
            "notes": [note],
            "trace": [
                llm_event(
                    "call_model",
                    llm.model_name(model),
                    (prompt_id, sha),
                    started,
                    error=str(exc)[:500],
                )
            ],
        }
    event = llm_event(
        "call_model",
        llm.model_name(model),
        (prompt_id, sha),
        started,
        reply,
        tool_calls=[c["name"] for c in getattr(reply, "tool_calls", [])],
    )
    update: dict[str, Any] = {"messages": [reply], "trace": [event]}
    if not getattr(reply, "tool_calls", None) and state.tool_calls == 0 and reply.content:
        # an answer given without looking at the data says why (a date that does not exist):
        # it is part of the answer
        update["notes"] = [str(reply.content)]
    return update


def route_after_model(state: State) -> Literal["run_tools", "compose_plan"]:
    """Run the requested tools, or compose when the model is done."""
    last = state.messages[-1] if state.messages else None
    if not isinstance(last, AIMessage):
        raise ValueError(f"expected an AIMessage after call_model, got {type(last).__name__}")
    return "run_tools" if last.tool_calls else "compose_plan"


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
        outcome = call_tool(ctx, call["name"], dict(call["args"]), "run_tools")
        outcomes.append(outcome)
        if outcome.error is not None:
            messages.append(
                ToolMessage(
                    content=outcome.error,
                    tool_call_id=call["id"],
                    name=call["name"],
                    status="error",
                )
            )
        else:
            content = json.dumps(outcome.result, default=str)
            if len(content) > MAX_TOOL_MESSAGE_CHARS:
                content = (
                    content[:MAX_TOOL_MESSAGE_CHARS]
                    + ' ... (truncated; the full result is kept as evidence)"'
                )
            # Results carry data (store names, driver notes, SQL rows): delimited, never orders.
            content = untrusted(content)
            messages.append(
                ToolMessage(content=content, tool_call_id=call["id"], name=call["name"])
            )
    return merge(
        outcomes, notes=False, messages=messages, tool_calls=state.tool_calls + len(outcomes)
    )
