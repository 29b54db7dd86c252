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

import threading
from collections.abc import Hashable
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd
from cachetools import LRUCache
from pydantic import BaseModel, Field

from tools.analytics.cells import aggregate, load_store_days
from tools.analytics.forecasting import (
    WEATHER,
    backtest,
    closed_weekdays,
    fit_prophet,
    honest_interval,
    predict,
    seasonal_naive,
    weather_regressors,
)
from tools.analytics.scope import ResolvedScope, ScopeLevel, load_catalog, resolve_scope
from tools.analytics.thresholds import (
    FORECAST_MAX_HORIZON,
    FORECAST_MIN_HISTORY,
    PERSIST_KEEP,
)
from tools.core.context import ToolContext
from tools.core.errors import ToolError

ForecastKpi = Literal[
    "orders",
    "late_rate",
    "failed_rate",
    "avg_delay_min",
    "dispatch_delay_min",
    "no_show_rate",
    "orders_per_driver",
]
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

RATE_KPIS = {"late_rate", "failed_rate", "no_show_rate"}
DENOMINATOR = {
    "late_rate": "resolved",
    "failed_rate": "resolved",
    "no_show_rate": "scheduled_drivers",
}
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
    persistence: Literal["persists", "fades", "normal"]
    explanation: str
    model: str


_MODELS: LRUCache[Hashable, object] = LRUCache(maxsize=128)
_LOCK = threading.Lock()


def daily_cells(ctx: ToolContext, scope: ResolvedScope, start: date, end: date) -> pd.DataFrame:
    """Return the scope's KPIs on every day from ``start`` to ``end``, as known at ``end``.

    Rates are recomputed from counts over the scope's stores; days without deliveries due
    (closed days, gaps) are present with zero orders and no KPI.
    """
    stores = None if scope.level == "all" else scope.stores
    store_days = load_store_days(ctx.backend, as_of=end, start=start, stores=stores, medians=False)
    if store_days.empty:
        raise ToolError(
            f"no deliveries for {scope.label()} from {start} to {end}", kind="not_enough_data"
        )
    cells = aggregate(store_days, "chain", 1, last=end)
    return cells[cells.date >= pd.Timestamp(start)].reset_index(drop=True)


def kpi_series(
    ctx: ToolContext, scope: ResolvedScope, kpi: str, start: date, end: date
) -> pd.DataFrame:
    """Daily KPI of a scope (as of ``end``) with promo share, holidays and its denominator.

    Returns:
        ``ds, y, promo, holiday, n, precip_mm, traffic_index`` for open days (``n``: the
        rate's denominator, or the orders for counts; conditions NaN without a feed), closed
        days left out.
    """
    cells = daily_cells(ctx, scope, start, end)
    frame = pd.DataFrame(
        {
            "ds": cells.date,
            "y": cells["volume" if kpi == "orders" else kpi],
            "promo": cells.promo_share.astype(float),
            "holiday": cells.holiday.astype(float),
            "n": cells[DENOMINATOR.get(kpi, "orders")].astype(float),
            **{c: pd.to_numeric(cells[c], errors="coerce") for c in WEATHER if c in cells},
        }
    )
    return frame.dropna(subset=["y"]).reset_index(drop=True)


def future_conditions(
    ctx: ToolContext,
    scope: ResolvedScope,
    days: list[date],
    history: pd.DataFrame,
    cols: tuple[str, ...],
) -> pd.DataFrame:
    """Return the weather feed's values for future days (mean over the scope's regions).

    Days the feed does not reach get the history's median: the typical day, not a guess.
    """
    frame = pd.DataFrame({"ds": [pd.Timestamp(d) for d in days]})
    if not cols or not days:
        return frame
    regions = sorted(set(scope.regions)) if scope.level != "all" else None
    where = "date BETWEEN ? AND ?" + (
        f" AND region IN ({', '.join('?' * len(regions))})" if regions else ""
    )
    known = ctx.backend.query(
        f"SELECT date, {', '.join(cols)} FROM conditions WHERE {where}",
        [min(days), max(days), *(regions or [])],
    )
    known["ds"] = pd.to_datetime(known["date"])
    daily = known.groupby("ds")[list(cols)].mean()
    for c in cols:
        frame[c] = frame.ds.map(daily[c]).astype(float).fillna(float(history[c].median()))
    return frame


def future_calendar(ctx: ToolContext, scope: ResolvedScope, days: list[date]) -> pd.DataFrame:
    """Promotion share and holiday flag of future days, from the calendar table."""
    if not days:
        return pd.DataFrame(columns=["ds", "promo", "holiday"])
    cal = ctx.backend.query(
        "SELECT date, store_id, kind FROM calendar WHERE date BETWEEN ? AND ?",
        [min(days), max(days)],
    )
    cal["date"] = pd.to_datetime(cal["date"]).dt.date
    stores = set(scope.stores)
    rows = []
    for day in days:
        today = cal[cal.date == day]
        chain = today[today.store_id.isna()]
        promo_stores = (
            set(today[(today.kind == "promo") & today.store_id.notna()].store_id) & stores
        )
        promo = 1.0 if (chain.kind == "promo").any() else len(promo_stores) / max(1, len(stores))
        holiday = float((today.kind == "holiday").any())
        rows.append({"ds": pd.Timestamp(day), "promo": promo, "holiday": holiday})
    return pd.DataFrame(rows)


def _model(
    ctx: ToolContext,
    args: ForecastInput,
    history: pd.DataFrame,
    key: tuple[Hashable, ...],
    weather: tuple[str, ...],
) -> object:
    """Return the fitted Prophet model for a key (bounded LRU cache)."""
    with _LOCK:
        model = _MODELS.get(key)
    if model is None:
        model = fit_prophet(
            history,
            interval=args.interval,
            random_state=ctx.random_state,
            extra_regressors=weather,
        )
        with _LOCK:
            _MODELS[key] = model
    return model


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
    key = (
        ctx.backend.data_version(),
        scope.level,
        tuple(scope.ids),
        args.kpi,
        as_of,
        start,
        args.interval,
        ctx.random_state,
        weather,
    )
    model = _model(ctx, args, history, key, weather)
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
    if not points:
        raise ToolError(
            f"{scope.label()} is closed every day of the next {args.horizon} day(s)",
            kind="not_enough_data",
        )
    # evidence carries exactly the (rounded) numbers the result shows
    last_value = round(float(history.y.iloc[-1]), 4)
    last_day = pd.Timestamp(history.ds.iloc[-1]).date()
    recent = history[history.ds >= pd.Timestamp(last_day - timedelta(days=28))]
    before = recent.iloc[:-1]
    if args.kpi in RATE_KPIS and before.n.sum() > 0:
        # pooled over the days' deliveries: a median of thin days' rates is often 0
        normal = round(float((before.y * before.n).sum() / before.n.sum()), 4)
    else:
        normal = round(float(before.y.median()), 4)
    mean_fc = round(float(np.mean([p.yhat for p in points])), 4)
    persistence, explanation = _judge(args.kpi, last_value, normal, points)
    numbers: dict[str, float] = {
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
        explanation=explanation,
        model="Prophet (weekly seasonality, promo share and holiday regressors"
        + (f"; {' and '.join(weather)} from the weather feed's forecast" if weather else "")
        + "); intervals at least one day's sampling noise (Wilson for rates, Poisson for counts)",
    )


def _judge(
    kpi: str, last: float, normal: float, points: list[ForecastPoint]
) -> tuple[Literal["persists", "fades", "normal"], str]:
    """Judge whether the latest deviation carries into the next days.

    The latest value is "off" when it is outside the first forecast day's interval width
    around normal; it *persists* when tomorrow's forecast still keeps at least half of it.
    Only a deviation in the bad direction can persist (a late rate below normal is "normal");
    orders count both ways.
    """
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
