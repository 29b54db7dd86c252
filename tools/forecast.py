"""Tool ``forecast``: where a KPI is heading for a scope, and whether a problem will persist.

One Prophet model per call, fitted only for the scope and KPI asked (never every store),
with the promotion share and holidays as regressors (their future values come from the
calendar, so a planned promotion shows up in the volume forecast), and the weather feed's
rain and traffic when the data has them: rows of the ``conditions`` table after the forecast
origin are read as the weather forecast, so a storm forecast to go on keeps the late rate up
(days the feed does not reach get the scope's median conditions). Fitted models are cached
per data version, scope, KPI, forecast origin and regressors.

Example:
    >>> ctx = ToolContext.for_duckdb("data/lastmile.duckdb")
    >>> f = forecast(ctx, ForecastInput(scope="store", ids=["S010"], kpi="late_rate", horizon=7))
    >>> f.persistence, [p.yhat for p in f.points]
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from tools.analytics.forecasting import (
    backtest,
    carrier_outage,
    closed_weekdays,
    fit_prophet,
    honest_interval,
    in_sample_errors,
    predict,
    seasonal_naive,
    weather_regressors,
)
from tools.analytics.scope import ScopeLevel, load_catalog, resolve_scope
from tools.analytics.thresholds import (
    FORECAST_MAX_HORIZON,
    FORECAST_MIN_HISTORY,
    MIN_LATE_EXCESS,
    PERSIST_KEEP,
)
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.core.models import Fit
from tools.forecast_inputs import daily_cells, future_calendar, future_conditions, kpi_series
from tools.vocabulary import ForecastKpi, forecast_kpis, kpis

__all__ = [
    "ForecastInput",
    "ForecastPoint",
    "ForecastResult",
    "backtest",
    "fit_prophet",
    "forecast",
    "kpi_series",
    "seasonal_naive",
]

RATE_KPIS = {k for k in forecast_kpis() if kpis()[k].unit == "share"}
Verdict = Literal["persists", "fades", "normal", "coming"]
MIN_HISTORY = FORECAST_MIN_HISTORY
MAX_HORIZON = FORECAST_MAX_HORIZON


class ForecastPoint(BaseModel):
    """One forecast day."""

    date: date
    yhat: float
    lower: float
    upper: float
    promo_share: float


class ForecastInput(BaseModel):
    """Arguments of ``forecast``."""

    scope: ScopeLevel = Field("all", description="'all', 'region' or 'store'.")
    ids: list[str] = Field(default_factory=list, description="Region or store ids of the scope.")
    kpi: ForecastKpi = "late_rate"
    horizon: int = Field(7, ge=1, le=MAX_HORIZON, description="Days to forecast after `as_of`.")
    as_of: date | None = Field(None, description="Last day of history used (default: latest).")
    history_days: int = Field(120, ge=MIN_HISTORY, le=1100)
    interval: float = Field(0.8, gt=0.5, lt=1.0, description="Width of the prediction interval.")


class ForecastResult(BaseModel):
    """Forecast with intervals and a persistence judgement."""

    evidence_id: str
    scope: str
    kpi: str
    as_of: date
    last_value: float = Field(description="The KPI on the last open day up to as_of.")
    last_day: date = Field(description="That day (as_of, unless as_of was a closed day).")
    normal: float = Field(
        description="The KPI's normal level over the 28 days before: a rate pooled over their "
        "deliveries (or drivers), a count's median."
    )
    points: list[ForecastPoint] = Field(description="Open days ahead (closed days left out).")
    closed_days: list[date] = Field(
        default_factory=list, description="Days ahead on weekdays the scope is closed."
    )
    mean_forecast: float
    persistence: Verdict = Field(
        description="persists / fades: the latest deviation carries on or not; normal: no "
        "problem; coming: the latest day was normal but the forecast expects a problem."
    )
    coming_day: date | None = Field(
        None, description="With 'coming': the first day the forecast expects the problem."
    )
    explanation: str
    model: str


def _model(
    ctx: ToolContext,
    args: ForecastInput,
    history: pd.DataFrame,
    scope: str,
    params: dict[str, object],
    weather: tuple[str, ...],
) -> object:
    """Return the fitted Prophet model from the model registry (fitted on a miss)."""

    def fit() -> Fit[object]:
        model = fit_prophet(
            history,
            interval=args.interval,
            random_state=ctx.random_state,
            extra_regressors=weather,
        )
        return Fit(model, len(history), in_sample_errors(model, history))

    return ctx.models.fitted("forecaster", scope, ctx.backend.data_version(), params, fit)


def _points(
    model: object,
    future: pd.DataFrame,
    history: pd.DataFrame,
    args: ForecastInput,
    random_state: int,
) -> list[ForecastPoint]:
    rate = args.kpi in RATE_KPIS
    fc = predict(model, future, rate=rate, random_state=random_state)
    # one day's own sampling noise, at the scope's typical volume on an open day
    n = float(max(history.n.tail(28).median(), 1.0))
    lower, upper = honest_interval(
        fc.yhat.to_numpy(),
        fc.yhat_lower.to_numpy(),
        fc.yhat_upper.to_numpy(),
        n,
        rate=rate,
        width=args.interval,
    )
    return [
        ForecastPoint(
            date=pd.Timestamp(ds).date(),
            yhat=round(float(y), 4),
            lower=round(float(lo), 4),
            upper=round(float(hi), 4),
            promo_share=round(float(p), 3),
        )
        for ds, y, lo, hi, p in zip(fc.ds, fc.yhat, lower, upper, future.promo, strict=True)
    ]


def forecast(ctx: ToolContext, args: ForecastInput) -> ForecastResult:
    """Forecast a scope's KPI and judge whether its current deviation will persist.

    Raises:
        ToolError: unknown scope, ``as_of`` outside the data, or too little history.
    """
    catalog = load_catalog(ctx.backend)
    scope = resolve_scope(catalog, args.scope, args.ids)
    as_of = args.as_of or catalog.last_day
    if not catalog.first_day <= as_of <= catalog.last_day:
        raise ToolError(
            f"as_of {as_of} is outside the data ({catalog.first_day}..{catalog.last_day})"
        )
    start = max(catalog.first_day, as_of - timedelta(days=args.history_days - 1))
    history = kpi_series(ctx, scope, args.kpi, start, as_of)
    if len(history) < MIN_HISTORY:
        raise ToolError(
            f"too little history to forecast {args.kpi} for {scope.label()}: {len(history)} "
            f"open days up to {as_of}, need {MIN_HISTORY}",
            kind="not_enough_data",
        )
    weather = weather_regressors(history)
    for c in weather:
        history[c] = history[c].fillna(history[c].median())
    observed = history
    outage = carrier_outage(history) if args.kpi == "late_rate" else None
    if outage is not None:
        # Prophet forecasts the late rate net of the outage; its part is carried forward.
        history = history.assign(y=history.y - outage.part_of(history))
    params: dict[str, object] = {
        "ids": tuple(scope.ids),
        "kpi": args.kpi,
        "as_of": as_of,
        "start": start,
        "interval": args.interval,
        "random_state": ctx.random_state,
        "weather": weather,
        "outage": outage,
    }
    model = _model(ctx, args, history, f"{scope.label()} {args.kpi}", params, weather)
    # Always predict the longest horizon and cut: the intervals (sampled) then do not depend
    # on how many days were asked for. Closed weekdays are not forecast.
    shut = closed_weekdays(daily_cells(ctx, scope, start, as_of))
    days = [as_of + timedelta(days=i) for i in range(1, MAX_HORIZON + 1)]
    closed = [d for d in days[: args.horizon] if d.weekday() in shut]
    open_days = [d for d in days if d.weekday() not in shut]
    future = future_calendar(ctx, scope, open_days)
    if weather:
        future = future.merge(future_conditions(ctx, scope, open_days, history, weather), on="ds")
    points = _points(model, future, history, args, ctx.random_state)
    points = [p for p in points if p.date <= as_of + timedelta(days=args.horizon)]
    if outage is not None:
        points = [_carry(p, outage.late_part) for p in points]
    if not points:
        raise ToolError(
            f"{scope.label()} is closed every day of the next {args.horizon} day(s)",
            kind="not_enough_data",
        )
    # evidence carries exactly the (rounded) numbers the result shows
    last_value = round(float(observed.y.iloc[-1]), 4)
    last_day = pd.Timestamp(observed.ds.iloc[-1]).date()
    recent = observed[observed.ds >= pd.Timestamp(last_day - timedelta(days=28))]
    before = recent.iloc[:-1]
    if args.kpi in RATE_KPIS and before.n.sum() > 0:
        # pooled over the days' deliveries: a median of thin days' rates is often 0
        normal = round(float((before.y * before.n).sum() / before.n.sum()), 4)
    else:
        normal = round(float(before.y.median()), 4)
    mean_fc = round(float(np.mean([p.yhat for p in points])), 4)
    persistence, explanation, ahead = _judge(args.kpi, last_value, normal, points)
    numbers: dict[str, float] = {}
    if outage is not None:
        numbers["carrier_part"] = round(outage.late_part, 4)
        numbers["carrier_days"] = outage.days
        explanation += (
            f"; the DSP's excess lateness has run {outage.days} days (+{outage.late_part:.1%} "
            "of the late rate) and is assumed to go on until the data shows it ended"
        )
    numbers |= {
        "last_value": last_value,
        "normal": normal,
        "mean_forecast": mean_fc,
        "open_days": len(points),
        "closed_days": len(closed),
    }
    for p in points:
        numbers[f"{p.date}.yhat"] = p.yhat
        numbers[f"{p.date}.lower"] = p.lower
        numbers[f"{p.date}.upper"] = p.upper
    evidence = ctx.evidence.register(
        "forecast",
        args.model_dump(mode="json"),
        numbers,
        f"{args.kpi} for {scope.label()} after {as_of}: {persistence} ({explanation})",
        {
            "target": scope.ids[0] if len(scope.ids) == 1 else "all" if not scope.ids else "",
            "kpi": args.kpi,
            "persistence": persistence,
            **({"coming_day": str(ahead.date)} if ahead else {}),
        },
    )
    return ForecastResult(
        evidence_id=evidence.id,
        scope=scope.label(),
        kpi=args.kpi,
        as_of=as_of,
        last_value=last_value,
        last_day=last_day,
        normal=normal,
        points=points,
        closed_days=closed,
        mean_forecast=mean_fc,
        persistence=persistence,
        coming_day=ahead.date if ahead else None,
        explanation=explanation,
        model="Prophet (weekly seasonality, promo share and holiday regressors"
        + (f"; {' and '.join(weather)} from the weather feed's forecast" if weather else "")
        + ("; the carrier outage in progress carried forward" if outage else "")
        + "); intervals at least one day's sampling noise (Wilson for rates, Poisson for counts)",
    )


def _carry(point: ForecastPoint, part: float) -> ForecastPoint:
    """Add an ongoing driver's late-rate part to a forecast day (rates stay within 0..1)."""
    return point.model_copy(
        update={k: round(min(1.0, getattr(point, k) + part), 4) for k in ("yhat", "lower", "upper")}
    )


def coming(kpi: str, normal: float, points: list[ForecastPoint]) -> ForecastPoint | None:
    """Return the first forecast day with a late-rate problem, if any.

    A problem is coming when the whole interval of a day ahead is at least
    :data:`MIN_LATE_EXCESS` (3 points, the bar an anomaly must clear) above normal: the
    weather feed's forecast of a storm, an outage in progress, a planned promotion.
    """
    if kpi != "late_rate":
        return None
    return next((p for p in points if p.lower - normal >= MIN_LATE_EXCESS), None)


def _judge(
    kpi: str, last: float, normal: float, points: list[ForecastPoint]
) -> tuple[Verdict, str, ForecastPoint | None]:
    """Judge whether the latest deviation carries into the next days, or a problem comes.

    The latest value is "off" when it is outside the first forecast day's interval width
    around normal; it *persists* when tomorrow's forecast still keeps at least half of it.
    Only a deviation in the bad direction can persist (a late rate below normal is "normal");
    orders count both ways. When nothing persists, a problem is *coming* if a later forecast
    day has one (:func:`coming`): that day is returned too (else None).
    """
    verdict, why = _carries(kpi, last, normal, points)
    ahead = coming(kpi, normal, points) if verdict != "persists" else None
    if ahead is not None:
        return (
            "coming",
            f"{why}; but the forecast for {ahead.date} is {ahead.yhat:.4g} "
            f"(at least {ahead.lower:.4g})",
            ahead,
        )
    return verdict, why, None


def _carries(
    kpi: str, last: float, normal: float, points: list[ForecastPoint]
) -> tuple[Verdict, str]:
    """Whether the latest deviation persists, fades, or there was none (see :func:`_judge`)."""
    first = points[0]
    band = max((first.upper - first.lower) / 2, 1e-9)
    excess = last - normal
    if abs(excess) < band:
        return "normal", f"{kpi} {last:.4g} is within the usual range around {normal:.4g}"
    if excess < 0 and kpi != "orders":
        # a late rate (or delay, or no-show rate) below normal is no problem to persist
        return "normal", f"{kpi} {last:.4g} is below its usual {normal:.4g}: nothing to persist"
    kept = (first.yhat - normal) / excess
    if kept >= PERSIST_KEEP:
        return (
            "persists",
            f"tomorrow's forecast {first.yhat:.4g} keeps {kept:.0%} "
            f"of the deviation from {normal:.4g}",
        )
    return (
        "fades",
        f"tomorrow's forecast {first.yhat:.4g} is back near {normal:.4g} "
        f"(keeps {max(kept, 0):.0%} of the deviation)",
    )
