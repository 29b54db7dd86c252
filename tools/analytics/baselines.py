"""Store-day KPIs the tools watch, and their baselines: what a normal day looks like.

Shared by ``scan_anomalies`` (residuals become anomaly scores) and ``diagnose`` (residuals
become the deviations the causal model explains).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from tools.analytics.detect import standardize
from tools.analytics.panel import Transform

ScanMode = Literal["full", "morning"]


@dataclass(frozen=True)
class KpiSpec:
    """How a KPI is watched."""

    transform: Transform
    floor: float
    role: Literal["outcome", "leading", "condition"]
    morning: bool  # known before the day's deliveries happen


KPIS: dict[str, KpiSpec] = {
    "late_rate": KpiSpec("none", 0.01, "outcome", morning=False),
    "no_show_rate": KpiSpec("none", 0.02, "leading", morning=True),
    "orders_per_scheduled_driver": KpiSpec("log", 0.03, "leading", morning=True),
    "orders_per_driver": KpiSpec("log", 0.03, "leading", morning=True),
    "dispatch_delay_min": KpiSpec("none", 1.0, "leading", morning=False),
    "dsp_gap": KpiSpec("none", 0.02, "leading", morning=False),
    "precip_mm": KpiSpec("none", 3.0, "condition", morning=True),
    "traffic_index": KpiSpec("none", 0.02, "condition", morning=True),
}
"""Watched store-day KPIs; for all of them a higher value is worse."""


NO_SHOW_EXTREME_Z = 4.0
"""The no-show z alone that flags a store-day.

The no-show z is an exact binomial tail (z 4: p = 3e-5), not a count of robust SDs over a
heavy-tailed residual, so it needs a lower cut for the same false-alarm rate: on the quiet
eval worlds, no-show z >= 4 occurs on about 5 in 10,000 store-days, the robust-SD leading
KPIs at 5 on 3 to 18. At 5 a 41% no-show day at a store that normally loses 6% of its
drivers (z 4.1, with lateness up 4 SDs) went unflagged.
"""


def binomial_z(absent: pd.Series, scheduled: pd.Series, p0: pd.Series) -> pd.Series:
    """Z-score of ``absent`` no-shows out of ``scheduled`` drivers at a normal rate ``p0``.

    Uses the exact binomial upper tail (mid-p), so a two-driver absence at a ten-driver store
    is judged as rare as it really is: rosters are small and a normal approximation (or a
    MAD, often 0) would raise false alarms.
    """
    k = absent.to_numpy(dtype=float)
    n = scheduled.to_numpy(dtype=float)
    p = p0.to_numpy(dtype=float)
    ok = np.isfinite(k) & np.isfinite(n) & (n > 0)
    tail = np.ones_like(k)
    tail[ok] = stats.binom.sf(k[ok], n[ok], p[ok]) + 0.5 * stats.binom.pmf(k[ok], n[ok], p[ok])
    z = stats.norm.isf(np.clip(tail, 1e-300, 1.0))
    return pd.Series(np.where(ok, z, np.nan), index=absent.index)


def kpis_for(mode: ScanMode, frame: pd.DataFrame) -> list[str]:
    """Return the watched KPIs for a mode that the data actually carries."""
    chosen = [k for k, spec in KPIS.items() if mode == "full" or spec.morning]
    # KPIs the data does not carry (e.g. no staffing or weather in Olist) are left out.
    return [k for k in chosen if frame[k].notna().sum() >= 10]


def kpi_residuals(
    frame: pd.DataFrame, entity_col: str, kpis: list[str], reference: pd.Series | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (expected, z) of store-day KPIs against each store's normal day.

    Seasonal baselines (weekday shape, promotions, holidays) for every KPI; the no-show rate
    is judged against the store's normal rate with the exact binomial tail instead.

    Args:
        frame: store-day rows.
        entity_col: the entity column (``store_id``).
        kpis: KPI columns (keys of :data:`KPIS`).
        reference: rows that define normal (default: all).
    """
    if reference is None:
        reference = pd.Series(True, index=frame.index)
    expected, z = standardize(
        frame,
        kpis,
        entity_col=entity_col,
        time_col="date",
        reference=reference,
        calendar_cols=["promo", "holiday"],
        transforms={k: KPIS[k].transform for k in kpis},
        scale_floors={k: KPIS[k].floor for k in kpis},
    )
    if "no_show_rate" in kpis:
        rates = frame.loc[reference].groupby(entity_col).no_show_rate
        p0 = rates.apply(lambda x: x.clip(upper=float(x.quantile(0.9))).mean()).clip(0.02, 0.5)
        p0_rows = frame[entity_col].map(p0).fillna(0.05)
        absent = frame.scheduled_drivers - frame.present_drivers
        z["no_show_rate"] = binomial_z(absent, frame.scheduled_drivers, p0_rows)
        expected["no_show_rate"] = p0_rows
    return expected, z


def region_residuals(frame: pd.DataFrame, kpis: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (expected, z) of region-day KPIs (from ``region_day_frame``).

    Region aggregates are far less noisy than single stores, so the scale floors are halved;
    no-shows use the robust scale too (rain moves a region's rate more than chance does).
    """
    return standardize(
        frame,
        kpis,
        entity_col="region",
        time_col="date",
        calendar_cols=["promo", "holiday"],
        transforms={k: KPIS[k].transform for k in kpis},
        scale_floors={k: KPIS[k].floor / 2 for k in kpis},
    )
