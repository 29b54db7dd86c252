"""Forecast error tracked as actuals arrive: scaled errors against the seasonal-naive forecast.

The forecaster is refitted every :data:`FORECAST_REFIT_DAYS` days (as a model registry keeps
a fitted model until the data has moved on) and its one-day-ahead forecast of each later day
is compared with the day's actual once it is known. Each error is scaled by the in-sample
mean absolute error of the seasonal-naive forecast (last week's same day) over the model's
training history: the scaled error's mean over a window is the MASE of Hyndman & Koehler
(2006), so 1.0 means "no better than last week's value".

Decay is a test, not a constant: the errors of the last :data:`FORECAST_RECENT_DAYS` days
are compared with the :data:`FORECAST_REFERENCE_DAYS` before them by a one-sided
Mann-Whitney U test at :data:`FORECAST_DECAY_ALPHA`, and the recent MASE must also be at
least :data:`FORECAST_DECAY_RATIO` times the reference's (a significant but small rise is
not worth an alert).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel
from scipy import stats

from tools.analytics.forecasting import fit_prophet, predict, seasonal_naive
from tools.analytics.thresholds import (
    FORECAST_DECAY_ALPHA,
    FORECAST_DECAY_RATIO,
    FORECAST_MIN_HISTORY,
    FORECAST_RECENT_DAYS,
    FORECAST_REFERENCE_DAYS,
    FORECAST_REFIT_DAYS,
)


class DayError(BaseModel):
    """One day's forecast against its actual."""

    day: pd.Timestamp
    actual: float
    forecast: float
    naive: float
    scaled_error: float
    """|forecast - actual| over the model's in-sample seasonal-naive MAE."""
    fitted_on: pd.Timestamp
    """Last day of the history the model was fitted on."""

    model_config = {"arbitrary_types_allowed": True}


def tracked_errors(
    series: pd.DataFrame,
    first: pd.Timestamp,
    *,
    rate: bool,
    shifts: Sequence[pd.Timestamp] = (),
    random_state: int = 0,
) -> list[DayError]:
    """Forecast each day from ``first`` on with a model refitted every few days.

    Args:
        series: ``ds, y, promo, holiday`` rows of open days (:func:`kpi_series`), sorted or
            not; days before ``first`` are the initial history.
        first: first day whose forecast error is tracked.
        rate: the KPI is a rate (forecasts clipped to [0, 1]).
        shifts: first days of known level shifts (a new demand regime the drift check
            found): each enters the model as a step regressor (Box-Tiao intervention), so a
            refit learns the new level from the days after it instead of waiting for a trend
            changepoint.
        random_state: seed of the fits.

    Returns:
        One entry per open day from ``first`` with at least :data:`FORECAST_MIN_HISTORY`
        days of history before its model's fit date.
    """
    series = series.sort_values("ds").reset_index(drop=True)
    steps = tuple(f"shift_{k}" for k in range(len(shifts)))
    for name, start in zip(steps, shifts, strict=True):
        series[name] = (series.ds >= start).astype(float)
    days = series[series.ds >= first]
    # which model forecasts each day: the latest weekly fit before it
    plan: list[tuple[pd.Timestamp, list[pd.Timestamp]]] = []
    fitted_on: pd.Timestamp | None = None
    for ds in days.ds:
        day = pd.Timestamp(ds)
        origin = day - pd.Timedelta(days=1)
        due = fitted_on is None or (origin - fitted_on).days >= FORECAST_REFIT_DAYS
        if due and (series.ds <= origin).sum() >= FORECAST_MIN_HISTORY:
            fitted_on = origin
            plan.append((origin, []))
        if plan:
            plan[-1][1].append(day)
    naive = dict(zip(days.ds, seasonal_naive(series, days.ds), strict=True))
    out: list[DayError] = []
    for origin, covered in plan:
        out += _forecast_days(series, origin, covered, naive, steps, rate, random_state)
    return out


def _forecast_days(
    series: pd.DataFrame,
    origin: pd.Timestamp,
    days: list[pd.Timestamp],
    naive: dict[pd.Timestamp, float],
    steps: tuple[str, ...],
    rate: bool,
    random_state: int,
) -> list[DayError]:
    """Fit on the history up to ``origin``; forecast ``days`` in one call (one model each)."""
    history = series[series.ds <= origin]
    scale = float(np.nanmean(np.abs(seasonal_naive(history, history.ds) - history.y.to_numpy())))
    if not scale > 0:
        return []
    model = fit_prophet(history, random_state=random_state, extra_regressors=steps)
    future = series[series.ds.isin(days)]
    fc = predict(
        model, future[["ds", "promo", "holiday", *steps]], rate=rate, random_state=random_state
    )
    return [
        DayError(
            day=pd.Timestamp(ds),
            actual=float(actual),
            forecast=float(yhat),
            naive=float(naive[ds]),
            scaled_error=abs(float(yhat) - float(actual)) / scale,
            fitted_on=origin,
        )
        for ds, actual, yhat in zip(future.ds, future.y, fc.yhat, strict=True)
    ]


class Decay(BaseModel):
    """Whether the forecast error of the recent days rose above the reference's."""

    recent_mase: float
    reference_mase: float
    p_value: float
    decayed: bool


def decay(errors: list[DayError], day: pd.Timestamp) -> Decay | None:
    """Test the errors of the recent days up to ``day`` against the days before them.

    Returns:
        None when either window has fewer than half its days tracked.
    """
    frame = pd.DataFrame([{"day": e.day, "e": e.scaled_error} for e in errors])
    if frame.empty:
        return None
    recent_start = day - pd.Timedelta(days=FORECAST_RECENT_DAYS - 1)
    ref_start = recent_start - pd.Timedelta(days=FORECAST_REFERENCE_DAYS)
    recent = frame[(frame.day >= recent_start) & (frame.day <= day)].e.to_numpy()
    ref = frame[(frame.day >= ref_start) & (frame.day < recent_start)].e.to_numpy()
    if len(recent) < FORECAST_RECENT_DAYS / 2 or len(ref) < FORECAST_REFERENCE_DAYS / 2:
        return None
    p = float(stats.mannwhitneyu(recent, ref, alternative="greater").pvalue)
    recent_mase, ref_mase = float(recent.mean()), float(ref.mean())
    return Decay(
        recent_mase=recent_mase,
        reference_mase=ref_mase,
        p_value=p,
        decayed=p < FORECAST_DECAY_ALPHA and recent_mase >= FORECAST_DECAY_RATIO * ref_mase,
    )
