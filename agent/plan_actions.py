"""The actions of a plan: worded from the recommendation's evidence, never counted twice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.results import ToolResult
from agent.schemas import Finding, LeverSetting, Outlook, PlannedAction
from agent.wording import avoided_text, cause_label, deliveries, place
from tools.catalog import load_catalog

_ANY_CAUSE = {"widen_windows": "wider windows", "extend_promises": "later promised dates"}
"""Levers that act on every late delivery of the cell, not only on their cause's share."""


def planned_actions(rec: ToolResult, d: dict[str, Any]) -> list[PlannedAction]:
    """Return the plan's actions for one recommendation (its top two), worded from evidence.

    An action that avoids all of the excess says so, and what its lever would do beyond
    normal is stated apart, never counted; a second action says what it adds to the first.
    """
    catalog = load_catalog()
    out = []
    res = rec.result
    ahead = res.get("apply_on")
    # for a day to come: the excess the forecast expects then; else the cell's own
    excess = res["expected_excess"] if ahead else res["late_excess"]
    extra = f"extra late deliveries expected on {ahead}" if ahead else "extra late deliveries"
    for a in res["actions"][:2]:
        spec = catalog.get(a["action_id"])
        ((param, value),) = a["parameters"].items()
        lo, hi = a["avoided_ci"]
        avoided = avoided_text(a["expected_avoided"], lo, hi)
        on_top = f" on top of {', '.join(a['on_top_of'])}" if a.get("on_top_of") else ""
        if not on_top and a["expected_avoided"] >= excess - 0.05:
            effect = f"avoids all {deliveries(a['expected_avoided'])} {extra}"
        else:
            effect = (
                f"avoids about {avoided[0]} of the {deliveries(excess)} {extra}{on_top} "
                f"(80% interval {avoided[1]} to {avoided[2]})"
            )
        if spec.lever.kind in _ANY_CAUSE:
            # its effect is not bounded by its cause's share: say why it may avoid more
            effect += (
                f" ({_ANY_CAUSE[spec.lever.kind]} spare any delivery that is only a little late, "
                "whatever its cause)"
            )
        if a.get("beyond_normal", 0) >= 0.05:
            effect += (
                f"; the lever would avoid {deliveries(a['beyond_normal'])} more, below the normal "
                "late rate: not counted"
            )
        out.append(
            PlannedAction(
                action_id=a["action_id"],
                target=d["target"],
                parameters=[LeverSetting(name=param, value=value)],
                expected_avoided=a["expected_avoided"],
                avoided_low=lo,
                avoided_high=hi,
                cost=a["cost"],
                needs_approval=spec.needs_approval,
                rationale=(f"For {ahead}: treats" if ahead else "Treats")
                + f" {cause_label(a['addresses'])} at "
                f"{place(d['level'], d['target'])}: {spec.title.lower()} "
                f"({value:g} {spec.lever.unit}); {effect}; cost "
                f"{money(a['cost'], res.get('currency'))}.",
                evidence_ids=[rec.id],
                day=res["day"],
                window_days=res.get("window_days", 1),
                apply_on=ahead,
            )
        )
    return out


def money(x: float, currency: str | None) -> str:
    """'$1,080' in dollars; '1,080 EUR' in any other currency."""
    if currency in (None, "USD"):
        return f"${x:,.0f}"
    return f"{x:,.0f} {currency}"


def covered_by_region(d: dict[str, Any], results: Sequence[ToolResult]) -> str | None:
    """Return the flagged region (or chain) whose actions already reach this store that day."""
    if d["level"] != "store":
        return None
    for r in results:
        res = r.result
        if r.tool != "recommend_actions" or not res.get("actions"):
            continue
        if str(res.get("day")) != str(d["day"]) or res.get("target") == d["target"]:
            continue
        if res.get("target") in (d.get("region"), "all"):
            return str(res["target"])
    return None


def hindsight(rec: ToolResult, d: dict[str, Any]) -> Finding | None:
    """Say what would have helped on a day that is over (its actions cannot be dispatched)."""
    res = rec.result
    if not res["actions"]:
        return None
    a = res["actions"][0]
    spec = load_catalog().get(a["action_id"])
    avoided = avoided_text(a["expected_avoided"], *a["avoided_ci"])[0]
    share = (
        f"all {deliveries(res['late_excess'])}"
        if a["expected_avoided"] >= res["late_excess"] - 0.05
        else f"about {avoided} of the {deliveries(res['late_excess'])}"
    )
    return Finding(
        text=f"What would have helped at {place(d['level'], d['target'])} on {res['day']}: "
        f"{spec.title.lower()}, {share} extra late deliveries avoided for "
        f"{money(a['cost'], res.get('currency'))}. That day is over, so nothing is proposed "
        "for approval; ask what to do tomorrow for actions to come.",
        evidence_ids=[rec.id],
    )


def nothing_ahead(rec: ToolResult, d: dict[str, Any]) -> Outlook | None:
    """Say so when actions were asked for a day to come that the forecast expects normal."""
    res = rec.result
    expected = res.get("expected_excess")
    if not res.get("apply_on") or res["actions"] or expected is None or expected >= 1:
        return None
    return Outlook(
        target=d["target"],
        text=f"Nothing to do at {place(d['level'], d['target'])} for {res['apply_on']}: the "
        "forecast expects the late rate back within its normal range by then.",
        evidence_ids=[rec.id],
    )
