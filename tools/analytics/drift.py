"""Distribution drift of store-day features: a robust test against an empirical null.

A feature drifts on day D when the typical store moved away from its own normal by more than
the day-to-day movement of the reference window explains. Per feature:

1. each store-day value ``v`` (on the feature's scale: log for quantities, so a units change
   of x60 is a shift of ``ln 60``) is compared with its store's normal for that weekday (the
   median over the reference window; promotion and holiday store-days excluded on both
   sides, since the calendar explains them);
2. the day's statistic ``r_d`` is the median of those residuals over the stores that
   reported;
3. the reference days' own ``r_d`` are the null: whatever moves every store at once (a
   chain-wide busy day, a rainy week) is in it. Day D's robust z is its distance from the
   null's median in robust SDs (1.4826 x MAD).

A plain KS or chi-square p-value assumes independent store-days; a common shock (a storm,
a promotion) makes every store move together and such p-values flag most days, so they are
reported (with PSI) for the reader but do not raise an alert. The alert bar is the
Bonferroni-corrected two-sided normal quantile of
:data:`tools.analytics.thresholds.DRIFT_FAMILY_ALPHA` over the features tested that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel
from scipy import stats

from tools.analytics.thresholds import (
    DRIFT_FAMILY_ALPHA,
    DRIFT_MIN_EFFECT,
    DRIFT_MIN_REFERENCE_DAYS,
    DRIFT_MIN_SCALE,
)

Scale = Literal["log", "share"]


@dataclass(frozen=True)
class Feature:
    """A store-day feature watched for drift: its name, label and scale."""

    name: str
    label: str
    scale: Scale
    calendar: bool = False
    """Promotions and holidays move it (volume, rosters and what congestion slows): their
    store-days are left out on both sides of the test."""


FEATURES: tuple[Feature, ...] = (
    Feature("orders", "deliveries due per store", "log", calendar=True),
    Feature("items_per_order", "items per delivery", "log"),
    Feature("avg_distance_km", "delivery distance", "log"),
    Feature("dispatch_delay_min", "dispatch delay", "log", calendar=True),
    Feature("handover_h", "hand-over time", "log", calendar=True),
    Feature("transit_h", "carrier transit time", "log", calendar=True),
    Feature("lead_h", "promised lead time", "log"),
    Feature("scheduled_drivers", "drivers on the plan", "log", calendar=True),
    Feature("present_drivers", "drivers present", "log", calendar=True),
    Feature("third_party_share", "share handed to DSP or crowd", "share"),
)
"""Operational features of a store-day watched for drift. Weather and traffic are the
world's own variation, not the pipeline's: their feeds are watched for staleness and gaps
(:mod:`tools.analytics.health`), not for distribution drift."""


class FeatureDrift(BaseModel):
    """Drift of one feature on one day against the reference window."""

    feature: str
    label: str
    stores: int
    """Stores that reported the feature on the day (calendar-event store-days excluded)."""
    value: float
    """The day's typical store (median over stores), in the feature's unit."""
    normal: float
    """The same stores' typical normal (median of their weekday medians)."""
    shift: float
    """The day's median residual less the null's median: log ratio (log scale) or points."""
    z: float
    """Robust z of the day's median residual against the reference days' (empirical null)."""
    psi: float | None
    """Population stability index of the day's store values against the reference's
    (deciles of the reference); None below 10 stores."""
    ks: float | None
    """Two-sample Kolmogorov-Smirnov statistic, same samples (None below 10 stores)."""
    ks_p: float | None
    """Its p-value (scipy, assuming independent store-days: reported, not used to alert)."""
    drifted: bool


def z_critical(tests: int, alpha: float = DRIFT_FAMILY_ALPHA) -> float:
    """Two-sided normal quantile that holds the family-wise error at ``alpha`` over ``tests``.

    Bonferroni: each of the ``tests`` features is tested at ``alpha / tests``.
    """
    return float(stats.norm.isf(alpha / (2 * max(tests, 1))))


def feature_values(store_days: pd.DataFrame) -> pd.DataFrame:
    """Derive the watched features from additive store-day rows (:func:`load_store_days`).

    Returns:
        ``store_id, date, dow, event`` (a promotion or holiday) and one column per
        :data:`FEATURES` entry, NaN where the store-day lacks it (no roster, no distance).
    """
    f = store_days
    out = pd.DataFrame({"store_id": f.store_id, "date": f.date})
    out["dow"] = f.date.dt.dayofweek
    out["event"] = f.promo.astype(bool) | f.holiday.astype(bool)
    orders = f.orders.astype(float)
    out["orders"] = orders
    out["items_per_order"] = f["items"] / orders.where(orders > 0)
    out["avg_distance_km"] = f.distance_sum / f.distance_n.where(f.distance_n > 0)
    out["dispatch_delay_min"] = f.dispatch_sum / f.dispatch_n.where(f.dispatch_n > 0)
    for col in ("handover_h", "transit_h", "lead_h"):
        out[col] = f[col].astype(float) if col in f else np.nan
    staffed = f.has_staffing.astype(bool)
    out["scheduled_drivers"] = f.scheduled_drivers.where(staffed)
    out["present_drivers"] = f.present_drivers.where(staffed)
    out["third_party_share"] = (f.crowd_orders + f.dsp_orders) / orders.where(orders > 0)
    return out


def _on_scale(values: pd.Series, scale: Scale) -> pd.Series:
    v = values.astype(float)
    if scale == "share":
        return v
    return pd.Series(np.log(v.where(v > 0)), index=v.index)


def _psi(reference: np.ndarray, day: np.ndarray) -> float:
    """PSI over the reference's deciles (a floor of 1e-4 per bin keeps empty bins finite)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11)))
    if len(edges) < 3:
        return 0.0 if np.allclose(day, edges[0]) else float("inf")
    edges[0], edges[-1] = -np.inf, np.inf
    ref = np.histogram(reference, edges)[0] / len(reference)
    cur = np.histogram(day, edges)[0] / len(day)
    ref, cur = np.clip(ref, 1e-4, None), np.clip(cur, 1e-4, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def feature_drift(values: pd.DataFrame, day: pd.Timestamp, tests: int) -> list[FeatureDrift]:
    """Test every watched feature on ``day`` against the days before it in ``values``.

    Args:
        values: :func:`feature_values` rows of the reference window and the day.
        day: the day under test; earlier rows are the reference.
        tests: features tested that day, for the Bonferroni bar (:func:`z_critical`).

    Returns:
        One entry per feature with enough reference (at least
        :data:`DRIFT_MIN_REFERENCE_DAYS` days) and at least one store reporting on the day.
    """
    bar = z_critical(tests)
    out = []
    plain = values[~values.event]
    for feat in FEATURES:
        drift = _one(plain if feat.calendar else values, feat, day, bar)
        if drift is not None:
            out.append(drift)
    return out


def testable(values: pd.DataFrame, day: pd.Timestamp) -> int:
    """How many features :func:`feature_drift` can test on ``day`` (the Bonferroni count)."""
    if values[values.date < day].date.nunique() < DRIFT_MIN_REFERENCE_DAYS:
        return 0
    today = values[values.date == day]
    plain = today[~today.event]
    return sum(bool((plain if f.calendar else today)[f.name].notna().any()) for f in FEATURES)


def _one(plain: pd.DataFrame, feat: Feature, day: pd.Timestamp, bar: float) -> FeatureDrift | None:
    v = _on_scale(plain[feat.name], feat.scale)
    frame = plain[["store_id", "date", "dow"]].assign(v=v).dropna(subset=["v"])
    ref = frame[frame.date < day]
    today = frame[frame.date == day]
    if today.empty or ref.date.nunique() < DRIFT_MIN_REFERENCE_DAYS:
        return None
    normal = ref.groupby(["store_id", "dow"]).v.median().rename("normal")
    overall = ref.groupby("store_id").v.median().rename("overall")
    frame = frame.join(normal, on=["store_id", "dow"]).join(overall, on="store_id")
    frame["normal"] = frame.normal.fillna(frame.overall)
    frame = frame.dropna(subset=["normal"])
    frame["resid"] = frame.v - frame.normal
    daily = frame.groupby("date").resid.median()
    null = daily[daily.index < day]
    if day not in daily.index or len(null) < DRIFT_MIN_REFERENCE_DAYS:
        return None
    center = float(null.median())
    scale = max(1.4826 * float((null - center).abs().median()), DRIFT_MIN_SCALE[feat.scale])
    shift = float(daily[day]) - center
    z = shift / scale
    cur = frame[frame.date == day]
    raw_ref = plain.loc[plain.date < day, feat.name].dropna().to_numpy(float)
    raw_day = plain.loc[plain.date == day, feat.name].dropna().to_numpy(float)
    enough = len(raw_day) >= 10 and len(raw_ref) >= 10
    ks = stats.ks_2samp(raw_day, raw_ref) if enough else None
    back = np.exp if feat.scale == "log" else (lambda x: x)
    return FeatureDrift(
        feature=feat.name,
        label=feat.label,
        stores=len(cur),
        value=float(back(cur.v.median())),
        normal=float(back(cur.normal.median())),
        shift=shift,
        z=z,
        psi=_psi(raw_ref, raw_day) if enough else None,
        ks=float(ks.statistic) if ks is not None else None,
        ks_p=float(ks.pvalue) if ks is not None else None,
        drifted=abs(z) > bar and abs(shift) >= DRIFT_MIN_EFFECT[feat.scale],
    )
