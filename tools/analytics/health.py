"""Data health of one day: can the analyses of that day be trusted?

Everything is read from store-day aggregates (:func:`tools.analytics.cells.load_store_days`)
over a reference window before the day, plus the catalog of tables and columns, so the check
costs about what one anomaly scan's read does. Checks, each with its rule:

* **schema** (severe): a contract table or column the views read is gone;
* **volume** (severe): no deliveries at all on the day while the chain delivers on that
  weekday and the calendar names no chain-wide closure;
* **feed**: an optional feed (staffing, conditions) whose last date is before the day; severe
  beyond the age configured for it;
* **missing**: a feed reported by fewer store-days than usual (one-sided binomial test at
  :data:`MISSING_ALPHA` against the Laplace-smoothed reference share); a field missing on
  most deliveries (drift of the missing share);
* **constant**: a feature identical at every store that day, never so in the reference;
* **category**: a carrier never seen in the reference, or one seen every day gone; a store
  or region never seen before (info), or a store that delivers on every such weekday gone;
* **drift**: :mod:`tools.analytics.drift` (robust z against the empirical null).

Severity ``severe`` stops a run; ``warn`` makes the day's conclusions less trustworthy (the
plan says so and lowers its confidence); ``info`` is reported only.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field
from scipy import stats

from tools.analytics.cells import load_store_days
from tools.analytics.drift import (
    FEATURES,
    FeatureDrift,
    feature_drift,
    feature_values,
    testable,
    z_critical,
)
from tools.analytics.thresholds import FEED_STALE_WARN_DAYS, MISSING_ALPHA
from tools.data.backend import Backend
from tools.data.schema import CONTRACT_TABLES

Check = Literal["schema", "volume", "feed", "missing", "constant", "category", "drift"]
Severity = Literal["info", "warn", "severe"]

CARRIER_ORDERS = {"dsp": "dsp_orders", "crowd": "crowd_orders"}
"""Carriers and their store-day count column (own fleet: the rest)."""

FEEDS: dict[str, str] = {"staffing": "the staffing roster", "conditions": "the weather feed"}
"""Optional daily feeds, by table, with their name for people."""

_VIEW_TABLES = ("stores", "deliveries", "staffing", "conditions", "calendar")
"""Contract tables the views read (a column gone breaks every KPI)."""


class HealthFinding(BaseModel):
    """One thing wrong (or new) in the data on the checked day."""

    check: Check
    subject: str = Field(description="The table, column, feature, carrier or store concerned.")
    severity: Severity
    label: str = Field(description="What is wrong in words, without numbers (plan caveats).")
    message: str = Field(description="What is wrong with its figures, and what to do.")
    since: date | None = None
    statistic: float | None = None
    threshold: float | None = None


class DataHealth(BaseModel):
    """Data health of one day against its reference window."""

    day: date
    reference_start: date
    reference_days: int
    findings: list[HealthFinding]
    drift: list[FeatureDrift]
    not_assessed: list[str]

    @property
    def severe(self) -> list[HealthFinding]:
        """Findings that stop a run."""
        return [f for f in self.findings if f.severity == "severe"]

    @property
    def trusted(self) -> bool:
        """No finding worse than ``info``."""
        return all(f.severity == "info" for f in self.findings)


def schema_findings(backend: Backend) -> list[HealthFinding]:
    """Contract tables and columns missing from the database (severe: the views need them)."""
    have = {table: set(columns) for table, columns in backend.columns().items()}
    out = []
    for name in _VIEW_TABLES:
        gone = [c for c in CONTRACT_TABLES[name].column_names if c not in have.get(name, set())]
        if name in have and not gone:
            continue
        # an optional feed's table too: the views join it (empty when there is no feed)
        what = f"table {name}" if name not in have else f"{name}.{', '.join(gone)}"
        out.append(
            HealthFinding(
                check="schema",
                subject=name,
                severity="severe",
                label=f"{what} is missing from the database",
                message=f"{what} is missing from the database, so no KPI can be computed: "
                "re-load the data with `lastmile ingest csv` (or `olist`) in its default "
                "replace mode, which rebuilds every contract table (an optional feed's "
                "table may stay empty).",
            )
        )
    return out


def feed_findings(backend: Backend, day: date, max_age: dict[str, int]) -> list[HealthFinding]:
    """Find optional feeds that end before ``day`` (severe beyond their configured age)."""
    out = []
    for table, name in FEEDS.items():
        last = backend.query(f"SELECT max(date) AS last FROM {table} WHERE date <= ?", [day])
        if last.empty or pd.isna(last["last"].iloc[0]):
            continue  # no feed at all: the analyses already say what they could not assess
        last_day = pd.Timestamp(last["last"].iloc[0]).date()
        age = (day - last_day).days
        if age < FEED_STALE_WARN_DAYS:
            continue
        limit = max_age.get(table)
        severe = limit is not None and age > limit
        out.append(
            HealthFinding(
                check="feed",
                subject=table,
                severity="severe" if severe else "warn",
                label=f"{name} stopped after {last_day}",
                message=f"{name} ({table}) ends on {last_day}, {age} day(s) before {day}: what "
                "it carries is not assessed after that"
                + (
                    f"; that is beyond its configured age of {limit} day(s) "
                    "(LASTMILE_FEED_MAX_AGE_DAYS): fix the feed, or raise the limit"
                    if severe
                    else ""
                )
                + ".",
                since=last_day + timedelta(days=1),
                statistic=float(age),
                threshold=float(limit) if limit is not None else None,
            )
        )
    return out


def volume_finding(
    backend: Backend, frame: pd.DataFrame, day: date, start: date
) -> HealthFinding | None:
    """Flag a day without any delivery at a chain that delivers on that weekday (severe)."""
    ts = pd.Timestamp(day)
    if (frame.date == ts).any():
        return None
    same = [
        d for d in pd.date_range(start, ts - pd.Timedelta(days=1)) if d.dayofweek == ts.dayofweek
    ]
    open_days = frame.date[frame.date.isin(same)].nunique()
    if open_days == 0:
        return None  # the chain does not deliver on that weekday
    closed = backend.query(
        "SELECT count(*) AS n FROM calendar WHERE date = ? AND store_id IS NULL "
        "AND kind = 'holiday'",
        [day],
    )
    if int(closed["n"].sum()) > 0:
        return None
    return HealthFinding(
        check="volume",
        subject="deliveries",
        severity="severe",
        label=f"no deliveries at all on {day}",
        message=f"no deliveries at all on {day}, though the chain delivered on {open_days} of "
        f"the {len(same)} same weekdays before it and the calendar names no closure: the "
        "deliveries feed is probably incomplete. Load the day's deliveries, or add a "
        "chain-wide holiday to the calendar if the chain was closed.",
    )


def missing_findings(frame: pd.DataFrame, day: pd.Timestamp) -> list[HealthFinding]:
    """Find feeds reported by fewer of the day's store-days than the reference's share."""
    ref, cur = frame[frame.date < day], frame[frame.date == day]
    present = {
        "staffing": ("has_staffing", FEEDS["staffing"]),
        "conditions": ("conditions_w", FEEDS["conditions"]),
        "distance_km": ("distance_n", "the delivery distance"),
    }
    out = []
    for table, (col, name) in present.items():
        if ref.empty or cur.empty:
            continue
        k0, n0 = int((ref[col] > 0).sum()), len(ref)
        k, n = int((cur[col] > 0).sum()), len(cur)
        if k0 == 0:
            continue  # the feed was never there
        p0 = (k0 + 1) / (n0 + 2)
        p = float(stats.binomtest(k, n, p0, alternative="less").pvalue)
        if p >= MISSING_ALPHA:
            continue
        out.append(
            HealthFinding(
                check="missing",
                subject=table,
                severity="warn",
                label=f"{name} is missing for many stores",
                message=f"{name} covers {k} of {n} store-days on {day.date()}, against "
                f"{k0 / n0:.0%} of store-days in the reference (binomial p = {p:.1e})",
                statistic=p,
                threshold=MISSING_ALPHA,
            )
        )
    return out


def gone_findings(values: pd.DataFrame, day: pd.Timestamp) -> list[HealthFinding]:
    """Find features no store-day of the day has, though most reference store-days had them.

    A column emptied upstream (dispatch times all NULL) takes the features computed from it
    (hand-over, transit, dispatch delay) with it: flagged here, not silently untested.
    """
    ref, cur = values[values.date < day], values[values.date == day]
    out = []
    for feat in FEATURES:
        if cur.empty or ref.empty or cur[feat.name].notna().any():
            continue
        share = float(ref[feat.name].notna().mean())
        if share < 0.5:
            continue  # rarely there: its absence today says nothing
        out.append(
            HealthFinding(
                check="missing",
                subject=feat.name,
                severity="warn",
                label=f"{feat.label} is missing at every store",
                message=f"{feat.label} ({feat.name}) is missing at all {len(cur)} store-days "
                f"of {day.date()}, against {share:.0%} of reference store-days: a column it "
                "comes from was emptied upstream?",
            )
        )
    return out


def constant_findings(values: pd.DataFrame, day: pd.Timestamp) -> list[HealthFinding]:
    """Find features identical at every store that day (3 stores or more), never so before."""
    out = []
    for feat in FEATURES:
        col = values[[feat.name, "date"]].dropna()
        per_day = col.groupby("date")[feat.name].agg(["nunique", "size"])
        per_day = per_day[per_day["size"] >= 3]
        distinct = per_day["nunique"]
        if distinct.get(day) != 1 or (distinct[distinct.index < day] == 1).any():
            continue
        if len(per_day) < 2:
            continue
        value = float(col.loc[col.date == day, feat.name].iloc[0])
        stores = int(per_day["size"].get(day, 0))
        out.append(
            HealthFinding(
                check="constant",
                subject=feat.name,
                severity="warn",
                label=f"{feat.label} is the same at every store",
                message=f"{feat.label} ({feat.name}) is {value:g} at all "
                f"{stores} stores on {day.date()}, which never happened "
                "in the reference: a default value filled in upstream?",
            )
        )
    return out


def category_findings(frame: pd.DataFrame, day: pd.Timestamp) -> list[HealthFinding]:
    """Find carriers, stores and regions that appear or vanish on the day."""
    ref, cur = frame[frame.date < day], frame[frame.date == day]
    out: list[HealthFinding] = []
    if ref.empty or cur.empty:
        return out
    for carrier, col in CARRIER_ORDERS.items():
        daily = ref.groupby("date")[col].sum()
        today = float(cur[col].sum())
        if daily.sum() == 0 and today > 0:
            out.append(_category("carrier", carrier, "warn", "appears", day, today))
        elif (daily > 0).all() and today == 0:
            out.append(_category("carrier", carrier, "warn", "vanished", day, today))
    for level in ("store_id", "region"):
        for new in sorted(set(cur[level]) - set(ref[level])):
            out.append(_category(level, str(new), "info", "appears", day, None))
    same = ref[ref.date.dt.dayofweek == day.dayofweek]
    weeks = same.date.nunique()
    if weeks >= 4:
        every = same.groupby("store_id").date.nunique()
        events = set(cur.store_id[cur.promo | cur.holiday])
        for gone in sorted(set(every[every == weeks].index) - set(cur.store_id) - events):
            # a store's quiet day is for the scan to name (it does), not doubt on the data:
            # on Olist, sellers that ship every Thursday skip one most weeks
            out.append(_category("store_id", str(gone), "info", "vanished", day, None))
    return out


def _category(
    kind: str, name: str, severity: Severity, what: str, day: pd.Timestamp, n: float | None
) -> HealthFinding:
    noun = {"carrier": "carrier", "store_id": "store", "region": "region"}[kind]
    if what == "appears":
        label = f"{noun} {name} appears for the first time"
        detail = f" with {n:g} deliveries" if n else ""
        message = f"{noun} {name} appears on {day.date()}{detail}, never seen in the reference"
    else:
        label = f"{noun} {name} is gone"
        message = f"{noun} {name} has no deliveries on {day.date()}, though it had some on " + (
            "every reference day" if kind == "carrier" else "every same weekday of the reference"
        )
    return HealthFinding(
        check="category",
        subject=f"{noun}:{name}",
        severity=severity,
        label=label,
        message=message,
        since=day.date(),
    )


def drift_findings(drift: list[FeatureDrift], bar: float) -> list[HealthFinding]:
    """Return one finding per drifted feature."""
    return [
        HealthFinding(
            check="drift",
            subject=d.feature,
            severity="warn",
            label=f"{d.label} shifted sharply from its usual level",
            message=f"{d.label} ({d.feature}): typical store {d.value:.4g} against a normal of "
            f"{d.normal:.4g} (robust z {d.z:+.1f}, bar {bar:.2f}): a units change, a "
            "feed problem or a new regime",
            statistic=d.z,
            threshold=bar,
        )
        for d in drift
        if d.drifted
    ]


def assess(
    backend: Backend,
    day: date,
    *,
    lookback_days: int,
    feed_max_age: dict[str, int] | None = None,
    store_days: pd.DataFrame | None = None,
) -> DataHealth:
    """Check the data of ``day`` against the ``lookback_days`` before it.

    Args:
        backend: the data.
        day: the day checked (a service date).
        lookback_days: length of the reference window (days before ``day``).
        feed_max_age: days an optional feed (by table) may lag ``day`` before a run stops.
        store_days: :func:`load_store_days` rows covering the window (read when None; the
            monitor passes one read for many days).

    Returns:
        The findings, the per-feature drift and what could not be assessed.
    """
    start = day - timedelta(days=lookback_days)
    schema = schema_findings(backend)
    if schema:  # nothing below can be read
        return DataHealth(
            day=day,
            reference_start=start,
            reference_days=0,
            findings=schema,
            drift=[],
            not_assessed=[],
        )
    if store_days is None:
        store_days = load_store_days(backend, as_of=day, start=start)
    ts = pd.Timestamp(day)
    frame = store_days[(store_days.date >= pd.Timestamp(start)) & (store_days.date <= ts)]
    findings = feed_findings(backend, day, feed_max_age or {})
    ref_days = int(frame.date[frame.date < ts].nunique())
    if not (frame.date == ts).any():  # no deliveries that day: a closure, or a gap
        volume = volume_finding(backend, frame, day, start)
        return DataHealth(
            day=day,
            reference_start=start,
            reference_days=ref_days,
            findings=findings + ([volume] if volume else []),
            drift=[],
            not_assessed=["every check of the deliveries: none on the day"],
        )
    values = feature_values(frame)
    tests = testable(values, ts)
    drift = feature_drift(values, ts, tests) if tests else []
    stale = {f.subject for f in findings if f.check == "feed"}
    findings += [f for f in missing_findings(frame, ts) if f.subject not in stale]
    missing = {f.subject for f in findings if f.check == "missing"}
    findings += [
        f
        for f in gone_findings(values, ts)
        if not (f.subject == "avg_distance_km" and "distance_km" in missing)
    ]
    findings += constant_findings(values, ts)
    findings += category_findings(frame, ts)
    constant = {f.subject for f in findings if f.check == "constant"}
    findings += [f for f in drift_findings(drift, z_critical(tests)) if f.subject not in constant]
    not_assessed = []
    if not tests:
        not_assessed.append(f"drift: {ref_days} reference day(s), fewer than the test needs")
    if frame.store_id.nunique() < 3:
        not_assessed.append("constant columns: fewer than 3 stores")
    return DataHealth(
        day=day,
        reference_start=start,
        reference_days=ref_days,
        findings=findings,
        drift=drift,
        not_assessed=not_assessed,
    )


def worst_z(health: DataHealth) -> float:
    """Largest absolute drift z of the day (0 when nothing was tested)."""
    return max((abs(d.z) for d in health.drift), default=0.0)
