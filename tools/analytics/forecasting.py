"""Forecasting a daily KPI series: Prophet with calendar regressors, honest intervals, backtests.

Pure functions over ``ds, y, promo, holiday`` frames of open days (closed days left out); the
``forecast`` tool fetches the series and judges persistence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from scipy import stats

from tools.analytics.thresholds import (
    ADVERSE_MIN_Z,
    CLOSED_WEEKDAY_SHARE,
    FEED_MIN_COVERAGE,
    FORECAST_MIN_HISTORY,
    MIN_REFERENCE_DAYS,
    ONGOING_MIN_DAYS,
)

# Prophet and its Stan backend log every fit at INFO: one line per store would drown a run.
logging.getLogger("cmdstanpy").disabled = True
logging.getLogger("prophet").setLevel(logging.ERROR)
logging.getLogger("prophet.plot").disabled = True

MIN_HISTORY = FORECAST_MIN_HISTORY
WEATHER = ("precip_mm", "traffic_index")
"""Conditions used as regressors when the feed covers the history (their forecast is known)."""


def weather_regressors(history: pd.DataFrame) -> tuple[str, ...]:
    """Return the conditions the history carries on most open days and that vary (a feed)."""
    out = []
    for c in WEATHER:
        if c in history and history[c].notna().mean() >= FEED_MIN_COVERAGE:
            if history[c].nunique() > 1:
                out.append(c)
    return tuple(out)


@dataclass(frozen=True)
class CarrierOutage:
    """A carrier outage in progress at the forecast origin.

    Attributes:
        days: open days running, up to the origin, with the DSP gap beyond its normal.
        gap: the DSP gap on the last day (late-rate points of DSP over other deliveries, 0-1).
        normal_gap: the gap's median over the reference days before the run.
        share: DSP deliveries' share of the scope's resolved deliveries on the last day.
    """

    days: int
    gap: float
    normal_gap: float
    share: float

    @property
    def late_part(self) -> float:
        """Late-rate points the outage adds: ``share x (gap - normal_gap)`` (an identity)."""
        return self.share * (self.gap - self.normal_gap)

    def part_of(self, history: pd.DataFrame) -> pd.Series:
        """Return the outage's late-rate part on each history day (0 where the gap is normal)."""
        excess = (history.dsp_gap - self.normal_gap).clip(lower=0).fillna(0.0)
        return history.carrier_share.fillna(0.0) * excess


def carrier_outage(history: pd.DataFrame) -> CarrierOutage | None:
    """Return the carrier outage in progress at the end of a late-rate history, if any.

    The late rate is the other deliveries' rate plus ``carrier_share x dsp_gap``, so the part a
    carrier adds is known exactly. Its gap is "beyond normal" on a day when it is
    :data:`ADVERSE_MIN_Z` robust SDs (1.4826 x MAD) above its median over the reference days
    (those before the last :data:`ONGOING_MIN_DAYS`); an outage is in progress when the last
    ``ONGOING_MIN_DAYS`` or more open days all are.

    Args:
        history: ``kpi_series`` frame with ``dsp_gap`` and ``carrier_share`` columns.

    Returns:
        The outage, or None (no DSP deliveries, too little reference, or no run).
    """
    if "dsp_gap" not in history or history.carrier_share.tail(28).median() <= 0:
        return None
    gap = history.dsp_gap
    ref = gap.iloc[:-ONGOING_MIN_DAYS].dropna()
    if len(ref) < MIN_REFERENCE_DAYS:
        return None
    median = float(ref.median())
    sd = 1.4826 * float((ref - median).abs().median())
    if sd <= 0:
        return None
    beyond = (gap - median > ADVERSE_MIN_Z * sd).to_numpy()
    run = 0
    while run < len(beyond) and beyond[len(beyond) - 1 - run]:
        run += 1
    if run < ONGOING_MIN_DAYS:
        return None
    last = history.iloc[-1]
    return CarrierOutage(run, float(last.dsp_gap), median, float(last.carrier_share))


def closed_weekdays(cells: pd.DataFrame) -> set[int]:
    """Weekdays (0 = Monday) without deliveries due in most weeks of the history."""
    shut = cells.assign(dow=cells.date.dt.dayofweek, shut=cells.orders == 0)
    share = shut.groupby("dow").shut.mean()
    return {int(str(d)) for d, v in share.items() if v >= CLOSED_WEEKDAY_SHARE}


def honest_interval(
    yhat: np.ndarray, lower: np.ndarray, upper: np.ndarray, n: float, *, rate: bool, width: float
) -> tuple[np.ndarray, np.ndarray]:
    """Widen a forecast interval to at least the sampling noise of one day's KPI.

    A history that never moved (a late rate of 0 for weeks) makes Prophet's interval
    collapse to a point; one day of ``n`` deliveries still varies by chance. Rates get at
    least the Wilson score interval at the forecast rate, counts the Poisson interval.
    """
    z = float(stats.norm.ppf(0.5 + width / 2))
    if rate:
        p = np.clip(yhat, 0.0, 1.0)
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        lo, hi = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    else:
        lam = np.maximum(yhat, 0.0)
        lo, hi = np.maximum(lam - z * np.sqrt(lam), 0.0), lam + z * np.sqrt(np.maximum(lam, 1.0))
    return np.minimum(lower, lo), np.maximum(upper, hi)


def fit_prophet(
    history: pd.DataFrame,
    *,
    interval: float = 0.8,
    random_state: int = 0,
    extra_regressors: tuple[str, ...] = (),
) -> object:
    """Fit Prophet with weekly seasonality and promo/holiday regressors (yearly if >= 1 year).

    Args:
        history: ``ds, y, promo, holiday`` rows, plus the ``extra_regressors`` columns.
        interval: width of the prediction interval.
        random_state: seed of the interval sampling.
        extra_regressors: further columns whose future values are known (a weather feed's
            forecast); each is used when it varies over the history.
    """
    from prophet import Prophet  # imported lazily: slow to import

    # prophet sets its logger to INFO when first imported ("n_changepoints greater than...")
    logging.getLogger("prophet").setLevel(logging.ERROR)

    model = Prophet(
        weekly_seasonality=True,
        yearly_seasonality=len(history) >= 365,
        daily_seasonality=False,
        interval_width=interval,
        uncertainty_samples=300,
        changepoint_prior_scale=0.05,
    )
    for col in ("promo", "holiday", *extra_regressors):
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


def in_sample_errors(model: object, history: pd.DataFrame) -> dict[str, float]:
    """Return a fitted Prophet model's in-sample MAE and MASE (validation figures).

    MASE divides the MAE by the in-sample MAE of the seasonal-naive forecast (a week
    before, :func:`seasonal_naive`; Hyndman & Koehler 2006): below 1, the model fits the
    history better than last week's value does. Point forecasts only: the interval
    sampling is switched off for this one call.

    Returns:
        ``mae``, ``naive_mae`` and ``mase`` (NaN when the history has no week-earlier value).
    """
    prophet = cast(Any, model)
    samples = prophet.uncertainty_samples
    prophet.uncertainty_samples = 0
    try:
        fitted = prophet.predict(history.drop(columns=["y"])).yhat.to_numpy()
    finally:
        prophet.uncertainty_samples = samples
    actual = history.y.to_numpy(dtype=float)
    naive = seasonal_naive(history, history.ds)
    known = ~np.isnan(naive)
    mae = float(np.mean(np.abs(actual - fitted)))
    naive_mae = float(np.mean(np.abs(actual[known] - naive[known]))) if known.any() else np.nan
    mase = mae / naive_mae if naive_mae and np.isfinite(naive_mae) else np.nan
    return {"mae": mae, "naive_mae": naive_mae, "mase": mase}


def seasonal_naive(history: pd.DataFrame, days: pd.Series, season: int = 7) -> np.ndarray:
    """Return the value a ``season`` (a week) before each of ``days``, from the history.

    The benchmark Prophet must beat. Dates, not positions: a closed day or a gap in the
    history never shifts the season. A day whose week-earlier value is missing looks further
    back by whole weeks.
    """
    known = history.set_index("ds").y
    out = []
    for day in pd.to_datetime(days):
        back = day - pd.Timedelta(days=season)
        while back not in known.index and back >= known.index.min():
            back -= pd.Timedelta(days=season)
        out.append(float(known.get(back, np.nan)))
    return np.array(out)


def backtest(
    series: pd.DataFrame, *, horizon: int = 7, origins: int = 6, rate: bool = False
) -> dict[str, float]:
    """Rolling-origin backtest of Prophet against the seasonal-naive forecast.

    Args:
        series: ``ds, y, promo, holiday`` rows of open days (all known in advance except y).
        horizon: calendar days forecast from each origin.
        origins: forecast origins, ``horizon`` calendar days apart at the end of the series.
        rate: clip forecasts to [0, 1].

    Returns:
        MAE, MAPE and MASE of both methods (MASE scaled by the in-sample seasonal-naive MAE).
    """
    series = series.sort_values("ds").reset_index(drop=True)
    last = series.ds.max()
    errors: dict[str, list[float]] = {"prophet": [], "naive": []}
    actuals: list[float] = []
    scale_parts: list[float] = []
    for k in range(origins, 0, -1):
        origin = last - pd.Timedelta(days=k * horizon)
        history = series[series.ds <= origin]
        future = series[(series.ds > origin) & (series.ds <= origin + pd.Timedelta(days=horizon))]
        if len(history) < MIN_HISTORY or future.empty:
            continue
        model = fit_prophet(history)
        fc = predict(model, future[["ds", "promo", "holiday"]], rate=rate)
        naive = seasonal_naive(history, future.ds)
        ok = np.isfinite(naive)
        errors["prophet"] += list(np.abs(fc.yhat.to_numpy() - future.y.to_numpy())[ok])
        errors["naive"] += list(np.abs(naive - future.y.to_numpy())[ok])
        actuals += list(future.y.to_numpy()[ok])
        in_sample = seasonal_naive(history, history.ds) - history.y.to_numpy()
        scale_parts.append(float(np.nanmean(np.abs(in_sample))))
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
