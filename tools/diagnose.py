"""Tool ``diagnose``: why was a store, a region or the chain late? Causes, not correlations.

The cell (a day, or the trailing window the scan judged it over) is compared with its normal,
and its late-rate excess is attributed to the factors of the reviewed causal graph that the
data carries (:mod:`tools.causal.diagnosis`): staffing, weather and traffic when those feeds
exist, and always the hand-over, carrier transit, promised lead time, volume and carrier mix
of the deliveries themselves. Causes the data cannot speak to are listed as not assessed.
Two naive baselines are computed beside it for the evals: ranking by correlation with the
late rate, and ranking by how far each factor moved.

Example:
    >>> ctx = ToolContext.for_duckdb("data/lastmile.duckdb")
    >>> d = diagnose(ctx, DiagnoseInput(target="S010", day=date(2026, 3, 9)))
    >>> d.hypotheses[0].cause, d.hypotheses[0].contribution, d.not_assessed
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from tools.analytics.scope import load_catalog
from tools.analytics.thresholds import GRAINS, MIN_REFERENCE_DAYS
from tools.causal.case import explain
from tools.causal.findings import CauseFinding, Diagnosis, Hypothesis, NotAssessed
from tools.core.context import ToolContext
from tools.core.errors import ToolError

__all__ = [
    "CauseFinding",
    "DiagnoseInput",
    "DiagnoseResult",
    "Diagnosis",
    "Hypothesis",
    "NotAssessed",
    "diagnose",
]


class DiagnoseInput(BaseModel):
    """Arguments of ``diagnose``."""

    target: str = Field(
        description="Store id (e.g. S003), region id (e.g. R2), or 'all' for the whole chain."
    )
    day: date = Field(description="The day to explain (the last day of a window).")
    window_days: int | None = Field(
        None,
        description=f"Days of the cell to explain, ending at `day` (one of {GRAINS}); default: "
        "the finest the target's volume allows (what the scan used).",
    )
    lookback_days: int = Field(
        56, ge=21, le=365, description="History the causal model learns from."
    )


class DiagnoseResult(Diagnosis):
    """A diagnosis registered as evidence."""

    evidence_id: str
    history_days: int = Field(description="Days of the target's own history before the day.")


def diagnose(ctx: ToolContext, args: DiagnoseInput) -> DiagnoseResult:
    """Explain a store's, a region's or the chain's late rate on a day (or window).

    Raises:
        ToolError: unknown target, a day without data, too little history or volume.
    """
    if args.window_days is not None and args.window_days not in GRAINS:
        raise ToolError(f"window_days must be one of {', '.join(map(str, GRAINS))}")
    case, found = explain(
        ctx,
        load_catalog(ctx.backend),
        args.target,
        args.day,
        lookback_days=args.lookback_days,
        grain=args.window_days,
    )
    if case.history_days < MIN_REFERENCE_DAYS:
        # Its "normal" rests on a few days: nothing it says is firm.
        found.confidence = "low"
        for h in found.hypotheses:
            h.confidence = "low"
    numbers: dict[str, float] = {
        "value": found.value,
        "expected": found.expected,
        "excess": found.excess,
        "late_excess": found.late_excess,
        "unexplained": found.unexplained,
        "resolved": found.resolved,
        "window_days": found.grain_days,
        "history_days": case.history_days,
        "within_normal": found.within_normal,
        # the causes a plan names and the rest add up to the excess as printed
        "rest": round(found.excess - sum(h.contribution for h in found.hypotheses), 4),
        "rest_all": round(found.excess - sum(c.contribution for c in found.causes), 4),
    }
    if found.late_z is not None:
        numbers["late_z"] = found.late_z
    for c in found.causes:
        for part in ("contribution", "share", "effect", "value", "expected", "z"):
            v = getattr(c, part)
            if v is not None:
                numbers[f"{c.cause}.{part}"] = v
        numbers[f"{c.cause}.effect_ci_low"], numbers[f"{c.cause}.effect_ci_high"] = c.effect_ci
        if found.excess > 0:
            numbers[f"{c.cause}.of_excess"] = round(c.contribution / found.excess, 4)
        if c.variable.endswith("_h") and c.value is not None and c.expected is not None:
            # durations of days read better in days: the plan may quote either unit
            numbers[f"{c.cause}.value_days"] = round(c.value / 24, 4)
            numbers[f"{c.cause}.expected_days"] = round(c.expected / 24, 4)
            numbers[f"{c.cause}.change_days"] = round((c.value - c.expected) / 24, 4)
    top = found.hypotheses[0] if found.hypotheses else None
    when = f"{found.window_start}..{found.day}" if found.grain_days > 1 else f"on {found.day}"
    summary = (
        f"{args.target} {when}: late rate {found.value:.1%} vs {found.expected:.1%} normal; "
        + (
            f"within its normal range (z {found.late_z})"
            if found.within_normal
            else f"top cause {top.cause} ({top.contribution:+.1%}, {top.confidence})"
            if top
            else "no cause stands out (unexplained)"
        )
        + (
            f"; not assessed: {', '.join(n.cause for n in found.not_assessed)}"
            if found.not_assessed
            else ""
        )
    )
    facts = {
        "target": found.target,
        "level": found.level,
        "region": found.region,
        "day": found.day.isoformat(),
        "window_start": found.window_start.isoformat(),
        "confidence": found.confidence,
        **{f"{h.cause}.confidence": h.confidence for h in found.hypotheses},
    }
    evidence = ctx.evidence.register(
        "diagnose", args.model_dump(mode="json"), numbers, summary, facts
    )
    return DiagnoseResult(
        evidence_id=evidence.id, history_days=case.history_days, **found.model_dump()
    )
