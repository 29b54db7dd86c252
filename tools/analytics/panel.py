"""Panel analytics shared by the tools: analysis frames, seasonal baselines, robust residuals.

A *panel* is a table with one row per entity (store, region, sensor...) and time step. The
baseline of a KPI is what it would be on a normal day for that entity: its own level, the
panel-wide day-of-week shape, and the effect of calendar flags such as promotions, all
estimated robustly (medians) on reference rows, so past incidents barely move it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from tools.core.errors import InsufficientDataError
from tools.data.backend import Backend

Transform = Literal["none", "log"]

STORE_DAY_COLUMNS = (
    "date",
    "store_id",
    "region",
    "dow",
    "orders",
    "delivered",
    "failed",
    "late",
    "late_rate",
    "failed_rate",
    "avg_delay_min",
    "dispatch_delay_min",
    "scheduled_drivers",
    "present_drivers",
    "no_show_rate",
    "orders_per_driver",
    "orders_per_scheduled_driver",
    "dsp_share",
    "dsp_late_rate",
    "dsp_gap",
    "crowd_share",
    "precip_mm",
    "traffic_index",
    "promo",
    "holiday",
)


def store_day_frame(
    backend: Backend,
    *,
    stores: Sequence[str] | None = None,
    start: object | None = None,
    end: object | None = None,
) -> pd.DataFrame:
    """Rows of ``store_day`` for some stores and dates, with ``date`` as a pandas Timestamp."""
    where: list[str] = ["TRUE"]
    params: list[object] = []
    if stores:
        where.append(f"store_id IN ({', '.join('?' for _ in stores)})")
        params += list(stores)
    if start is not None:
        where.append("date >= ?")
        params.append(start)
    if end is not None:
        where.append("date <= ?")
        params.append(end)
    sql = (
        f"SELECT {', '.join(STORE_DAY_COLUMNS)} FROM store_day WHERE {' AND '.join(where)} "
        "ORDER BY store_id, date"
    )
    frame = backend.query(sql, params)
    frame["date"] = pd.to_datetime(frame["date"])
    for col in ("promo", "holiday"):
        frame[col] = frame[col].fillna(False).astype(bool)
    return frame


def region_day_frame(store_days: pd.DataFrame) -> pd.DataFrame:
    """Aggregate store-days to region-days, recomputing rates from counts."""
    g = store_days.assign(
        resolved=store_days.delivered + store_days.failed,
        dispatch_x=store_days.dispatch_delay_min * store_days.orders,
        gap_x=store_days.dsp_gap * store_days.orders,
        opd_orders=store_days.orders.where(store_days.present_drivers.notna()),
    ).groupby(["region", "date"], as_index=False)
    out = g.agg(
        orders=("orders", "sum"),
        late=("late", "sum"),
        failed=("failed", "sum"),
        resolved=("resolved", "sum"),
        scheduled_drivers=("scheduled_drivers", "sum"),
        present_drivers=("present_drivers", "sum"),
        dispatch_x=("dispatch_x", "sum"),
        gap_x=("gap_x", "sum"),
        opd_orders=("opd_orders", "sum"),
        precip_mm=("precip_mm", "mean"),
        traffic_index=("traffic_index", "mean"),
        promo=("promo", "mean"),
        holiday=("holiday", "max"),
        stores=("store_id", "nunique"),
    )
    out["late_rate"] = out.late / out.resolved.replace(0, np.nan)
    out["failed_rate"] = out.failed / out.resolved.replace(0, np.nan)
    out["no_show_rate"] = 1 - out.present_drivers / out.scheduled_drivers.replace(0, np.nan)
    out["orders_per_driver"] = out.opd_orders / out.present_drivers.replace(0, np.nan)
    out["orders_per_scheduled_driver"] = out.opd_orders / out.scheduled_drivers.replace(0, np.nan)
    out["dispatch_delay_min"] = out.dispatch_x / out.orders.replace(0, np.nan)
    out["dsp_gap"] = out.gap_x / out.orders.replace(0, np.nan)
    out["promo"] = out.promo >= 0.5
    out["dow"] = out.date.dt.dayofweek
    return out.drop(columns=["dispatch_x", "gap_x", "opd_orders"])


@dataclass
class Baseline:
    """Fitted seasonal baseline of one KPI over a panel (see :func:`fit_baseline`)."""

    kpi: str
    transform: Transform
    level: pd.Series  # per entity, on the transformed scale
    dow_effect: pd.Series  # per day of week (0 = Monday), pooled over entities
    calendar_effect: dict[str, float]  # per calendar flag, pooled over entities
    scale: pd.Series  # per entity, robust SD of residuals (floored)

    def expected(self, frame: pd.DataFrame, entity_col: str, time_col: str) -> pd.Series:
        """Return the expected value of the KPI for each row (on the original scale)."""
        y = self._expected_t(frame, entity_col, time_col)
        return np.exp(y) if self.transform == "log" else y

    def _expected_t(self, frame: pd.DataFrame, entity_col: str, time_col: str) -> pd.Series:
        y = frame[entity_col].map(self.level).astype(float)
        y = (
            y
            + pd.to_datetime(frame[time_col])
            .dt.dayofweek.map(self.dow_effect)
            .fillna(0.0)
            .to_numpy()
        )
        for col, effect in self.calendar_effect.items():
            y = y + frame[col].astype(bool).to_numpy() * effect
        return y

    def residual_z(self, frame: pd.DataFrame, entity_col: str, time_col: str) -> pd.Series:
        """Standardised residual of every row: (value - expected) / the entity's scale."""
        y = transform_series(frame[self.kpi], self.transform)
        resid = y - self._expected_t(frame, entity_col, time_col)
        return resid / frame[entity_col].map(self.scale).astype(float)


def finite(x: Any, digits: int = 4) -> float | None:
    """Return ``x`` as a rounded float, or None when it is missing, NaN or infinite."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return round(value, digits) if math.isfinite(value) else None


def transform_series(x: pd.Series, how: Transform) -> pd.Series:
    """Return ``x`` as floats, log-transformed when ``how`` is ``log``."""
    x = x.astype(float)
    return pd.Series(np.log(x.clip(lower=1e-6)), index=x.index) if how == "log" else x


def _mad(x: pd.Series) -> float:
    x = x.dropna()
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if len(x) else float("nan")


def fit_baseline(
    frame: pd.DataFrame,
    kpi: str,
    *,
    entity_col: str,
    time_col: str,
    calendar_cols: Sequence[str] = (),
    weekly: bool = True,
    transform: Transform = "none",
    scale_floor: float = 0.0,
    min_calendar_rows: int = 5,
) -> Baseline:
    """Fit a robust seasonal baseline of ``kpi`` on ``frame`` (the reference rows).

    Args:
        frame: reference rows (history the baseline learns from).
        kpi: column to model.
        entity_col: entity column (each entity gets its own level and scale).
        time_col: timestamp column (its day of week gives the weekly shape).
        calendar_cols: boolean columns whose pooled effect is learned (e.g. promo, holiday).
        weekly: learn a pooled day-of-week shape.
        transform: ``log`` for multiplicative KPIs such as volumes.
        scale_floor: smallest residual scale allowed (on the transformed scale); stops a
            KPI that is almost constant (MAD = 0) from turning tiny moves into huge z-scores.
        min_calendar_rows: fewer flagged reference rows than this: the flag's effect is 0.

    Returns:
        The fitted :class:`Baseline`.
    """
    data = frame[[entity_col, time_col, kpi, *calendar_cols]].copy()
    data["_y"] = transform_series(data[kpi], transform)
    data = data[np.isfinite(data["_y"])]
    if data.empty:
        raise InsufficientDataError(f"no finite values of {kpi!r} to fit a baseline on")
    centred = data["_y"] - data.groupby(entity_col)["_y"].transform("median")
    dows = pd.to_datetime(data[time_col]).dt.dayofweek
    plain = (
        ~data[list(calendar_cols)].any(axis=1)
        if calendar_cols
        else pd.Series(True, index=data.index)
    )
    dow_effect = centred[plain].groupby(dows[plain]).median() if weekly else pd.Series(dtype=float)
    dow_effect = dow_effect - (dow_effect.median() if len(dow_effect) else 0.0)
    deseason = data["_y"] - dows.map(dow_effect).fillna(0.0)
    base_level = deseason[plain].groupby(data.loc[plain, entity_col]).median()
    calendar_effect: dict[str, float] = {}
    for col in calendar_cols:
        rows = data[col].astype(bool)
        if rows.sum() >= min_calendar_rows:
            lift = deseason[rows] - data.loc[rows, entity_col].map(base_level)
            calendar_effect[col] = float(np.nanmedian(lift))
        else:
            calendar_effect[col] = 0.0
    adjusted = deseason - sum(
        (data[c].astype(bool) * e for c, e in calendar_effect.items()),
        start=pd.Series(0.0, index=data.index),
    )
    level = adjusted.groupby(data[entity_col]).median()
    resid = adjusted - data[entity_col].map(level)
    pooled = _mad(resid)
    scale = resid.groupby(data[entity_col]).apply(_mad)
    # Small entities have noisy MADs: never below half the panel's scale, nor the floor.
    scale = scale.fillna(pooled).clip(
        lower=max(scale_floor, 0.5 * pooled if np.isfinite(pooled) else 0.0)
    )
    return Baseline(
        kpi=kpi,
        transform=transform,
        level=level,
        dow_effect=dow_effect,
        calendar_effect=calendar_effect,
        scale=scale,
    )


def fit_baselines(
    frame: pd.DataFrame,
    kpis: Sequence[str],
    *,
    entity_col: str,
    time_col: str,
    calendar_cols: Sequence[str] = (),
    transforms: Mapping[str, Transform] | None = None,
    scale_floors: Mapping[str, float] | None = None,
    weekly: bool = True,
) -> dict[str, Baseline]:
    """Fit :func:`fit_baseline` for each KPI."""
    transforms = transforms or {}
    scale_floors = scale_floors or {}
    return {
        kpi: fit_baseline(
            frame,
            kpi,
            entity_col=entity_col,
            time_col=time_col,
            calendar_cols=calendar_cols,
            weekly=weekly,
            transform=transforms.get(kpi, "none"),
            scale_floor=scale_floors.get(kpi, 0.0),
        )
        for kpi in kpis
    }
