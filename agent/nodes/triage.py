"""The triage pipeline: scope -> detect -> diagnose -> forecast -> recommend (no LLM needed)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.context import Context
from agent.nodes.common import call_tool, merge, tool_context
from agent.state import State
from tools.analytics.scope import load_catalog
from tools.data.backend import DuckDBBackend


def scope_request(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Fix the day a triage covers (default: the latest day with data)."""
    if state.mode != "triage" or state.day:
        return {}
    catalog = load_catalog(DuckDBBackend(runtime.context.db))
    return {"day": catalog.last_day.isoformat()}


def detect_anomalies(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Scan the scope on the day (scan_anomalies)."""
    ctx = tool_context(state, runtime.context)
    args = {"scope": state.scope_level, "ids": state.scope_ids, "day": state.day, "max_results": 50}
    return merge([call_tool(ctx, "scan_anomalies", args, "detect")])


def _targets(state: State, limit: int) -> list[str]:
    scan = next(
        (r["result"] for r in reversed(state.results) if r["tool"] == "scan_anomalies"), None
    )
    if not scan:
        return []
    return [a["target"] for a in scan["anomalies"][:limit]]


def diagnose_anomalies(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Diagnose the highest-scoring anomalies (diagnose)."""
    ctx = tool_context(state, runtime.context)
    outcomes = [
        call_tool(ctx, "diagnose", {"target": t, "day": state.day}, "diagnose")
        for t in _targets(state, runtime.context.max_diagnoses)
    ]
    return merge(outcomes)


def _diagnoses(state: State) -> list[dict[str, Any]]:
    return [r["result"] for r in state.results if r["tool"] == "diagnose"]


def forecast_outlook(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Forecast the late rate of every diagnosed target (forecast)."""
    ctx = tool_context(state, runtime.context)
    outcomes = [
        call_tool(
            ctx,
            "forecast",
            {
                "scope": d["level"],
                "ids": [d["target"]],
                "kpi": "late_rate",
                "horizon": runtime.context.horizon_days,
                "as_of": state.day,
            },
            "forecast",
        )
        for d in _diagnoses(state)
    ]
    return merge(outcomes)


def recommend_next(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Recommend catalog actions for every diagnosed target (recommend_actions)."""
    ctx = tool_context(state, runtime.context)
    outcomes = []
    for d in _diagnoses(state):
        causes = [h["cause"] for h in d["hypotheses"]] or [d["causes"][0]["cause"]]
        outcomes.append(
            call_tool(
                ctx,
                "recommend_actions",
                {"target": d["target"], "day": state.day, "causes": causes},
                "recommend",
            )
        )
    return merge(outcomes)
