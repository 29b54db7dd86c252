"""Write an action plan from tool results with fixed templates (the offline composer).

Used by the offline planner to compose, and as the verified fallback when a model-written
plan fails verification twice. Every number is formatted from the evidence it cites, so a
template plan always passes :func:`agent.verify.verify_plan`.
"""

from __future__ import annotations

from typing import Any

from agent.schemas import ActionPlan, Finding, Outlook, PlanHypothesis, PlannedAction
from tools.catalog import load_catalog
from tools.causal.graph import load_graph

CAUSE_LABELS = {
    "driver_no_shows": "driver no-shows",
    "weather": "weather",
    "carrier_failure": "the delivery partner (DSP) failing",
    "unplanned_volume": "unplanned volume",
    "dispatch_delay": "late picking and dispatch",
    "traffic": "traffic",
}


def pct(x: float) -> str:
    """0.2394 -> '23.9%'."""
    return f"{100 * x:.1f}%"


def pts(x: float) -> str:
    """0.1496 -> '+15.0 pts'."""
    return f"{100 * x:+.1f} pts"


def avoided_text(point: float, lo: float, hi: float) -> tuple[str, str, str]:
    """Format late deliveries avoided and its interval with one shared precision.

    Whole deliveries read best, but a narrow interval (a well-estimated effect on one
    store-day) would print as "6 to 6", so it keeps one decimal then.

    >>> avoided_text(42.3, 40.8, 43.9)
    ('42', '41', '44')
    >>> avoided_text(5.9, 5.7, 6.1)
    ('5.9', '5.7', '6.1')
    """
    digits = 0 if hi - lo >= 2 else 1
    return f"{point:,.{digits}f}", f"{lo:,.{digits}f}", f"{hi:,.{digits}f}"


def value_text(variable: str, x: float | None) -> str:
    """Format a graph variable's value in its unit."""
    if x is None:
        return "n/a"
    if variable in ("no_show_rate", "late_rate"):
        return pct(x)
    if variable == "dsp_gap":
        return f"{100 * x:.1f} pts"
    if variable == "precip_mm":
        return f"{x:.1f} mm"
    if variable == "dispatch_delay_min":
        return f"{x:.1f} min"
    if variable == "traffic_index":
        return f"{x:.2f}"
    return f"{x:.1f}"


def _by_tool(results: list[dict[str, Any]], tool: str) -> list[dict[str, Any]]:
    return [r for r in results if r["tool"] == tool]


def _for_target(results: list[dict[str, Any]], tool: str, target: str) -> dict[str, Any] | None:
    for r in reversed(results):
        res: dict[str, Any] = r["result"]
        if r["tool"] != tool:
            continue
        if tool == "forecast" and target in str(res.get("scope", "")).split(" ")[-1].split(", "):
            return dict(r)
        if res.get("target") == target:
            return dict(r)
    return None


def template_plan(
    results: list[dict[str, Any]], notes: list[str] | None = None, *, fallback: bool = False
) -> ActionPlan:
    """Compose a verified-by-construction plan from the run's tool results.

    Args:
        results: ``{"id": evidence id, "tool": name, "result": result dict}`` in call order.
        notes: things the run could not do (become caveats).
        fallback: mark the plan as replacing a model-written one that failed verification.
    """
    catalog = load_catalog()
    graph = load_graph()
    # node labels without their unit: the value printed next to them carries it
    labels = {n.cause: n.label.split(" (")[0] for n in graph.nodes.values() if n.cause}
    findings: list[Finding] = []
    hypotheses: list[PlanHypothesis] = []
    actions: list[PlannedAction] = []
    outlook: list[Outlook] = []
    caveats = list(notes or [])
    summary_ids: list[str] = []
    headline: list[str] = []

    scans = _by_tool(results, "scan_anomalies")
    for d in _by_tool(results, "diagnose"):
        res, eid = d["result"], d["id"]
        target, day = res["target"], res["day"]
        findings.append(
            Finding(
                text=f"{target} on {day}: late rate {pct(res['value'])} against "
                f"{pct(res['expected'])} on a normal day ({pts(res['excess'])}), about "
                f"{res['late_excess']:,.0f} extra late deliveries.",
                evidence_ids=[eid],
            )
        )
        summary_ids.append(eid)
        for h in res["hypotheses"][:3]:
            cause = next(c for c in res["causes"] if c["cause"] == h["cause"])
            hypotheses.append(
                PlanHypothesis(
                    target=target,
                    cause=h["cause"],
                    confidence=h["confidence"],
                    text=f"{CAUSE_LABELS.get(h['cause'], h['cause']).capitalize()} at {target}: "
                    f"{pts(h['contribution'])} of the late rate "
                    f"({100 * h['share']:.0f}% of the attributed excess); "
                    f"{labels.get(h['cause'], cause['variable'])} "
                    f"{value_text(cause['variable'], cause['value'])} "
                    f"against {value_text(cause['variable'], cause['expected'])} normally.",
                    evidence_ids=[eid],
                )
            )
        if res["confidence"] == "low":
            caveats.append(
                f"The diagnosis of {target} is uncertain: "
                "no single cause explains most of the excess."
            )
        top = res["hypotheses"][0]["cause"] if res["hypotheses"] else res["causes"][0]["cause"]
        headline.append(f"{target} ({CAUSE_LABELS.get(top, top)})")

        fc = _for_target(results, "forecast", target)
        if fc is not None:
            f = fc["result"]
            verb = {
                "persists": "is expected to persist",
                "fades": "is expected to fade",
                "normal": "is within the usual range",
            }[f["persistence"]]
            outlook.append(
                Outlook(
                    target=target,
                    persistence=f["persistence"],
                    text=f"{target}: the late rate forecast averages {pct(f['mean_forecast'])} "
                    f"over the next {len(f['points'])} days against {pct(f['normal'])} "
                    f"normally; the deviation {verb}.",
                    evidence_ids=[fc["id"]],
                )
            )
        rec = _for_target(results, "recommend_actions", target)
        if rec is not None:
            for a in rec["result"]["actions"][:2]:
                spec = catalog.get(a["action_id"])
                ((param, value),) = a["parameters"].items()
                lo, hi = a["avoided_ci"]
                avoided = avoided_text(a["expected_avoided"], lo, hi)
                actions.append(
                    PlannedAction(
                        action_id=a["action_id"],
                        target=target,
                        parameters={param: value},
                        expected_avoided=a["expected_avoided"],
                        avoided_ci=(lo, hi),
                        cost=a["cost"],
                        needs_approval=spec.needs_approval,
                        rationale="Treats "
                        f"{CAUSE_LABELS.get(a['addresses'], a['addresses'])} at {target}: "
                        f"{spec.title.lower()} ({value:g} {spec.lever.unit}); avoids about "
                        f"{avoided[0]} late deliveries "
                        f"(80% interval {avoided[1]} to {avoided[2]}) "
                        f"for ${a['cost']:,.0f}.",
                        evidence_ids=[rec["id"]],
                    )
                )
    for fc in _by_tool(results, "forecast"):
        f = fc["result"]
        if any(fc["id"] in o.evidence_ids for o in outlook):
            continue
        outlook.append(
            Outlook(
                target=f["scope"],
                persistence=f["persistence"],
                text=f"{f['kpi']} for {f['scope']}: the forecast averages "
                f"{_kpi_text(f['kpi'], f['mean_forecast'])} over the next {len(f['points'])} "
                f"days against {_kpi_text(f['kpi'], f['normal'])} normally.",
                evidence_ids=[fc["id"]],
            )
        )
    for q in _by_tool(results, "query_kpis"):
        r = q["result"]
        t = r["totals"]
        if t.get("late_rate") is not None and t.get("orders") is not None:
            findings.append(
                Finding(
                    text=f"{r['scope']}, {r['start']} to {r['end']}: "
                    f"late rate {pct(t['late_rate'])} over "
                    f"{t['orders']:,.0f} orders.",
                    evidence_ids=[q["id"]],
                )
            )
            summary_ids.append(q["id"])
    for q in _by_tool(results, "run_sql"):
        findings.append(
            Finding(
                text=f"The query returned {len(q['result']['rows'])} rows.", evidence_ids=[q["id"]]
            )
        )

    if scans:
        scan = scans[-1]
        res = scan["result"]
        first, last = res["window"]
        when = f"on {last}" if first == last else f"from {first} to {last}"
        n = len(res["anomalies"])
        summary_ids.insert(0, scan["id"])
        if n == 0:
            summary = f"No store or region stood out {when} in {res['scope']}."
        else:
            summary = f"{n} anomal{'y' if n == 1 else 'ies'} {when} in {res['scope']}."
            diagnosed = {d["result"]["target"] for d in _by_tool(results, "diagnose")}
            undiagnosed = [a["target"] for a in res["anomalies"] if a["target"] not in diagnosed]
            if undiagnosed and headline:
                caveats.append(
                    f"Not diagnosed in this run (lower scores): {', '.join(undiagnosed[:10])}."
                )
    else:
        summary = "Here is what the data shows."
    if headline:
        summary += " Leading causes: " + "; ".join(headline) + "."
    if actions:
        best = actions[0]
        summary += (
            f" First action: {catalog.get(best.action_id).title.lower()} at {best.target}, about "
            f"{avoided_text(best.expected_avoided, *best.avoided_ci)[0]} late deliveries avoided."
        )
        summary_ids.append(best.evidence_ids[0])
    if not results:
        caveats.append("No tool result was available to answer from.")
    return ActionPlan(
        summary=summary,
        summary_evidence_ids=list(dict.fromkeys(summary_ids)),
        findings=findings,
        hypotheses=hypotheses,
        actions=actions,
        outlook=outlook,
        caveats=caveats,
        fallback=fallback,
    )


def _kpi_text(kpi: str, x: float) -> str:
    return pct(x) if kpi.endswith("_rate") else f"{x:,.1f}"
