"""Aggregate ``store_day`` KPIs over a scope and period, recomputing rates from counts.

Rates are never averaged across stores or days: a region's late rate is its late deliveries
over its resolved deliveries, so big stores weigh what they should.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import duckdb
import pandas as pd

Grain = Literal["day", "week", "total"]

_AGGREGATES = """
    CAST(sum(orders) AS BIGINT) AS orders,
    CAST(sum(late) AS BIGINT) AS late,
    sum(late)::DOUBLE / nullif(sum(delivered + failed), 0) AS late_rate,
    sum(failed)::DOUBLE / nullif(sum(delivered + failed), 0) AS failed_rate,
    sum(avg_delay_min * delivered)
        / nullif(sum(delivered) FILTER (WHERE avg_delay_min IS NOT NULL), 0) AS avg_delay_min,
    sum(dispatch_delay_min * orders)
        / nullif(sum(orders) FILTER (WHERE dispatch_delay_min IS NOT NULL), 0)
        AS dispatch_delay_min,
    1.0 - sum(present_drivers)::DOUBLE / nullif(sum(scheduled_drivers), 0) AS no_show_rate,
    sum(orders) FILTER (WHERE present_drivers IS NOT NULL)::DOUBLE
        / nullif(sum(present_drivers), 0) AS orders_per_driver,
    sum(crowd_share * orders) / nullif(sum(orders), 0) AS crowd_share,
    avg(precip_mm) AS precip_mm,
    avg(traffic_index) AS traffic_index,
    bool_or(promo) AS promo,
    avg(CAST(promo AS INTEGER)) AS promo_share,
    bool_or(holiday) AS holiday,
    count(*) AS store_days
"""


def kpi_query(
    *,
    store_ids: list[str] | None = None,
    regions: list[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    grain: Grain = "day",
) -> tuple[str, list[object]]:
    """Build the SQL of KPIs for the chosen stores/regions and dates, one row per period.

    Args:
        store_ids: only these stores (None: all).
        regions: only stores in these regions (None: all).
        start: first date included (None: the data's first).
        end: last date included (None: the data's last).
        grain: ``day``, ``week`` (weeks start on Monday) or ``total``.

    Returns:
        (sql, params) selecting a ``period`` column (absent for ``total``) and the KPIs.
    """
    where: list[str] = ["TRUE"]
    params: list[object] = []
    if store_ids:
        where.append(f"store_id IN ({', '.join('?' for _ in store_ids)})")
        params += store_ids
    if regions:
        where.append(f"region IN ({', '.join('?' for _ in regions)})")
        params += regions
    if start:
        where.append("date >= ?")
        params.append(start)
    if end:
        where.append("date <= ?")
        params.append(end)
    period = {"day": "date", "week": "date_trunc('week', date)::DATE", "total": None}[grain]
    select = f"{period} AS period, " if period else ""
    group = "GROUP BY 1 ORDER BY 1" if period else ""
    sql = f"SELECT {select}{_AGGREGATES} FROM store_day WHERE {' AND '.join(where)} {group}"
    return sql, params


def aggregate_kpis(con: duckdb.DuckDBPyConnection, **kwargs: Any) -> pd.DataFrame:
    """Run :func:`kpi_query` on a DuckDB connection and return the frame."""
    sql, params = kpi_query(**kwargs)
    return con.execute(sql, params).df()
