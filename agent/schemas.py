"""The action plan a run produces, and the decisions a manager takes on it.

Every statement carries the evidence ids it rests on; :mod:`agent.verify` checks that the
ids exist, that every number in the text is in the cited evidence, and that every action is
a catalog action with valid parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from tools.vocabulary import PlanAction, PlanCause

Confidence = Literal["high", "medium", "low"]


class Finding(BaseModel):
    """Something the data shows."""

    text: str = Field(description="One sentence; every number must come from the cited evidence.")
    evidence_ids: list[str] = Field(min_length=1, description="Evidence the sentence rests on.")


class PlanHypothesis(BaseModel):
    """A likely root cause of a problem."""

    target: str = Field(description="Store or region id, or 'all' for the whole chain.")
    cause: PlanCause = Field(description="Root cause from the reviewed causal graph.")
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

    cause: PlanCause
    reason: str


class LeverSetting(BaseModel):
    """One lever of an action and its value.

    A list of these, not a dict: OpenAI strict structured output takes no free-form object.
    """

    name: str = Field(description="The catalog lever's parameter, e.g. drivers.")
    value: float = Field(description="Its value, in the catalog's unit.")


class PlannedAction(BaseModel):
    """A catalog action proposed for approval."""

    action_id: PlanAction = Field(description="Id from the reviewed action catalog.")
    target: str = Field(description="Store or region the action applies to.")
    parameters: list[LeverSetting] = Field(description="The action's lever setting.")
    expected_avoided: float = Field(description="Late deliveries avoided (expected).")
    avoided_low: float = Field(description="Low end of the 80 % interval of avoided.")
    avoided_high: float = Field(description="High end of the 80 % interval of avoided.")
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

    @model_validator(mode="before")
    @classmethod
    def _legacy_shapes(cls, data: Any) -> Any:
        """Read plans stored before the strict schema: a parameters dict, an avoided_ci pair."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("parameters"), dict):
            data["parameters"] = [{"name": k, "value": v} for k, v in data["parameters"].items()]
        ci = data.pop("avoided_ci", None)
        if ci is not None and "avoided_low" not in data:
            data["avoided_low"], data["avoided_high"] = ci
        return data

    @property
    def lever(self) -> dict[str, float]:
        """The lever settings as ``{parameter: value}``."""
        return {s.name: s.value for s in self.parameters}

    @property
    def avoided_ci(self) -> tuple[float, float]:
        """The 80 % interval of late deliveries avoided, as (low, high)."""
        return self.avoided_low, self.avoided_high


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

    def texts(self) -> list[tuple[str, str]]:
        """Return every free text of the plan as (where, text), in reading order."""
        out = [("summary", self.summary)]
        out += [(f"finding {i + 1}", f.text) for i, f in enumerate(self.findings)]
        out += [(f"hypothesis {i + 1}", h.text) for i, h in enumerate(self.hypotheses)]
        out += [(f"action {i + 1} rationale", a.rationale) for i, a in enumerate(self.actions)]
        out += [(f"outlook {i + 1}", o.text) for i, o in enumerate(self.outlook)]
        out += [(f"caveat {i + 1}", c) for i, c in enumerate(self.caveats)]
        out += [(f"not_assessed {i + 1}", n.reason) for i, n in enumerate(self.not_assessed)]
        return out

    def with_texts(self, edit: Callable[[str], str]) -> ActionPlan:
        """Return a copy with ``edit`` applied to every free text (see :meth:`texts`)."""
        return self.model_copy(
            update={
                "summary": edit(self.summary),
                "findings": [f.model_copy(update={"text": edit(f.text)}) for f in self.findings],
                "hypotheses": [
                    h.model_copy(update={"text": edit(h.text)}) for h in self.hypotheses
                ],
                "actions": [
                    a.model_copy(update={"rationale": edit(a.rationale)}) for a in self.actions
                ],
                "outlook": [o.model_copy(update={"text": edit(o.text)}) for o in self.outlook],
                "caveats": [edit(c) for c in self.caveats],
                "not_assessed": [
                    n.model_copy(update={"reason": edit(n.reason)}) for n in self.not_assessed
                ],
            }
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
