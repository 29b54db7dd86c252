"""Graph state: what a run has asked, found, written and decided so far.

Everything in the state is JSON-friendly (dicts, strings, numbers) so the checkpointer can
persist it and a run can resume in another process.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph import add_messages

Mode = Literal["triage", "ask"]


def merge_by_id(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reducer: append records, replacing any with the same ``id`` (idempotent on replay)."""
    out = {r["id"]: r for r in left}
    for r in right:
        out[r["id"]] = r
    return list(out.values())


@dataclass(kw_only=True)
class InputState:
    """What a caller gives a run."""

    mode: Mode = "triage"
    """``triage``: the morning pipeline over a scope; ``ask``: a question the model answers
    by choosing tools."""
    question: str | None = None
    """The manager's question (ask mode)."""
    day: str | None = None
    """ISO date to triage (default: the latest day with data)."""
    scope_level: Literal["all", "region", "store"] = "all"
    scope_ids: list[str] = field(default_factory=list)
    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    """Chat transcript (reducer: append / replace by message id)."""


@dataclass(kw_only=True)
class State(InputState):
    """The whole state of a run."""

    evidence: Annotated[list[dict[str, Any]], merge_by_id] = field(default_factory=list)
    """Evidence records of every tool call (reducer: merge by evidence id)."""
    results: Annotated[list[dict[str, Any]], merge_by_id] = field(default_factory=list)
    """Tool results as {id (= evidence id), tool, result} (reducer: merge by id)."""
    tool_calls: int = 0
    """Tools called so far in chat mode (the budget)."""
    plan: dict[str, Any] | None = None
    """The latest composed ActionPlan."""
    plan_by_model: bool = False
    """The plan came from a model (its numbers are evidence references until verified and
    rendered), not from the templates."""
    compose_attempts: int = 0
    verify_problems: list[str] = field(default_factory=list)
    """Problems the verifier found in the latest plan (empty: verified)."""
    decisions: list[dict[str, Any]] = field(default_factory=list)
    """One decision per planned action, after approval."""
    dispatched: list[dict[str, Any]] = field(default_factory=list)
    trace: Annotated[list[dict[str, Any]], operator.add] = field(default_factory=list)
    """Trace events: tool calls, model calls, node outcomes (reducer: append)."""
    status: str = "running"
    notes: Annotated[list[str], operator.add] = field(default_factory=list)
    """Things the run could not do (budget exhausted, a tool error): caveats (reducer: append)."""


@dataclass(kw_only=True)
class OutputState:
    """What a caller gets back."""

    plan: dict[str, Any] | None = None
    status: str = "running"
    evidence: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    dispatched: list[dict[str, Any]] = field(default_factory=list)
