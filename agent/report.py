"""Render a run for people: the plan as Markdown (charts: :mod:`agent.charts`)."""

from __future__ import annotations

from typing import Any

from agent.charts import chart_names, render_charts
from agent.service import RunView
from agent.storage.runs import RunRecord
from agent.templates import CAUSE_LABELS, avoided_text
from agent.wording import target_name
from tools.catalog import load_catalog

__all__ = ["chart_names", "render_charts", "render_markdown"]


def _delivery(sent: dict[str, Any]) -> str:
    """Say where a dispatched action's delivery stands."""
    status = sent.get("delivery_status")
    if status == "delivered":
        return ", delivered"
    if status == "retrying":
        return f", delivery failing ({sent.get('last_error')}), retried"
    return ", awaiting delivery" if status == "pending" else ""


def render_markdown(view: RunView, record: RunRecord) -> str:
    """Render the plan, its approval state and its provenance as Markdown."""
    lines = [f"# Action plan - run {view.run_id}", ""]
    status = {
        "waiting_approval": "waiting for approval",
        "done": "done",
        "failed": "failed",
        "running": "running",
    }[view.status]
    lines += [f"**Status:** {status}" + (f" ({view.error})" if view.error else ""), ""]
    plan = view.plan
    if plan is None:
        return "\n".join(lines + ["No plan was produced.", ""])

    def cite(ids: list[str]) -> str:
        return " [" + ", ".join(ids) + "]" if ids else ""

    lines += ["## Summary", "", plan.summary + cite(plan.summary_evidence_ids), ""]
    if plan.fallback:
        lines += [
            "_The model's plan failed verification twice; this is the verified template plan._",
            "",
        ]
    if plan.findings:
        lines += (
            ["## What happened", ""]
            + [f"- {f.text}{cite(f.evidence_ids)}" for f in plan.findings]
            + [""]
        )
    if plan.hypotheses:
        lines += ["## Why (causes, most likely first)", ""]
        lines += [
            f"- **{target_name(h.target)} - {CAUSE_LABELS.get(h.cause, h.cause)}** "
            f"({h.confidence} confidence): "
            f"{h.text}{cite(h.evidence_ids)}"
            for h in plan.hypotheses
        ]
        lines.append("")
    if plan.outlook:
        lines += (
            ["## What happens next", ""]
            + [f"- {o.text}{cite(o.evidence_ids)}" for o in plan.outlook]
            + [""]
        )
    if plan.actions:
        decided = {d["index"]: d for d in view.decisions}
        done = {a["idx"]: a for a in view.dispatched}
        catalog = load_catalog()
        lines += [
            "## What to do",
            "",
            "| # | action | where | setting | late deliveries avoided (80% interval) | cost "
            "| decision |",
            "|---|---|---|---|---|---|---|",
        ]
        for i, a in enumerate(plan.actions):
            spec = catalog.get(a.action_id)
            ((param, value),) = a.lever.items()
            d = decided.get(i)
            decision = "pending" if d is None else f"{d['decision']} by {d['by']}"
            if d is not None and d.get("at"):
                decision += f" at {str(d['at'])[:16].replace('T', ' ')} UTC"
            if i in done:
                sent = done[i]
                decision += " - dispatched" + _delivery(sent)
                if d is not None and d["decision"] == "edit" and sent["expected_avoided"] is None:
                    decision += " with a new setting (its impact could not be re-estimated)"
                elif d is not None and d["decision"] == "edit":
                    ((p, v),) = sent["parameters"].items()
                    decision += (
                        f" with {p} = {v:g} (~{sent['expected_avoided']:,.0f} avoided, "
                        f"${sent['cost']:,.0f})"
                    )
            point, lo, hi = avoided_text(a.expected_avoided, *a.avoided_ci)
            lines.append(
                f"| {i} | {spec.title} (`{a.action_id}`) | "
                f"{target_name(a.target)} | {param} = {value:g} | "
                f"{point} ({f'{lo} to {hi}' if lo != hi else 'capped at the excess'}) | "
                f"${a.cost:,.0f} | {decision} |"
            )
        lines += (
            [""]
            + [f"{i}. {a.rationale}{cite(a.evidence_ids)}" for i, a in enumerate(plan.actions)]
            + [""]
        )
    if plan.caveats:
        lines += ["## Caveats", ""] + [f"- {c}" for c in plan.caveats] + [""]
    lines += ["## Evidence", ""]
    lines += [f"- `{e['id']}` {e['summary']}" for e in record.evidence]
    prompts = ", ".join(f"{k} ({v[:10]})" for k, v in view.prompts.items()) or "none"
    lines += [
        "",
        f"_Model: {view.model or 'none'}; prompts: {prompts}; "
        f"tokens in/out: {view.input_tokens}/{view.output_tokens}._",
        "",
    ]
    return "\n".join(lines)
