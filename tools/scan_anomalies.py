"""Tool ``scan_anomalies``: which stores and regions are off today, and in which KPIs.

Store-day KPIs (outcomes and leading indicators) are compared with seasonal baselines that
know the weekday and the promotion and holiday calendar; the standardised residuals go to a
robust PyOD detector (:mod:`tools.analytics.detect`). Leading indicators (no-shows against
the roster, volume against the plan, dispatch delay, carrier-specific lateness, weather,
traffic) are watched beside the late rate, so a shortage shows up the morning the roster is
short. Once the day's outcomes are in, only anomalies that cost late deliveries are reported. When
several stores of a region go off together, they are reported as one regional anomaly.

Example:
    >>> from tools.core.context import ToolContext
    >>> ctx = ToolContext.for_duckdb("data/lastmile.duckdb")
    >>> result = scan_anomalies(ctx, ScanAnomaliesInput(day=date(2026, 3, 9)))
    >>> [(a.target, a.severity, a.drivers) for a in result.anomalies]
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field

from tools.analytics.baselines import (
    KPIS,
    NO_SHOW_EXTREME_Z,
    ScanMode,
    kpi_residuals,
    kpis_for,
    region_residuals,
)
from tools.analytics.detect import (
    ADVERSE_MIN_Z,
    DEFAULT_THRESHOLD,
    EXTREME_Z,
    Direction,
    assemble,
    detect,
)
from tools.analytics.panel import finite, region_day_frame, store_day_frame
from tools.analytics.scope import ScopeLevel, load_catalog, resolve_scope, resolve_window
from tools.core.context import ToolContext
from tools.core.errors import ToolError

MIN_ORDERS = 20
MIN_LATE_EXCESS = 0.03
"""With the day's outcomes known (full mode), an anomaly must cost at least this much late
rate above normal: rain or a slow dispatch that did not make deliveries late is not a
problem to act on. On the quiet eval world it removed 4 of 6 alarms that touched nothing;
injected incidents cost 5 points or more even at 0.7x magnitude."""
STANDOUT_Z = 5.0
MIN_REFERENCE_DAYS = 14


class KpiReading(BaseModel):
    """One KPI of an anomaly: what it was, what was expected, how far off (robust SDs)."""

    value: float | None
    expected: float | None
    z: float | None


class Anomaly(BaseModel):
    """A store-day or region-day that is off."""

    level: Literal["store", "region"]
    target: str = Field(description="Store id (store level) or region id (region level).")
    region: str
    date: date
    stores: list[str] = Field(description="Stores involved (one for a store anomaly).")
    score: float = Field(description="Robust Mahalanobis distance of the KPI residuals.")
    severity: Literal["low", "medium", "high"]
    drivers: list[str] = Field(description="KPIs off in their bad direction, worst first.")
    kpis: dict[str, KpiReading]
    orders: int
    late_excess: float | None = Field(description="Late deliveries above expectation.")


class ScanAnomaliesInput(BaseModel):
    """Arguments of ``scan_anomalies``."""

    scope: ScopeLevel = Field("all", description="'all', 'region' or 'store'.")
    ids: list[str] = Field(default_factory=list, description="Region or store ids of the scope.")
    day: date | None = Field(
        None, description="Last day to scan (default: latest day in the data)."
    )
    days: int = Field(1, ge=1, le=366, description="Days to scan, ending at `day`.")
    lookback_days: int = Field(56, ge=14, le=730, description="History that defines normal.")
    mode: ScanMode = Field(
        "full",
        description="'full' uses every KPI; 'morning' only what is known before deliveries "
        "(roster, volume booked, weather, traffic).",
    )
    max_results: int = Field(20, ge=1, le=500)


class ScanAnomaliesResult(BaseModel):
    """Ranked anomalies with the settings that produced them."""

    evidence_id: str
    scope: str
    window: tuple[date, date]
    reference: tuple[date, date]
    mode: ScanMode
    detector: str
    threshold: float
    store_days_scanned: int
    anomalies: list[Anomaly]
    truncated: bool


def scan_store_days(
    frame: pd.DataFrame,
    *,
    window: tuple[date, date],
    mode: ScanMode = "full",
    threshold: float = DEFAULT_THRESHOLD,
    min_orders: int = MIN_ORDERS,
    random_state: int = 0,
) -> list[Anomaly]:
    """Find anomalous store-days and region-days in ``window`` (pure: no I/O).

    Args:
        frame: ``store_day`` rows (see :func:`tools.analytics.panel.store_day_frame`) covering the
            window and the history that defines normal (all rows are the reference; the
            estimators are robust to the few anomalous ones).
        window: first and last day to report.
        mode: ``full`` or ``morning`` (only KPIs known before deliveries).
        threshold: detector distance threshold.
        min_orders: store-days with fewer orders are too noisy to judge alone (they still
            count in their region).
        random_state: detector seed.

    Returns:
        Anomalies, highest score first: regional ones (several stores of a region off at
        once) and store ones (alone, or standing out from their region).
    """
    frame = frame.reset_index(drop=True)
    kpis = kpis_for(mode, frame)
    if not kpis:
        raise ToolError("the data has none of the KPIs the scan watches")
    directions: dict[str, Direction] = {k: 1 for k in kpis}

    # 1. store-days
    big = frame.orders >= min_orders
    stores = frame[big].reset_index(drop=True)
    if stores.empty:
        raise ToolError(
            f"no store-day has at least {min_orders} orders to judge "
            f"(the busiest has {int(frame.orders.max() if len(frame) else 0)}); "
            "query_kpis still reports regions and weeks"
        )
    expected, z = kpi_residuals(stores, "store_id", kpis, pd.Series(True, index=stores.index))
    leading = [k for k in kpis if KPIS[k].role == "leading"]
    flags = detect(
        z,
        directions=directions,
        threshold=threshold,
        extreme_z={"no_show_rate": NO_SHOW_EXTREME_Z},
        extreme_kpis=leading,
        random_state=random_state,
    )
    rows = assemble(stores, "store_id", "date", kpis, expected, z, flags)
    rows["flagged"] &= _material(rows)
    rows = pd.concat([rows, stores[["region", "orders", "late", "delivered", "failed"]]], axis=1)
    rows = rows[rows.date.between(pd.Timestamp(window[0]), pd.Timestamp(window[1]))]

    # 2. region-days (rates recomputed from counts)
    regions = region_day_frame(frame).reset_index(drop=True)
    r_kpis = [k for k in kpis if regions[k].notna().sum() >= 10]
    r_expected, r_z = region_residuals(regions, r_kpis)
    try:
        r_flags = detect(
            r_z,
            directions=directions,
            threshold=threshold,
            extreme_kpis=leading,
            random_state=random_state,
        )
    except ValueError:  # too few region-days (one region, short history): stores decide
        r_flags = pd.DataFrame(
            {
                "score": 0.0,
                "adverse_z": 0.0,
                "flagged": False,
                "drivers": [[] for _ in range(len(regions))],
            },
            index=regions.index,
        )
    r_rows = assemble(regions, "region", "date", r_kpis, r_expected, r_z, r_flags)
    r_rows["flagged"] &= _material(r_rows)
    r_rows = pd.concat([r_rows, regions[["orders", "late", "stores"]]], axis=1)
    r_rows = r_rows[r_rows.date.between(pd.Timestamp(window[0]), pd.Timestamp(window[1]))]

    return _group(rows, r_rows, kpis, frame)


def _material(rows: pd.DataFrame) -> pd.Series:
    """Rows whose late rate is at least MIN_LATE_EXCESS above normal (or unknown)."""
    if "late_rate" not in rows or "late_rate__expected" not in rows:
        return pd.Series(True, index=rows.index)
    excess = rows["late_rate"] - rows["late_rate__expected"]
    return (excess >= MIN_LATE_EXCESS) | excess.isna()


def _reading(row: pd.Series, kpi: str) -> KpiReading:
    return KpiReading(
        value=finite(row.get(kpi)),
        expected=finite(row.get(f"{kpi}__expected")),
        z=finite(row.get(f"{kpi}__z")),
    )


def _severity(late: KpiReading | None, adverse: float) -> Literal["low", "medium", "high"]:
    """Grade an anomaly by its late-rate excess.

    High: late rate 10+ points above normal; medium: 5+; without the late rate (morning
    mode) the size of the worst leading indicator decides.
    """
    if late is not None and late.value is not None and late.expected is not None:
        excess = late.value - late.expected
        return "high" if excess >= 0.10 else "medium" if excess >= 0.05 else "low"
    return "high" if adverse >= 2 * EXTREME_Z else "medium" if adverse >= EXTREME_Z else "low"


def _late_excess(row: pd.Series) -> float | None:
    if (
        "late_rate" not in row
        or pd.isna(row.get("late_rate__expected"))
        or pd.isna(row.get("late_rate"))
    ):
        return None
    resolved = row["late"] / row["late_rate"] if row["late_rate"] else row.get("orders", 0)
    return round(float((row["late_rate"] - row["late_rate__expected"]) * resolved), 1)


def _store_anomaly(row: pd.Series, kpis: list[str]) -> Anomaly:
    readings = {k: _reading(row, k) for k in kpis}
    late = readings.get("late_rate")
    return Anomaly(
        level="store",
        target=str(row.store_id),
        region=str(row.region),
        date=pd.Timestamp(row.date).date(),
        stores=[str(row.store_id)],
        score=round(float(row.score), 2),
        severity=_severity(late, float(row.adverse_z)),
        drivers=list(row.drivers),
        kpis=readings,
        orders=int(row.orders),
        late_excess=_late_excess(row),
    )


def _group(
    rows: pd.DataFrame, r_rows: pd.DataFrame, kpis: list[str], frame: pd.DataFrame
) -> list[Anomaly]:
    """Merge simultaneous store anomalies of a region into one regional anomaly.

    A region-day is a regional anomaly when the deviation is *shared*: either enough of its
    stores are flagged, or the region-level detector flags it and most stores moved the same
    way (the median store is 2+ SDs off in the region's top KPI). One store's extreme value
    can lift a regional average without being a regional event. Flagged stores that stand
    out from their region's typical deviation by ``STANDOUT_Z`` stay separate anomalies
    (a shortage at one store on a stormy day is its own problem).
    """
    out: list[Anomaly] = []
    region_size = frame.groupby("region").store_id.nunique()
    flagged = rows[rows.flagged]
    z_cols = [f"{k}__z" for k in kpis]
    for _, r in r_rows.iterrows():
        region, day = str(r["region"]), pd.Timestamp(r["date"])
        members = flagged[(flagged.region == region) & (flagged.date == day)]
        day_rows = rows[(rows.region == region) & (rows.date == day)]
        typical = day_rows[z_cols].median()
        need = max(3, math.ceil(0.25 * int(region_size.get(region, 1))))
        top = f"{r.drivers[0]}__z" if len(r.drivers) else None
        broad = bool(r.flagged) and top is not None and top in typical.index and typical[top] >= 2.0
        if not (broad or len(members) >= need):
            continue
        # Stand out = far above the region's typical store in some KPI, by STANDOUT_Z and by
        # three times how much the region's stores usually differ that day (a carrier outage
        # hits stores unevenly: that spread is not a separate problem).
        spread = (day_rows[z_cols] - typical).abs().median()
        excess = members[z_cols] - typical
        standout = ((excess >= STANDOUT_Z) & (excess >= 3 * spread)).any(axis=1)
        absorbed = members[~standout]
        flagged = flagged.drop(absorbed.index)
        r_series = r.copy()
        r_series["region"] = region
        r_series["date"] = day
        readings = {k: _reading(r_series, k) for k in kpis if f"{k}__z" in r_series.index}
        drivers = list(r.drivers) or sorted(
            {d for ds in absorbed.drivers for d in ds}, key=lambda d: -absorbed[f"{d}__z"].max()
        )
        out.append(
            Anomaly(
                level="region",
                target=str(region),
                region=str(region),
                date=pd.Timestamp(day).date(),
                stores=sorted(absorbed.store_id.astype(str).tolist()),
                score=round(float(max(r.score, absorbed.score.max() if len(absorbed) else 0.0)), 2),
                severity=_severity(readings.get("late_rate"), float(r.adverse_z)),
                drivers=drivers,
                kpis=readings,
                orders=int(r.orders),
                late_excess=_late_excess(r_series),
            )
        )
    out += [_store_anomaly(row, kpis) for _, row in flagged.iterrows()]
    return sorted(out, key=lambda a: -a.score)


def scan_anomalies(ctx: ToolContext, args: ScanAnomaliesInput) -> ScanAnomaliesResult:
    """Scan a scope and window for anomalous store-days and region-days.

    Raises:
        ToolError: unknown scope ids, a window outside the data, or too little history.
    """
    catalog = load_catalog(ctx.backend)
    scope = resolve_scope(catalog, args.scope, args.ids)
    first, last = resolve_window(catalog, args.day, args.days)
    ref_start = first - timedelta(days=args.lookback_days)
    if (first - catalog.first_day).days < MIN_REFERENCE_DAYS and args.days < MIN_REFERENCE_DAYS:
        raise ToolError(
            f"too little history before {first}: the data starts {catalog.first_day}; "
            f"scan a day from {catalog.first_day + timedelta(days=MIN_REFERENCE_DAYS)} on"
        )
    # Fit on the whole regions of the scope: one store alone is too little to learn "normal".
    fit_stores = catalog.stores_in(scope.regions)
    frame = store_day_frame(
        ctx.backend, stores=fit_stores, start=max(ref_start, catalog.first_day), end=last
    )
    try:
        found = scan_store_days(
            frame, window=(first, last), mode=args.mode, random_state=ctx.random_state
        )
    except ValueError as exc:
        raise ToolError(str(exc)) from exc
    if scope.level == "store":
        keep = set(scope.stores)
        found = [a for a in found if set(a.stores) & keep]
    truncated = len(found) > args.max_results
    found = found[: args.max_results]
    numbers: dict[str, float] = {"anomalies": len(found)}
    for i, a in enumerate(found, start=1):
        numbers[f"a{i}.score"] = a.score
        numbers[f"a{i}.stores"] = len(a.stores)
        if a.late_excess is not None:
            numbers[f"a{i}.late_excess"] = a.late_excess
        for k, reading in a.kpis.items():
            for part in ("value", "expected", "z"):
                v = getattr(reading, part)
                if v is not None:
                    numbers[f"a{i}.{k}.{part}"] = v
    summary = (
        f"{len(found)} anomal{'y' if len(found) == 1 else 'ies'} in {scope.label()} "
        f"{first}..{last}"
        + (
            ": " + "; ".join(f"{a.target} {a.date} ({', '.join(a.drivers[:3])})" for a in found[:5])
            if found
            else ""
        )
    )
    evidence = ctx.evidence.register(
        "scan_anomalies", args.model_dump(mode="json"), numbers, summary
    )
    scanned = int(((frame.date >= pd.Timestamp(first)) & frame.store_id.isin(scope.stores)).sum())
    return ScanAnomaliesResult(
        evidence_id=evidence.id,
        scope=scope.label(),
        window=(first, last),
        reference=(max(ref_start, catalog.first_day), last),
        mode=args.mode,
        detector=f"pyod.MCD robust distance >= {DEFAULT_THRESHOLD:g} with a KPI "
        f">= {ADVERSE_MIN_Z:g} SD adverse, or a KPI >= {EXTREME_Z:g} SD adverse "
        f"(store no-shows: binomial z >= {NO_SHOW_EXTREME_Z:g})"
        + (
            f"; late rate at least {100 * MIN_LATE_EXCESS:g} pts above normal"
            if args.mode == "full"
            else ""
        ),
        threshold=DEFAULT_THRESHOLD,
        store_days_scanned=scanned,
        anomalies=found,
        truncated=truncated,
    )
