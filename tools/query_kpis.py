"""Tool ``query_kpis``: delivery KPIs for a scope and period, by day, week or in total.

Rates are recomputed from counts at every level (a region's late rate is its late deliveries
over its resolved deliveries), so big stores weigh what they should. Results are row-capped.

Example:
    >>> ctx = ToolContext.for_duckdb("data/lastmile.duckdb")
    >>> r = query_kpis(ctx, QueryKpisInput(scope="region", ids=["R2"], grain="week"))
    >>> r.rows[0]["late_rate"]
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, Field, model_validator

from tools.analytics.scope import load_catalog, resolve_scope
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.data.kpis import kpi_query
from tools.data.schema import CARRIERS, LATE_SQL

KpiName = Literal[
    "orders",
    "late",
    "late_rate",
    "failed_rate",
    "avg_delay_min",
    "dispatch_delay_min",
    "no_show_rate",
    "orders_per_driver",
    "crowd_share",
    "precip_mm",
    "traffic_index",
    "promo",
]
DEFAULT_KPIS: tuple[str, ...] = (
    "orders",
    "late_rate",
    "failed_rate",
    "avg_delay_min",
    "dispatch_delay_min",
    "no_show_rate",
    "orders_per_driver",
    "precip_mm",
    "promo",
)
CARRIER_KPIS = {"orders", "late", "late_rate", "failed_rate", "avg_delay_min", "dispatch_delay_min"}


class QueryKpisInput(BaseModel):
    """Arguments of ``query_kpis``."""

    scope: Literal["all", "region", "store", "carrier"] = Field(
        "all", description="What to aggregate."
    )
    ids: list[str] = Field(
        default_factory=list, description="Region, store or carrier ids of the scope."
    )
    start: date | None = Field(None, description="First day (default: 14 days before `end`).")
    end: date | None = Field(None, description="Last day (default: the latest day in the data).")
    grain: Literal["day", "week", "total"] = "day"
    kpis: list[KpiName] | None = Field(
        None, description="KPIs to return (default: the headline set)."
    )
    max_rows: int = Field(60, ge=1, le=1000)

    @model_validator(mode="after")
    def _order(self) -> QueryKpisInput:
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class QueryKpisResult(BaseModel):
    """KPI rows for the scope and period."""

    evidence_id: str
    scope: str
    start: date
    end: date
    grain: str
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool
    totals: dict[str, float | None]


def _carrier_sql(
    carriers: list[str], start: date, end: date, grain: str
) -> tuple[str, list[object]]:
    period = {
        "day": "service_date",
        "week": "date_trunc('week', service_date)::DATE",
        "total": None,
    }[grain]
    select = f"{period} AS period, " if period else ""
    group = "GROUP BY ALL ORDER BY ALL" if period else "GROUP BY ALL ORDER BY ALL"
    sql = f"""
        SELECT {select}carrier,
          count(*) FILTER (WHERE status <> 'cancelled') AS orders,
          count(*) FILTER (WHERE {LATE_SQL}) AS late,
          count(*) FILTER (WHERE is_late)::DOUBLE
            / nullif(count(*) FILTER (WHERE is_resolved), 0) AS late_rate,
          count(*) FILTER (WHERE status = 'failed')::DOUBLE
            / nullif(count(*) FILTER (WHERE is_resolved), 0) AS failed_rate,
          avg(delay_min) AS avg_delay_min,
          avg(dispatch_delay_min) AS dispatch_delay_min
        FROM delivery_outcomes
        WHERE carrier IN ({", ".join("?" for _ in carriers)}) AND service_date BETWEEN ? AND ?
        {group}
    """
    return sql, [*carriers, start, end]


def _clean(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def query_kpis(ctx: ToolContext, args: QueryKpisInput) -> QueryKpisResult:
    """KPIs for a scope (all, region, store or carrier) and period.

    Raises:
        ToolError: unknown ids, a period outside the data, or a KPI not available per carrier.
    """
    catalog = load_catalog(ctx.backend)
    end = args.end or catalog.last_day
    start = args.start or max(catalog.first_day, end - timedelta(days=13))
    if end < catalog.first_day or start > catalog.last_day:
        raise ToolError(
            f"the period {start}..{end} has no data; "
            f"the data covers {catalog.first_day}..{catalog.last_day}"
        )
    kpis = list(args.kpis or DEFAULT_KPIS)
    if args.scope == "carrier":
        bad = [c for c in args.ids if c not in CARRIERS]
        if bad:
            raise ToolError(f"unknown carrier {', '.join(bad)}; carriers are {', '.join(CARRIERS)}")
        missing = [k for k in kpis if k not in CARRIER_KPIS]
        if args.kpis and missing:
            raise ToolError(
                f"per carrier only {', '.join(sorted(CARRIER_KPIS))} exist; "
                f"not {', '.join(missing)}"
            )
        kpis = [k for k in kpis if k in CARRIER_KPIS]
        sql, params = _carrier_sql(list(args.ids or CARRIERS), start, end, args.grain)
        label = "carrier " + ", ".join(args.ids or CARRIERS)
        keys = ["period", "carrier"] if args.grain != "total" else ["carrier"]
    else:
        scope = resolve_scope(catalog, args.scope, args.ids)
        sql, params = kpi_query(
            store_ids=scope.stores if scope.level == "store" else None,
            regions=scope.regions if scope.level == "region" else None,
            start=start,
            end=end,
            grain=args.grain,
        )
        label = scope.label()
        keys = ["period"] if args.grain != "total" else []
    frame = ctx.backend.query(sql, params)
    if frame.empty or ("orders" in frame and frame["orders"].fillna(0).sum() == 0):
        raise ToolError(f"no deliveries for {label} in {start}..{end}")
    cap = min(args.max_rows, ctx.max_rows)
    columns = keys + kpis
    rows = [{c: _clean(r[c]) for c in columns} for _, r in frame.head(cap).iterrows()]
    totals_sql, totals_params = (
        _carrier_sql(list(args.ids or CARRIERS), start, end, "total")
        if args.scope == "carrier"
        else kpi_query(
            store_ids=scope.stores if scope.level == "store" else None,
            regions=scope.regions if scope.level == "region" else None,
            start=start,
            end=end,
            grain="total",
        )
    )
    total_frame = ctx.backend.query(totals_sql, totals_params)
    totals: dict[str, float | None] = {}
    if args.scope != "carrier":
        totals = {k: _clean(total_frame[k].iloc[0]) for k in kpis if k != "promo"}
    numbers: dict[str, float] = {}
    for k, v in totals.items():
        if isinstance(v, int | float):
            numbers[f"total.{k}"] = v
    for r in rows:
        prefix = ".".join(str(r[k]) for k in keys) or "total"
        for k in kpis:
            if isinstance(r.get(k), int | float) and not isinstance(r.get(k), bool):
                numbers[f"{prefix}.{k}"] = r[k]
    summary = f"KPIs of {label}, {start}..{end} by {args.grain}: {len(rows)} row(s)"
    if "late_rate" in totals and totals["late_rate"] is not None:
        summary += f", late rate {totals['late_rate']:.1%} overall"
    evidence = ctx.evidence.register("query_kpis", args.model_dump(mode="json"), numbers, summary)
    return QueryKpisResult(
        evidence_id=evidence.id,
        scope=label,
        start=start,
        end=end,
        grain=args.grain,
        columns=columns,
        rows=rows,
        truncated=len(frame) > cap,
        totals=totals,
    )
