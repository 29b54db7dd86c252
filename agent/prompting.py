"""Compact views of tool results and evidence for prompts (small local models have 8k contexts).

They keep every field the plan needs (and the template reads) and drop the rest: per-KPI
readings of anomalies other than the late rate, effect intervals and refutation counts,
z-scores.
"""

from __future__ import annotations

from typing import Any

_DROP_CAUSE_FIELDS = {
    "effect_ci",
    "refutations_passed",
    "refutations_run",
    "linear_contribution",
    "z",
}


def compact_result(tool: str, result: dict[str, Any]) -> dict[str, Any]:
    """Return a tool result with only what a plan can use."""
    out = dict(result)
    if tool == "scan_anomalies":
        out["anomalies"] = [
            {
                **{k: v for k, v in a.items() if k != "kpis"},
                "late_rate": a.get("kpis", {}).get("late_rate"),
            }
            for a in result.get("anomalies", [])[:10]
        ]
    elif tool == "diagnose":
        out["causes"] = [
            {k: v for k, v in c.items() if k not in _DROP_CAUSE_FIELDS}
            for c in result.get("causes", [])
        ]
        out.pop("method", None)
    elif tool == "query_kpis":
        out["rows"] = result.get("rows", [])[:14]
    elif tool == "run_sql":
        out["rows"] = result.get("rows", [])[:20]
    return out


def compact_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results as ``{id, tool, result}`` with compact results."""
    return [
        {"id": r["id"], "tool": r["tool"], "result": compact_result(r["tool"], r["result"])}
        for r in results
    ]


def prompt_evidence(evidence: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Evidence id -> numbers a plan may quote (z-scores and per-KPI anomaly readings dropped)."""
    out: dict[str, dict[str, float]] = {}
    for e in evidence:
        numbers = e["numbers"]
        if e["tool"] == "scan_anomalies":
            numbers = {k: v for k, v in numbers.items() if k.count(".") < 2 or ".late_rate." in k}
        out[e["id"]] = {k: v for k, v in numbers.items() if not k.endswith(".z")}
    return out
