"""Approval and dispatch: nothing leaves the agent without a manager's decision (or policy).

``approve_actions`` pauses the run with ``interrupt()``; the run waits in the checkpointer,
durably, until the service resumes it with one decision per action. Everything before the
interrupt is a pure function of the state, so re-running it on resume changes nothing.
``dispatch_actions`` returns the approved actions (edited ones re-estimated); the service
writes them to the outbox with a (run, position) key once the step is checkpointed, so a
replayed step can never dispatch twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agent.context import Context
from agent.nodes.common import ToolOutcome, call_tool, merge, now, tool_context
from agent.results import run_id
from agent.schemas import ActionPlan, Decision
from agent.state import Dispatch, State, TraceEvent
from agent.storage.approvals import DispatchedAction
from tools.catalog import load_catalog
from tools.core.context import ToolContext

POLICY = "policy"


def pending_actions(plan: ActionPlan) -> list[dict[str, Any]]:
    """List the actions that need a manager's decision, with their position in the plan."""
    return [
        {"index": i, **a.model_dump(mode="json")}
        for i, a in enumerate(plan.actions)
        if a.needs_approval
    ]


def validate_decisions(
    plan: ActionPlan, decisions: list[Decision], *, partial: bool = False
) -> list[str]:
    """Problems with a set of decisions (one per action needing approval, valid edits).

    With ``partial``, a subset of the pending actions may be decided (each at most once).
    """
    catalog = load_catalog()
    need = {p["index"] for p in pending_actions(plan)}
    got = [d.index for d in decisions]
    problems = []
    if partial:
        if len(set(got)) != len(got) or not set(got) <= need:
            problems.append(
                f"decide pending actions at most once each: pending positions {sorted(need)}, "
                f"got {sorted(got)}"
            )
    elif sorted(got) != sorted(need):
        problems.append(
            f"decide every pending action exactly once: expected positions {sorted(need)}, "
            f"got {sorted(got)}"
        )
    for d in decisions:
        if d.index >= len(plan.actions):
            problems.append(f"there is no action at position {d.index}")
            continue
        action = plan.actions[d.index]
        spec = catalog.get(action.action_id)
        if d.decision == "edit":
            params = d.parameters or {}
            if set(params) != {spec.lever.parameter}:
                problems.append(
                    f"an edit of {action.action_id} sets exactly {spec.lever.parameter!r}"
                )
            for name, value in params.items():
                if name == spec.lever.parameter and not spec.lever.min <= value <= spec.lever.max:
                    problems.append(
                        f"{action.action_id}: {name} must be within "
                        f"{spec.lever.min:g}..{spec.lever.max:g} "
                        f"{spec.lever.unit}, got {value:g}"
                    )
    return problems


def approve_actions(state: State) -> dict[str, Any]:
    """Wait for one decision per action that needs approval; policy approves the rest."""
    assert state.plan is not None
    plan = state.plan
    auto = [
        Decision(index=i, decision="approve", by=POLICY, at=datetime.now(UTC))
        for i, a in enumerate(plan.actions)
        if not a.needs_approval
    ]
    pending = pending_actions(plan)
    decisions: list[Decision] = []
    if pending:
        answer = interrupt({"type": "approval", "summary": plan.summary, "actions": pending})
        # a decision records when it was taken, whichever surface sent it
        decisions = [
            d if d.at else d.model_copy(update={"at": datetime.now(UTC)})
            for d in map(Decision.model_validate, answer.get("decisions", []))
        ]
        problems = validate_decisions(plan, decisions)
        if problems:
            raise ValueError("invalid decisions: " + "; ".join(problems))
    event = TraceEvent(
        at=now(),
        kind="node",
        node="approve_actions",
        decisions=[
            {"index": d.index, "decision": d.decision, "by": d.by} for d in auto + decisions
        ],
    )
    return {
        "decisions": sorted(auto + decisions, key=lambda d: d.index),
        "trace": [event],
        "status": "approved",
    }


def dispatch_actions(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Return the approved actions to dispatch; edited ones get their impact re-estimated.

    The re-estimates are stored before anything is dispatched, so a dispatched action never
    cites a result that was not kept.
    """
    assert state.plan is not None
    ctx = tool_context(state, runtime.context)
    records, outcomes = [], []
    for d in state.decisions:
        if d.decision == "reject":
            continue
        record, outcome = _dispatch_record(ctx, state, d)
        records.append(record)
        outcomes += [outcome] if outcome else []
    updates = merge(outcomes, runtime, notes=False)
    # the service writes these to the outbox once the step is checkpointed (idempotently)
    dispatched = [Dispatch(**r.model_dump()) for r in records]
    updates["trace"].append(
        TraceEvent(
            at=now(),
            kind="node",
            node="dispatch_actions",
            dispatched=[x.action_id for x in dispatched],
        )
    )
    return {**updates, "dispatched": dispatched, "status": "done"}


def _dispatch_record(
    ctx: ToolContext, state: State, d: Decision
) -> tuple[DispatchedAction, ToolOutcome | None]:
    """Return what to dispatch for a decision, and the re-estimate of an edited setting."""
    assert state.plan is not None
    action = state.plan.actions[d.index]
    avoided: float | None
    ci: list[float] | None
    cost: float | None
    params, avoided, ci, cost, ids = (
        action.lever,
        action.expected_avoided,
        list(action.avoided_ci),
        action.cost,
        list(action.evidence_ids),
    )
    outcome = None
    if d.decision == "edit" and d.parameters:
        params = d.parameters
        # the impact of the edited setting, from the same causal model
        outcome = call_tool(
            ctx,
            "recommend_actions",
            {
                "target": action.target,
                "day": (action.day.isoformat() if action.day else state.day),
                "window_days": action.window_days,
                "causes": load_catalog().get(action.action_id).treats,
                "parameters": {action.action_id: next(iter(params.values()))},
                "max_actions": 20,
                # an action for a day to come is sized by that day's expected excess, as
                # the plan sized it: the re-estimate must not claim the diagnosed day's
                **({"apply_on": action.apply_on.isoformat()} if action.apply_on else {}),
            },
            "dispatch",
        )
        found = next(
            (
                a
                for a in (outcome.result or {}).get("actions", [])
                if a["action_id"] == action.action_id
            ),
            None,
        )
        if found and outcome.evidence is not None:
            avoided, ci, cost = found["expected_avoided"], list(found["avoided_ci"]), found["cost"]
            ids = [outcome.evidence.id]
        else:  # the plan's impact was for the old setting: none is promised for the new one
            avoided, ci, cost, ids = None, None, None, []
    record = DispatchedAction(
        run_id=run_id(),
        idx=d.index,
        action_id=action.action_id,
        target=action.target,
        parameters=params,
        expected_avoided=avoided,
        avoided_ci=ci,
        cost=cost,
        decision=d.decision,
        decided_by=d.by,
        decided_at=d.at.isoformat() if d.at else None,
        dispatched_at=now(),
        evidence_ids=ids,
    )
    return record, outcome
