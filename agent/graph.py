"""The lastmile LangGraph application: one StateGraph for morning triage and for chat.

::

    START -> scope_request -+-> detect -> diagnose -> forecast -> recommend -+-> compose_plan
                            |                                                |      |
                            +-> call_model <-> run_tools  (chat, bounded) ---+   verify_plan
                                                                   | fail: compose again
                                                                   | (<= 2, then template)
                                                          approve_actions (interrupt) <-+
                                                                 |
                                                          dispatch_actions -> END

``graph`` (compiled without a checkpointer or store) is what ``langgraph.json`` points at:
the LangGraph server gives it both. The service compiles the builder with its own
(:class:`agent.persistence.Persistence`: SQLite or Postgres). Tool results are kept in the
store, so the graph cannot run without one (:class:`agent.results.NoResultStoreError`).
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph

from agent.context import Context
from agent.nodes.approval import approve_actions, dispatch_actions
from agent.nodes.chat import call_model, route_after_model, run_tools
from agent.nodes.compose import compose_plan, route_after_verify, verify_plan
from agent.nodes.triage import (
    detect_anomalies,
    diagnose_anomalies,
    forecast_outlook,
    recommend_next,
    scope_request,
)
from agent.state import InputState, OutputState, State


def route_after_scope(state: State) -> Literal["detect", "call_model"]:
    """Triage runs the pipeline; a question goes to the tool-choosing model."""
    if state.mode == "triage":
        return "detect"
    if state.mode == "ask":
        return "call_model"
    raise ValueError(f"unknown mode {state.mode!r}")


builder = StateGraph(
    State, context_schema=Context, input_schema=InputState, output_schema=OutputState
)
builder.add_node("scope_request", scope_request)
builder.add_node("detect", detect_anomalies)
builder.add_node("diagnose", diagnose_anomalies)
builder.add_node("forecast", forecast_outlook)
builder.add_node("recommend", recommend_next)
builder.add_node("call_model", call_model)
builder.add_node("run_tools", run_tools)
builder.add_node("compose_plan", compose_plan)
builder.add_node("verify_plan", verify_plan)
builder.add_node("approve_actions", approve_actions)
builder.add_node("dispatch_actions", dispatch_actions)

builder.add_edge(START, "scope_request")
builder.add_conditional_edges("scope_request", route_after_scope)
builder.add_edge("detect", "diagnose")
builder.add_edge("diagnose", "forecast")
builder.add_edge("forecast", "recommend")
builder.add_edge("recommend", "compose_plan")
builder.add_conditional_edges("call_model", route_after_model)
builder.add_edge("run_tools", "call_model")
builder.add_edge("compose_plan", "verify_plan")
builder.add_conditional_edges(
    "verify_plan",
    route_after_verify,
    {"compose_plan": "compose_plan", "approve_actions": "approve_actions", "__end__": END},
)
builder.add_edge("approve_actions", "dispatch_actions")
builder.add_edge("dispatch_actions", END)

graph = builder.compile(name="lastmile-agent")
