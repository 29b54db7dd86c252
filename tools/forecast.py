"""Tool ``forecast``: where a KPI is heading for a scope, and whether a problem will persist.

One Prophet model per call, fitted only for the scope and KPI asked (never every store),
with the promotion share and holidays as regressors (their future values come from the
calendar, so a planned promotion shows up in the volume forecast). Fitted models are cached
per data version, scope, KPI and forecast origin.

Example:
    >>> ctx = ToolContext.for_duckdb("data/lastmile.duckdb")
    >>> f = forecast(ctx, ForecastInput(scope="store", ids=["S010"], kpi="late_rate", horizon=7))
    >>> f.persistence, [p.yhat for p in f.points]
"""

from __future__ import annotations

import logging
import threading
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from tools.analytics.scope import ResolvedScope, ScopeLevel, load_catalog, resolve_scope
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.data.kpis import kpi_query

logging.getLogger("cmdstanpy").disabled = True
logging.getLogger("prophet").setLevel(logging.ERROR)
logging.getLogger("prophet.plot").disabled = True

ForecastKpi = Literal[
    "orders",
    "late_rate",
    "failed_rate",
    "avg_delay_min",
    "dispatch_delay_min",
    "no_show_rate",
    "orders_per_driver",
]
RATE_KPIS = {"late_rate", "failed_rate", "no_show_rate"}
MIN_HISTORY = 21
MAX_HORIZON = 28


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
    last_value: float
    normal: float = Field(description="The KPI's normal level: median of the 28 days before as_of.")
    points: list[ForecastPoint]
    mean_forecast: float
    persistence: Literal["persists", "fades", "normal"]
    explanation: str
    model: str


_MODELS: dict[tuple[object, ...], object] = {}
_LOCK = threading.Lock()


def kpi_series(
    ctx: ToolContext, scope: ResolvedScope, kpi: str, start: date, end: date
) -> pd.DataFrame:
    """Daily KPI of a scope (rates recomputed from counts) with promo share and holidays."""
    sql, params = kpi_query(
        store_ids=scope.stores if scope.level == "store" else None,
        regions=scope.regions if scope.level == "region" else None,
        start=start,
        end=end,
        grain="day",
    )
    frame = ctx.backend.query(sql, params)
    frame = frame.rename(columns={"period": "ds", kpi: "y"})
    frame["ds"] = pd.to_datetime(frame["ds"])
    frame["promo"] = frame["promo_share"].astype(float).fillna(0.0)
    frame["holiday"] = frame["holiday"].fillna(False).astype(float)
    return frame[["ds", "y", "promo", "holiday"]].dropna(subset=["y"])


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


def fit_prophet(history: pd.DataFrame, *, interval: float = 0.8, random_state: int = 0) -> object:
    """Fit Prophet with weekly seasonality and promo/holiday regressors (yearly if >= 1 year)."""
    from prophet import Prophet  # imported lazily: slow to import

    model = Prophet(
        weekly_seasonality=True,
        yearly_seasonality=len(history) >= 365,
        daily_seasonality=False,
        interval_width=interval,
        uncertainty_samples=300,
        changepoint_prior_scale=0.05,
    )
    for col in ("promo", "holiday"):
        if history[col].nunique() > 1:
            model.add_regressor(col)
    np.random.seed(random_state)
    model.fit(history)
    return model


def predict(
    model: object, future: pd.DataFrame, *, rate: bool, random_state: int = 0
) -> pd.DataFrame:
    """Forecast ``future`` rows (ds plus regressors): yhat, yhat_lower, yhat_upper."""
    np.random.seed(random_state)
    out: pd.DataFrame = model.predict(future)  # type: ignore[attr-defined]
    cols = ["yhat", "yhat_lower", "yhat_upper"]
    out[cols] = out[cols].clip(lower=0.0, upper=1.0 if rate else None)
    return out[["ds", *cols]]


def seasonal_naive(history: pd.Series, horizon: int, season: int = 7) -> np.ndarray:
    """Repeat the last ``season`` values (the benchmark Prophet must beat)."""
    last = history.to_numpy()[-season:]
    return np.array([last[i % season] for i in range(horizon)])


def backtest(
    series: pd.DataFrame, *, horizon: int = 7, origins: int = 6, rate: bool = False
) -> dict[str, float]:
    """Rolling-origin backtest of Prophet against the seasonal-naive forecast.

    Args:
        series: ``ds, y, promo, holiday`` rows (all known in advance except y).
        horizon: days forecast from each origin.
        origins: forecast origins, spaced ``horizon`` days apart at the end of the series.
        rate: clip forecasts to [0, 1].

    Returns:
        MAE, MAPE and MASE of both methods (MASE scaled by the in-sample seasonal-naive MAE).
    """
    series = series.reset_index(drop=True)
    errors: dict[str, list[float]] = {"prophet": [], "naive": []}
    actuals: list[float] = []
    scale_parts: list[float] = []
    for k in range(origins, 0, -1):
        cut = len(series) - k * horizon
        if cut < MIN_HISTORY:
            continue
        history, future = series.iloc[:cut], series.iloc[cut : cut + horizon]
        model = fit_prophet(history)
        fc = predict(model, future[["ds", "promo", "holiday"]], rate=rate)
        errors["prophet"] += list(np.abs(fc.yhat.to_numpy() - future.y.to_numpy()))
        errors["naive"] += list(
            np.abs(seasonal_naive(history.y, len(future)) - future.y.to_numpy())
        )
        actuals += list(future.y.to_numpy())
        y = history.y.to_numpy()
        scale_parts.append(float(np.mean(np.abs(y[7:] - y[:-7]))))
    if not actuals:
        raise ValueError("series too short to backtest")
    actual = np.abs(np.array(actuals))
    scale = float(np.mean(scale_parts))
    out = {}
    for name, errs in errors.items():
        e = np.array(errs)
        out[f"{name}_mae"] = float(e.mean())
        out[f"{name}_mape"] = float(np.mean(e / np.where(actual == 0, np.nan, actual)))
        out[f"{name}_mase"] = float(e.mean() / scale) if scale else float("nan")
    return out


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
            f"too little history to forecast {args.kpi} for {scope.label()}: {len(history)} days "
            f"up to {as_of}, need {MIN_HISTORY}"
        )
    key = (
        ctx.backend.data_version(),
        scope.level,
        tuple(scope.ids),
        args.kpi,
        as_of,
        start,
        args.interval,
    )
    with _LOCK:
        model = _MODELS.get(key)
    if model is None:
        model = fit_prophet(history, interval=args.interval, random_state=ctx.random_state)
        with _LOCK:
            if len(_MODELS) > 128:
                _MODELS.clear()
            _MODELS[key] = model
    # Always predict the longest horizon and cut: the intervals (sampled) then do not depend
    # on how many days were asked for.
    days = [as_of + timedelta(days=i) for i in range(1, MAX_HORIZON + 1)]
    future = future_calendar(ctx, scope, days)
    rate = args.kpi in RATE_KPIS
    fc = predict(model, future, rate=rate, random_state=ctx.random_state).head(args.horizon)
    future = future.head(args.horizon)
    points = [
        ForecastPoint(
            date=pd.Timestamp(ds).date(),
            yhat=round(float(y), 4),
            lower=round(float(lo), 4),
            upper=round(float(hi), 4),
            promo_share=round(float(p), 3),
        )
        for ds, y, lo, hi, p in zip(
            fc.ds, fc.yhat, fc.yhat_lower, fc.yhat_upper, future.promo, strict=True
        )
    ]
    # evidence carries exactly the (rounded) numbers the result shows
    last_value = round(float(history.y.iloc[-1]), 4)
    normal = round(float(history.y.iloc[-29:-1].median()), 4)
    mean_fc = round(float(np.mean([p.yhat for p in points])), 4)
    persistence, explanation = _judge(args.kpi, last_value, normal, points)
    numbers: dict[str, float] = {
        "last_value": last_value,
        "normal": normal,
        "mean_forecast": mean_fc,
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
    )
    return ForecastResult(
        evidence_id=evidence.id,
        scope=scope.label(),
        kpi=args.kpi,
        as_of=as_of,
        last_value=round(last_value, 4),
        normal=round(normal, 4),
        points=points,
        mean_forecast=round(mean_fc, 4),
        persistence=persistence,
        explanation=explanation,
        model="Prophet (weekly seasonality, promo share and holiday regressors)",
    )


def _judge(
    kpi: str, last: float, normal: float, points: list[ForecastPoint]
) -> tuple[Literal["persists", "fades", "normal"], str]:
    """Judge whether the latest deviation carries into the next days.

    The latest value is "off" when it is outside the first forecast day's interval width
    around normal; it *persists* when tomorrow's forecast still keeps at least half of it.
    """
    first = points[0]
    band = max((first.upper - first.lower) / 2, 1e-9)
    excess = last - normal
    if abs(excess) < band:
        return "normal", f"{kpi} {last:.4g} is within the usual range around {normal:.4g}"
    kept = (first.yhat - normal) / excess
    if kept >= 0.5:
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
