"""What a case scored: per-incident and per-case results, and reading a plan's answer."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from agent.schemas import ActionPlan


class IncidentScore(BaseModel):
    """How one injected incident fared in one case."""

    incident: str
    kind: str
    true_cause: str
    detected: bool
    diagnosed: bool = False
    top1: bool = False
    top3: bool = False
    action_ok: bool = False
    action: str | None = None
    impact_estimated: float | None = None
    impact_simulated: float | None = None
    correlation_top1: bool = False
    deviation_top1: bool = False
    anomaly_only_top1: bool = False
    persists: bool = False  # the incident is still on the next day
    forecast: str | None = None  # the forecast's verdict for its alarm: persists/fades/normal


class CaseResult(BaseModel):
    """The scores of one run of one case."""

    case: str
    kind: str
    repeat: int = 0
    run_id: str | None = None
    status: str
    error: str | None = None
    incidents: list[IncidentScore] = Field(default_factory=list)
    alarms: int = 0
    correct_alarms: int = 0
    store_weeks: float = 0.0
    expected: dict[str, Any] = Field(default_factory=dict)
    got: dict[str, Any] = Field(default_factory=dict)
    question_ok: bool | None = None
    plan_valid: bool = False
    fallback: bool = False
    groundedness: float | None = None
    numbers_checked: int = 0
    tool_calls: int = 0
    tool_calls_valid: int = 0
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    plan: dict[str, Any] | None = None
    passed: bool = False


WHY = re.compile(r"\b(why|wrong|cause|caused|late)\b", re.IGNORECASE)
ISO_DAY = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
SCOPE_ID = re.compile(r"\b([SR]\d{1,4})\b")


def plan_facts(plan: ActionPlan) -> dict[str, Any]:
    """Return what a plan says, in the terms suites state expectations in."""
    top = plan.hypotheses[0] if plan.hypotheses else None
    return {
        "target": top.target if top else None,
        "cause": top.cause if top else "unexplained",
        "confidence": top.confidence if top else "low",
        "causes": sorted({h.cause for h in plan.hypotheses}),
        "action": plan.actions[0].action_id if plan.actions else None,
        "actions": sorted({a.action_id for a in plan.actions}),
        "outlook": bool(plan.outlook),
        "no_actions": not plan.actions,
        "no_anomalies": not plan.hypotheses and not plan.actions,
        "not_assessed": sorted(n.cause for n in plan.not_assessed),
        "window": [str(top.window_start or top.day), str(top.day)] if top and top.day else None,
    }


def meets(key: str, want: Any, got: dict[str, Any]) -> bool:
    """Whether a plan's facts meet one expectation."""
    if key == "target_in":
        return got["target"] in want
    if key in ("causes", "actions", "not_assessed"):
        return set(want) <= set(got[key])
    if key == "window_overlaps":
        if not got["window"]:
            return False
        first, last = (date.fromisoformat(str(x)) for x in got["window"])
        return bool(first <= want[1] and last >= want[0])
    return bool(got.get(key) == want)


def treats(action_id: str) -> list[str]:
    """Return the causes a catalog action treats (none for an unknown action)."""
    from tools.catalog import load_catalog as load_actions

    try:
        return load_actions().get(action_id).treats
    except KeyError:
        return []
