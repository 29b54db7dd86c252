"""Check that a plan's structure agrees with its evidence: it never overpromises.

Held against the plan's structured fields (so a model-written plan is held to it as much as
the templates), using the facts and numbers the tools registered:

* no action and no named cause for a scope whose late rate was within its normal range
  (the diagnosis's one-sided test), unless a forecast for it says the deviation persists;
* the actions on one cell avoid, together, at most the late deliveries above its normal;
* a store inside a region (or the chain) that has actions on the same day gets none of its
  own: its late deliveries are part of the region's, and would be counted twice;
* a hypothesis's confidence is never above the one its diagnosis derived from the evidence
  (explained share, refutations);
* no action for a cell that is over: before the run's latest complete day, an action can no
  longer act (what would have helped belongs in the findings); a day to come is asked for
  with ``apply_on``, and its recommendation must carry that day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from typing import Any

from agent.schemas import ActionPlan

COHERENCE_KINDS = {
    "actions_on_normal_scopes": "propose no action",
    "overpromised_cells": "credit each action",
    "nested_double_counts": "double-counts",
    "stale_actions": "is over",
}
"""Eval metric -> the words of the problem it counts (one problem per offending item)."""

_RANK = {"low": 0, "medium": 1, "high": 2}
_TOLERANCE = 0.05
"""Deliveries: the tools round avoided counts to one decimal."""


def _records(evidence: Mapping[str, Mapping[str, Any]], tool: str) -> list[Mapping[str, Any]]:
    return [r for r in evidence.values() if r.get("tool") == tool]


def _diagnosis_of(
    evidence: Mapping[str, Mapping[str, Any]], target: str, day: str | None
) -> Mapping[str, Any] | None:
    """Return the latest diagnosis of a target (on a day, when given)."""
    found = None
    for r in _records(evidence, "diagnose"):
        facts = r.get("facts", {})
        if facts.get("target") == target and (day is None or facts.get("day") == day):
            found = r
    return found


def _persists(evidence: Mapping[str, Mapping[str, Any]], target: str) -> bool:
    """Whether a forecast of the target says its deviation persists (or a problem comes)."""
    for r in _records(evidence, "forecast"):
        facts = r.get("facts", {})
        if (
            facts.get("target") == target
            and facts.get("kpi", "late_rate") == "late_rate"
            and facts.get("persistence") in ("persists", "coming")
        ):
            return True
    return False


def check_coherence(
    plan: ActionPlan, evidence: Mapping[str, Mapping[str, Any]], known_day: date | None = None
) -> list[str]:
    """Return one instruction per way the plan's structure contradicts its evidence.

    Args:
        plan: the plan.
        evidence: the run's evidence records by id (dicts with ``tool``, ``facts``,
            ``numbers``).
        known_day: the run's latest complete day (None: stale actions are not checked).

    Returns:
        Problems, empty when the plan is coherent.
    """
    problems: list[str] = []
    for i, h in enumerate(plan.hypotheses):
        d = _diagnosis_of(evidence, h.target, h.day.isoformat() if h.day else None)
        if d is None:
            continue
        if d.get("numbers", {}).get("within_normal") and not _persists(evidence, h.target):
            problems.append(
                f"hypothesis {i + 1}: {h.target}'s late rate was within its normal range "
                f"({d['id']}): name no cause for it"
            )
        allowed = d.get("facts", {}).get(f"{h.cause}.confidence")
        if allowed is not None and _RANK[h.confidence] > _RANK.get(allowed, 0):
            problems.append(
                f"hypothesis {i + 1}: confidence {h.confidence!r} is above the diagnosis's "
                f"{allowed!r} ({d['id']}); use {allowed!r}"
            )
    per_cell: dict[tuple[str, str], float] = defaultdict(float)
    caps: dict[tuple[str, str], float] = {}
    for i, a in enumerate(plan.actions):
        day = a.day.isoformat() if a.day else None
        d = _diagnosis_of(evidence, a.target, day)
        if d is not None and d.get("numbers", {}).get("within_normal"):
            if not _persists(evidence, a.target):
                problems.append(
                    f"action {i + 1} ({a.action_id}): {a.target}'s late rate was within its "
                    f"normal range ({d['id']}) and no forecast says a problem is coming: "
                    "propose no action"
                )
        key = (a.target, day or "")
        per_cell[key] += a.expected_avoided
        for eid in a.evidence_ids:
            excess = evidence.get(eid, {}).get("numbers", {}).get("late_excess")
            if excess is not None:
                caps[key] = max(float(excess), 0.0)
    for key, total in per_cell.items():
        if key in caps and total > caps[key] + _TOLERANCE:
            problems.append(
                f"actions at {key[0]} on {key[1]} avoid {total:g} late deliveries together, "
                f"more than the {caps[key]:g} above normal they treat: credit each action "
                "with what it adds to the others"
            )
    problems += _nested(plan, evidence)
    problems += _stale(plan, evidence, known_day)
    return problems


def _stale(
    plan: ActionPlan, evidence: Mapping[str, Mapping[str, Any]], known_day: date | None
) -> list[str]:
    """Actions for a cell that is over, or for a day to come no recommendation sized."""
    problems = []
    for i, a in enumerate(plan.actions):
        if a.apply_on is not None:
            sized = any(
                evidence.get(e, {}).get("facts", {}).get("apply_on") == a.apply_on.isoformat()
                for e in a.evidence_ids
            )
            if not sized:
                problems.append(
                    f"action {i + 1} ({a.action_id}) is for {a.apply_on} but cites no "
                    "recommendation sized for that day: call recommend_actions with apply_on"
                )
        elif known_day is not None and a.day is not None and a.day < known_day:
            problems.append(
                f"action {i + 1} ({a.action_id}) treats {a.day}, which is over (the latest "
                f"complete day is {known_day}): say what would have helped in the findings, "
                "or ask recommend_actions for a day to come with apply_on"
            )
    return problems


def _nested(plan: ActionPlan, evidence: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Actions at a store whose region (or the chain) has actions on the same day."""
    acted = {(a.target, a.day.isoformat() if a.day else "") for a in plan.actions}
    problems = []
    for i, a in enumerate(plan.actions):
        day = a.day.isoformat() if a.day else ""
        d = _diagnosis_of(evidence, a.target, day or None)
        facts = d.get("facts", {}) if d is not None else {}
        if facts.get("level") != "store":
            continue
        for outer in (facts.get("region"), "all"):
            if outer and (outer, day) in acted:
                problems.append(
                    f"action {i + 1} ({a.action_id}) at {a.target} double-counts: {a.target} "
                    f"is inside {outer}, which has actions on {day}; drop the store's action"
                )
                break
    return problems
