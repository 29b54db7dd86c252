"""Derived views of the contract: per-delivery outcomes and the ``store_day`` KPI table.

The SQL is plain enough to run on DuckDB and (through sqlglot) Spark SQL; the definition of
a late delivery comes from :data:`tools.data.schema.LATE_SQL` and nowhere else.
"""

from __future__ import annotations

from tools.data.schema import LATE_SQL, RESOLVED_SQL, SERVICE_DATE_SQL

DELIVERY_OUTCOMES_SQL = f"""
SELECT
  d.*,
  {SERVICE_DATE_SQL} AS service_date,
  {LATE_SQL} AS is_late,
  {RESOLVED_SQL} AS is_resolved,
  CASE WHEN status = 'delivered'
       THEN greatest(epoch(delivered_ts) - epoch(promised_end), 0) / 60.0 END AS delay_min,
  CASE WHEN dispatched_ts IS NOT NULL
       THEN (epoch(dispatched_ts) - epoch(promised_start)) / 60.0 END AS dispatch_delay_min
FROM deliveries AS d
"""

STORE_DAY_SQL = """
WITH per_day AS (
  SELECT
    store_id,
    service_date AS date,
    count(*) FILTER (WHERE status <> 'cancelled') AS orders,
    count(*) FILTER (WHERE status = 'delivered') AS delivered,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
    count(*) FILTER (WHERE status = 'in_transit') AS in_transit,
    count(*) FILTER (WHERE is_resolved) AS resolved,
    count(*) FILTER (WHERE is_late) AS late,
    avg(delay_min) AS avg_delay_min,
    avg(dispatch_delay_min) AS dispatch_delay_min,
    count(*) FILTER (WHERE carrier = 'crowd' AND status <> 'cancelled') AS crowd_orders,
    count(*) FILTER (WHERE carrier = 'dsp' AND status <> 'cancelled') AS dsp_orders,
    count(*) FILTER (WHERE carrier = 'dsp' AND is_resolved) AS dsp_resolved,
    count(*) FILTER (WHERE carrier = 'dsp' AND is_late) AS dsp_late,
    avg(distance_km) AS avg_distance_km,
    sum(items) FILTER (WHERE status <> 'cancelled') AS items
  FROM delivery_outcomes
  GROUP BY store_id, service_date
),
cal AS (
  SELECT
    p.store_id,
    p.date,
    bool_or(c.kind = 'promo') AS promo,
    bool_or(c.kind = 'holiday') AS holiday
  FROM per_day AS p
  JOIN calendar AS c
    ON c.date = p.date AND (c.store_id = p.store_id OR c.store_id IS NULL)
  GROUP BY p.store_id, p.date
)
SELECT
  p.date,
  p.store_id,
  s.region,
  s.market,
  CAST(dayofweek(p.date) AS INTEGER) AS dow,
  p.orders,
  p.delivered,
  p.failed,
  p.cancelled,
  p.in_transit,
  p.late,
  CAST(p.late AS DOUBLE) / nullif(p.resolved, 0) AS late_rate,
  CAST(p.failed AS DOUBLE) / nullif(p.resolved, 0) AS failed_rate,
  p.avg_delay_min,
  p.dispatch_delay_min,
  st.scheduled_drivers,
  st.present_drivers,
  1.0 - CAST(st.present_drivers AS DOUBLE) / nullif(st.scheduled_drivers, 0) AS no_show_rate,
  CAST(p.orders AS DOUBLE) / nullif(st.present_drivers, 0) AS orders_per_driver,
  CAST(p.orders AS DOUBLE) / nullif(st.scheduled_drivers, 0) AS orders_per_scheduled_driver,
  CAST(p.crowd_orders AS DOUBLE) / nullif(p.orders, 0) AS crowd_share,
  CAST(p.dsp_orders AS DOUBLE) / nullif(p.orders, 0) AS dsp_share,
  CAST(p.dsp_late AS DOUBLE) / nullif(p.dsp_resolved, 0) AS dsp_late_rate,
  CAST(p.dsp_late AS DOUBLE) / nullif(p.dsp_resolved, 0)
    - CAST(p.late - p.dsp_late AS DOUBLE) / nullif(p.resolved - p.dsp_resolved, 0) AS dsp_gap,
  p.avg_distance_km,
  p.items,
  w.precip_mm,
  w.temp_c,
  w.severe_weather,
  w.traffic_index,
  coalesce(cal.promo, false) AS promo,
  coalesce(cal.holiday, false) AS holiday
FROM per_day AS p
JOIN stores AS s ON s.store_id = p.store_id
LEFT JOIN staffing AS st ON st.store_id = p.store_id AND st.date = p.date
LEFT JOIN conditions AS w ON w.region = s.region AND w.date = p.date
LEFT JOIN cal ON cal.store_id = p.store_id AND cal.date = p.date
"""

STORE_DAY_COLUMNS: dict[str, str] = {
    "date": "UTC service date (the day deliveries were due)",
    "store_id": "store",
    "region": "store's region",
    "market": "store's market",
    "dow": "day of week, 0 = Sunday",
    "orders": "deliveries due that day, cancelled excluded",
    "delivered": "delivered deliveries",
    "failed": "failed deliveries",
    "cancelled": "cancelled deliveries",
    "in_transit": "deliveries not yet resolved",
    "late": "late deliveries (delivered after promised_end, or failed)",
    "late_rate": "late / (delivered + failed)",
    "failed_rate": "failed / (delivered + failed)",
    "avg_delay_min": "mean minutes past promised_end over delivered deliveries (on time = 0)",
    "dispatch_delay_min": "mean minutes from promised_start to dispatch",
    "scheduled_drivers": "drivers on the plan",
    "present_drivers": "drivers who showed up",
    "no_show_rate": "1 - present / scheduled",
    "orders_per_driver": "orders / present drivers",
    "orders_per_scheduled_driver": "orders / scheduled drivers (volume against the plan)",
    "crowd_share": "share of orders carried by crowd drivers",
    "dsp_share": "share of orders carried by delivery service partners",
    "dsp_late_rate": "late rate of DSP deliveries",
    "dsp_gap": "DSP late rate minus the late rate of the store's other deliveries "
    "(lateness specific to the carrier)",
    "avg_distance_km": "mean delivery distance",
    "items": "items delivered or attempted",
    "precip_mm": "region precipitation",
    "temp_c": "region temperature",
    "severe_weather": "region severe-weather flag",
    "traffic_index": "region traffic index, 1.0 = typical",
    "promo": "a promotion ran (store or chain-wide)",
    "holiday": "a holiday (store or chain-wide)",
}
"""Every ``store_day`` column with its meaning: the KPI dictionary users and the LLM see."""

VIEWS: dict[str, str] = {
    "delivery_outcomes": DELIVERY_OUTCOMES_SQL,
    "store_day": STORE_DAY_SQL,
}
