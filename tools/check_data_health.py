"""Tool ``check_data_health``: can the data of a day be trusted?

Runs the checks of :mod:`tools.analytics.health` on one day against the weeks before it:
missing tables or columns, a day without deliveries, feeds that stopped, fields that went
missing or constant, carriers, stores or regions that appeared or vanished, and drift of the
operational features (:mod:`tools.analytics.drift`). Every triage runs it first; a severe
finding stops the run, a warning becomes a caveat and lowers the plan's confidence.

Example:
    >>> from tools.core.context import ToolContext
    >>> ctx = ToolContext.for_duckdb("data/lastmile.duckdb")
    >>> health = check_data_health(ctx, CheckDataHealthInput(day=date(2026, 3, 9)))
    >>> health.trusted, [f.label for f in health.findings]
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from datetime import date

from cachetools import LRUCache
from pydantic import BaseModel, Field

from tools.analytics.drift import FeatureDrift
from tools.analytics.health import DataHealth, HealthFinding, assess, schema_findings, worst_z
from tools.analytics.scope import load_catalog
from tools.analytics.thresholds import HEALTH_LOOKBACK_DAYS
from tools.core.context import ToolContext
from tools.core.errors import ToolError

__all__ = ["CheckDataHealthInput", "CheckDataHealthResult", "check_data_health"]


class CheckDataHealthInput(BaseModel):
    """Arguments of ``check_data_health``."""

    day: date | None = Field(None, description="Day to check (default: latest day in the data).")
    lookback_days: int = Field(
        HEALTH_LOOKBACK_DAYS, ge=14, le=365, description="Reference window before the day."
    )


class CheckDataHealthResult(BaseModel):
    """Whether the day's data can be trusted, and why not."""

    evidence_id: str
    day: date
    reference: tuple[date, date]
    reference_days: int
    trusted: bool = Field(description="No warning or severe finding.")
    severe: bool = Field(description="A finding that stops a run (a column gone, no data).")
    findings: list[HealthFinding]
    drift: list[FeatureDrift]
    not_assessed: list[str]


def check_data_health(ctx: ToolContext, args: CheckDataHealthInput) -> CheckDataHealthResult:
    """Check whether a day's data can be trusted: schema, feeds, gaps, new carriers, drift."""
    day = args.day
    broken = bool(schema_findings(ctx.backend))
    if day is None:
        # the catalog cannot be read without the columns: report the schema alone
        day = date.today() if broken else load_catalog(ctx.backend).last_day
    elif not broken:
        catalog = load_catalog(ctx.backend)
        if not catalog.first_day <= day <= catalog.last_day:
            raise ToolError(f"{day} is outside the data ({catalog.first_day}..{catalog.last_day})")
    return _result(ctx, args, _assess(ctx, day, args.lookback_days))


_HEALTH: LRUCache[Hashable, DataHealth] = LRUCache(maxsize=64)
_HEALTH_LOCK = threading.Lock()


def _assess(ctx: ToolContext, day: date, lookback_days: int) -> DataHealth:
    """Run the checks, once per data version, day, window and feed ages (bounded LRU).

    Every run checks its day first, and a morning's questions ask about the same day: the
    answer changes only when the data (its version: every load) does.
    """
    ages = tuple(sorted(ctx.feed_max_age_days.items()))
    key = (ctx.backend.data_version(), day, lookback_days, ages)
    with _HEALTH_LOCK:
        hit = _HEALTH.get(key)
    if hit is not None:
        return hit
    health = assess(
        ctx.backend, day, lookback_days=lookback_days, feed_max_age=ctx.feed_max_age_days
    )
    with _HEALTH_LOCK:
        _HEALTH[key] = health
    return health


def _result(
    ctx: ToolContext, args: CheckDataHealthInput, health: DataHealth
) -> CheckDataHealthResult:
    numbers: dict[str, float | int] = {
        "trusted": int(health.trusted),
        "severe_findings": len(health.severe),
        "warnings": sum(f.severity == "warn" for f in health.findings),
        "reference_days": health.reference_days,
        "max_abs_drift_z": round(worst_z(health), 2),
    }
    for d in health.drift:
        numbers[f"{d.feature}.z"] = round(d.z, 2)
    facts = {f"{f.check}:{f.subject}": f.label for f in health.findings}
    summary = (
        f"data health on {health.day}: "
        + ("trusted" if health.trusted else f"{len(health.findings)} finding(s)")
        + "".join(f"; {f.label}" for f in health.findings[:5])
    )
    evidence = ctx.evidence.register(
        "check_data_health", args.model_dump(mode="json"), numbers, summary, facts
    )
    return CheckDataHealthResult(
        evidence_id=evidence.id,
        day=health.day,
        reference=(health.reference_start, health.day),
        reference_days=health.reference_days,
        trusted=health.trusted,
        severe=bool(health.severe),
        findings=health.findings,
        drift=health.drift,
        not_assessed=health.not_assessed,
    )
