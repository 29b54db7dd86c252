"""A run as a chat page shows it: plan sections in words, actions with their state, charts.

Every string is formatted here, once, with the same wording as the Markdown report, so the
web page (and later the Slack bot) only lays it out. Text is plain: the page escapes it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agent.charts import ChartSet
from agent.service import RunView
from agent.storage.runs import RunRecord
from agent.templates import CAUSE_LABELS
from agent.wording import avoided_text, target_name
from tools.catalog import load_catalog


class Cited(BaseModel):
    """A sentence and the evidence it rests on."""

    text: str
    evidence_ids: list[str] = Field(default_factory=list)


class CauseLine(Cited):
    """A leading cause at a target."""

    target: str
    cause: str
    confidence: str


class ActionDecision(BaseModel):
    """Who decided an action, how and when."""

    decision: str
    by: str
    at: str | None = None
    parameters: dict[str, float] | None = None


class ActionDispatch(BaseModel):
    """Where an approved action's delivery stands."""

    delivery_status: str
    text: str


class ActionLine(BaseModel):
    """A planned action with its lever's editable range and its state."""

    index: int
    action_id: str
    label: str
    target: str
    setting: str
    parameter: str
    value: float
    min: float
    max: float
    step: float
    unit: str
    avoided: str
    cost: str
    rationale: str
    needs_approval: bool
    decision: ActionDecision | None = None
    dispatched: ActionDispatch | None = None


class NotAssessedLine(BaseModel):
    """A cause the run could not assess, and why."""

    cause: str
    reason: str


class EvidenceLine(BaseModel):
    """One evidence record's id and summary."""

    id: str
    summary: str


class RunPage(BaseModel):
    """Everything the chat page shows of a run."""

    run_id: str
    thread_id: str | None = None
    kind: str
    question: str | None = None
    status: str
    error: str | None = None
    expires_at: str | None = None
    summary: str | None = None
    findings: list[Cited] = Field(default_factory=list)
    causes: list[CauseLine] = Field(default_factory=list)
    outlook: list[Cited] = Field(default_factory=list)
    actions: list[ActionLine] = Field(default_factory=list)
    caveats: list[str] = Field(default_factory=list)
    not_assessed: list[NotAssessedLine] = Field(default_factory=list)
    evidence: list[EvidenceLine] = Field(default_factory=list)
    charts: list[ChartSet] = Field(default_factory=list)


DELIVERY_TEXT: dict[str, str] = {
    "pending": "sent to the outbox, awaiting delivery",
    "retrying": "delivery failing, retried",
    "delivered": "delivered",
    "recorded": "recorded",
}


def run_page(view: RunView, record: RunRecord, charts: list[ChartSet]) -> RunPage:
    """Return the page of a run from its view, its record and its chart numbers."""
    page = RunPage(
        run_id=view.run_id,
        thread_id=view.thread_id,
        kind=view.kind,
        question=record.question,
        status=view.status,
        error=view.error,
        expires_at=view.approval_expires_at if view.status == "waiting_approval" else None,
        evidence=[EvidenceLine(id=e["id"], summary=e["summary"]) for e in record.evidence],
        charts=charts,
    )
    plan = view.plan
    if plan is None:
        return page
    page.summary = plan.summary
    page.findings = [Cited(text=f.text, evidence_ids=f.evidence_ids) for f in plan.findings]
    page.causes = [
        CauseLine(
            target=target_name(h.target),
            cause=CAUSE_LABELS.get(h.cause, h.cause),
            confidence=h.confidence,
            text=h.text,
            evidence_ids=h.evidence_ids,
        )
        for h in plan.hypotheses
    ]
    page.outlook = [Cited(text=o.text, evidence_ids=o.evidence_ids) for o in plan.outlook]
    page.caveats = list(plan.caveats)
    page.not_assessed = [
        NotAssessedLine(cause=CAUSE_LABELS.get(n.cause, n.cause), reason=n.reason)
        for n in plan.not_assessed
    ]
    decided = {int(d["index"]): d for d in view.decisions}
    sent = {int(a["idx"]): a for a in view.dispatched}
    waiting = view.status == "waiting_approval"
    page.actions = [
        _action(i, a, decided.get(i), sent.get(i), waiting) for i, a in enumerate(plan.actions)
    ]
    return page


def _action(
    i: int, a: Any, d: dict[str, Any] | None, sent: dict[str, Any] | None, waiting: bool
) -> ActionLine:
    spec = load_catalog().get(a.action_id)
    ((param, value),) = a.lever.items()
    point, lo, hi = avoided_text(a.expected_avoided, *a.avoided_ci)
    interval = f"80% interval {lo} to {hi}" if lo != hi else "capped at the excess"
    lever = spec.lever
    return ActionLine(
        index=i,
        action_id=a.action_id,
        label=spec.title,
        target=target_name(a.target),
        setting=f"{value:g} {lever.unit}",
        parameter=param,
        value=value,
        min=lever.min,
        max=lever.max,
        step=1.0 if float(lever.min).is_integer() and float(lever.max).is_integer() else 0.01,
        unit=lever.unit,
        avoided=f"about {point} late deliveries avoided ({interval})",
        cost=f"${a.cost:,.0f}",
        rationale=a.rationale,
        needs_approval=a.needs_approval,
        decision=ActionDecision(
            decision=d["decision"], by=d["by"], at=d.get("at"), parameters=d.get("parameters")
        )
        if d
        else None,
        dispatched=_dispatch(sent, d, waiting),
    )


def _dispatch(
    sent: dict[str, Any] | None, d: dict[str, Any] | None, waiting: bool
) -> ActionDispatch | None:
    """Say where an action stands after its decision.

    Sent (with an edit's re-estimated impact), or approved and held until every action of
    the plan is decided.
    """
    if sent is None:
        if waiting and d is not None and d["decision"] != "reject":
            return ActionDispatch(
                delivery_status="held",
                text="approved; sent once every action of this plan is decided "
                "(or with 'approve the rest' / 'reject the rest')",
            )
        return None
    text = DELIVERY_TEXT.get(sent["delivery_status"], sent["delivery_status"])
    if d is not None and d["decision"] == "edit" and sent.get("expected_avoided") is None:
        ((param, value),) = sent["parameters"].items()
        text = f"{text}, with {param} = {value:g}: its impact could not be re-estimated"
    elif d is not None and d["decision"] == "edit":
        ((param, value),) = sent["parameters"].items()
        point, lo, hi = avoided_text(sent["expected_avoided"], *sent["avoided_ci"])
        text = (
            f"{text}, with {param} = {value:g}: about {point} late deliveries avoided "
            f"(80% interval {lo} to {hi}), cost ${sent['cost']:,.0f}, re-estimated"
        )
    return ActionDispatch(delivery_status=sent["delivery_status"], text=text)


__all__ = ["RunPage", "run_page"]
