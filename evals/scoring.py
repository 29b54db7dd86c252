"""What a case scored: per-incident and per-case results, and reading a plan's answer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from agent.results import ToolResult
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
    notes: list[str] = Field(default_factory=list)
    coherence: dict[str, int] = Field(
        default_factory=dict, description="Coherence problems of the plan, by kind."
    )
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
        "apply_on": str(plan.actions[0].apply_on) if plan.actions else None,
        "actions": sorted({a.action_id for a in plan.actions}),
        "outlook": bool(plan.outlook),
        "no_actions": not plan.actions,
        "no_anomalies": not plan.hypotheses and not plan.actions,
        "not_assessed": sorted(n.cause for n in plan.not_assessed),
        "window": [str(top.window_start or top.day), str(top.day)] if top and top.day else None,
    }


_UNKNOWN = re.compile(
    r"unknown (store|region|table)|not a date|outside the data|has not happened yet|no such",
    re.I,
)


def answer_facts(
    plan: ActionPlan, results: Sequence[ToolResult], notes: list[str]
) -> dict[str, Any]:
    """Return what the run looked at: scopes, period, ranking, KPIs, unknown names.

    Read from the tool calls' results (the evidence), not from the plan's wording, so any
    model's answer is scored the same way.
    """
    scopes: set[str] = set()
    days: list[str] = []
    ranked: list[str] | None = None
    kpis: set[str] = set()
    for r in results:
        res, tool = r.result, r.tool
        if tool == "diagnose":
            scopes.add(res["target"])
            days += [str(res["window_start"]), str(res["day"])]
        elif tool == "scan_anomalies":
            scopes.update(_scope_ids(res.get("scope", "")))
            days += [str(d) for d in res["window"]]
        elif tool == "rank_scopes":
            scopes.update(s["id"] for s in res["ranked"])
            days += [str(res["start"]), str(res["end"])]
            ranked = [s["id"] for s in res["ranked"] if s["significant"]]
        elif tool == "query_kpis":
            scopes.update(_scope_ids(res["scope"]))
            days += [str(res["start"]), str(res["end"])]
            kpis.update(k for k, v in res["totals"].items() if v is not None)
        elif tool == "forecast":
            scopes.update(_scope_ids(res["scope"]))
            kpis.add(res["kpi"])
    said = " ".join([plan.summary, *notes])
    return {
        "scope": sorted(scopes),
        "period": [min(days), max(days)] if days else None,
        "ranked": ranked,
        "kpis": sorted(kpis),
        "unknown": bool(_UNKNOWN.search(said)) and not plan.hypotheses and not plan.actions,
        "persistence": plan.outlook[0].persistence if plan.outlook else None,
    }


def _scope_ids(label: str) -> list[str]:
    """'store S003' -> ['S003']; 'region R1, R2' -> ['R1', 'R2']; 'all stores' -> ['all']."""
    if label in ("all stores", "all", ""):
        return ["all"] if label else []
    _, _, ids = label.partition(" ")
    return [i.strip() for i in ids.split(",") if i.strip()]


def meets(key: str, want: Any, got: dict[str, Any]) -> bool:
    """Whether a plan's facts meet one expectation."""
    if key == "scope":
        return set(want) == set(got["scope"])
    if key == "period":
        return bool(got["period"] == [str(want[0]), str(want[1])])
    if key == "ranked_top":
        ranked = got["ranked"]
        return ranked is not None and (ranked[: len(want)] == list(want) if want else not ranked)
    if key == "kpi":
        return bool(want in got["kpis"])
    if key == "target_in":
        return got["target"] in want
    if key in ("causes", "actions", "not_assessed"):
        return set(want) <= set(got[key])
    if key == "window_within":
        if not got["window"]:
            return False
        first, last = (date.fromisoformat(str(x)) for x in got["window"])
        return bool(want[0] <= first and last <= want[1])
    if key == "window_overlaps":
        if not got["window"]:
            return False
        first, last = (date.fromisoformat(str(x)) for x in got["window"])
        return bool(first <= want[1] and last >= want[0])
    if key == "apply_on":
        return bool(got["apply_on"] == str(want))
    return bool(got.get(key) == want)


def treats(action_id: str) -> list[str]:
    """Return the causes a catalog action treats (none for an unknown action)."""
    from tools.catalog import load_catalog as load_actions

    try:
        return load_actions().get(action_id).treats
    except KeyError:
        return []
