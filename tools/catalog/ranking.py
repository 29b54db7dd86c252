"""Ranked actions of a recommendation: the action model, and effects that add up.

``recommend_actions`` estimates each catalog action on its own; :func:`additive` then makes
the ranked list honest as a whole: each action is credited with what it adds to the ones
ranked above it, so approving all of them never promises more than the problem caused.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

MIN_AVOIDED = 1.0
"""An action that avoids (or adds) less than one late delivery treats nothing: not proposed."""


class RecommendedAction(BaseModel):
    """A catalog action with parameters, expected effect and cost."""

    rank: int
    action_id: str
    title: str
    treats: list[str]
    addresses: str = Field(description="The hypothesis (root cause) this action is proposed for.")
    parameters: dict[str, float]
    stores: list[str] = Field(description="Stores it reaches (empty: every store of the target).")
    expected_avoided: float = Field(description="Late deliveries avoided (expected).")
    avoided_ci: tuple[float, float]
    cap: float = Field(description="Late deliveries above normal: the most it may avoid.")
    beyond_normal: float = Field(
        0.0,
        description="Late deliveries the lever would avoid past the cap (below the cell's "
        "normal): improvement beyond the problem, not counted in expected_avoided.",
    )
    on_top_of: list[str] = Field(
        default_factory=list,
        description="Actions ranked above it: expected_avoided is what it adds to them, so the "
        "actions' expected_avoided sum to at most the cap.",
    )
    late_rate_after: float | None = Field(description="Expected late rate with the action.")
    calibration: str | None = Field(
        None,
        description="Set when the action's tracked outcomes say its impact estimates are "
        "uncalibrated: how, and how expected_avoided and avoided_ci were corrected.",
    )
    model_avoided: tuple[float, float, float] | None = Field(
        None, description="The impact model's own (expected, low, high) before that correction."
    )
    cost: float
    avoided_per_100: float = Field(description="Late deliveries avoided per 100 of cost.")
    lead_time_hours: float
    needs_approval: bool
    rationale: str


def additive(
    ranked: list[RecommendedAction], skipped: dict[str, str], max_actions: int
) -> list[RecommendedAction]:
    """Make the ranked actions' effects add up to at most the excess they treat.

    Each action is credited with what it adds to the ones ranked above it (the remaining
    excess at most), so approving all of them never promises more than the problem
    caused; an action with nothing left to avoid is not proposed.
    """
    actions: list[RecommendedAction] = []
    for a in ranked:
        remaining = round(a.cap - sum(b.expected_avoided for b in actions), 1)
        if len(actions) >= max_actions:
            break
        if remaining < MIN_AVOIDED or a.expected_avoided < MIN_AVOIDED:
            skipped[a.action_id] = (
                "the actions ranked above already avoid the whole excess"
                if remaining < MIN_AVOIDED
                else "avoids less than one late delivery"
            )
            continue
        if actions:
            a.on_top_of = [b.action_id for b in actions]
            lo, hi = a.avoided_ci
            a.avoided_ci = (min(lo, remaining), min(hi, remaining))
            if a.expected_avoided > remaining:
                a.beyond_normal = round(a.beyond_normal + a.expected_avoided - remaining, 1)
                a.expected_avoided = remaining
            a.avoided_per_100 = (
                round(100 * a.expected_avoided / a.cost, 2) if a.cost > 0 else 9999.0
            )
            a.late_rate_after = None  # it stands for this action alone, not on top of others
        a.rank = len(actions) + 1
        actions.append(a)
    return actions
