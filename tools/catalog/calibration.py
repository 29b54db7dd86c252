"""Calibration of action impacts from the outcomes of dispatched actions (the closed loop).

Every dispatched action promised a number of late deliveries avoided and an 80 % interval;
once its day is in the data, what it realised is known (exactly in a synthetic world, against
the no-action forecast on real data). Per catalog action, over its most recent
:data:`~tools.analytics.thresholds.OUTCOME_WINDOW` outcomes:

* **coverage**: the share of realised figures inside the impact model's 80 % interval;
* **over-promising**: realised figures below the interval's low end more often than the
  10 % an 80 % interval leaves there (one-sided binomial test at
  :data:`~tools.analytics.thresholds.OUTCOME_ALPHA`), and below the estimate in the typical
  case (median ratio under 1); **under-promising** is the mirror;
* **uncalibrated**: either tail missed too often, or coverage below 80 % by the same test
  (a centred estimate with intervals too narrow is uncalibrated, not over-promising).

The tests judge the *model's* intervals (as estimated before any correction), so a correction
does not hide the miscalibration that caused it. An uncalibrated action's later estimates are
corrected (:func:`adjust`): its expected effect is scaled by the median of realised over
estimated, and its interval is the split-conformal interval of that ratio (Vovk et al. 2005;
Angelopoulos & Bates 2021, section 1.1): the order statistics ``floor(0.1 (n+1))`` and
``ceil(0.9 (n+1))`` of the ``n`` ratios. Under exchangeable outcomes it covers at least 80 %.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field
from scipy.stats import binomtest

from tools.analytics.thresholds import ACTION_INTERVAL, OUTCOME_ALPHA, OUTCOME_WINDOW

TAIL = round((1 - ACTION_INTERVAL) / 2, 9)
"""Share of outcomes a calibrated interval leaves below (and above) it: 10 % (rounded: the
float 0.09999999999999998 would let three misses in three pass a test at 0.001)."""


def _rank(q: float, n: int) -> int:
    """``ceil(q (n + 1))``, rounded first: 0.9 x 10 must be 9, not 9.000000000000002."""
    return math.ceil(round(q * (n + 1), 9))


MIN_CONFORMAL = next(n for n in range(1, 1000) if _rank(1 - TAIL, n) <= n)
"""Smallest sample whose order statistics give a two-sided 80 % split-conformal interval:
``ceil(0.9 (n + 1)) <= n`` first holds at n = 9."""


MIN_TO_FLAG = next(n for n in range(1, 100) if TAIL**n < OUTCOME_ALPHA)
"""Fewest outcomes that can flag an action: every one of them below its interval has chance
0.1^n under calibration, below the test's level from n = 4 on."""


class TrackedOutcome(BaseModel):
    """One dispatched action's promise and what it realised, in late deliveries avoided."""

    action_id: str
    model_avoided: float = Field(description="The impact model's estimate, before correction.")
    model_low: float
    model_high: float
    promised: float = Field(description="What the plan promised (the estimate as corrected).")
    promised_low: float
    promised_high: float
    realised: float


class ActionCalibration(BaseModel):
    """How well one catalog action's impact estimates matched their outcomes."""

    action_id: str
    outcomes: int = Field(description="Outcomes judged (the most recent, up to the window).")
    inside: int = Field(description="Realised inside the model's 80 % interval.")
    below: int
    above: int
    coverage: float
    promised_coverage: float = Field(description="Share inside the interval as promised.")
    p_coverage: float = Field(description="One-sided binomial p of coverage below 80 %.")
    p_below: float = Field(description="One-sided binomial p of more than 10 % below.")
    p_above: float
    median_ratio: float | None = Field(description="Median of realised / estimated.")
    ratio_interval: tuple[float, float] | None = Field(
        description="Split-conformal 80 % interval of realised / estimated (n >= 9)."
    )
    ratio_range: tuple[float, float] | None = Field(
        description="Smallest and largest realised / estimated (fewer outcomes than that)."
    )
    over_promising: bool
    under_promising: bool
    uncalibrated: bool

    def verdict(self) -> str:
        """Return the record's verdict in a few words (the report's column)."""
        note = self.note()
        if note is not None:
            return note.split(":")[0]
        if self.outcomes < MIN_TO_FLAG:
            return f"too few outcomes to judge (a flag needs {MIN_TO_FLAG})"
        return "calibrated"

    def note(self) -> str | None:
        """Return the plan's wording for an uncalibrated action, or None."""
        if not self.uncalibrated:
            return None
        what = (
            "over-promising"
            if self.over_promising
            else "under-promising"
            if self.under_promising
            else "uncalibrated (intervals too narrow)"
        )
        text = (
            f"{what}: {self.inside} of {self.outcomes} tracked outcomes fell inside the "
            f"impact model's 80 % interval ({self.below} below, {self.above} above)"
        )
        if self.median_ratio is not None:
            text += f"; the estimate is scaled by the tracked median ratio {self.median_ratio:.2f}"
        return text


def credited(avoided: Sequence[float], cap: float) -> list[float]:
    """Credit the actions of one recommendation, in rank order, up to its measured excess.

    A plan promises late deliveries avoided counted up to the excess it measured (``cap``),
    each action on top of those ranked above it; so is what they realised: an action is
    credited with what it avoided, at most what the actions above it left of the excess.

    Args:
        avoided: late deliveries above normal each action avoided, in rank order.
        cap: the recommendation's measured excess.

    Returns:
        The credited figures, in the same order.
    """
    out = []
    left = max(cap, 0.0)
    for a in avoided:
        credit = min(max(a, 0.0), left)
        out.append(credit)
        left -= credit
    return out


def side(realised: float, low: float, high: float) -> int:
    """Return -1 below the interval, 0 inside, 1 above (its one decimal of rounding allowed)."""
    if realised < low - 0.05:
        return -1
    return 1 if realised > high + 0.05 else 0


def calibrate_one(action_id: str, outcomes: Sequence[TrackedOutcome]) -> ActionCalibration:
    """Judge one action's most recent outcomes (see the module's rules).

    Raises:
        ValueError: no outcomes.
    """
    recent = list(outcomes)[-OUTCOME_WINDOW:]
    if not recent:
        raise ValueError(f"no outcomes of {action_id}")
    n = len(recent)
    sides = [side(o.realised, o.model_low, o.model_high) for o in recent]
    below, above = sides.count(-1), sides.count(1)
    inside = n - below - above
    shown = sum(side(o.realised, o.promised_low, o.promised_high) == 0 for o in recent)
    p_cov = binomtest(inside, n, ACTION_INTERVAL, alternative="less").pvalue
    p_below = binomtest(below, n, TAIL, alternative="greater").pvalue
    p_above = binomtest(above, n, TAIL, alternative="greater").pvalue
    ratios = np.array([o.realised / o.model_avoided for o in recent if o.model_avoided > 0])
    median = float(np.median(ratios)) if len(ratios) else None
    conformal = None
    if len(ratios) >= MIN_CONFORMAL:
        k = len(ratios)
        ordered = np.sort(ratios)
        lo = ordered[max(math.floor(round(TAIL * (k + 1), 9)), 1) - 1]
        hi = ordered[min(_rank(1 - TAIL, k), k) - 1]
        conformal = (round(float(lo), 3), round(float(hi), 3))
    # a tail missed too often is over-promising when the typical outcome is below the
    # estimate too; misses on both sides of a centred estimate are intervals too narrow
    over = p_below < OUTCOME_ALPHA and median is not None and median < 1.0
    under = p_above < OUTCOME_ALPHA and median is not None and median > 1.0
    return ActionCalibration(
        action_id=action_id,
        outcomes=n,
        inside=inside,
        below=below,
        above=above,
        coverage=round(inside / n, 3),
        promised_coverage=round(shown / n, 3),
        p_coverage=float(p_cov),
        p_below=float(p_below),
        p_above=float(p_above),
        median_ratio=None if median is None else round(median, 3),
        ratio_interval=conformal,
        ratio_range=(round(float(ratios.min()), 3), round(float(ratios.max()), 3))
        if len(ratios)
        else None,
        over_promising=over,
        under_promising=under,
        uncalibrated=min(p_below, p_above, p_cov) < OUTCOME_ALPHA,
    )


def calibrate(outcomes: Sequence[TrackedOutcome]) -> dict[str, ActionCalibration]:
    """Judge every action's outcomes; ``outcomes`` in dispatch order, oldest first."""
    by_action: dict[str, list[TrackedOutcome]] = defaultdict(list)
    for o in outcomes:
        by_action[o.action_id].append(o)
    return {a: calibrate_one(a, found) for a, found in by_action.items()}


def adjust(
    point: float, ci: tuple[float, float], cap: float, calibration: ActionCalibration | None
) -> tuple[float, tuple[float, float], str | None]:
    """Correct an impact estimate by its action's track record.

    Args:
        point: the model's late deliveries avoided.
        ci: the model's 80 % interval.
        cap: the most the action may avoid (late deliveries above normal).
        calibration: the action's track record (None: no outcomes yet).

    Returns:
        (point, interval, note): unchanged with a None note when the action is calibrated or
        untracked; otherwise scaled by the median ratio, the conformal interval (or, with fewer
        than :data:`MIN_CONFORMAL` outcomes, the model's interval stretched to the smallest
        and largest ratio seen), all within ``[0, cap]``, and the plan's note.
    """
    if calibration is None or not calibration.uncalibrated or calibration.median_ratio is None:
        return point, ci, None if calibration is None else calibration.note()

    def within(x: float) -> float:
        return round(min(max(x, 0.0), cap), 1)

    new_point = within(point * calibration.median_ratio)
    if calibration.ratio_interval is not None:
        lo, hi = calibration.ratio_interval
        new_ci = (within(point * lo), within(point * hi))
    else:  # too few outcomes for a conformal interval: the model's and the ratios seen
        lo, hi = calibration.ratio_range or (calibration.median_ratio, calibration.median_ratio)
        new_ci = (within(min(ci[0], point * lo)), within(max(ci[1], point * hi)))
    new_ci = (min(new_ci[0], new_point), max(new_ci[1], new_point))
    return new_point, new_ci, calibration.note()
