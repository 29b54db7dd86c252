"""Cells: KPIs of a store, a region or the whole chain over a day or a window of days.

Every tool works on the same cells. The backend returns *additive* store-day measures (counts
and sums, as known at the end of the analysed day); :func:`aggregate` sums them into cells of
any level and grain and recomputes every rate and mean from the sums, on a full daily
calendar, so closed days and gaps are explicit (zero deliveries), never skipped rows.

Levels: ``store`` (entity = store id), ``region`` (entity = region id) and ``chain`` (entity
``all``). A cell of grain ``k`` ending on day D covers the k calendar days D-k+1 .. D.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from tools.core.errors import InsufficientDataError
from tools.data.backend import Backend
from tools.data.validate import sql_literal
from tools.data.views import (
    MEDIANS_SQL,
    outcomes_sql,
    store_day_additive_sql,
)

Level = Literal["store", "region", "chain"]
CHAIN = "all"
"""Entity id of the whole chain."""

SUMS: tuple[str, ...] = (
    "orders",
    "delivered",
    "failed",
    "cancelled",
    "in_transit",
    "overdue",
    "resolved",
    "late",
    "delay_sum",
    "delay_n",
    "dispatch_sum",
    "dispatch_n",
    "crowd_orders",
    "dsp_orders",
    "dsp_resolved",
    "dsp_late",
    "distance_sum",
    "distance_n",
    "items",
    "scheduled_drivers",
    "present_drivers",
    "staffed_orders",
    "precip_x",
    "traffic_x",
    "conditions_w",
    "promo_days",
    "holiday_days",
    "store_days",
)
"""Additive columns of a cell (see :func:`load_store_days` for their meaning)."""

MEDIANS: tuple[str, ...] = ("handover_h", "transit_h", "lead_h")
"""Typical durations of a cell (medians, hours): queried per cell, never summed."""


def load_store_days(
    backend: Backend,
    *,
    as_of: date,
    start: date,
    stores: Sequence[str] | None = None,
    medians: bool = True,
) -> pd.DataFrame:
    """Additive store-day measures from ``start`` to ``as_of``, as known at the end of ``as_of``.

    Returns:
        One row per store and service date with deliveries: ``store_id, region, date``
        (pandas Timestamp), the sums of :data:`SUMS` (staffing, weather and traffic
        weighted by orders so they aggregate: ``staffed_orders`` are the orders of
        store-days with a roster, ``precip_x``/``traffic_x`` the orders-weighted
        conditions over ``conditions_w`` orders), ``promo``, ``holiday``, and (``medians``)
        the store-day's typical durations.
    """
    sql = store_day_additive_sql(
        backend.late,
        as_of=as_of,
        first_day=start,
        stores=stores,
        has_timezone=backend.has_timezone,
        medians=medians,
    )
    frame = backend.query(sql)
    frame["date"] = pd.to_datetime(frame["date"])
    staffed = frame.present_drivers.notna() & frame.scheduled_drivers.notna()
    frame["staffed_orders"] = frame.orders.where(staffed, 0)
    for col in ("scheduled_drivers", "present_drivers"):
        frame[col] = frame[col].astype("Float64").fillna(0).astype(float)
    has_cond = frame.precip_mm.notna() & frame.traffic_index.notna()
    weight = frame.orders.where(has_cond, 0).astype(float)
    frame["precip_x"] = frame.precip_mm.fillna(0).astype(float) * weight
    frame["traffic_x"] = frame.traffic_index.fillna(0).astype(float) * weight
    frame["conditions_w"] = weight
    frame["promo"] = frame.promo.fillna(False).astype(bool)
    frame["holiday"] = frame.holiday.fillna(False).astype(bool)
    frame["promo_days"] = frame.promo.astype(float)
    frame["holiday_days"] = frame.holiday.astype(float)
    frame["store_days"] = 1.0
    for col in SUMS:
        frame[col] = frame[col].astype(float)
    frame["has_staffing"] = staffed
    return frame.sort_values(["store_id", "date"]).reset_index(drop=True)


def entity_of(frame: pd.DataFrame, level: Level) -> pd.Series:
    """Return the entity each store-day belongs to at ``level``."""
    if level == "store":
        return frame.store_id.astype(str)
    if level == "region":
        return frame.region.astype(str)
    return pd.Series(CHAIN, index=frame.index)


def aggregate(
    store_days: pd.DataFrame,
    level: Level,
    grain: int = 1,
    *,
    first: date | None = None,
    last: date | None = None,
) -> pd.DataFrame:
    """Sum store-days into cells of ``level`` and ``grain`` days, and derive their KPIs.

    Args:
        store_days: rows of :func:`load_store_days`.
        level: ``store``, ``region`` or ``chain``.
        grain: days per cell (a trailing window ending on the cell's ``date``).
        first: first cell end date (default: the first date + grain - 1, so every cell is
            complete).
        last: last cell end date (default: the last date with data).

    Returns:
        One row per entity and calendar day (``level, entity, date, grain``, ``region``,
        ``store_id`` at store level), the :data:`SUMS`, ``open_days`` (days of the window
        with deliveries due) and the derived KPIs (see :func:`derive`). Days without
        deliveries are present with zero counts.
    """
    if grain < 1:
        raise ValueError(f"grain must be at least 1 day, got {grain}")
    if store_days.empty:
        raise InsufficientDataError("no deliveries in the period: nothing to aggregate")
    data = store_days.assign(entity=entity_of(store_days, level))
    daily = data.groupby(["entity", "date"], as_index=False)[list(SUMS)].sum()
    start = daily.date.min()
    end = pd.Timestamp(last) if last is not None else daily.date.max()
    calendar = pd.date_range(start, end, freq="D")
    entities = sorted(daily.entity.unique())
    full = pd.MultiIndex.from_product([entities, calendar], names=["entity", "date"])
    daily = daily.set_index(["entity", "date"]).reindex(full, fill_value=0.0)
    daily["open_days"] = (daily.orders > 0).astype(float)
    if grain > 1:
        rolled = daily.groupby(level="entity").rolling(grain, min_periods=grain).sum()
        daily = rolled.reset_index(level=0, drop=True)
    cells = daily.dropna(subset=["orders"]).reset_index()
    begin = pd.Timestamp(first) if first is not None else start + pd.Timedelta(days=grain - 1)
    cells = cells[cells.date >= begin].reset_index(drop=True)
    cells.insert(0, "level", level)
    cells["grain"] = grain
    regions = store_days.groupby("store_id").region.first()
    if level == "store":
        cells["store_id"] = cells.entity
        cells["region"] = cells.entity.map(regions).astype(str)
    elif level == "region":
        cells["region"] = cells.entity
    else:
        cells["region"] = CHAIN
    return derive(cells)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return num.astype(float) / den.astype(float).replace(0, np.nan)


def derive(cells: pd.DataFrame) -> pd.DataFrame:
    """Add the KPIs of :data:`tools.data.views.STORE_DAY_COLUMNS` recomputed from the sums."""
    c = cells
    c["volume"] = c.orders.where(c.orders > 0)
    c["late_rate"] = _ratio(c.late, c.resolved)
    c["failed_rate"] = _ratio(c.failed, c.resolved)
    c["avg_delay_min"] = _ratio(c.delay_sum, c.delay_n)
    c["dispatch_delay_min"] = _ratio(c.dispatch_sum, c.dispatch_n)
    c["no_show_rate"] = 1.0 - _ratio(c.present_drivers, c.scheduled_drivers)
    c["orders_per_driver"] = _ratio(c.staffed_orders, c.present_drivers)
    c["orders_per_scheduled_driver"] = _ratio(c.staffed_orders, c.scheduled_drivers)
    c["crowd_share"] = _ratio(c.crowd_orders, c.orders)
    c["dsp_share"] = _ratio(c.dsp_orders, c.orders)
    c["third_party_share"] = _ratio(c.crowd_orders + c.dsp_orders, c.orders)
    c["dsp_late_rate"] = _ratio(c.dsp_late, c.dsp_resolved)
    c["dsp_resolved_share"] = _ratio(c.dsp_resolved, c.resolved)
    c["dsp_gap"] = c.dsp_late_rate - _ratio(c.late - c.dsp_late, c.resolved - c.dsp_resolved)
    c["avg_distance_km"] = _ratio(c.distance_sum, c.distance_n)
    c["precip_mm"] = _ratio(c.precip_x, c.conditions_w)
    c["traffic_index"] = _ratio(c.traffic_x, c.conditions_w)
    c["promo_share"] = _ratio(c.promo_days, c.store_days).fillna(0.0)
    c["promo"] = c.promo_share >= 0.5
    c["holiday"] = c.holiday_days > 0
    c["dow"] = c.date.dt.dayofweek
    return c


def cell_medians(
    backend: Backend,
    *,
    level: Level,
    grain: int,
    as_of: date,
    start: date,
    stores: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Typical hand-over, transit and lead time (medians, hours) of every cell.

    Each delivery belongs to the ``grain`` windows that end on its service date and the
    ``grain - 1`` days after it.

    Returns:
        ``entity, date`` and the :data:`MEDIANS` columns, one row per cell with deliveries.
    """
    entity = {"store": "store_id", "region": "region", "chain": sql_literal(CHAIN)}[level]
    first_delivery_day = start - timedelta(days=grain - 1)
    sql = f"""
WITH o AS ({
        outcomes_sql(
            backend.late,
            as_of=as_of,
            first_day=first_delivery_day,
            stores=stores,
            has_timezone=backend.has_timezone,
        )
    }),
cells AS (
  SELECT {entity} AS entity, CAST(service_date + CAST(k.k AS INTEGER) AS DATE) AS date,
    status_asof, handover_h, transit_h, lead_h
  FROM o CROSS JOIN (VALUES {", ".join(f"({k})" for k in range(int(grain)))}) AS k(k)
  WHERE service_date >= DATE '{first_delivery_day.isoformat()}'
)
SELECT entity, date, {MEDIANS_SQL}
FROM cells
WHERE date BETWEEN DATE '{start.isoformat()}' AND DATE '{as_of.isoformat()}'
GROUP BY entity, date
"""
    frame = backend.query(sql)
    frame["date"] = pd.to_datetime(frame["date"])
    frame["entity"] = frame.entity.astype(str)
    return frame


def with_medians(
    cells: pd.DataFrame,
    backend: Backend,
    *,
    as_of: date,
    stores: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Join :func:`cell_medians` onto cells of one level and grain."""
    if cells.empty:
        return cells.assign(**{m: np.nan for m in MEDIANS})
    level: Level = cells.level.iloc[0]
    grain = int(cells.grain.iloc[0])
    medians = cell_medians(
        backend,
        level=level,
        grain=grain,
        as_of=as_of,
        start=cells.date.min().date(),
        stores=stores,
    )
    out = cells.drop(columns=[m for m in MEDIANS if m in cells.columns])
    return out.merge(medians, on=["entity", "date"], how="left")
