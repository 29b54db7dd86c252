"""The diagnosis part of a template plan: findings, hypotheses and caveats of a diagnosis.

Split from :mod:`agent.templates`, which assembles the whole plan from these parts.
"""

from __future__ import annotations

from typing import Any

from agent.results import ToolResult
from agent.schemas import Finding, Outlook, PlanHypothesis, PlannedAction
from agent.wording import (
    cause_label,
    diagnosis_place,
    in_days,
    pct,
    place,
    pts,
    value_text,
    variable_label,
)
from tools.analytics.thresholds import MIN_REFERENCE_DAYS


def first_up(text: str) -> str:
    """Capitalise the first letter only ('a slow hand-over' -> 'A slow hand-over')."""
    return text[:1].upper() + text[1:]


class PlanDraft:
    """The plan under construction."""

    def __init__(self, notes: list[str] | None) -> None:
        self.findings: list[Finding] = []
        self.hypotheses: list[PlanHypothesis] = []
        self.actions: list[PlannedAction] = []
        self.outlook: list[Outlook] = []
        self.caveats = list(notes or [])
        self.not_assessed: dict[str, str] = {}
        self.summary_ids: list[str] = []
        self.headline: list[str] = []
        self.normal: list[str] = []  # targets within their normal range
        self.in_effect: dict[str, list[Finding]] = {}  # target -> actions already approved


def _regional_causes(d: dict[str, Any], diagnoses: list[dict[str, Any]]) -> dict[str, str]:
    """Causes of the regional (or chain) event a store's anomaly sits in: cause -> its place."""
    if d["level"] != "store":
        return {}
    out: dict[str, str] = {}
    for other in diagnoses:
        inside = other["level"] == "chain" or (
            other["level"] == "region" and other["target"] == d.get("region")
        )
        if inside and other["day"] == d["day"]:
            for h in other["hypotheses"]:
                out[h["cause"]] = place(other["level"], other["target"])
    return out


def add_diagnosis(plan: PlanDraft, r: ToolResult, diagnoses: list[dict[str, Any]]) -> None:
    """Add the findings, hypotheses and caveats of one diagnosis."""
    d, eid = r.result, r.id
    where = diagnosis_place(d)
    plan.findings.append(
        Finding(
            text=f"{where[0].upper()}{where[1:]}: late rate {pct(d['value'])} against "
            f"{pct(d['expected'])} normally ({pts(d['excess'])}), "
            + (
                f"about {_count(d['late_excess'])} extra late deliveries"
                if d["late_excess"] >= 0
                else f"about {_count(-d['late_excess'])} fewer late deliveries than normal"
            )
            + (": within its normal range, nothing to treat." if d.get("within_normal") else "."),
            evidence_ids=[eid],
        )
    )
    plan.summary_ids.append(eid)
    if d.get("within_normal"):
        plan.normal.append(place(d["level"], d["target"]))
        return
    if d.get("history_days") is not None and d["history_days"] < MIN_REFERENCE_DAYS:
        plan.findings.append(
            Finding(
                text=f"{place(d['level'], d['target'])} has only {d['history_days']} days of "
                "history: its normal is uncertain and so is every cause below.",
                evidence_ids=[eid],
            )
        )
    _hypotheses(plan, d, eid, _regional_causes(d, diagnoses))
    _shares(plan, d, eid)
    for item in d.get("not_assessed", []):
        plan.not_assessed.setdefault(item["cause"], item["reason"])
    top = d["hypotheses"][0]["cause"] if d["hypotheses"] else None
    plan.headline.append(
        f"{place(d['level'], d['target'])} ({cause_label(top) if top else 'unexplained'})"
    )


def _hypotheses(plan: PlanDraft, d: dict[str, Any], eid: str, regional: dict[str, str]) -> None:
    """Add the top three causes of a diagnosis, each with its reading against normal."""
    for h in d["hypotheses"][:3]:
        c = next(c for c in d["causes"] if c["cause"] == h["cause"])
        days = in_days(c["variable"], c["value"])
        shared = (
            f" (shared with the event at {regional[h['cause']]})" if h["cause"] in regional else ""
        )
        plan.hypotheses.append(
            PlanHypothesis(
                target=d["target"],
                cause=h["cause"],
                confidence=h["confidence"],
                text=f"{first_up(cause_label(h['cause']))} at {place(d['level'], d['target'])}"
                f"{shared}: {pts(h['contribution'])} of the {pts(d['excess'])} excess; "
                f"{variable_label(c['variable'])} "
                f"{value_text(c['variable'], c['value'], days=days)} "
                f"against {value_text(c['variable'], c['expected'], days=days)} normally.",
                evidence_ids=[eid],
                variable=c["variable"],
                value=c["value"],
                expected=c["expected"],
                window_start=d.get("window_start"),
                day=d["day"],
            )
        )


def _shares(plan: PlanDraft, d: dict[str, Any], eid: str) -> None:
    """Say how the excess splits between causes (or that nothing explains it)."""
    where = place(d["level"], d["target"])
    if d["hypotheses"]:
        parts = [f"{cause_label(h['cause'])} {pts(h['contribution'])}" for h in d["hypotheses"][:3]]
        rest = d["excess"] - sum(h["contribution"] for h in d["hypotheses"][:3])
        plan.findings.append(
            Finding(
                text=f"Of the {pts(d['excess'])} at {where}: "
                + ", ".join(parts)
                + f", other factors and chance {pts(rest)}.",
                evidence_ids=[eid],
            )
        )
    else:
        plan.findings.append(
            Finding(
                text=f"No measured factor explains the excess at {where}"
                f": it is unexplained (low confidence); {pts(d['unexplained'])} is left to "
                "chance or to causes without data.",
                evidence_ids=[eid],
            )
        )
    if d["hypotheses"] and d["confidence"] == "low":
        plan.caveats.append(
            f"The diagnosis of {where} is uncertain: no single cause explains most of the excess."
        )


def _count(x: float) -> str:
    """Deliveries: whole numbers ('33'), never '1 orders' style fractions of one."""
    return f"{x:,.0f}"
