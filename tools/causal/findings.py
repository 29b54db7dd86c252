"""What a diagnosis says: ranked causes, hypotheses, what could not be assessed."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

Confidence = Literal["high", "medium", "low"]


class CauseFinding(BaseModel):
    """One candidate cause of the anomaly."""

    cause: str = Field(description="Root-cause name (shared vocabulary).")
    variable: str = Field(description="Cell KPI that carries it (the main one, when several).")
    value: float | None
    expected: float | None
    z: float | None = Field(description="How unusual the value is (robust SDs).")
    contribution: float = Field(description="Late-rate points attributed to this cause (gcm).")
    share: float = Field(description="Share of the attributed excess (0..1).")
    linear_contribution: float = Field(description="Effect x own deviation (cross-check).")
    effect: float = Field(description="Late-rate change per unit of the variable (backdoor).")
    effect_ci: tuple[float, float]
    refutations_passed: int
    refutations_run: int = Field(
        description="DoWhy refuters run on its effect: 3 for the causes the diagnosis names, "
        "0 for the others (too small a share to be worth refuting)."
    )


class Hypothesis(BaseModel):
    """A likely explanation, with how much of the excess it carries."""

    cause: str
    variable: str
    contribution: float
    share: float
    confidence: Confidence


class NotAssessed(BaseModel):
    """A cause the data cannot speak to, and why."""

    cause: str
    variables: list[str]
    reason: str


class Diagnosis(BaseModel):
    """Ranked causes of a late-rate anomaly."""

    target: str
    level: Literal["store", "region", "chain"]
    region: str = Field(description="The target's region ('all' for the whole chain).")
    day: dt.date = Field(description="The (last) day of the diagnosed cell.")
    grain_days: int = Field(1, description="Days of the cell (1, or a trailing window).")
    window_start: dt.date = Field(description="First day of the cell.")
    kpi: str
    value: float
    expected: float
    excess: float = Field(description="Late-rate points above the normal cell.")
    late_excess: float = Field(description="Late deliveries above the normal cell.")
    resolved: int = Field(description="Resolved deliveries of the cell.")
    causes: list[CauseFinding]
    hypotheses: list[Hypothesis] = Field(description="Explanations carrying a real share.")
    confidence: Confidence
    unexplained: float = Field(description="Points left to the late rate's own noise.")
    late_z: float | None = Field(
        None, description="Robust SDs of the late rate above its normal (None: no spread)."
    )
    within_normal: bool = Field(
        False,
        description="The excess is within chance (late_z < WITHIN_NORMAL_Z, one-sided 5 %): "
        "no cause is named and nothing is treated.",
    )
    not_assessed: list[NotAssessed] = Field(
        default_factory=list, description="Causes the data cannot speak to, and why."
    )
    fit_level: str = Field(description="Cells the causal model was fitted on.")
    fit_rows: int = Field(description="Complete cells the causal model was fitted on.")
    correlation_ranking: list[str] = Field(
        description="Baseline: by |correlation| with the KPI over the history before the day."
    )
    deviation_ranking: list[str] = Field(description="Baseline: by how far each factor moved.")
    method: str
    graph_version: int
