"""Compact views of tool results and evidence for prompts (small local models have 8k contexts).

They keep every field the plan needs (and the template reads) and drop the rest: per-KPI
readings of anomalies other than the late rate, effect intervals and refutation counts,
z-scores.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.results import ToolResult
from tools.core.evidence import Evidence, Number

_DROP_CAUSE_FIELDS = {
    "effect_ci",
    "refutations_passed",
    "refutations_run",
    "linear_contribution",
    "z",
}


_UNSET_WHEN_CALIBRATED = ("calibration", "model_avoided")


def model_view(tool: str, result: dict[str, Any]) -> dict[str, Any]:
    """Return a result as the model reads it: an action's calibration fields only when set.

    An action without a track record has nothing to say there, and a prompt that does not
    change with them keeps the recorded cassettes valid.
    """
    if tool != "recommend_actions" or "actions" not in result:
        return result
    actions = [
        {k: v for k, v in a.items() if not (k in _UNSET_WHEN_CALIBRATED and v is None)}
        for a in result["actions"]
    ]
    return {**result, "actions": actions}


def compact_result(tool: str, result: dict[str, Any]) -> dict[str, Any]:
    """Return a tool result with only what a plan can use."""
    out = model_view(tool, result)
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
    elif tool == "check_data_health":  # the plan's caveat is code's; the model needs the gist
        out = {
            "day": result.get("day"),
            "trusted": result.get("trusted"),
            "findings": [
                {"severity": f["severity"], "what": f["label"]} for f in result.get("findings", [])
            ],
        }
    return out


def compact_results(results: Sequence[ToolResult]) -> list[dict[str, Any]]:
    """Results as ``{id, tool, result}`` JSON with compact results."""
    return [
        {"id": r.id, "tool": r.tool, "result": compact_result(r.tool, r.result)} for r in results
    ]


def _shorten(obj: Any, items: int) -> Any:
    """Every list inside ``obj`` cut to its first ``items`` elements (recursively)."""
    if isinstance(obj, dict):
        return {k: _shorten(v, items) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_shorten(v, items) for v in obj[:items]]
    return obj


def bounded_result(tool: str, result: dict[str, Any], limit: int) -> dict[str, Any]:
    """Return a tool result whose JSON fits ``limit`` characters (long lists cut).

    The full result stays in the run's evidence; the cut result says how many items each
    list had (``shortened_lists``), so the model never reads a list as complete when it was not.
    """
    result = model_view(tool, result)
    if len(json.dumps(result, default=str)) <= limit:
        return result
    for items in (20, 10, 5, 3, 1):
        shortened = _shorten(result, items)
        shortened["shortened_lists"] = {
            k: len(v) for k, v in result.items() if isinstance(v, list) and len(v) > items
        }
        if len(json.dumps(shortened, default=str)) <= limit:
            return dict(shortened)
    return {
        "evidence_id": result.get("evidence_id"),
        "shortened": f"the {tool} result is too long to show; it is kept as evidence",
    }


def bounded_json(results: list[dict[str, Any]], limit: int) -> str:
    """Serialise results as valid JSON of at most ``limit`` characters.

    Long lists are cut first (the first items of a ranked list matter most); if that is not
    enough, the oldest results are left out, and a last entry says how many. Never a slice
    of the text, which would hand the model (or the offline planner) broken JSON.
    """
    text = json.dumps(results, default=str)
    for items in (10, 5, 3):
        if len(text) <= limit:
            return text
        results = _shorten(results, items)
        text = json.dumps(results, default=str)
    kept = list(results)
    while len(text) > limit and kept:
        kept.pop(0)
        omitted = {"omitted": len(results) - len(kept), "why": "too long for the prompt"}
        text = json.dumps([*kept, omitted], default=str)
    return text


def bounded_evidence(evidence: dict[str, dict[str, float]], limit: int) -> str:
    """Serialise evidence numbers as valid JSON of at most ``limit`` characters.

    Each record keeps its first numbers (the headline ones come first); if that is not
    enough, the oldest records are left out.
    """
    text = json.dumps(evidence, default=str)
    for keep in (60, 30, 15):
        if len(text) <= limit:
            return text
        evidence = {i: dict(list(n.items())[:keep]) for i, n in evidence.items()}
        text = json.dumps(evidence, default=str)
    ids = list(evidence)
    while len(text) > limit and ids:
        ids.pop(0)
        text = json.dumps({i: evidence[i] for i in ids}, default=str)
    return text


def prompt_evidence(evidence: Sequence[Evidence]) -> dict[str, dict[str, Number]]:
    """Evidence id -> numbers a plan may quote (z-scores and per-KPI anomaly readings dropped)."""
    out: dict[str, dict[str, Number]] = {}
    for e in evidence:
        numbers = dict(e.numbers)
        if e.tool == "scan_anomalies":
            numbers = {k: v for k, v in numbers.items() if k.count(".") < 2 or ".late_rate." in k}
        out[e.id] = {k: v for k, v in numbers.items() if not k.endswith(".z")}
    return out


CHARS_PER_TOKEN = 4
"""Characters per token of the offline estimate (LangChain's ``count_tokens_approximately``
uses the same ratio): tokenizer files cannot be downloaded here, and a 20 % margin covers
its error on English and JSON."""
TOKEN_MARGIN = 0.8
RESULTS_SHARE = 0.6
"""Share of the data budget for tool results; the evidence numbers get the rest."""


def data_budget_chars(context_tokens: int, reply_tokens: int, fixed_chars: int) -> int:
    """Characters of data a prompt may carry so that prompt and reply fit the context.

    Args:
        context_tokens: the model's context window.
        reply_tokens: tokens reserved for the reply (the request's max tokens).
        fixed_chars: characters of everything else sent (instructions, output schema).
    """
    usable = int((context_tokens - reply_tokens) * TOKEN_MARGIN * CHARS_PER_TOKEN)
    return max(0, usable - fixed_chars)


@dataclass
class ComposeInput:
    """The data of a compose request, built to a budget by whole items."""

    payload: dict[str, Any]
    """``{"request", "tool_results", "evidence"}``."""
    budget_chars: int | None
    dropped_results: list[str] = field(default_factory=list)
    dropped_evidence: list[str] = field(default_factory=list)

    def trace(self) -> dict[str, Any]:
        """Return what the budget did, for the run's trace."""
        return {
            "budget_chars": self.budget_chars,
            "data_chars": len(json.dumps(self.payload, default=str)),
            "dropped_results": self.dropped_results,
            "dropped_evidence": self.dropped_evidence,
        }


def compose_input(
    request: dict[str, Any],
    results: Sequence[ToolResult],
    evidence: Sequence[Evidence],
    budget_chars: int | None,
) -> ComposeInput:
    """Build the compose data within ``budget_chars``, by whole results; never cut JSON.

    ``budget_chars`` None sends everything (the offline planner has no context limit). The
    run's data-health check goes last, the first to give way to the budget: its caveat is
    code's to write (:mod:`agent.health`), the findings the model's to explain.
    """
    compact = compact_results(sorted(results, key=lambda r: r.tool == "check_data_health"))
    numbers = prompt_evidence(sorted(evidence, key=lambda e: e.tool == "check_data_health"))
    if budget_chars is None:
        return ComposeInput(
            payload={"request": request, "tool_results": compact, "evidence": numbers},
            budget_chars=None,
        )
    results_text = bounded_json(compact, int(budget_chars * RESULTS_SHARE))
    kept = [r for r in json.loads(results_text) if "id" in r]
    evidence_text = bounded_evidence(numbers, max(1, budget_chars - len(results_text)))
    kept_numbers = json.loads(evidence_text)
    kept_ids = {r["id"] for r in kept}
    return ComposeInput(
        payload={"request": request, "tool_results": kept, "evidence": kept_numbers},
        budget_chars=budget_chars,
        dropped_results=[r["id"] for r in compact if r["id"] not in kept_ids],
        dropped_evidence=[i for i in numbers if i not in kept_numbers],
    )
