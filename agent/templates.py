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

from typing import Any

from agent.schemas import (
    ActionPlan,
    Finding,
    NotAssessedCause,
    Outlook,
    PlanHypothesis,
    PlannedAction,
)
from agent.wording import (
    avoided_text,
    cause_label,
    diagnosis_place,
    in_days,
    pct,
    place,
    pts,
    target_name,
    value_text,
    variable_label,
)
from tools.analytics.thresholds import MIN_REFERENCE_DAYS
from tools.catalog import load_catalog
from tools.causal.graph import load_graph

__all__ = ["CAUSE_LABELS", "avoided_text", "pct", "pts", "template_plan", "value_text"]


CAUSE_LABELS: dict[str, str] = {c: cause_label(c) for c in load_graph().cause_names}
"""Cause -> how plans name it (from the reviewed graph), for renderers."""


def _first_up(text: str) -> str:
    return text[:1].upper() + text[1:]


def _by_tool(results: list[dict[str, Any]], tool: str) -> list[dict[str, Any]]:
    return [r for r in results if r["tool"] == tool]


def _forecast_for(results: list[dict[str, Any]], d: dict[str, Any]) -> dict[str, Any] | None:
    label = "all stores" if d["level"] == "chain" else f"{d['level']} {d['target']}"
    for r in reversed(results):
        if r["tool"] == "forecast" and r["result"].get("scope") == label:
            return dict(r)
    return None


def _recommendation_for(results: list[dict[str, Any]], d: dict[str, Any]) -> dict[str, Any] | None:
    for r in reversed(results):
        res = r["result"]
        if r["tool"] == "recommend_actions" and res.get("target") == d["target"]:
            if str(res.get("day")) == str(d["day"]):
                return dict(r)
    return None


class _Plan:
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


def _diagnosis(plan: _Plan, r: dict[str, Any], diagnoses: list[dict[str, Any]]) -> None:
    """Add the findings and hypotheses of one diagnosis."""
    d, eid = r["result"], r["id"]
    where = diagnosis_place(d)
    plan.findings.append(
        Finding(
            text=f"{where[0].upper()}{where[1:]}: late rate {pct(d['value'])} against "
            f"{pct(d['expected'])} normally ({pts(d['excess'])}), about "
            f"{d['late_excess']:,.0f} extra late deliveries.",
            evidence_ids=[eid],
        )
    )
    plan.summary_ids.append(eid)
    if d.get("history_days") is not None and d["history_days"] < MIN_REFERENCE_DAYS:
        plan.findings.append(
            Finding(
                text=f"{place(d['level'], d['target'])} has only {d['history_days']} days of "
                "history: its normal is uncertain and so is every cause below.",
                evidence_ids=[eid],
            )
        )
    regional = _regional_causes(d, diagnoses)
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
                text=f"{_first_up(cause_label(h['cause']))} at {place(d['level'], d['target'])}"
                f"{shared}: {pts(h['contribution'])} of the late rate "
                f"({100 * h['share']:.0f}% of the attributed excess); "
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
    if not d["hypotheses"]:
        plan.findings.append(
            Finding(
                text=f"No measured factor explains the excess at {place(d['level'], d['target'])}"
                f": it is unexplained (low confidence); {pts(d['unexplained'])} is left to "
                "chance or to causes without data.",
                evidence_ids=[eid],
            )
        )
    elif d["confidence"] == "low":
        plan.caveats.append(
            f"The diagnosis of {place(d['level'], d['target'])} is uncertain: "
            "no single cause explains most of the excess."
        )
    for item in d.get("not_assessed", []):
        plan.not_assessed.setdefault(item["cause"], item["reason"])
    top = d["hypotheses"][0]["cause"] if d["hypotheses"] else None
    plan.headline.append(
        f"{place(d['level'], d['target'])} ({cause_label(top) if top else 'unexplained'})"
    )


def _outlook(plan: _Plan, fc: dict[str, Any], d: dict[str, Any]) -> None:
    f = fc["result"]
    verb = {
        "persists": "is expected to persist",
        "fades": "is expected to fade",
        "normal": "is within the usual range",
    }[f["persistence"]]
    plan.outlook.append(
        Outlook(
            target=d["target"],
            persistence=f["persistence"],
            text=f"{place(d['level'], d['target'])}: the late rate forecast averages "
            f"{pct(f['mean_forecast'])} over the next {len(f['points'])} open days against "
            f"{pct(f['normal'])} normally; the deviation {verb}.",
            evidence_ids=[fc["id"]],
        )
    )


def _actions(plan: _Plan, rec: dict[str, Any], d: dict[str, Any]) -> None:
    catalog = load_catalog()
    res = rec["result"]
    for a in res["actions"][:2]:
        spec = catalog.get(a["action_id"])
        ((param, value),) = a["parameters"].items()
        lo, hi = a["avoided_ci"]
        avoided = avoided_text(a["expected_avoided"], lo, hi)
        plan.actions.append(
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
                f"({value:g} {spec.lever.unit}); avoids about {avoided[0]} late deliveries "
                f"(80% interval {avoided[1]} to {avoided[2]}) for ${a['cost']:,.0f}.",
                evidence_ids=[rec["id"]],
                day=res["day"],
                window_days=res.get("window_days", 1),
            )
        )


_LEVEL_NAMES = {
    "store": "Stores",
    "region": "Regions",
    "chain": "All stores together",
}


def _scan(plan: _Plan, scan: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """Add where each level was judged; return the summary's opening sentence."""
    res = scan["result"]
    first, last = res["window"]
    when = f"on {last}" if first == last else f"from {first} to {last}"
    n = len(res["anomalies"])
    plan.summary_ids.insert(0, scan["id"])
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
            plan.findings.append(Finding(text=text + ".", evidence_ids=[scan["id"]]))
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
                evidence_ids=[scan["id"]],
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
                evidence_ids=[scan["id"]],
            )
        )
    if n == 0:
        return f"No store, region or the chain stood out {when} in {res['scope']}."
    diagnosed = {(d["result"]["target"], d["result"]["day"]) for d in _by_tool(results, "diagnose")}
    undiagnosed = [
        a["target"] for a in res["anomalies"] if (a["target"], a["date"]) not in diagnosed
    ]
    if undiagnosed and plan.headline:
        plan.caveats.append(
            "Not diagnosed in this run (a lower score, or a store echoing its region's "
            f"event): {', '.join(undiagnosed[:10])}."
        )
    return f"{n} anomal{'y' if n == 1 else 'ies'} {when} in {res['scope']}."


def _answers(plan: _Plan, results: list[dict[str, Any]], diagnosed: set[str]) -> None:
    """Add the findings of the question tools: other forecasts, KPIs, SQL."""
    for fc in _by_tool(results, "forecast"):
        f = fc["result"]
        if fc["id"] in diagnosed:
            continue
        plan.outlook.append(
            Outlook(
                target=f["scope"],
                persistence=f["persistence"],
                text=f"{f['kpi']} for {f['scope']}: the forecast averages "
                f"{_kpi_text(f['kpi'], f['mean_forecast'])} over the next {len(f['points'])} "
                f"open days against {_kpi_text(f['kpi'], f['normal'])} normally.",
                evidence_ids=[fc["id"]],
            )
        )
    for q in _by_tool(results, "query_kpis"):
        r = q["result"]
        t = r["totals"]
        if t.get("late_rate") is not None and t.get("orders") is not None:
            plan.findings.append(
                Finding(
                    text=f"{r['scope']}, {r['start']} to {r['end']}: "
                    f"late rate {pct(t['late_rate'])} over {t['orders']:,.0f} orders.",
                    evidence_ids=[q["id"]],
                )
            )
            plan.summary_ids.append(q["id"])
    for q in _by_tool(results, "run_sql"):
        plan.findings.append(
            Finding(
                text=f"The query returned {len(q['result']['rows'])} rows.",
                evidence_ids=[q["id"]],
            )
        )


def template_plan(
    results: list[dict[str, Any]], notes: list[str] | None = None, *, fallback: bool = False
) -> ActionPlan:
    """Compose a verified-by-construction plan from the run's tool results.

    Args:
        results: ``{"id": evidence id, "tool": name, "result": result dict}`` in call order.
        notes: things the run could not do (become caveats).
        fallback: mark the plan as replacing a model-written one that failed verification.
    """
    plan = _Plan(notes)
    diagnoses = _by_tool(results, "diagnose")
    used_forecasts: set[str] = set()
    for r in diagnoses:
        d = r["result"]
        _diagnosis(plan, r, [x["result"] for x in diagnoses])
        fc = _forecast_for(results, d)
        if fc is not None:
            used_forecasts.add(fc["id"])
            _outlook(plan, fc, d)
        rec = _recommendation_for(results, d)
        if rec is not None:
            _actions(plan, rec, d)
    _answers(plan, results, used_forecasts)
    scans = _by_tool(results, "scan_anomalies")
    if scans:
        summary = _scan(plan, scans[-1], results)
    elif results:
        summary = "Here is what the data shows."
    else:
        summary = "The data could not answer this; the caveats say why."
    if plan.headline:
        summary += " Leading causes: " + "; ".join(plan.headline) + "."
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
    )


def _kpi_text(kpi: str, x: float) -> str:
    return pct(x) if kpi.endswith("_rate") else f"{x:,.1f}"
