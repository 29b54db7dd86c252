"""Anomaly detection on any panel: seasonal residuals, then a robust multivariate PyOD detector.

Why this detector. The inputs are standardised residuals (value minus a seasonal baseline,
over the entity's robust scale) of several KPIs at once. We score them with PyOD's **MCD**
(minimum covariance determinant) detector, i.e. a robust Mahalanobis distance:

* it is *magnitude-aware*: a residual twice as large scores higher, unlike rank- or
  ECDF-based detectors (ECOD/COPOD), whose scores saturate at the sample's extremes and so
  always single out a few rows, however quiet the day;
* it learns how KPIs normally move *together* (rain lifts no-shows and lateness at once), so
  a pattern that breaks the usual covariance (no-shows up on a dry day) stands out;
* it is robust: the covariance comes from the central 97 % of reference rows, so past
  incidents barely shift it (a tighter support would also drop ordinary rainy days and
  then flag them);
* it is deterministic given ``random_state``.

A row is flagged when its distance reaches a fixed threshold *and* one KPI is at least
``ADVERSE_MIN_Z`` robust SDs off in its bad direction (lateness up, not down); or when a
watched KPI alone is ``EXTREME_Z`` SDs off (a deviation along a usual direction of
co-movement, such as a volume surge, has a modest distance yet is plainly abnormal). The
thresholds (:mod:`tools.analytics.thresholds`) were calibrated on seeded synthetic worlds
(``make quality``); they are never a contamination share, so a quiet day flags nothing and
a bad day flags everything that is bad.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pyod.models.mcd import MCD

from tools.analytics.panel import Transform, fit_baselines, transform_series
from tools.analytics.thresholds import (
    ADVERSE_MIN_Z,
    DEFAULT_THRESHOLD,
    EXTREME_Z,
    MIN_REFERENCE_CELLS,
    SUPPORT_FRACTION,
)
from tools.core.errors import InsufficientDataError

__all__ = [
    "ADVERSE_MIN_Z",
    "DEFAULT_THRESHOLD",
    "EXTREME_Z",
    "Direction",
    "PanelScan",
    "assemble",
    "detect",
    "scan_panel",
    "standardize",
]

Direction = Literal[1, -1, 0]


@dataclass
class PanelScan:
    """Result of :func:`scan_panel`: one row per input row, plus the fitted settings.

    ``rows`` has the entity and time columns, ``score`` (robust distance), ``flagged``,
    and for every KPI ``<kpi>`` (value), ``<kpi>__expected`` and ``<kpi>__z``.
    """

    rows: pd.DataFrame
    kpis: list[str]
    threshold: float

    @property
    def anomalies(self) -> pd.DataFrame:
        """Flagged rows, highest score first."""
        return self.rows[self.rows.flagged].sort_values("score", ascending=False)


def standardize(
    frame: pd.DataFrame,
    kpis: Sequence[str],
    *,
    entity_col: str,
    time_col: str,
    reference: pd.Series | None = None,
    calendar_cols: Sequence[str] = (),
    weekly: bool = True,
    transforms: Mapping[str, Transform] | None = None,
    scale_floors: Mapping[str, float] | None = None,
    baseline: Literal["seasonal", "rolling"] = "seasonal",
    window: int = 48,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compute expected values and standardised residuals of each KPI for every row.

    Args:
        frame: the panel.
        kpis: KPI columns.
        entity_col: entity column.
        time_col: time column.
        reference: boolean mask of the rows baselines learn from (default: all rows).
        calendar_cols: boolean columns whose effect the seasonal baseline learns.
        weekly: learn a day-of-week shape (seasonal baseline only).
        transforms: per-KPI ``log`` for multiplicative KPIs.
        scale_floors: per-KPI smallest residual scale.
        baseline: ``seasonal`` (entity level + weekly shape + calendar effects, from the
            reference rows) or ``rolling`` (median and MAD of each entity's previous
            ``window`` rows: for long, drifting series such as sensor data).
        window: rows in the rolling window.

    Returns:
        (expected, z): two frames indexed like ``frame``, one column per KPI.
    """
    if reference is None:
        reference = pd.Series(True, index=frame.index)
    transforms = dict(transforms or {})
    floors = dict(scale_floors or {})
    expected = pd.DataFrame(index=frame.index)
    z = pd.DataFrame(index=frame.index)
    if baseline == "seasonal":
        fitted = fit_baselines(
            frame[reference],
            kpis,
            entity_col=entity_col,
            time_col=time_col,
            calendar_cols=calendar_cols,
            transforms=transforms,
            scale_floors=floors,
            weekly=weekly,
        )
        for kpi in kpis:
            expected[kpi] = fitted[kpi].expected(frame, entity_col, time_col)
            z[kpi] = fitted[kpi].residual_z(frame, entity_col, time_col)
        return expected, z
    for kpi in kpis:
        y = transform_series(frame[kpi], transforms.get(kpi, "none"))
        y = y.where(np.isfinite(y))
        order = frame.sort_values([entity_col, time_col]).index
        grouped = y.loc[order].groupby(frame.loc[order, entity_col])
        # Only past rows inform a row's expectation (shift(1)): the row itself never does.
        med = grouped.transform(
            lambda s: s.shift(1).rolling(window, min_periods=max(3, window // 4)).median()
        )
        resid = y.loc[order] - med
        scale = 1.4826 * resid.abs().groupby(frame.loc[order, entity_col]).transform(
            lambda s: s.shift(1).rolling(window, min_periods=max(3, window // 4)).median()
        )
        scale = scale.clip(lower=floors.get(kpi, 0.0) or 1e-9)
        exp_t = med.reindex(frame.index)
        expected[kpi] = np.exp(exp_t) if transforms.get(kpi, "none") == "log" else exp_t
        z[kpi] = (resid / scale).reindex(frame.index)
    return expected, z


def detect(
    z: pd.DataFrame,
    *,
    directions: Mapping[str, Direction] | None = None,
    reference: pd.Series | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    adverse_min_z: float = ADVERSE_MIN_Z,
    extreme_z: float | Mapping[str, float] = EXTREME_Z,
    extreme_kpis: Sequence[str] | None = None,
    outcome_kpis: Sequence[str] = (),
    random_state: int = 0,
) -> pd.DataFrame:
    """Score standardised residuals with PyOD MCD and flag adverse outliers.

    Args:
        z: standardised residuals, one column per KPI (NaN: no information, treated as 0).
        directions: per KPI, 1 when high is bad, -1 when low is bad, 0 when both are
            (default 0).
        reference: rows the detector's robust covariance is fitted on (default: all).
        threshold: robust Mahalanobis distance from which a row is anomalous.
        adverse_min_z: a flagged row also needs one KPI this far in its bad direction.
        extreme_z: a KPI this far in its bad direction flags the row whatever the distance
            (a deviation along a usual direction of co-movement, e.g. a volume surge
            lifting load, dispatch delay and lateness together, has a modest Mahalanobis
            distance yet is plainly abnormal). A mapping sets it per KPI (others: EXTREME_Z),
            for KPIs whose z is an exact tail probability rather than robust SDs.
        extreme_kpis: KPIs the ``extreme_z`` rule looks at (default: all); outcome KPIs with
            heavy natural tails can be left to the distance.
        outcome_kpis: KPIs that also flag a row when they are ``EXTREME_Z`` conditional SDs
            off beyond what the other KPIs predict (the robust covariance's regression): a
            late rate far above what the no-shows, volume and weather of the day explain,
            or, when the data carries none of those, far above normal.
        random_state: seed of the MCD fit.

    Returns:
        Frame indexed like ``z`` with ``score`` (distance), ``adverse_z`` (the largest
        residual in a bad direction), ``flagged`` and ``drivers`` (KPIs beyond
        ``adverse_min_z`` in their bad direction, worst first).

    Raises:
        ValueError: when there are too few usable reference rows to fit the detector.
    """
    if not 0 < threshold:
        raise ValueError(f"threshold must be positive, got {threshold}")
    directions = dict(directions or {})
    if reference is None:
        reference = pd.Series(True, index=z.index)
    # an infinite residual (a log KPI at zero) is an extreme one: clipped like the rest,
    # so it neither poisons the spread below nor drops its KPI from the detector
    clipped = z.clip(-50.0, 50.0)
    usable = [
        c
        for c in z.columns
        if clipped.loc[reference, c].notna().sum() >= MIN_REFERENCE_CELLS
        and np.nanstd(clipped.loc[reference, c]) > 0
    ]
    if not usable:
        raise InsufficientDataError("no KPI has enough finite reference values to fit a detector")
    x = clipped[usable].fillna(0.0)
    x_ref = x[reference]
    if len(x_ref) < max(20, 3 * len(usable)):
        raise InsufficientDataError(
            f"too little history: {len(x_ref)} reference rows for {len(usable)} KPIs "
            f"(need at least {max(20, 3 * len(usable))})"
        )
    model = MCD(support_fraction=SUPPORT_FRACTION, random_state=random_state)
    model.fit(x_ref.to_numpy())
    distance = np.sqrt(np.maximum(model.decision_function(x.to_numpy()), 0.0))
    sign = pd.Series({c: directions.get(c, 0) for c in usable}, dtype=float)
    directed = x * sign.replace(0.0, np.nan)
    two_sided = [c for c in usable if directions.get(c, 0) == 0]
    if two_sided:
        directed[two_sided] = x[two_sided].abs()
    adverse = directed.max(axis=1)
    watched = [c for c in usable if extreme_kpis is None or c in extreme_kpis]
    if isinstance(extreme_z, Mapping):
        cuts = pd.Series({c: extreme_z.get(c, EXTREME_Z) for c in watched}, dtype=float)
    else:
        cuts = pd.Series(float(extreme_z), index=watched, dtype=float)
    extreme = (
        (directed[watched] >= cuts).any(axis=1) if watched else pd.Series(False, index=z.index)
    )
    for kpi in (k for k in outcome_kpis if k in usable and len(usable) > 1):
        unexplained = _conditional_z(model, x, usable, kpi) * directions.get(kpi, 1)
        extreme |= unexplained >= EXTREME_Z
    drivers = directed.apply(
        lambda row: [k for k, v in row.sort_values(ascending=False).items() if v >= adverse_min_z],
        axis=1,
    )
    return pd.DataFrame(
        {
            "score": distance,
            "adverse_z": adverse,
            "flagged": ((distance >= threshold) & (adverse >= adverse_min_z)) | extreme,
            "drivers": drivers,
        },
        index=z.index,
    )


def _conditional_z(model: MCD, x: pd.DataFrame, usable: list[str], kpi: str) -> pd.Series:
    """Return ``kpi``'s deviation from what the other KPIs predict, in conditional SDs.

    From the MCD fit's robust location and covariance (Gaussian conditioning): the part of
    the KPI that the co-movement learned from the reference cells does not explain.
    """
    fitted = model.detector_
    mu, cov = np.asarray(fitted.location_), np.asarray(fitted.covariance_)
    o = usable.index(kpi)
    rest = [i for i in range(len(usable)) if i != o]
    weights = np.linalg.lstsq(cov[np.ix_(rest, rest)], cov[rest, o], rcond=None)[0]
    variance = float(cov[o, o] - cov[o, rest] @ weights)
    values = x[usable].to_numpy()
    predicted = mu[o] + (values[:, rest] - mu[rest]) @ weights
    return pd.Series((values[:, o] - predicted) / np.sqrt(max(variance, 1e-12)), index=x.index)


def scan_panel(
    frame: pd.DataFrame,
    entity_col: str,
    time_col: str,
    kpi_cols: Sequence[str],
    *,
    directions: Mapping[str, Direction] | None = None,
    reference: pd.Series | None = None,
    calendar_cols: Sequence[str] = (),
    weekly: bool = True,
    transforms: Mapping[str, Transform] | None = None,
    scale_floors: Mapping[str, float] | None = None,
    baseline: Literal["seasonal", "rolling"] = "seasonal",
    window: int = 48,
    threshold: float = DEFAULT_THRESHOLD,
    adverse_min_z: float = ADVERSE_MIN_Z,
    extreme_z: float = EXTREME_Z,
    random_state: int = 0,
) -> PanelScan:
    """Find anomalous rows in any panel (entities x time x KPIs).

    Example:
        >>> scan = scan_panel(frame, "sensor", "timestamp", ["value"], baseline="rolling")
        >>> scan.anomalies.head()

    Args:
        frame: one row per entity and time step.
        entity_col: entity column (one series per entity).
        time_col: time column.
        kpi_cols: KPI columns to watch.
        directions: per KPI, 1 when high is bad, -1 when low is bad, 0 for both.
        reference: rows that define "normal" (default: all rows; robust to a few anomalies).
        calendar_cols: boolean columns whose effect the baseline learns (see standardize).
        weekly: learn a day-of-week shape.
        transforms: per-KPI ``log`` for multiplicative KPIs.
        scale_floors: per-KPI smallest residual scale.
        baseline: ``seasonal`` or ``rolling`` (see :func:`standardize`).
        window: rows in the rolling window.
        threshold: distance from which a row is anomalous (see :data:`DEFAULT_THRESHOLD`).
        adverse_min_z: smallest residual in a bad direction for a flag.
        extreme_z: a residual this far in a bad direction flags the row on its own.
        random_state: seed of the detector.

    Returns:
        A :class:`PanelScan`.

    Raises:
        ValueError: on unknown columns or too little data.
    """
    missing = [c for c in (entity_col, time_col, *kpi_cols) if c not in frame.columns]
    if missing:
        raise ValueError(f"frame has no column(s) {', '.join(missing)}")
    if frame.empty:
        raise ValueError("frame is empty")
    frame = frame.reset_index(drop=True)
    if reference is not None:
        reference = reference.reset_index(drop=True)
    expected, z = standardize(
        frame,
        kpi_cols,
        entity_col=entity_col,
        time_col=time_col,
        reference=reference,
        calendar_cols=calendar_cols,
        weekly=weekly,
        transforms=transforms,
        scale_floors=scale_floors,
        baseline=baseline,
        window=window,
    )
    ref = reference if reference is not None else pd.Series(True, index=frame.index)
    if baseline == "rolling":
        ref = ref & z.notna().all(axis=1)  # rows before a full window have no residual
    flags = detect(
        z,
        directions=directions,
        reference=ref,
        threshold=threshold,
        adverse_min_z=adverse_min_z,
        extreme_z=extreme_z,
        random_state=random_state,
    )
    return PanelScan(
        rows=assemble(frame, entity_col, time_col, kpi_cols, expected, z, flags),
        kpis=list(kpi_cols),
        threshold=threshold,
    )


def assemble(
    frame: pd.DataFrame,
    entity_col: str,
    time_col: str,
    kpis: Sequence[str],
    expected: pd.DataFrame,
    z: pd.DataFrame,
    flags: pd.DataFrame,
) -> pd.DataFrame:
    """Put values, expectations, residuals and flags side by side."""
    out = frame[[entity_col, time_col]].copy()
    for kpi in kpis:
        out[kpi] = frame[kpi]
        out[f"{kpi}__expected"] = expected[kpi]
        out[f"{kpi}__z"] = z[kpi]
    return pd.concat([out, flags], axis=1)
