"""The typed events of a run, as every surface streams them (web SSE, terminal chat, Slack).

A run yields ``run_started``, then a ``step`` per graph node and ``tool_started`` /
``tool_finished`` around every tool call (nodes emit those through LangGraph's stream
writer), ``token`` for model output as it is generated, ``plan_ready`` and
``approval_requested`` when it stops with a plan, and ends with ``run_finished`` (after
``run_failed`` when it failed). Decisions and dispatches are announced as
``decision_recorded`` and ``action_dispatched``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

NODE_LABELS = {
    "scope_request": "Read the request",
    "detect": "Scanned the KPIs for anomalies",
    "diagnose": "Diagnosed the causes",
    "forecast": "Forecast whether it persists",
    "recommend": "Chose actions and their expected effect",
    "call_model": "Chose the next step",
    "run_tools": "Ran the chosen tools",
    "compose_plan": "Wrote the plan",
    "verify_plan": "Checked every number of the plan against the evidence",
    "approve_actions": "Waiting for decisions",
    "dispatch_actions": "Dispatched the approved actions",
}
"""What each graph node did, in a manager's words (unknown nodes show their own name)."""


class RunStarted(BaseModel):
    """A run began."""

    type: Literal["run_started"] = "run_started"
    run_id: str
    thread_id: str | None = None
    kind: str = "ask"
    question: str | None = None


class Step(BaseModel):
    """A graph node finished."""

    type: Literal["step"] = "step"
    run_id: str
    node: str
    label: str


class ToolStarted(BaseModel):
    """A tool call began."""

    type: Literal["tool_started"] = "tool_started"
    run_id: str
    tool: str
    label: str


class ToolFinished(BaseModel):
    """A tool call ended: its evidence's one-line summary, or its error."""

    type: Literal["tool_finished"] = "tool_finished"
    run_id: str
    tool: str
    ok: bool
    summary: str
    ms: float


class Token(BaseModel):
    """Model output as it is generated."""

    type: Literal["token"] = "token"
    run_id: str
    text: str


class PlanReady(BaseModel):
    """The run's plan passed the verifier (its summary; the page has the rest)."""

    type: Literal["plan_ready"] = "plan_ready"
    run_id: str
    summary: str


class ApprovalRequested(BaseModel):
    """The run waits for decisions on these actions until ``expires_at``."""

    type: Literal["approval_requested"] = "approval_requested"
    run_id: str
    actions: list[dict[str, Any]]
    expires_at: str | None = None


class DecisionRecorded(BaseModel):
    """A manager decided an action."""

    type: Literal["decision_recorded"] = "decision_recorded"
    run_id: str
    index: int
    decision: str
    by: str
    at: str | None = None


class ActionDispatched(BaseModel):
    """An approved action went to the outbox (``delivery_status`` says whether it arrived)."""

    type: Literal["action_dispatched"] = "action_dispatched"
    run_id: str
    index: int
    action_id: str
    delivery_status: str


class RunFailed(BaseModel):
    """The run failed; ``error`` is written for people (no traceback)."""

    type: Literal["run_failed"] = "run_failed"
    run_id: str
    error: str


class RunFinished(BaseModel):
    """The run stopped: done, waiting for decisions, failed or cancelled. Always last."""

    type: Literal["run_finished"] = "run_finished"
    run_id: str
    status: str
    page: dict[str, Any] | None = None


RunEvent = Annotated[
    RunStarted
    | Step
    | ToolStarted
    | ToolFinished
    | Token
    | PlanReady
    | ApprovalRequested
    | DecisionRecorded
    | ActionDispatched
    | RunFailed
    | RunFinished,
    Field(discriminator="type"),
]


def step(run_id: str, node: str) -> Step:
    """Return the event of a finished node."""
    return Step(run_id=run_id, node=node, label=NODE_LABELS.get(node, node))


def from_custom(run_id: str, chunk: Any) -> ToolStarted | ToolFinished | None:
    """Return the event a node wrote to the stream writer (None for anything else)."""
    if not isinstance(chunk, dict):
        return None
    if chunk.get("type") == "tool_started":
        return ToolStarted(run_id=run_id, tool=chunk["tool"], label=f"Running {chunk['tool']}")
    if chunk.get("type") == "tool_finished":
        return ToolFinished(
            run_id=run_id,
            tool=chunk["tool"],
            ok=bool(chunk["ok"]),
            summary=str(chunk["summary"])[:300],
            ms=float(chunk["ms"]),
        )
    return None
