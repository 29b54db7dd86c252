"""The actions of a plan: worded from the recommendation's evidence, never counted twice."""

from __future__ import annotations

from typing import Any

from agent.schemas import PlannedAction
from agent.wording import avoided_text, cause_label, place
from tools.catalog import load_catalog

_ANY_CAUSE = {"widen_windows": "wider windows", "extend_promises": "later promised dates"}
"""Levers that act on every late delivery of the cell, not only on their cause's share."""


def planned_actions(rec: dict[str, Any], d: dict[str, Any]) -> list[PlannedAction]:
    """Return the plan's actions for one recommendation (its top two), worded from evidence.

    An action that avoids all of the excess says so, and what its lever would do beyond
    normal is stated apart, never counted; a second action says what it adds to the first.
    """
    catalog = load_catalog()
    out = []
    res = rec["result"]
    for a in res["actions"][:2]:
        spec = catalog.get(a["action_id"])
        ((param, value),) = a["parameters"].items()
        lo, hi = a["avoided_ci"]
        avoided = avoided_text(a["expected_avoided"], lo, hi)
        on_top = f" on top of {', '.join(a['on_top_of'])}" if a.get("on_top_of") else ""
        if not on_top and a["expected_avoided"] >= res["late_excess"] - 0.05:
            effect = f"avoids all {a['expected_avoided']:,.1f} extra late deliveries"
        else:
            effect = (
                f"avoids about {avoided[0]} of the {res['late_excess']:,.1f} extra late "
                f"deliveries{on_top} (80% interval {avoided[1]} to {avoided[2]})"
            )
        if spec.lever.kind in _ANY_CAUSE:
            # its effect is not bounded by its cause's share: say why it may avoid more
            effect += (
                f" ({_ANY_CAUSE[spec.lever.kind]} spare any delivery that is only a little late, "
                "whatever its cause)"
            )
        if a.get("beyond_normal", 0) >= 0.05:
            effect += (
                f"; the lever would avoid {a['beyond_normal']:,.1f} more, below the normal "
                "late rate: not counted"
            )
        out.append(
            PlannedAction(
                action_id=a["action_id"],
                target=d["target"],
                parameters={param: value},
                expected_avoided=a["expected_avoided"],
                avoided_ci=(lo, hi),
                cost=a["cost"],
                needs_approval=spec.needs_approval,
                rationale=f"Treats {cause_label(a['addresses'])} at "
                f"{place(d['level'], d['target'])}: {spec.title.lower()} "
                f"({value:g} {spec.lever.unit}); {effect}; cost "
                f"{money(a['cost'], res.get('currency'))}.",
                evidence_ids=[rec["id"]],
                day=res["day"],
                window_days=res.get("window_days", 1),
            )
        )
    return out


def money(x: float, currency: str | None) -> str:
    """'$1,080' in dollars; '1,080 EUR' in any other currency."""
    if currency in (None, "USD"):
        return f"${x:,.0f}"
    return f"{x:,.0f} {currency}"


def covered_by_region(d: dict[str, Any], results: list[dict[str, Any]]) -> str | None:
    """Return the flagged region (or chain) whose actions already reach this store that day."""
    if d["level"] != "store":
        return None
    for r in results:
        res = r["result"]
        if r["tool"] != "recommend_actions" or not res.get("actions"):
            continue
        if str(res.get("day")) != str(d["day"]) or res.get("target") == d["target"]:
            continue
        if res.get("target") in (d.get("region"), "all"):
            return str(res["target"])
    return None
