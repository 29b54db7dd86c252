"""Write an action plan from tool results with fixed templates (the offline composer).

Used by the offline planner to compose, and as the verified fallback when a model-written
plan fails verification twice. Every number is formatted from the evidence it cites, so a
template plan always passes :func:`agent.verify.verify_plan`.

The plan says at which level (a store, a region, all stores) and over which days a problem
was judged and why, names only causes that carry a real share of the excess ("unexplained"
otherwise), lists the causes the data could not speak to, and keeps a store's own cause apart
from the regional event it sits in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

from agent.answers import (
    coming_text,
    forecast_outlooks,
    kpi_findings,
    open_days,
    ranking_findings,
    sql_findings,
)
from agent.plan_actions import covered_by_region, hindsight, nothing_ahead, planned_actions
from agent.results import ToolResult
from agent.schemas import (
    ActionPlan,
    Finding,
    NotAssessedCause,
    Outlook,
)
from agent.template_diagnosis import PlanDraft, add_diagnosis
from agent.untrusted import neutralise
from agent.wording import (
    avoided_text,
    cause_label,
    pct,
    place,
    pts,
    target_name,
    value_text,
)
from tools.catalog import load_catalog
from tools.causal.graph import load_graph

__all__ = ["CAUSE_LABELS", "avoided_text", "pct", "pts", "template_plan", "value_text"]


CAUSE_LABELS: dict[str, str] = {c: cause_label(c) for c in load_graph().cause_names}
"""Cause -> how plans name it (from the reviewed graph), for renderers."""


def _by_tool(results: Sequence[ToolResult], tool: str) -> list[ToolResult]:
    return [r for r in results if r.tool == tool]


def _forecast_for(results: Sequence[ToolResult], d: dict[str, Any]) -> ToolResult | None:
    label = "all stores" if d["level"] == "chain" else f"{d['level']} {d['target']}"
    for r in reversed(results):
        if r.tool == "forecast" and r.result.get("scope") == label:
            return r
    return None


def _recommendation_for(results: Sequence[ToolResult], d: dict[str, Any]) -> ToolResult | None:
    for r in reversed(results):
        res = r.result
        if r.tool == "recommend_actions" and res.get("target") == d["target"]:
            if str(res.get("day")) == str(d["day"]):
                return r
    return None


def _outlook(plan: PlanDraft, fc: ToolResult, d: dict[str, Any], diagnosis_id: str) -> None:
    """Add the forecast of a diagnosed target, against the diagnosis's normal (one per plan)."""
    f = fc.result
    first = f["points"][0]["date"] if f["points"] else "the next open day"
    verb = {
        "persists": f"the deviation is expected to persist on {first}.",
        "fades": f"the deviation is expected to fade by {first}.",
        "normal": "the deviation is within the usual range.",
    }.get(f["persistence"]) or coming_text(f)
    if d.get("within_normal") and f["persistence"] not in ("persists", "coming"):
        verb = "no problem is coming."
    plan.outlook.append(
        Outlook(
            target=d["target"],
            persistence=f["persistence"],
            text=f"{place(d['level'], d['target'])}: the late rate forecast averages "
            f"{pct(f['mean_forecast'])} over the next {open_days(len(f['points']))} against "
            f"{pct(d['expected'])} normally; {verb}",
            evidence_ids=[fc.id, diagnosis_id],
        )
    )


_LEVEL_NAMES = {
    "store": "Stores",
    "region": "Regions",
    "chain": "All stores together",
}


def _scan(plan: PlanDraft, scan: ToolResult, results: Sequence[ToolResult]) -> str:
    """Add where each level was judged; return the summary's opening sentence."""
    res = scan.result
    first, last = res["window"]
    when = f"on {last}" if first == last else f"from {first} to {last}"
    n = len(res["anomalies"])
    plan.summary_ids.insert(0, scan.id)
    for level in res.get("judged", []):
        coarse = [g for g in level["grains"] if int(g) > 1]
        if level["notes"] and (coarse or level["not_judged"] or level.get("young")):
            # one example suffices where a whole level is too thin (thousands of sellers)
            name = _LEVEL_NAMES[level["level"]]
            text = (
                f"{name}: none can be judged alone; the busiest: " + level["notes"][0]
                if not level["grains"]
                else f"{name}: " + "; ".join(level["notes"])
            )
            plan.findings.append(Finding(text=text + ".", evidence_ids=[scan.id]))
    silent = res.get("no_deliveries", [])
    windows = any(int(g) > 1 for level in res.get("judged", []) for g in level["grains"])
    if not res.get("store_days_scanned", 1):
        if not windows:
            return (
                f"No deliveries {when} in {res['scope']}: a closed day or a gap in the data, "
                "so there is nothing to judge."
            )
        plan.findings.append(
            Finding(
                text=f"No deliveries were due {when} in {res['scope']}; the windows ending "
                f"{'then' if first == last else 'on those days'} were judged.",
                evidence_ids=[scan.id],
            )
        )
    if silent:
        names = ", ".join(silent[:10]) + (
            f" ({len(silent)} stores in all)" if len(silent) > 10 else ""
        )
        plan.findings.append(
            Finding(
                text=f"No deliveries {when} at {names}, which usually "
                f"deliver{'s' * (len(silent) == 1)} on "
                f"{'that day' if first == last else 'those days'} of the "
                "week: closed, a gap in the data, or no longer delivering; nothing to judge there.",
                evidence_ids=[scan.id],
            )
        )
    if n == 0:
        return f"No store, region or the chain stood out {when} in {res['scope']}."
    diagnosed = {d.result["target"] for d in _by_tool(results, "diagnose")}
    undiagnosed = list(
        dict.fromkeys(a["target"] for a in res["anomalies"] if a["target"] not in diagnosed)
    )
    if undiagnosed and plan.headline:
        plan.caveats.append(
            "Not diagnosed in this run (a lower score, a store echoing its region's event, "
            f"or a region flagged for one store's bad day): {', '.join(undiagnosed[:10])}."
        )
    days = Counter(target_name(a["target"]) for a in res["anomalies"])
    found = [f"{t} (on more than one day)" if k > 1 else t for t, k in days.items()]
    listed = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    return f"{n} anomal{'y' if n == 1 else 'ies'} {when} in {res['scope']}: {listed}."


def _answers(plan: PlanDraft, results: Sequence[ToolResult], diagnosed: set[str]) -> str | None:
    """Add the findings of the question tools; return a ranking's summary sentence."""
    plan.outlook += forecast_outlooks(results, diagnosed)
    kpis = kpi_findings(results)
    plan.findings += kpis
    plan.summary_ids += [f.evidence_ids[0] for f in kpis]
    ranked, summary = ranking_findings(results)
    plan.findings += ranked
    if summary:
        plan.summary_ids += [r.id for r in _by_tool(results, "rank_scopes")]
    plan.findings += sql_findings(results)
    return summary


def _over(rec: ToolResult, known_day: date | None) -> bool:
    """Whether a recommendation is for a day that is over (before the latest day known)."""
    res = rec.result
    if known_day is None or res.get("apply_on"):
        return False
    return date.fromisoformat(str(res["day"])) < known_day


def template_plan(
    results: Sequence[ToolResult],
    notes: list[str] | None = None,
    *,
    known_day: date | None = None,
    fallback: bool = False,
) -> ActionPlan:
    """Compose a verified-by-construction plan from the run's tool results.

    Args:
        results: the run's tool results, in call order.
        notes: things the run could not do (become caveats).
        known_day: the run's latest complete day (:func:`agent.periods.latest_known_day`; a
            triage's day): a recommendation for an earlier day says what would have helped
            instead of proposing actions. None: every recommendation proposes.
        fallback: mark the plan as replacing a model-written one that failed verification.
    """
    plan = PlanDraft(notes)
    diagnoses = _by_tool(results, "diagnose")
    used_forecasts: set[str] = set()
    for r in diagnoses:
        d = r.result
        add_diagnosis(plan, r, [x.result for x in diagnoses])
        fc = _forecast_for(results, d)
        if fc is not None:
            used_forecasts.add(fc.id)
            _outlook(plan, fc, d, r.id)
        rec = _recommendation_for(results, d)
        region = covered_by_region(d, results)
        if rec is not None and region is not None and rec.result["actions"]:
            # its late deliveries are part of the region's: counting them again double-counts
            plan.findings.append(
                Finding(
                    text=f"{d['target']} is inside {target_name(region)}: the actions for "
                    f"{target_name(region)} reach it, so none is proposed for it separately.",
                    evidence_ids=[rec.id],
                )
            )
        elif rec is not None and _over(rec, known_day):
            said = hindsight(rec, d)
            plan.findings += [said] if said else []
        elif rec is not None:
            proposed = planned_actions(rec, d)
            plan.actions += proposed
            fading = fc is not None and fc.result["persistence"] in ("fades", "normal")
            if proposed and fading and not rec.result.get("apply_on"):
                plan.caveats.append(
                    f"The forecast expects {place(d['level'], d['target'])} back near normal "
                    f"after {d['day']}: approve its actions only if the problem is still there "
                    "today."
                )
            nothing = nothing_ahead(rec, d)
            plan.outlook += [nothing] if nothing else []
            held = _in_effect(rec, d)
            if held:
                plan.in_effect[d["target"]] = held
                plan.findings += held
    ranking = _answers(plan, results, used_forecasts)
    scans = _by_tool(results, "scan_anomalies")
    if scans:
        summary = _scan(plan, scans[-1], results)
    elif ranking:
        summary = ranking
    elif plan.findings or plan.outlook:
        # a direct question: its first answer is the summary
        first = plan.findings[0] if plan.findings else plan.outlook[0]
        summary = first.text
        plan.summary_ids += first.evidence_ids
    elif notes:
        note = notes[-1].removeprefix("I could not answer: ")
        summary = f"I could not answer: {note}" + ("" if note.endswith(".") else ".")
    else:
        summary = "The data could not answer this; the caveats say why."
    if plan.normal:
        summary += f" Within the normal range: {', '.join(plan.normal)}; nothing to treat there."
    coming_up = [
        o for o in plan.outlook if o.persistence == "coming" and o.target not in plan.in_effect
    ]
    if coming_up and "a problem is coming" not in summary:
        summary += (
            " But the forecast expects a problem at "
            + ", ".join(target_name(o.target) for o in coming_up)
            + " (see what happens next); no action is sized for it until a day shows its causes."
        )
        plan.summary_ids += [i for o in coming_up for i in o.evidence_ids]
    if plan.headline:
        summary += " Leading causes: " + "; ".join(plan.headline) + "."
    for held in plan.in_effect.values():
        summary += " " + " ".join(f.text for f in held)
        plan.summary_ids += [i for f in held for i in f.evidence_ids]
    if plan.actions:
        best = plan.actions[0]
        summary += (
            f" First action: {load_catalog().get(best.action_id).title.lower()} at "
            f"{target_name(best.target)}, about "
            f"{avoided_text(best.expected_avoided, *best.avoided_ci)[0]} late deliveries avoided."
        )
        plan.summary_ids.append(best.evidence_ids[0])
    if plan.not_assessed:
        plan.caveats.append(
            "Not assessed (no data): "
            + "; ".join(f"{cause_label(c)} ({why})" for c, why in plan.not_assessed.items())
            + "."
        )
    if not results and not plan.caveats:
        plan.caveats.append("No tool result was available to answer from.")
    # quoted data (a note, an id from the question) never brings markup into the plan
    return ActionPlan(
        summary=summary,
        summary_evidence_ids=list(dict.fromkeys(plan.summary_ids)),
        findings=plan.findings,
        hypotheses=plan.hypotheses,
        actions=plan.actions,
        outlook=plan.outlook,
        caveats=plan.caveats,
        not_assessed=[NotAssessedCause(cause=c, reason=w) for c, w in plan.not_assessed.items()],
        fallback=fallback,
    ).with_texts(_plain)


def _in_effect(rec: ToolResult, d: dict[str, Any]) -> list[Finding]:
    """Say which actions for a target are already approved and in effect (not proposed again)."""
    return [
        Finding(
            text=f"Already in effect at {target_name(d['target'])}: "
            f"{load_catalog().get(action_id).title.lower()}, {why}; not proposed again.",
            evidence_ids=[rec.id],
        )
        for action_id, why in (rec.result.get("in_effect") or {}).items()
    ]


def _plain(text: str) -> str:
    """Neutralise markup; a brace becomes a bracket.

    A template quotes notes (a model's reply, a tool's error) and names from the data, braces
    and all; in a plan a brace reads as an evidence reference (:mod:`agent.references`), and
    a template's numbers are literals, never references.
    """
    return neutralise(text).replace("{", "(").replace("}", ")")
