"""Graph state: what a run has asked, found, written and decided so far.

The state holds typed models (evidence records, the plan, decisions, trace events); the
checkpointer persists them with LangGraph's serializer, restricted to the types listed in
:data:`STATE_TYPES`, and a run can resume in another process. Bulky tool results are not in
the state: they live in the graph's store, keyed by evidence id (:mod:`agent.results`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph import add_messages
from pydantic import BaseModel, ConfigDict

from agent.schemas import ActionPlan, Decision
from agent.storage.approvals import DispatchedAction
from tools.core.evidence import Evidence

Mode = Literal["triage", "ask"]


class TraceEvent(BaseModel):
    """One step of a run as the trace records it: a tool call, a model call, a node outcome.

    The fields every event or kind has are typed; a node's own details (the decisions it
    took, the compose input's budget) are extra fields, kept as they are.
    """

    model_config = ConfigDict(extra="allow")

    at: str
    kind: Literal["tool", "llm", "node", "error"]
    node: str | None = None
    tool: str | None = None
    args: dict[str, Any] | None = None
    ms: float | None = None
    evidence_id: str | None = None
    error: str | dict[str, Any] | None = None
    """What failed: a tool's message, or a model call's ``{type, status, message}``."""
    error_kind: str | None = None
    model: str | None = None
    prompt: str | None = None
    prompt_sha256: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    def record(self) -> dict[str, Any]:
        """Return the event as JSON for a run record: its kind's fields, and what else is set.

        A tool event always says whether it failed (``error`` is null when it did not).
        """
        out = self.model_dump(mode="json")
        keep = _ALWAYS.get(self.kind, set())
        return {k: v for k, v in out.items() if v is not None or k in keep}


_ALWAYS: dict[str, set[str]] = {
    "tool": {"tool", "args", "ms", "evidence_id", "error", "error_kind"},
    "llm": {"model", "prompt", "prompt_sha256", "ms", "input_tokens", "output_tokens"},
}


class Dispatch(DispatchedAction):
    """An approved action as this run dispatched it.

    ``new`` is kept so checkpoints written before the outbox still read; the outbox, not the
    state, now says whether an action was delivered.
    """

    new: bool = True


def merge_by_id(left: list[Evidence], right: list[Evidence]) -> list[Evidence]:
    """Reducer: append records, replacing any with the same ``id`` (idempotent on replay)."""
    out = {r.id: r for r in typed("evidence", left)}
    for r in typed("evidence", right):
        out[r.id] = r
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

    evidence: Annotated[list[Evidence], merge_by_id] = field(default_factory=list)
    """Evidence records of every tool call (reducer: merge by evidence id); the full results
    are in the store under the same ids (:mod:`agent.results`)."""
    tool_calls: int = 0
    """Tools called so far in chat mode (the budget)."""
    plan: ActionPlan | None = None
    """The latest composed plan."""
    plan_by_model: bool = False
    """The plan came from a model (its numbers are evidence references until verified and
    rendered), not from the templates."""
    compose_attempts: int = 0
    verify_problems: list[str] = field(default_factory=list)
    """Problems the verifier found in the latest plan (empty: verified)."""
    decisions: list[Decision] = field(default_factory=list)
    """One decision per planned action, after approval."""
    dispatched: list[Dispatch] = field(default_factory=list)
    trace: Annotated[list[TraceEvent], operator.add] = field(default_factory=list)
    """Trace events: tool calls, model calls, node outcomes (reducer: append)."""
    status: str = "running"
    notes: Annotated[list[str], operator.add] = field(default_factory=list)
    """Things the run could not do (budget exhausted, a tool error): caveats (reducer: append)."""

    def __post_init__(self) -> None:
        for name in _TYPED:
            setattr(self, name, typed(name, getattr(self, name)))


@dataclass(kw_only=True)
class OutputState:
    """What a caller gets back."""

    plan: ActionPlan | None = None
    status: str = "running"
    evidence: list[Evidence] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    dispatched: list[Dispatch] = field(default_factory=list)


_TYPED: dict[str, type[BaseModel]] = {
    "plan": ActionPlan,
    "evidence": Evidence,
    "decisions": Decision,
    "dispatched": Dispatch,
    "trace": TraceEvent,
}


def typed(name: str, value: Any) -> Any:
    """Return a state value as its model(s).

    Checkpoints written before the state was typed hold plain dicts; a run paused in one
    (waiting for approval) resumes with models all the same.
    """
    model = _TYPED.get(name)
    if model is None or value is None:
        return value
    if isinstance(value, list):
        return [model.model_validate(v) if isinstance(v, dict) else v for v in value]
    return model.model_validate(value) if isinstance(value, dict) else value


def typed_values(values: dict[str, Any]) -> dict[str, Any]:
    """Return checkpoint values (a snapshot's) with every typed field as its model(s)."""
    return {k: typed(k, v) for k, v in values.items()}


STATE_TYPES: tuple[type[BaseModel], ...] = (
    ActionPlan,
    Decision,
    Evidence,
    TraceEvent,
    Dispatch,
)
"""The models the state holds (with their nested models): the only types, besides
LangGraph's and LangChain's own, that the checkpoint serializer will rebuild."""
