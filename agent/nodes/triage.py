"""The triage pipeline: scope -> detect -> diagnose -> forecast -> recommend (no LLM needed)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.context import Context
from agent.errors import DataHealthStop
from agent.nodes.common import (
    call_tool,
    forecast_scope,
    known_day,
    merge,
    results_of,
    tool_context,
)
from agent.state import State
from tools.analytics.scope import load_catalog
from tools.analytics.thresholds import ONE_STORE_SHARE


def scope_request(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Fix the day a triage covers (default: the latest day with data); check its data.

    The data-health check (``check_data_health``) runs first in every run, on the triaged
    day or, for a question, the latest complete day. A severe finding stops the run with
    the check's words (no plan rather than a wrong one); warnings reach the plan as caveats
    (:func:`agent.health.with_health`).

    Raises:
        DataHealthStop: a required column is gone, the chain has no deliveries on a day it
            delivers, or a feed is stale beyond its configured age.
    """
    update: dict[str, Any] = {}
    if state.mode == "triage" and not state.day:
        update["day"] = load_catalog(runtime.context.backend()).last_day.isoformat()
    day = update.get("day") or state.day
    if state.mode != "triage":
        day = known_day(state, runtime.context).isoformat()
    ctx = tool_context(state, runtime.context)
    outcome = call_tool(ctx, "check_data_health", {"day": day}, "scope_request")
    result = outcome.result or {}
    if result.get("severe"):
        raise DataHealthStop(
            "; ".join(f["message"] for f in result["findings"] if f["severity"] == "severe")
        )
    return merge([outcome], runtime, **update)


def detect_anomalies(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Scan the scope on the day (scan_anomalies)."""
    ctx = tool_context(state, runtime.context)
    args = {"scope": state.scope_level, "ids": state.scope_ids, "day": state.day, "max_results": 50}
    return merge([call_tool(ctx, "scan_anomalies", args, "detect")], runtime)


def _anomalies(state: State, runtime: Runtime[Context]) -> list[dict[str, Any]]:
    scans = results_of(state, runtime, "scan_anomalies")
    if not scans:
        return []
    return triage_order(list(scans[-1].result["anomalies"]))[: runtime.context.max_diagnoses]


def triage_order(anomalies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order anomalies for the diagnosis budget: problems of their own first.

    A store flagged inside a region flagged on the same day, whose leading KPI (after the
    late rate) is one the region's anomaly is flagged on too (the storm's rain at a wetter
    store), is most likely that regional event again: it is diagnosed after the anomalies
    that have a cause of their own (a shortage elsewhere, a dispatch backlog inside the
    storm), in score order within each group. The other way round, a region whose excess
    is mostly one flagged store's (a small region, one store's bad day) is that store's
    problem: it is left out, so the plan treats the store, not the region.
    """
    regions = {(a["target"], a["date"]): a for a in anomalies if a["level"] == "region"}

    def echoes_region(a: dict[str, Any]) -> bool:
        region = regions.get((a.get("region"), a["date"]))
        if a["level"] != "store" or region is None:
            return False
        own = [d for d in a.get("drivers", []) if d != "late_rate"]
        return bool(own) and own[0] in region.get("drivers", [])

    kept = [a for a in anomalies if not _one_stores(a, anomalies)]
    return sorted(kept, key=echoes_region)  # stable: score order within each group


def _one_stores(region: dict[str, Any], anomalies: list[dict[str, Any]]) -> bool:
    """Whether a region anomaly's late-delivery excess is mostly one flagged store's."""
    excess = region.get("late_excess")
    if region["level"] != "region" or not excess or excess <= 0:
        return False
    return any(
        a["level"] == "store"
        and a.get("region") == region["target"]
        and a["date"] == region["date"]
        and (a.get("late_excess") or 0.0) >= ONE_STORE_SHARE * excess
        for a in anomalies
    )


def diagnose_anomalies(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Diagnose the highest-scoring anomalies (diagnose), each over the cell the scan judged."""
    ctx = tool_context(state, runtime.context)
    outcomes = [
        call_tool(
            ctx,
            "diagnose",
            {"target": a["target"], "day": a["date"], "window_days": a.get("grain_days", 1)},
            "diagnose",
        )
        for a in _anomalies(state, runtime)
    ]
    return merge(outcomes, runtime)


def _diagnoses(state: State, runtime: Runtime[Context]) -> list[dict[str, Any]]:
    return [r.result for r in results_of(state, runtime, "diagnose")]


def forecast_outlook(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Forecast the late rate of every diagnosed target (forecast)."""
    ctx = tool_context(state, runtime.context)
    outcomes = [
        call_tool(
            ctx,
            "forecast",
            {
                **forecast_scope(d),
                "kpi": "late_rate",
                "horizon": runtime.context.horizon_days,
                "as_of": d["day"],
            },
            "forecast",
        )
        for d in _diagnoses(state, runtime)
    ]
    return merge(outcomes, runtime)


def own_causes(diagnosis: dict[str, Any], diagnoses: list[dict[str, Any]]) -> list[str]:
    """Return the causes a diagnosed target's actions should treat.

    A store that stands out inside a regional event diagnosed the same day shares the
    region's cause (the storm reached it too): its own actions treat only what the region's
    do not, so the plan reports the regional cause once and the store's excess beyond it.
    """
    causes = [h["cause"] for h in diagnosis["hypotheses"]]
    if diagnosis["level"] != "store":
        return causes
    regional = {
        h["cause"]
        for d in diagnoses
        if d["day"] == diagnosis["day"]
        and (
            d["level"] == "chain" or (d["level"] == "region" and d["target"] == diagnosis["region"])
        )
        for h in d["hypotheses"]
    }
    return [c for c in causes if c not in regional]


def recommend_next(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Recommend catalog actions for every diagnosed target with a cause (recommend_actions)."""
    ctx = tool_context(state, runtime.context)
    diagnoses = _diagnoses(state, runtime)
    outcomes = []
    for d in diagnoses:
        causes = own_causes(d, diagnoses)
        if not causes:
            continue  # nothing explains it, or the regional actions already treat it
        outcomes.append(
            call_tool(
                ctx,
                "recommend_actions",
                {
                    "target": d["target"],
                    "day": d["day"],
                    "window_days": d["grain_days"],
                    "causes": causes,
                },
                "recommend",
            )
        )
    return merge(outcomes, runtime)
