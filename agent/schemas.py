"""The action plan a run produces, and the decisions a manager takes on it.

Every statement carries the evidence ids it rests on; :mod:`agent.verify` checks that the
ids exist, that every number in the text is in the cited evidence, and that every action is
a catalog action with valid parameters.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

Confidence = Literal["high", "medium", "low"]


class Finding(BaseModel):
    """Something the data shows."""

    text: str = Field(description="One sentence; every number must come from the cited evidence.")
    evidence_ids: list[str] = Field(min_length=1, description="Evidence the sentence rests on.")


class PlanHypothesis(BaseModel):
    """A likely root cause of a problem."""

    target: str = Field(description="Store or region id, or 'all' for the whole chain.")
    cause: str = Field(description="Root cause from the shared vocabulary, e.g. driver_no_shows.")
    confidence: Confidence
    text: str
    evidence_ids: list[str] = Field(min_length=1)
    variable: str | None = Field(
        default=None, description="The graph variable that carries the cause, e.g. transit_h."
    )
    value: float | None = Field(default=None, description="Its value in the cell (its unit).")
    expected: float | None = Field(default=None, description="Its normal value (its unit).")
    window_start: date | None = Field(default=None, description="First day of the cell.")
    day: date | None = Field(default=None, description="Last day of the cell.")


class NotAssessedCause(BaseModel):
    """A root cause the data could not speak to, and why."""

    cause: str
    reason: str


class PlannedAction(BaseModel):
    """A catalog action proposed for approval."""

    action_id: str = Field(description="Id from the action catalog.")
    target: str = Field(description="Store or region the action applies to.")
    parameters: dict[str, float] = Field(description="The action's lever setting.")
    expected_avoided: float = Field(description="Late deliveries avoided (expected).")
    avoided_ci: tuple[float, float] = Field(description="80 % interval of late deliveries avoided.")
    cost: float
    needs_approval: bool = True
    rationale: str
    evidence_ids: list[str] = Field(min_length=1)
    day: date | None = Field(default=None, description="Last day of the cell it treats.")
    window_days: int = Field(default=1, ge=1, description="Days of that cell.")
    apply_on: date | None = Field(
        default=None,
        description="Day it is for when later than the cell (a forecast-driven action, from "
        "recommend_actions with apply_on); None: the day after the cell.",
    )


class Outlook(BaseModel):
    """What the forecast says about the days ahead."""

    target: str
    persistence: Literal["persists", "fades", "normal", "coming"] | None = None
    text: str
    evidence_ids: list[str] = Field(min_length=1)


class ActionPlan(BaseModel):
    """A justified plan: what happened, why, what will happen, what to do."""

    summary: str = Field(description="Two or three sentences for the manager.")
    summary_evidence_ids: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    hypotheses: list[PlanHypothesis] = Field(default_factory=list, description="Top 2-3 causes.")
    actions: list[PlannedAction] = Field(default_factory=list)
    outlook: list[Outlook] = Field(default_factory=list)
    caveats: list[str] = Field(
        default_factory=list, description="Data-health or confidence caveats (no numbers)."
    )
    not_assessed: list[NotAssessedCause] = Field(
        default_factory=list, description="Causes the data could not speak to (no feed)."
    )
    fallback: bool = Field(
        default=False, description="True when the verified template replaced a model-written plan."
    )


DecisionKind = Literal["approve", "reject", "edit"]


class Decision(BaseModel):
    """A manager's decision on one planned action."""

    index: int = Field(ge=0, description="Position of the action in the plan.")
    decision: DecisionKind
    parameters: dict[str, float] | None = Field(
        default=None, description="New lever setting when the decision is 'edit'."
    )
    by: str = Field(min_length=1, max_length=200)
    at: datetime | None = None
    note: str | None = Field(default=None, max_length=2000)
