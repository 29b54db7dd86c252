"""Tool ``query_kpis``: delivery KPIs for a scope and period, by day, week or in total.

Rates are recomputed from counts at every level (a region's late rate is its late deliveries
over its resolved deliveries), so big stores weigh what they should. Everything is as known
at the end of the period's last day (a delivery overdue then counts as late). Results are
row-capped.

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

from tools.analytics.cells import SUMS, aggregate, derive, load_store_days
from tools.analytics.scope import ResolvedScope, ScopeLevel, load_catalog, resolve_scope
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.data.schema import CARRIERS
from tools.data.views import ADDITIVE_SQL, outcomes_sql
from tools.vocabulary import QueryKpi

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
    kpis: list[QueryKpi] | None = Field(
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


def _periods(daily: pd.DataFrame, grain: str, keys: list[str]) -> pd.DataFrame:
    """Sum daily additive rows into days, Monday weeks or one total, and derive the KPIs.

    A week is labelled by its Monday, or by the period's first day when it starts mid-week.
    """
    data = daily.copy()
    if grain == "day":
        data["period"] = data.date
    elif grain == "week":
        monday = data.date - pd.to_timedelta(data.date.dt.dayofweek, unit="D")
        # A period that starts mid-week is labelled by its first day, not a Monday outside it.
        data["period"] = monday.clip(lower=data.date.min())
    group = (["period"] if grain != "total" else []) + keys
    sums = [c for c in SUMS if c in data.columns]
    if group:
        out = data.groupby(group, as_index=False)[sums].sum()
    else:
        out = data[sums].sum().to_frame().T
    out["date"] = out["period"] if "period" in out else pd.Timestamp(daily.date.max())
    out = derive(out)
    out["orders"] = out.orders.astype(int)
    out["late"] = out.late.astype(int)
    out["promo"] = out.promo_days > 0
    return out


def _scope_frame(ctx: ToolContext, scope: ResolvedScope, start: date, end: date) -> pd.DataFrame:
    """Daily KPIs of the scope's stores together (as of ``end``)."""
    stores = None if scope.level == "all" else scope.stores
    store_days = load_store_days(ctx.backend, as_of=end, start=start, stores=stores, medians=False)
    if store_days.empty:
        raise ToolError(
            f"no deliveries for {scope.label()} in {start}..{end}", kind="not_enough_data"
        )
    return aggregate(store_days, "chain", 1, first=start, last=end)


def _carrier_frame(ctx: ToolContext, carriers: list[str], start: date, end: date) -> pd.DataFrame:
    """Daily additive measures per carrier (as of ``end``)."""
    backend = ctx.backend
    placeholders = ", ".join("?" for _ in carriers)
    sql = f"""
        SELECT service_date AS date, carrier, {ADDITIVE_SQL}
        FROM ({
        outcomes_sql(backend.late, as_of=end, first_day=start, has_timezone=backend.has_timezone)
    }) AS o
        WHERE carrier IN ({placeholders}) AND service_date >= ?
        GROUP BY service_date, carrier
    """
    frame = backend.query(sql, [*carriers, start])
    frame["date"] = pd.to_datetime(frame["date"])
    for col in (
        "scheduled_drivers",
        "present_drivers",
        "staffed_orders",
        "precip_x",
        "traffic_x",
        "conditions_w",
        "promo_days",
        "holiday_days",
    ):
        frame[col] = 0.0
    frame["store_days"] = 1.0
    return frame


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


def kpi_table(
    ctx: ToolContext,
    scope: ScopeLevel,
    ids: list[str],
    *,
    start: date | None = None,
    end: date | None = None,
    grain: Literal["day", "week", "total"] = "day",
) -> pd.DataFrame:
    """Every KPI of a scope by period, as known at the end of the period (for people).

    Args:
        ctx: the tool context.
        scope: ``all``, ``region`` or ``store``.
        ids: region or store ids of the scope.
        start: first day (default: the data's first).
        end: last day (default: the data's last).
        grain: ``day``, ``week`` (from Monday) or ``total``.

    Raises:
        ToolError: unknown ids, or no deliveries in the period.
    """
    catalog = load_catalog(ctx.backend)
    resolved = resolve_scope(catalog, scope, ids)
    start, end = start or catalog.first_day, end or catalog.last_day
    daily = _scope_frame(ctx, resolved, start, end)
    if daily.orders.sum() == 0:
        raise ToolError(
            f"no deliveries for {resolved.label()} in {start}..{end}", kind="not_enough_data"
        )
    return _periods(daily, grain, [])


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
        daily = _carrier_frame(ctx, list(args.ids or CARRIERS), start, end)
        label = "carrier " + ", ".join(args.ids or CARRIERS)
        by = ["carrier"]
    else:
        scope = resolve_scope(catalog, args.scope, args.ids)
        daily = _scope_frame(ctx, scope, start, end)
        label = scope.label()
        by = []
    if daily.empty or daily.orders.sum() == 0:
        raise ToolError(f"no deliveries for {label} in {start}..{end}", kind="not_enough_data")
    frame = _periods(daily, args.grain, by)
    keys = (["period"] if args.grain != "total" else []) + by
    cap = min(args.max_rows, ctx.max_rows)
    columns = keys + kpis
    rows = [{c: _clean(r[c]) for c in columns} for _, r in frame.head(cap).iterrows()]
    totals: dict[str, float | None] = {}
    if args.scope != "carrier":
        total_frame = _periods(daily, "total", [])
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
