"""Anomalies: what a flagged cell reports, and how simultaneous ones merge into one event."""

from __future__ import annotations

import datetime as dt
import math
from datetime import timedelta
from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field

from tools.analytics.levels import LevelChoice
from tools.analytics.panel import finite
from tools.analytics.thresholds import (
    BROAD_MEDIAN_Z,
    BROAD_SHARE,
    EXTREME_Z,
    MIN_LATE_EXCESS,
    SEVERITY_HIGH,
    SEVERITY_MEDIUM,
    STANDOUT_Z,
)


class KpiReading(BaseModel):
    """One KPI of an anomaly: what it was, what was expected, how far off (robust SDs)."""

    value: float | None
    expected: float | None
    z: float | None


class Anomaly(BaseModel):
    """A store, region or the whole chain off on a day (or over a window ending that day)."""

    level: Literal["store", "region", "chain"]
    target: str = Field(description="Store id, region id, or 'all' for the whole chain.")
    region: str
    date: dt.date = Field(description="The (last) day of the cell.")
    grain_days: int = Field(1, description="Days of the cell: 1, or a trailing window.")
    window_start: dt.date | None = Field(None, description="First day of the cell.")
    stores: list[str] = Field(description="Stores involved (one for a store anomaly).")
    regions: list[str] = Field(
        default_factory=list, description="Flagged regions inside a chain anomaly."
    )
    score: float = Field(description="Robust Mahalanobis distance of the KPI residuals.")
    severity: Literal["low", "medium", "high"]
    drivers: list[str] = Field(description="KPIs off in their bad direction, worst first.")
    kpis: dict[str, KpiReading]
    orders: int
    resolved: int = Field(0, description="Resolved deliveries of the cell.")
    late_excess: float | None = Field(description="Late deliveries above expectation.")


def _reading(row: pd.Series, kpi: str) -> KpiReading:
    return KpiReading(
        value=finite(row.get(kpi)),
        expected=finite(row.get(f"{kpi}__expected")),
        z=finite(row.get(f"{kpi}__z")),
    )


def severity(late: KpiReading | None, adverse: float) -> Literal["low", "medium", "high"]:
    """Grade an anomaly by its late-rate excess (or, without it, its worst leading KPI)."""
    if late is not None and late.value is not None and late.expected is not None:
        excess = late.value - late.expected
        return (
            "high" if excess >= SEVERITY_HIGH else "medium" if excess >= SEVERITY_MEDIUM else "low"
        )
    return "high" if adverse >= 2 * EXTREME_Z else "medium" if adverse >= EXTREME_Z else "low"


def _late_excess(row: pd.Series) -> float | None:
    if pd.isna(row.get("late_rate__expected")) or pd.isna(row.get("late_rate")):
        return None
    return round(float((row["late_rate"] - row["late_rate__expected"]) * row["resolved"]), 1)


def _anomaly(row: pd.Series, kpis: list[str], **overrides: object) -> Anomaly:
    readings = {k: _reading(row, k) for k in kpis if f"{k}__z" in row.index}
    day = pd.Timestamp(row["date"]).date()
    grain = int(row["grain"])
    fields: dict[str, object] = {
        "level": str(row["level"]),
        "target": str(row["entity"]),
        "region": str(row["region"]),
        "date": day,
        "grain_days": grain,
        "window_start": day - timedelta(days=grain - 1),
        "stores": [str(row["entity"])] if row["level"] == "store" else [],
        "score": round(float(row["score"]), 2),
        "severity": severity(readings.get("late_rate"), float(row["adverse_z"])),
        "drivers": list(row["drivers"]),
        "kpis": readings,
        "orders": int(row["orders"]),
        "resolved": int(row["resolved"]),
        "late_excess": _late_excess(row),
    }
    fields.update(overrides)
    return Anomaly.model_validate(fields)


def _carries(row: pd.Series, kpi: str) -> bool:
    """Whether a store's cell is adverse in ``kpi`` and costs late deliveries that count."""
    if kpi not in row["drivers"]:
        return False
    expected = row.get("late_rate__expected")
    if expected is None or pd.isna(expected) or pd.isna(row.get("late_rate")):
        return True  # before the day's outcomes (morning mode) the leading KPI speaks
    return bool(row["late_rate"] - expected >= MIN_LATE_EXCESS)


def group(
    rows: dict[tuple[str, int], pd.DataFrame],
    store_days: pd.DataFrame,
    kpis: list[str],
    choices: dict[str, dict[str, LevelChoice]],
) -> list[Anomaly]:
    """Merge simultaneous anomalies into the broadest event that explains them.

    A region-day is a regional anomaly when the deviation is *shared*: either enough of its
    stores are flagged, or the region-level detector flags it and most stores moved the same
    way (at least half its stores are :data:`BROAD_MEDIAN_Z` SDs off in its top KPI). One
    store's extreme value can lift a regional average without being a regional event.
    Flagged stores that stand out from their region's typical deviation by
    :data:`STANDOUT_Z` stay separate anomalies (a shortage at one store on a stormy day is
    its own problem). A region flagged on its own whose stores did not move together is
    carried by the stores that moved in its leading KPI (and cost 3+ points of late rate);
    a region whose stores are not judged on a day alone speaks for them. A chain anomaly
    absorbs the regional anomalies of its day.
    """
    stores = rows.get(("store", 1), pd.DataFrame())
    if stores.empty:
        stores = pd.DataFrame(columns=["entity", "region", "date", "flagged", "score", "drivers"])
    region_rows = rows.get(("region", 1), pd.DataFrame())
    out: list[Anomaly] = []
    flagged = stores[stores.flagged.astype(bool)]
    carried: list[pd.Series] = []
    region_size = store_days.groupby("region").store_id.nunique()
    z_cols = [c for c in (f"{k}__z" for k in kpis) if c in stores.columns]
    for _, r in region_rows.iterrows():
        region, day = str(r["entity"]), pd.Timestamp(r["date"])
        members = flagged[(flagged.region == region) & (flagged.date == day)]
        day_rows = stores[(stores.region == region) & (stores.date == day)]
        if day_rows.empty:
            # None of its stores can be judged on a day alone: the region speaks for them,
            # as it does at coarser grains.
            if bool(r.flagged):
                out.append(_anomaly(r, kpis))
            continue
        typical = day_rows[z_cols].median()
        # Broad = at least half the stores moved (the lower median: of two stores, the calmer
        # one), so one store's extreme value cannot make a regional event.
        moved = day_rows[z_cols].quantile(0.5, interpolation="lower")
        need = max(3, math.ceil(BROAD_SHARE * int(region_size.get(region, 1))))
        top = f"{r.drivers[0]}__z" if len(r.drivers) else None
        broad = (
            bool(r.flagged)
            and top is not None
            and top in moved.index
            and moved[top] >= BROAD_MEDIAN_Z
        )
        if not (broad or len(members) >= need):
            if bool(r.flagged) and members.empty and top is not None:
                # Flagged, yet its stores did not move together: the stores that moved in its
                # leading KPI carry the anomaly (one of two stores lifting a small region).
                carried += [row for _, row in day_rows.iterrows() if _carries(row, r.drivers[0])]
            continue
        # Stand out = far above the region's typical store in some KPI, by STANDOUT_Z and by
        # three times how much the region's stores usually differ that day (a carrier outage
        # hits stores unevenly: that spread is not a separate problem).
        spread = (day_rows[z_cols] - typical).abs().median()
        excess = members[z_cols] - typical
        standout = ((excess >= STANDOUT_Z) & (excess >= 3 * spread)).any(axis=1)
        absorbed = members[~standout]
        flagged = flagged.drop(absorbed.index)
        drivers = list(r.drivers) or sorted(
            {d for ds in absorbed.drivers for d in ds}, key=lambda d: -absorbed[f"{d}__z"].max()
        )
        out.append(
            _anomaly(
                r,
                kpis,
                stores=sorted(absorbed.entity.astype(str).tolist()),
                drivers=drivers,
                score=round(float(max(r.score, absorbed.score.max() if len(absorbed) else 0.0)), 2),
            )
        )
    out += [_anomaly(r, kpis) for _, r in flagged.iterrows()]
    out += [_anomaly(r, kpis) for r in carried]
    # Regions flagged alone with no store support are not regional events at day grain (see
    # above); at coarser grains their stores are not judged, so the region speaks for them.
    windowed = _windowed(rows, choices)
    out += [_anomaly(r, kpis) for _, r in windowed if r["level"] != "chain"]
    for _, r in windowed:
        if r["level"] == "chain":
            # The chain speaks for a day only when no single region explains it: alone, or
            # over several flagged regions (which it then absorbs).
            when = pd.Timestamp(r["date"]).date()
            inside = [a for a in out if a.date == when and a.level == "region"]
            if len(inside) == 1:
                continue
            out = [a for a in out if not (a.date == when and a.level == "region")]
            out.append(_anomaly(r, kpis, regions=sorted(a.target for a in inside), stores=[]))
    return sorted(out, key=lambda a: -a.score)


def _windowed(
    rows: dict[tuple[str, int], pd.DataFrame], choices: dict[str, dict[str, LevelChoice]]
) -> list[tuple[int, pd.Series]]:
    """Pick the flagged cells of several days (and the chain): the finest grain per entity-day.

    A cell coarser than the entity's finest judgeable grain is kept only while the problem
    is still going on: the finest cell ending the same day must itself be above normal (a
    storm two days ago lifts this week's cell, but it is not today's problem).
    """
    picked: dict[tuple[str, str, pd.Timestamp], tuple[int, pd.Series]] = {}
    for (level, grain), frame in sorted(rows.items(), key=lambda kv: kv[0][1]):
        if (level, grain) in (("store", 1), ("region", 1)):
            continue
        for _, r in frame[frame.flagged].iterrows():
            key = (level, str(r["entity"]), pd.Timestamp(r["date"]))
            if key in picked:
                continue  # a finer grain already flagged this entity-day
            finest = choices[level][key[1]].grain_days or grain
            if grain > finest and not _ongoing(rows.get((level, finest)), key):
                continue
            picked[key] = (grain, r)
    return list(picked.values())


def _ongoing(frame: pd.DataFrame | None, key: tuple[str, str, pd.Timestamp]) -> bool:
    """Whether the entity's finest cell ending that day is above its normal late rate."""
    if frame is None or "late_rate__expected" not in frame:
        return False
    hit = frame[(frame.entity == key[1]) & (frame.date == key[2])]
    if hit.empty:
        return False
    excess = hit.late_rate.iloc[0] - hit.late_rate__expected.iloc[0]
    return bool(pd.notna(excess) and excess > 0)
