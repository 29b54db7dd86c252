"""The monitor: data health, drift, model decay and agent health, day by day, with alerts.

``lastmile monitor`` runs it over the days up to a service date: every day's data-health
check (:mod:`tools.analytics.health`), the forecast error of the chain's orders and late
rate as actuals arrive (:mod:`tools.analytics.forecast_error`), the anomaly detector's
alarm rate, and the agent's own figures from its run records (:mod:`agent.agent_health`).
Figures go to the ``monitoring`` table, flagged ones open de-duplicated alerts
(:mod:`agent.storage.monitoring`), and the report writer draws them
(:mod:`agent.monitor_report`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pydantic import BaseModel
from scipy import stats
from sqlalchemy import Engine

from agent.agent_health import agent_figures
from agent.effect_figures import stability_figures
from agent.errors import DataUnusableError, RunInputError
from agent.model_versions import VersionChange, compare_versions
from agent.settings import Settings
from agent.storage import monitoring as store
from agent.storage.approvals import outbox
from agent.storage.monitoring import Alert, Figure
from agent.storage.outcomes import OutcomeRecord
from agent.storage.runs import RunStore
from tools.analytics.cells import load_store_days
from tools.analytics.drift import FEATURES, z_critical
from tools.analytics.forecast_error import DayError, decay, tracked_errors
from tools.analytics.health import DataHealth, assess, schema_findings
from tools.analytics.scope import load_catalog, resolve_scope
from tools.analytics.thresholds import (
    ACTION_INTERVAL,
    ALARM_RATE_ALPHA,
    ALARM_RATE_CEILING,
    FORECAST_MIN_HISTORY,
    FORECAST_RECENT_DAYS,
    FORECAST_REFERENCE_DAYS,
    HEALTH_LOOKBACK_DAYS,
)
from tools.catalog.calibration import ActionCalibration
from tools.causal.stability import StabilityResult, effect_stability
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.core.models import ModelRecord, ModelRegistry
from tools.data.backend import Backend
from tools.data.views import LateRule
from tools.forecast_inputs import kpi_series
from tools.scan_anomalies import ScanAnomaliesInput, scan_anomalies

logger = logging.getLogger(__name__)

TRACKED_KPIS: tuple[str, ...] = ("orders", "late_rate")
"""The chain's KPIs whose forecast error is tracked."""


class MonitorResult(BaseModel):
    """What one monitor run found."""

    start: date
    day: date
    health: list[DataHealth]
    figures: list[Figure]
    opened: list[Alert]
    open_alerts: list[Alert]
    not_assessed: list[str] = []
    """Parts of the monitor the data could not support, and why (a short history...)."""
    outcomes: list[OutcomeRecord] = []
    """Every measured outcome of a dispatched action, oldest dispatch first."""
    calibration: dict[str, ActionCalibration] = {}
    """Each catalog action's track record (actions with outcomes)."""
    pending_outcomes: int = 0
    """Approved actions with no outcome as of the monitored day."""
    stability: StabilityResult | None = None
    """Each cause's effect in the latest window against the windows before."""
    models: list[VersionChange] = []
    """Each fitted model's latest version against the one before (the model registry)."""


def health_figures(health: DataHealth) -> list[Figure]:
    """Return a day's health findings and per-feature drift as monitor figures."""
    out = [
        Figure(
            day=health.day,
            kind="drift",
            name=d.feature,
            value=d.z,
            threshold=z_critical(len(health.drift)),
            flagged=d.drifted,
        )
        for d in health.drift
    ]
    out += [
        Figure(
            day=health.day,
            kind="health",
            name=f.check,
            subject=f.subject,
            value=f.statistic,
            threshold=f.threshold,
            flagged=f.severity != "info",
            severity=f.severity,
            message=f.message,
        )
        for f in health.findings
    ]
    out.append(Figure(day=health.day, kind="health", name="trusted", value=float(health.trusted)))
    return out


def health_history(
    ctx: ToolContext, start: date, day: date, feed_max_age: dict[str, int]
) -> list[DataHealth]:
    """Check every day from ``start`` to ``day`` (one read of the store-days, as of ``day``)."""
    first = start - timedelta(days=HEALTH_LOOKBACK_DAYS)
    store_days = load_store_days(ctx.backend, as_of=day, start=first)
    return [
        assess(
            ctx.backend,
            d.date(),
            lookback_days=HEALTH_LOOKBACK_DAYS,
            feed_max_age=feed_max_age,
            store_days=store_days,
        )
        for d in pd.date_range(start, day)
    ]


def level_shifts(health: Iterable[DataHealth], earlier: Iterable[Figure]) -> list[pd.Timestamp]:
    """Return the first days of the orders drift episodes (new demand regimes)."""
    days = sorted(
        {h.day for h in health if any(d.feature == "orders" and d.drifted for d in h.drift)}
        | {f.day for f in earlier if f.kind == "drift" and f.name == "orders" and f.flagged}
    )
    return [pd.Timestamp(d) for i, d in enumerate(days) if i == 0 or (d - days[i - 1]).days > 3]


def forecast_figures(
    ctx: ToolContext, start: date, day: date, shifts: list[pd.Timestamp]
) -> list[Figure]:
    """Return the tracked forecast errors and the decay test of each day from ``start``."""
    catalog = load_catalog(ctx.backend)
    scope = resolve_scope(catalog, "all", [])
    first = max(
        catalog.first_day + timedelta(days=FORECAST_MIN_HISTORY),
        start - timedelta(days=FORECAST_REFERENCE_DAYS + FORECAST_RECENT_DAYS),
    )
    out: list[Figure] = []
    for kpi in TRACKED_KPIS:
        series = kpi_series(ctx, scope, kpi, catalog.first_day, day)
        errors = tracked_errors(
            series,
            pd.Timestamp(first),
            rate=kpi == "late_rate",
            shifts=shifts if kpi == "orders" else (),
            random_state=ctx.random_state,
        )
        out += _error_figures(kpi, errors, start)
    return out


def _error_figures(kpi: str, errors: list[DayError], start: date) -> list[Figure]:
    out = []
    for e in errors:
        if e.day.date() < start:
            continue
        out.append(Figure(day=e.day.date(), kind="forecast", name=kpi, value=e.scaled_error))
        test = decay(errors, e.day)
        if test is None:
            continue
        out.append(
            Figure(
                day=e.day.date(),
                kind="decay",
                name=kpi,
                value=test.recent_mase,
                threshold=test.reference_mase,
                flagged=test.decayed,
                severity="warn" if test.decayed else None,
                message=(
                    f"the {kpi} forecast got worse: MASE {test.recent_mase:.2f} over the last "
                    f"week against {test.reference_mase:.2f} over the four weeks before "
                    f"(Mann-Whitney p = {test.p_value:.1e}); a new regime the model has not "
                    "learned yet"
                )
                if test.decayed
                else None,
            )
        )
    return out


def alarm_figures(ctx: ToolContext, start: date, day: date) -> list[Figure]:
    """Return the detector's anomalies per day, flagged above the alarm-rate ceiling."""
    # six days more than the window: the first day's weekly count needs its week
    first = max(start - timedelta(days=6), load_catalog(ctx.backend).first_day)
    days = (day - first).days + 1
    scan = scan_anomalies(ctx, ScanAnomaliesInput(day=day, days=days, max_results=500))
    counts = pd.Series([a.date for a in scan.anomalies], dtype=object).value_counts()
    stores_per_day = scan.store_days_scanned / max(days, 1)
    out = []
    for d in pd.date_range(start, day):
        n = int(counts.get(d.date(), 0))
        week = sum(int(counts.get((d - pd.Timedelta(days=k)).date(), 0)) for k in range(7))
        expected = ALARM_RATE_CEILING / 100 * stores_per_day  # per week
        p = float(stats.poisson.sf(week - 1, expected)) if week else 1.0
        flagged = p < ALARM_RATE_ALPHA
        out.append(
            Figure(
                day=d.date(),
                kind="alarms",
                name="anomalies",
                value=float(n),
                threshold=expected / 7,
                flagged=flagged,
                severity="warn" if flagged else None,
                message=(
                    f"the anomaly detector raised {week} alarms in the week to {d.date()}, "
                    f"against at most {expected:.1f} expected at {ALARM_RATE_CEILING:g} per 100 "
                    f"store-weeks (Poisson p = {p:.1e}): a feed problem or a detector that no "
                    "longer fits the data"
                )
                if flagged
                else None,
            )
        )
    return out


def _untested(figures: list[Figure]) -> frozenset[tuple[str, str, str]]:
    """Drift findings a day could not confirm or clear: features it did not test."""
    tested = {f.name for f in figures if f.kind == "drift"}
    return frozenset(("health", "drift", f.name) for f in FEATURES if f.name not in tested)


def run_monitor(
    ctx: ToolContext,
    engine: Engine,
    day: date,
    days: int,
    *,
    feed_max_age: dict[str, int] | None = None,
    extra: list[Figure] | None = None,
) -> MonitorResult:
    """Monitor the ``days`` days up to ``day``; record the figures and update the alerts.

    ``extra`` figures (the outcome track records, of ``day``) are recorded with the rest.

    Raises:
        ToolError: ``day`` outside the data, or no deliveries to monitor.
    """
    catalog = load_catalog(ctx.backend)
    start = max(day - timedelta(days=days - 1), catalog.first_day)
    health = health_history(ctx, start, day, feed_max_age or {})
    earlier = store.figures(engine, start - timedelta(days=90), start - timedelta(days=1), "drift")
    figures = [f for h in health for f in health_figures(h)]
    not_assessed: list[str] = []
    shifts = level_shifts(health, earlier)
    parts: dict[str, Callable[[], list[Figure]]] = {
        "forecast error": lambda: forecast_figures(ctx, start, day, shifts),
        "detector alarm rate": lambda: alarm_figures(ctx, start, day),
    }
    for name, part in parts.items():
        try:
            figures += part()
        except (ToolError, ValueError) as exc:  # too little data for this part: say so
            logger.warning("monitor: %s not assessed: %s", name, exc)
            not_assessed.append(f"{name}: {exc}")
    stability = None
    try:
        stability = effect_stability(ctx.backend, day)
        figures += stability_figures(stability)
        if stability.critical_t is None:
            not_assessed.append("causal effect stability: " + "; ".join(stability.not_assessed))
    except (ToolError, ValueError) as exc:
        logger.warning("monitor: causal effect stability not assessed: %s", exc)
        not_assessed.append(f"causal effect stability: {exc}")
    agent = agent_figures(engine, date.today() - timedelta(days=days - 1), date.today())
    agent += extra or []
    version = ctx.backend.data_version()
    opened: list[Alert] = []
    by_day: dict[date, list[Figure]] = {}
    for f in figures + agent:
        by_day.setdefault(f.day, []).append(f)
    for d in sorted(by_day):
        store.record_day(engine, d, by_day[d], version)
        opened += store.update_alerts(engine, d, by_day[d], _untested(by_day[d]))
    logger.info(
        "monitored %s..%s: %d figures, %d alerts opened", start, day, len(figures), len(opened)
    )
    return MonitorResult(
        start=start,
        day=day,
        health=health,
        figures=figures + agent,
        opened=opened,
        open_alerts=store.alerts(engine, open_only=True),
        not_assessed=not_assessed,
        stability=stability,
    )


def outcome_figures(calibration: dict[str, ActionCalibration], day: date) -> list[Figure]:
    """Return each action's track record as a figure of ``day`` (flagged: uncalibrated)."""
    return [
        Figure(
            day=day,
            kind="outcomes",
            name=action_id,
            value=c.coverage,
            threshold=ACTION_INTERVAL,
            flagged=c.uncalibrated,
            severity="warn" if c.uncalibrated else None,
            message=c.note()
            or f"{c.inside} of {c.outcomes} outcomes inside the 80 % interval of the estimate",
        )
        for action_id, c in sorted(calibration.items())
    ]


class Monitoring:
    """``monitor`` for :class:`agent.service.AgentService` (a mixin)."""

    db: Path
    settings: Settings
    store: RunStore

    if TYPE_CHECKING:  # provided by agent.service.AgentService

        def backend(self, late: LateRule | None = None) -> Backend: ...  # noqa: D102

    if TYPE_CHECKING:  # provided by agent.outcomes.Outcomes

        def measure_outcomes(self, through: date | None = None) -> list[OutcomeRecord]: ...  # noqa: D102
        def outcomes(  # noqa: D102
            self, action_id: str | None = None, through: date | None = None
        ) -> list[OutcomeRecord]: ...
        def calibration(self, through: date | None = None) -> dict[str, ActionCalibration]: ...  # noqa: D102
        @property
        def models(self) -> ModelRegistry: ...  # noqa: D102
        def model_records(  # noqa: D102
            self, kind: str | None = None, since: datetime | None = None
        ) -> list[ModelRecord]: ...

    def monitor(self, day: date | None = None, days: int = 28) -> MonitorResult:
        """Monitor the ``days`` days up to ``day`` (default: the latest day in the data).

        Raises:
            RunInputError: no data, or ``day`` outside it.
        """
        settings = self.settings
        ctx = ToolContext(backend=self.backend(), models=self.models)
        broken = schema_findings(ctx.backend)
        if broken:
            raise DataUnusableError("; ".join(f.message for f in broken))
        try:
            catalog = load_catalog(ctx.backend)
        except ToolError as exc:
            raise RunInputError(str(exc)) from None
        day = day or catalog.last_day
        if not catalog.first_day <= day <= catalog.last_day:
            raise RunInputError(
                f"{day} is outside the data ({catalog.first_day}..{catalog.last_day})"
            )
        # the actions approved so far whose day is now in the data: what they realised
        self.measure_outcomes(through=day)
        calibration = self.calibration(through=day)
        result = run_monitor(
            ctx,
            self.store.engine,
            day,
            days,
            feed_max_age={str(k): v for k, v in settings.feed_max_age_days.items()},
            extra=outcome_figures(calibration, day),
        )
        result.outcomes, result.calibration = self.outcomes(through=day), calibration
        result.pending_outcomes = len(outbox(self.store.engine)) - len(result.outcomes)
        result.models = compare_versions(self.model_records())
        return result
