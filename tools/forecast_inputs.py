"""What the ``forecast`` tool reads: a scope's daily KPI series and its known future inputs.

The history (:func:`kpi_series`) and, for the days ahead, the calendar's promotions and
holidays (:func:`future_calendar`) and the weather feed's rows after the forecast origin
(:func:`future_conditions`), which are the weather forecast.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from tools.analytics.cells import aggregate, load_store_days
from tools.analytics.forecasting import WEATHER
from tools.analytics.scope import ResolvedScope
from tools.core.context import ToolContext
from tools.core.errors import ToolError

DENOMINATOR = {
    "late_rate": "resolved",
    "failed_rate": "resolved",
    "no_show_rate": "scheduled_drivers",
}
"""A rate KPI's denominator column (counts use the orders)."""


def daily_cells(ctx: ToolContext, scope: ResolvedScope, start: date, end: date) -> pd.DataFrame:
    """Return the scope's KPIs on every day from ``start`` to ``end``, as known at ``end``.

    Rates are recomputed from counts over the scope's stores; days without deliveries due
    (closed days, gaps) are present with zero orders and no KPI.
    """
    stores = None if scope.level == "all" else scope.stores
    store_days = load_store_days(ctx.backend, as_of=end, start=start, stores=stores, medians=False)
    if store_days.empty:
        raise ToolError(
            f"no deliveries for {scope.label()} from {start} to {end}", kind="not_enough_data"
        )
    cells = aggregate(store_days, "chain", 1, last=end)
    return cells[cells.date >= pd.Timestamp(start)].reset_index(drop=True)


def kpi_series(
    ctx: ToolContext, scope: ResolvedScope, kpi: str, start: date, end: date
) -> pd.DataFrame:
    """Daily KPI of a scope (as of ``end``) with promo share, holidays and its denominator.

    Returns:
        ``ds, y, promo, holiday, n, precip_mm, traffic_index`` for open days (``n``: the
        rate's denominator, or the orders for counts; conditions NaN without a feed), closed
        days left out; for the late rate also ``dsp_gap`` and ``carrier_share`` (DSP
        deliveries' share of resolved ones), whose product is the carrier's part of it.
    """
    cells = daily_cells(ctx, scope, start, end)
    frame = pd.DataFrame(
        {
            "ds": cells.date,
            "y": cells["volume" if kpi == "orders" else kpi],
            "promo": cells.promo_share.astype(float),
            "holiday": cells.holiday.astype(float),
            "n": cells[DENOMINATOR.get(kpi, "orders")].astype(float),
            **{c: pd.to_numeric(cells[c], errors="coerce") for c in WEATHER if c in cells},
        }
    )
    if kpi == "late_rate" and "dsp_gap" in cells:
        frame["dsp_gap"] = cells.dsp_gap
        frame["carrier_share"] = cells.dsp_resolved / cells.resolved.where(cells.resolved > 0)
    return frame.dropna(subset=["y"]).reset_index(drop=True)


def future_conditions(
    ctx: ToolContext,
    scope: ResolvedScope,
    days: list[date],
    history: pd.DataFrame,
    cols: tuple[str, ...],
) -> pd.DataFrame:
    """Return the weather feed's values for future days (mean over the scope's regions).

    Days the feed does not reach get the history's median: the typical day, not a guess.
    """
    frame = pd.DataFrame({"ds": [pd.Timestamp(d) for d in days]})
    if not cols or not days:
        return frame
    regions = sorted(set(scope.regions)) if scope.level != "all" else None
    where = "date BETWEEN ? AND ?" + (
        f" AND region IN ({', '.join('?' * len(regions))})" if regions else ""
    )
    known = ctx.backend.query(
        f"SELECT date, {', '.join(cols)} FROM conditions WHERE {where}",
        [min(days), max(days), *(regions or [])],
    )
    known["ds"] = pd.to_datetime(known["date"])
    daily = known.groupby("ds")[list(cols)].mean()
    for c in cols:
        frame[c] = frame.ds.map(daily[c]).astype(float).fillna(float(history[c].median()))
    return frame


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
