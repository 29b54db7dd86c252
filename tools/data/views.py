"""Derived views of the contract: per-delivery outcomes, as of any day, and store-day KPIs.

Everything a KPI means is written here once:

* **Late** (:class:`LateRule`): delivered more than ``grace_min`` minutes after
  ``promised_end``, or failed (when ``failed_is_late``). Cancelled deliveries are neither
  late nor on time.
* **Service date**: the store-local date of ``promised_end`` (``stores.timezone``, UTC when
  absent): a delivery counts on the day it was due, in the store's own calendar.
* **As of a day D** (no look-ahead): only what was known at the end of D, store-local time,
  is used. A delivery past its promise and not delivered by then is *overdue*, which counts
  as late; one not yet due is in transit (neither late nor on time); a dispatch or delivery
  stamped after the cutoff had not happened yet; the carrier transit of a parcel still in
  flight is censored at the cutoff (a lower bound). Without a day (the persisted views)
  the cutoff is the latest moment the data records (the extract): the late and resolved
  counts of a past period read the same in ``store_day`` as in an as-of query about it.

The SQL is plain enough to transpile (sqlglot) for Spark; the only engine-specific pieces
(time arithmetic, zone conversion) are built by the two helpers at the top.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field

from tools.data.validate import sql_literal
from tools.data.zones import local_to_utc_sql


class LateRule(BaseModel):
    """The one definition of a late delivery (settings ``LASTMILE_LATE_*``)."""

    model_config = ConfigDict(frozen=True)

    grace_min: float = Field(
        0.0, ge=0, le=1440, description="Minutes past promised_end still counted on time."
    )
    failed_is_late: bool = Field(True, description="A failed delivery counts as late.")


DEFAULT_LATE_RULE = LateRule()


def seconds_between(later: str, earlier: str) -> str:
    """Return SQL for the seconds from ``earlier`` to ``later`` (two TIMESTAMP expressions)."""
    return f"date_diff('microsecond', {earlier}, {later}) / 1e6"


def local_time(ts: str, tz: str) -> str:
    """Return SQL turning a UTC TIMESTAMP into wall-clock time in zone ``tz`` (SQL).

    UTC stores skip the conversion (it costs ~10x a plain cast on tens of millions of rows).
    """
    return (
        f"CASE WHEN {tz} = 'UTC' THEN {ts} "
        f"ELSE CAST(timezone({tz}, CAST({ts} AS TIMESTAMPTZ)) AS TIMESTAMP) END"
    )


def _late_expr(rule: LateRule) -> str:
    # whole seconds: Spark refuses a fractional minute (INTERVAL 15.0 MINUTE)
    grace = f" + INTERVAL {round(rule.grace_min * 60)} SECOND" if rule.grace_min else ""
    failed = "status_asof = 'failed' OR " if rule.failed_is_late else ""
    return (
        f"({failed}status_asof = 'overdue' "
        f"OR (status_asof = 'delivered' AND delivered_at > promised_end{grace}))"
    )


def outcomes_sql(
    rule: LateRule = DEFAULT_LATE_RULE,
    *,
    as_of: date | None = None,
    first_day: date | None = None,
    stores: Sequence[str] | None = None,
    has_timezone: bool = True,
    last_day: date | None = None,
) -> str:
    """Return a SELECT of every delivery with its outcome (as of the end of ``as_of``).

    Columns: the ``deliveries`` columns, ``region``, ``market``, ``tz``, ``service_date``,
    ``status_asof`` (delivered / failed / cancelled / overdue / in_transit), ``dispatched_at``
    and ``delivered_at`` (NULL when not yet happened), ``is_resolved``, ``is_late``,
    ``delay_min`` (minutes past the promise, delivered only), ``dispatch_delay_min``
    (promised_start to dispatch, when the window opens after the order), ``handover_h``
    (order to dispatch), ``transit_h`` (dispatch to delivery, censored at the cutoff when
    still in flight) and ``lead_h`` (order to promised_end: the promised lead time).

    Args:
        rule: the definition of late.
        as_of: use only what was known at the end of this store-local day; deliveries due
            after it are left out. None: final statuses (the persisted view).
        first_day: leave out deliveries due before this day (lets DuckDB skip row groups).
        last_day: leave out deliveries due after this day (a range, as ``first_day``).
        stores: only these stores (None: all).
        has_timezone: the ``stores`` table has a ``timezone`` column (older files do not).
    """
    tz = "coalesce(nullif(s.timezone, ''), 'UTC')" if has_timezone else "'UTC'"
    where: list[str] = []
    if as_of is not None:
        # The store-local end of the day, in UTC: local midnight of the next day.
        local_end = f"CAST(DATE '{(as_of + timedelta(days=1)).isoformat()}' AS TIMESTAMP)"
        # once per store, by the load's rule for local times (tools.data.zones)
        cutoff = (
            f"CASE WHEN tz = 'UTC' THEN {local_end} ELSE {local_to_utc_sql(local_end, 'tz')} END"
        )
        # Zones are within +-14 h of UTC: a promise more than a day after the local day's
        # end is not due yet anywhere (a cheap range filter DuckDB can prune with).
        where.append(f"d.promised_end < TIMESTAMP '{(as_of + timedelta(days=2)).isoformat()}'")
    else:
        # The persisted views: as of the extract, the latest moment the data records, so a
        # parcel past its promise and never delivered is overdue there too.
        cutoff = (
            "(SELECT max(greatest(order_ts, coalesce(dispatched_ts, order_ts), "
            "coalesce(delivered_ts, order_ts))) FROM deliveries)"
        )
    if first_day is not None:
        where.append(f"d.promised_end >= TIMESTAMP '{(first_day - timedelta(days=1)).isoformat()}'")
    if last_day is not None:
        # zones are within +-14 h of UTC: due after the local day's end + 1 day is not in it
        where.append(f"d.promised_end < TIMESTAMP '{(last_day + timedelta(days=2)).isoformat()}'")
    if stores is not None:
        where.append(f"d.store_id IN ({', '.join(sql_literal(s) for s in stores) or 'NULL'})")
    known = (
        "CASE WHEN r.dispatched_ts < r.cutoff THEN r.dispatched_ts END",
        "CASE WHEN r.status = 'delivered' AND r.delivered_ts < r.cutoff THEN r.delivered_ts END",
    )
    if as_of is None:
        known = (
            "r.dispatched_ts",
            "CASE WHEN r.status = 'delivered' THEN r.delivered_ts END",
        )
    # whole seconds: Spark refuses a fractional minute (INTERVAL 15.0 MINUTE)
    grace = f" + INTERVAL {round(rule.grace_min * 60)} SECOND" if rule.grace_min else ""
    status = (
        "CASE WHEN r.status IN ('cancelled', 'failed') THEN r.status "
        f"WHEN delivered_at IS NOT NULL THEN 'delivered' "
        f"WHEN r.cutoff IS NOT NULL AND r.promised_end{grace} < r.cutoff THEN 'overdue' "
        "ELSE 'in_transit' END"
    )
    return f"""
WITH named AS (
  SELECT s.store_id, s.region, s.market, {tz} AS tz FROM stores AS s
),
zones AS (
  SELECT named.*, {cutoff} AS cutoff FROM named
),
raw AS (
  SELECT d.*, z.region, z.market, z.tz,
    CAST({local_time("d.promised_end", "z.tz")} AS DATE) AS service_date,
    z.cutoff
  FROM deliveries AS d JOIN zones AS z ON z.store_id = d.store_id
  {"WHERE " + " AND ".join(where) if where else ""}
),
known AS (
  SELECT r.*, {known[0]} AS dispatched_at, {known[1]} AS delivered_at FROM raw AS r
),
staged AS (
  SELECT r.*, {status} AS status_asof FROM known AS r
)
SELECT
  o.*,
  o.status_asof IN ('delivered', 'failed', 'overdue') AS is_resolved,
  {_late_expr(rule)} AS is_late,
  CASE WHEN o.delivered_at IS NOT NULL
       THEN greatest({seconds_between("o.delivered_at", "o.promised_end")}, 0) / 60.0
       END AS delay_min,
  -- dispatch against the delivery window; without a window (the promise runs from the
  -- order, as in Olist) it would only repeat the hand-over time, so it is left empty
  CASE WHEN o.promised_start > o.order_ts
       THEN {seconds_between("o.dispatched_at", "o.promised_start")} / 60.0
       END AS dispatch_delay_min,
  {seconds_between("o.dispatched_at", "o.order_ts")} / 3600.0 AS handover_h,
  CASE WHEN o.delivered_at IS NOT NULL
       THEN {seconds_between("o.delivered_at", "o.dispatched_at")} / 3600.0
       WHEN o.status_asof IN ('overdue', 'in_transit') AND o.cutoff IS NOT NULL
       THEN {seconds_between("o.cutoff", "o.dispatched_at")} / 3600.0
       END AS transit_h,
  {seconds_between("o.promised_end", "o.order_ts")} / 3600.0 AS lead_h
FROM staged AS o
{"WHERE o.service_date <= DATE '" + as_of.isoformat() + "'" if as_of is not None else ""}
"""


# Additive measures of a set of deliveries: any cell (store, region or chain; a day or a
# window of days) is the sum of its store-days, and every rate or mean is recomputed from
# these sums, never averaged.
ADDITIVE_SQL = """
    count(*) FILTER (WHERE status_asof <> 'cancelled') AS orders,
    count(*) FILTER (WHERE status_asof = 'delivered') AS delivered,
    count(*) FILTER (WHERE status_asof = 'failed') AS failed,
    count(*) FILTER (WHERE status_asof = 'cancelled') AS cancelled,
    count(*) FILTER (WHERE status_asof = 'in_transit') AS in_transit,
    count(*) FILTER (WHERE status_asof = 'overdue') AS overdue,
    count(*) FILTER (WHERE is_resolved) AS resolved,
    count(*) FILTER (WHERE is_late) AS late,
    coalesce(sum(delay_min), 0) AS delay_sum,
    count(delay_min) AS delay_n,
    coalesce(sum(dispatch_delay_min), 0) AS dispatch_sum,
    count(dispatch_delay_min) AS dispatch_n,
    count(*) FILTER (WHERE carrier = 'crowd' AND status_asof <> 'cancelled') AS crowd_orders,
    count(*) FILTER (WHERE carrier = 'dsp' AND status_asof <> 'cancelled') AS dsp_orders,
    count(*) FILTER (WHERE carrier = 'dsp' AND is_resolved) AS dsp_resolved,
    count(*) FILTER (WHERE carrier = 'dsp' AND is_late) AS dsp_late,
    coalesce(sum(distance_km) FILTER (WHERE status_asof <> 'cancelled'), 0) AS distance_sum,
    count(distance_km) FILTER (WHERE status_asof <> 'cancelled') AS distance_n,
    coalesce(sum(items) FILTER (WHERE status_asof <> 'cancelled'), 0) AS items
"""

MEDIANS_SQL = """
    median(handover_h) FILTER (WHERE status_asof <> 'cancelled') AS handover_h,
    median(transit_h) FILTER (WHERE status_asof <> 'cancelled') AS transit_h,
    median(lead_h) FILTER (WHERE status_asof <> 'cancelled') AS lead_h
"""
"""Typical (median) hand-over, transit and promised lead time, in hours. Medians, not means:
a late parcel spends longer in transit by definition, so a mean would partly measure the
lateness it is meant to explain; the median moves only when the carrier as a whole is slower
(Olist May 2017: +2.1 days, while the late deliveries' tail alone barely moves it)."""


def store_day_additive_sql(
    rule: LateRule = DEFAULT_LATE_RULE,
    *,
    as_of: date | None = None,
    first_day: date | None = None,
    stores: Sequence[str] | None = None,
    has_timezone: bool = True,
    medians: bool = True,
    last_day: date | None = None,
) -> str:
    """Return a SELECT of additive store-day measures with staffing, conditions and calendar.

    One row per store and service date that has deliveries: ``store_id, date, region,
    market`` and :data:`ADDITIVE_SQL`'s sums, (``medians``) the typical durations, the
    roster (``scheduled_drivers``, ``present_drivers``; NULL without staffing data), the
    region's conditions (``precip_mm``, ``temp_c``, ``severe_weather``, ``traffic_index``;
    NULL without a feed), and ``promo`` / ``holiday`` flags.
    """
    days = [f"service_date >= DATE '{first_day.isoformat()}'"] if first_day else []
    days += [f"service_date <= DATE '{last_day.isoformat()}'"] if last_day else []
    day_filter = f"WHERE {' AND '.join(days)}" if days else ""
    return f"""
WITH o AS ({
        outcomes_sql(
            rule,
            as_of=as_of,
            first_day=first_day,
            last_day=last_day,
            stores=stores,
            has_timezone=has_timezone,
        )
    }),
per_day AS (
  SELECT store_id, service_date AS date, any_value(region) AS region,
    any_value(market) AS market,
    {ADDITIVE_SQL}{"," + MEDIANS_SQL if medians else ""}
  FROM o {day_filter}
  GROUP BY store_id, service_date
),
cal AS (
  SELECT p.store_id, p.date,
    bool_or(c.kind = 'promo') AS promo,
    bool_or(c.kind = 'holiday') AS holiday
  FROM per_day AS p
  JOIN calendar AS c ON c.date = p.date AND (c.store_id = p.store_id OR c.store_id IS NULL)
  GROUP BY p.store_id, p.date
)
SELECT
  p.*,
  st.scheduled_drivers, st.present_drivers,
  w.precip_mm, w.temp_c, w.severe_weather, w.traffic_index,
  coalesce(cal.promo, false) AS promo,
  coalesce(cal.holiday, false) AS holiday
FROM per_day AS p
LEFT JOIN staffing AS st ON st.store_id = p.store_id AND st.date = p.date
LEFT JOIN conditions AS w ON w.region = p.region AND w.date = p.date
LEFT JOIN cal ON cal.store_id = p.store_id AND cal.date = p.date
"""


def _ratio(num: str, den: str) -> str:
    return f"CAST({num} AS DOUBLE) / nullif({den}, 0)"


def store_day_sql(
    rule: LateRule = DEFAULT_LATE_RULE,
    *,
    has_timezone: bool = True,
    first_day: date | None = None,
    last_day: date | None = None,
) -> str:
    """Return the ``store_day`` view: one row per store and service date, as of the extract.

    ``first_day`` / ``last_day`` limit it to a range of service dates (the incremental
    refresh, :mod:`tools.data.refresh`).
    """
    return f"""
SELECT
  a.date, a.store_id, a.region, a.market,
  CAST(dayofweek(a.date) AS INTEGER) AS dow,
  a.orders, a.delivered, a.failed, a.cancelled, a.in_transit, a.overdue, a.late,
  {_ratio("a.late", "a.resolved")} AS late_rate,
  {_ratio("a.failed", "a.resolved")} AS failed_rate,
  {_ratio("a.delay_sum", "a.delay_n")} AS avg_delay_min,
  {_ratio("a.dispatch_sum", "a.dispatch_n")} AS dispatch_delay_min,
  a.handover_h, a.transit_h, a.lead_h,
  a.scheduled_drivers, a.present_drivers,
  1.0 - {_ratio("a.present_drivers", "a.scheduled_drivers")} AS no_show_rate,
  {_ratio("a.orders", "a.present_drivers")} AS orders_per_driver,
  {_ratio("a.orders", "a.scheduled_drivers")} AS orders_per_scheduled_driver,
  {_ratio("a.crowd_orders", "a.orders")} AS crowd_share,
  {_ratio("a.dsp_orders", "a.orders")} AS dsp_share,
  {_ratio("a.dsp_orders + a.crowd_orders", "a.orders")} AS third_party_share,
  {_ratio("a.dsp_late", "a.dsp_resolved")} AS dsp_late_rate,
  {_ratio("a.dsp_late", "a.dsp_resolved")}
    - {_ratio("a.late - a.dsp_late", "a.resolved - a.dsp_resolved")} AS dsp_gap,
  {_ratio("a.distance_sum", "a.distance_n")} AS avg_distance_km,
  a.items,
  a.precip_mm, a.temp_c, a.severe_weather, a.traffic_index,
  a.promo, a.holiday
FROM ({
        store_day_additive_sql(
            rule, has_timezone=has_timezone, first_day=first_day, last_day=last_day
        )
    }) AS a
"""


STORE_DAY_COLUMNS: dict[str, str] = {
    "date": "service date: the store-local date deliveries were due",
    "store_id": "store",
    "region": "store's region",
    "market": "store's market",
    "dow": "day of week, 0 = Sunday",
    "orders": "deliveries due that day, cancelled excluded",
    "delivered": "delivered deliveries",
    "failed": "failed deliveries",
    "cancelled": "cancelled deliveries",
    "in_transit": "deliveries not yet due and not delivered (as of the extract)",
    "overdue": "deliveries past promised_end and not delivered by the extract: late",
    "late": "late deliveries (delivered after promised_end, overdue, or failed)",
    "late_rate": "late / (delivered + failed + overdue)",
    "failed_rate": "failed / (delivered + failed)",
    "avg_delay_min": "mean minutes past promised_end over delivered deliveries (on time = 0)",
    "dispatch_delay_min": "mean minutes from promised_start to dispatch (deliveries with a "
    "window that opens after the order)",
    "handover_h": "typical (median) hours from order to dispatch: the hand-over",
    "transit_h": "typical (median) hours from dispatch to delivery: carrier transit",
    "lead_h": "typical (median) hours from order to promised_end: the promised lead time",
    "scheduled_drivers": "drivers on the plan",
    "present_drivers": "drivers who showed up",
    "no_show_rate": "1 - present / scheduled",
    "orders_per_driver": "orders / present drivers",
    "orders_per_scheduled_driver": "orders / scheduled drivers (volume against the plan)",
    "crowd_share": "share of orders carried by crowd drivers",
    "dsp_share": "share of orders carried by delivery service partners",
    "third_party_share": "share of orders handed to third-party carriers (DSP or crowd)",
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


def views(rule: LateRule = DEFAULT_LATE_RULE, *, has_timezone: bool = True) -> dict[str, str]:
    """Return the derived views (name -> SELECT) for a definition of late."""
    return {
        "delivery_outcomes": outcomes_sql(rule, has_timezone=has_timezone),
        "store_day": store_day_sql(rule, has_timezone=has_timezone),
    }


VIEWS: dict[str, str] = views()
"""The persisted views, with the default definition of late (backends redefine them per
connection when a run uses another, see :class:`~tools.data.backend.DuckDBBackend`)."""
