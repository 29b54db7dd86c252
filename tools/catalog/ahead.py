"""Actions for a day ahead: how much of a diagnosed problem the forecast expects then.

"What should we do tomorrow?" is answered from the last day known: its diagnosis says which
causes carry the excess and what each lever would avoid on that cell; the forecast of the
scope's late rate (:func:`tools.forecast.forecast`, which carries weather forecasts and an
outage in progress) says how much of the excess is still expected on the day asked: a
problem by the scan's own bar (:data:`MIN_LATE_EXCESS`, 3 points above the diagnosis's
normal, with the forecast interval above normal), else none. Actions for that day are
credited in proportion, never with more than the cell's or the expected excess: the diagnosed
causes are assumed to carry the same share of it (the forecast says how much lateness, not
why).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tools.analytics.thresholds import FORECAST_MAX_HORIZON, MIN_LATE_EXCESS
from tools.causal.findings import Diagnosis
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.forecast import ForecastInput, forecast


@dataclass(frozen=True)
class Ahead:
    """The problem the forecast expects on a day after the diagnosed cell.

    Attributes:
        day: the day the actions are for.
        late_rate: the forecast late rate that day (0-1).
        normal: the diagnosis's normal late rate (0-1).
        excess: late deliveries above the diagnosis's normal expected that day, at the cell's
            daily volume.
        scale: ``excess`` over the cell's excess, at most 1: the share of each action's effect
            on the cell still expected that day.
        persistence: the forecast's verdict (about its first day).
        evidence_id: the forecast's evidence record.
    """

    day: date
    late_rate: float
    normal: float
    excess: float
    scale: float
    persistence: str
    evidence_id: str


def expected_ahead(ctx: ToolContext, diagnosis: Diagnosis, apply_on: date) -> Ahead:
    """Forecast the diagnosed scope's late rate to ``apply_on`` and size its problem then.

    Args:
        ctx: tool context.
        diagnosis: the diagnosed cell (its ``expected`` late rate is the normal used).
        apply_on: a day after the cell, at most ``FORECAST_MAX_HORIZON`` days later.

    Returns:
        The expected problem that day (``excess`` 0 when the forecast is back to normal).

    Raises:
        ToolError: ``apply_on`` not after the cell or too far, or the scope closed that day.
    """
    horizon = (apply_on - diagnosis.day).days
    if not 1 <= horizon <= FORECAST_MAX_HORIZON:
        raise ToolError(
            f"apply_on {apply_on} must be 1 to {FORECAST_MAX_HORIZON} days after the "
            f"diagnosed day {diagnosis.day}"
        )
    level = {"chain": "all"}.get(diagnosis.level, diagnosis.level)
    ids = [] if level == "all" else [diagnosis.target]
    result = forecast(
        ctx,
        ForecastInput(
            scope=level,  # type: ignore[arg-type]
            ids=ids,
            kpi="late_rate",
            as_of=diagnosis.day,
            horizon=horizon,
        ),
    )
    point = next((p for p in result.points if p.date == apply_on), None)
    if point is None:
        raise ToolError(f"{diagnosis.target} is closed on {apply_on}: nothing to act on")
    daily = diagnosis.resolved / max(diagnosis.grain_days, 1)
    rise = point.yhat - diagnosis.expected
    # a problem that day by the scan's own bar: 3 points above normal, the interval above it
    problem = rise >= MIN_LATE_EXCESS and point.lower > diagnosis.expected
    excess = rise * daily if problem else 0.0
    scale = min(1.0, excess / diagnosis.late_excess) if diagnosis.late_excess > 0 else 0.0
    return Ahead(
        day=apply_on,
        late_rate=point.yhat,
        normal=diagnosis.expected,
        excess=round(excess, 1),
        scale=scale,
        persistence=result.persistence,
        evidence_id=result.evidence_id,
    )
