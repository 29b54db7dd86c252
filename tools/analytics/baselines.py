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
from tools.analytics.thresholds import MIN_REFERENCE_CELLS

ScanMode = Literal["full", "morning"]


@dataclass(frozen=True)
class KpiSpec:
    """How a KPI (a cell column) is baselined, and whether the scan watches it."""

    transform: Transform
    floor: float
    role: Literal["outcome", "leading", "condition", "factor"]
    morning: bool  # known before the day's deliveries happen
    direction: Literal[1, -1] = 1  # 1: a higher value is worse; -1: a lower one is
    relative: bool = False  # a count that grows with the cell: deviations are log-ratios

    @property
    def watched(self) -> bool:
        """The scan watches outcomes, leading indicators and conditions, not plain factors."""
        return self.role != "factor"


KPIS: dict[str, KpiSpec] = {
    "late_rate": KpiSpec("none", 0.01, "outcome", morning=False),
    "no_show_rate": KpiSpec("none", 0.02, "leading", morning=True),
    "orders_per_scheduled_driver": KpiSpec("log", 0.03, "leading", morning=True),
    "orders_per_driver": KpiSpec("log", 0.03, "leading", morning=True),
    "dispatch_delay_min": KpiSpec("none", 1.0, "leading", morning=False),
    "dsp_gap": KpiSpec("none", 0.02, "leading", morning=False),
    "precip_mm": KpiSpec("none", 3.0, "condition", morning=True),
    "traffic_index": KpiSpec("none", 0.02, "condition", morning=True),
    # factors any delivery table carries: baselined for diagnosis, not watched by the scan
    "volume": KpiSpec("log", 0.03, "factor", morning=True, relative=True),
    "handover_h": KpiSpec("log", 0.03, "factor", morning=False),
    "transit_h": KpiSpec("log", 0.03, "factor", morning=False),
    "lead_h": KpiSpec("log", 0.03, "factor", morning=True, direction=-1),
    "third_party_share": KpiSpec("none", 0.02, "factor", morning=True),
    "avg_distance_km": KpiSpec("log", 0.02, "factor", morning=False),
}
"""Cell KPIs with their baselines. Scale floors are on the transformed scale (log: a share)."""


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
    chosen = [k for k, spec in KPIS.items() if spec.watched and (mode == "full" or spec.morning)]
    # KPIs the data does not carry (e.g. no staffing or weather in Olist) are left out.
    return [k for k in chosen if frame[k].notna().sum() >= MIN_REFERENCE_CELLS]


def kpi_residuals(
    frame: pd.DataFrame,
    entity_col: str,
    kpis: list[str],
    reference: pd.Series | None = None,
    *,
    floor_factor: float = 1.0,
    binomial_no_shows: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (expected, z) of cell KPIs against each entity's normal cell.

    Seasonal baselines (weekday shape for cells shorter than a week, promotions, holidays)
    for every KPI; the no-show rate is judged against the entity's normal rate with the
    exact binomial tail instead. Cells without deliveries (closed days, gaps) have no KPI
    and never enter a baseline.

    Args:
        frame: cell rows (see :func:`tools.analytics.cells.aggregate`).
        entity_col: the entity column (``store_id``, ``region`` or ``entity``).
        kpis: KPI columns (keys of :data:`KPIS`).
        reference: rows that define normal (default: all).
        floor_factor: multiplies the scale floors (aggregates are less noisy than stores).
        binomial_no_shows: judge no-shows with the exact binomial tail (stores); else with
            the robust scale (rain moves a region's rate more than chance does).
    """
    if reference is None:
        reference = pd.Series(True, index=frame.index)
    grain = int(frame["grain"].iloc[0]) if "grain" in frame and len(frame) else 1
    open_cells = frame["orders"] > 0 if "orders" in frame else pd.Series(True, index=frame.index)
    values = frame.copy()
    values.loc[~open_cells, kpis] = np.nan
    expected, z = standardize(
        values,
        kpis,
        entity_col=entity_col,
        time_col="date",
        reference=reference & open_cells,
        calendar_cols=["promo", "holiday"],
        weekly=grain < 7,
        transforms={k: KPIS[k].transform for k in kpis},
        scale_floors={k: KPIS[k].floor * floor_factor for k in kpis},
    )
    if not binomial_no_shows:
        return expected, z
    if "no_show_rate" in kpis:
        rates = frame.loc[reference].groupby(entity_col).no_show_rate
        p0 = rates.apply(lambda x: x.clip(upper=float(x.quantile(0.9))).mean()).clip(0.02, 0.5)
        p0_rows = frame[entity_col].map(p0).fillna(0.05)
        absent = frame.scheduled_drivers - frame.present_drivers
        z["no_show_rate"] = binomial_z(absent, frame.scheduled_drivers, p0_rows)
        expected["no_show_rate"] = p0_rows
    return expected, z


def region_residuals(
    frame: pd.DataFrame,
    kpis: list[str],
    entity_col: str = "region",
    reference: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (expected, z) of region (or chain) cell KPIs.

    Aggregates are far less noisy than single stores, so the scale floors are halved;
    no-shows use the robust scale too (rain moves a region's rate more than chance does).
    """
    return kpi_residuals(
        frame, entity_col, kpis, reference, floor_factor=0.5, binomial_no_shows=False
    )


def late_rate_z(
    frame: pd.DataFrame, expected: pd.Series, entity_col: str, reference: pd.Series | None = None
) -> pd.Series:
    """Z of each cell's late rate under an overdispersed binomial model of its volume.

    The variance of a cell's late rate is its binomial part at the expected rate,
    ``p (1 - p) / resolved``, plus the entity's extra-binomial variance ``tau^2`` (the
    robust variance of its reference residuals beyond their median binomial part). Cells
    with few deliveries (a closed day in a window, a quiet week) are judged as noisy as
    they are, which a single robust scale per entity cannot do. Where the normal
    approximation is poor (a rate near 0, few deliveries), the exact binomial tail of the
    late count (mid-p) is used when it is more conservative: the z is the smaller of both.

    Args:
        frame: cells with ``late_rate``, ``resolved`` and ``entity_col``.
        expected: expected late rate of every cell.
        entity_col: entity column.
        reference: rows that define the entity's extra variance (default: all).
    """
    if reference is None:
        reference = pd.Series(True, index=frame.index)
    p = expected.clip(0.005, 0.995)
    binvar = p * (1 - p) / frame["resolved"].where(frame["resolved"] > 0)
    resid = frame["late_rate"] - expected
    ref = reference & resid.notna() & binvar.notna()
    groups = frame.loc[ref, entity_col]
    mad = (
        resid[ref]
        .groupby(groups)
        .apply(lambda r: float(1.4826 * np.median(np.abs(r - np.median(r)))))
    )
    base = binvar[ref].groupby(groups).median()
    tau2 = (mad**2 - base).clip(lower=0.0)
    extra = frame[entity_col].map(tau2).astype(float).fillna(0.0)
    normal = resid / np.sqrt(binvar + extra)
    exact = binomial_z(frame["late"], frame["resolved"], p)
    out: pd.Series = np.minimum(normal, exact.where(exact.notna(), normal))
    return out
