"""Tool ``scan_anomalies``: which stores, regions (or the whole chain) are off, and in which KPIs.

Each store, region and the chain is judged at the finest grain its volume allows (a day, else
a trailing window of several days: :mod:`tools.analytics.levels`), against seasonal baselines
that know the weekday and the promotion and holiday calendar, with a robust PyOD detector
(:mod:`tools.analytics.scan`). Leading indicators (no-shows against the roster, volume against
the plan, dispatch delay, carrier-specific lateness, weather, traffic) are watched beside the
late rate, so a shortage shows up the morning the roster is short. Everything is as of the
end of the scanned day: nothing known later is used. Once the day's outcomes are in, only
anomalies that cost late deliveries are reported. The result says at which level and grain
each part of the network was judged, and why.

Example:
    >>> from tools.core.context import ToolContext
    >>> ctx = ToolContext.for_duckdb("data/lastmile.duckdb")
    >>> result = scan_anomalies(ctx, ScanAnomaliesInput(day=date(2026, 3, 9)))
    >>> [(a.target, a.grain_days, a.severity, a.drivers) for a in result.anomalies]
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field

from tools.analytics.anomalies import Anomaly, KpiReading
from tools.analytics.baselines import ScanMode
from tools.analytics.cells import load_store_days
from tools.analytics.levels import LevelChoice
from tools.analytics.scan import ScanOutcome, scan_cells
from tools.analytics.scope import ScopeLevel, load_catalog, resolve_scope, resolve_window
from tools.analytics.thresholds import (
    ADVERSE_MIN_Z,
    CLOSED_WEEKDAY_SHARE,
    DEFAULT_THRESHOLD,
    DETECTABLE_EXCESS,
    EXTREME_Z,
    GRAINS,
    MIN_LATE_EXCESS,
    MIN_REFERENCE_DAYS,
    NO_SHOW_EXTREME_Z,
    Z_OUTCOME,
)
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.core.models import Fit

__all__ = [
    "Anomaly",
    "JudgedLevel",
    "KpiReading",
    "ScanAnomaliesInput",
    "ScanAnomaliesResult",
    "scan_anomalies",
]


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


class JudgedLevel(BaseModel):
    """How one level of the network was judged: entities per grain, and why."""

    level: Literal["store", "region", "chain"]
    grains: dict[int, int] = Field(description="Days per cell -> entities judged at that grain.")
    not_judged: int = Field(description="Entities too thin to judge alone, even over 4 weeks.")
    young: int = Field(
        default=0, description="Entities judged on fewer days of history than a normal needs."
    )
    notes: list[str] = Field(
        description="Why, for a few entities: the youngest judged, those judged coarsest."
    )


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
    judged: list[JudgedLevel]
    no_deliveries: list[str] = Field(
        default_factory=list,
        description="Stores in scope judged daily that usually deliver on the window's "
        "weekdays and had no deliveries in it (closed, a gap in the data).",
    )
    anomalies: list[Anomaly]
    truncated: bool


def _coarsest(by_entity: dict[str, LevelChoice], scope: set[str]) -> list[LevelChoice]:
    """Return the entities the notes explain.

    The two youngest judged, the two busiest judged over windows, the busiest thin one.
    """
    picked = [c for c in by_entity.values() if c.level != "store" or c.entity in scope]
    youngest = sorted((c for c in picked if c.young), key=lambda c: (c.history_days, c.entity))
    busiest = sorted(picked, key=lambda c: (-c.resolved_per_cell, c.entity))
    windowed = [
        c for c in busiest if c.grain_days is not None and c.grain_days > 1 and not c.young
    ][:2]
    thin = [c for c in busiest if c.grain_days is None][:1]
    return youngest[:2] + windowed + thin


def _judged(choices: dict[str, dict[str, LevelChoice]], scope: set[str]) -> list[JudgedLevel]:
    out = []
    for level, by_entity in choices.items():
        picked = [c for e, c in by_entity.items() if level != "store" or e in scope]
        if not picked:
            continue
        out.append(
            JudgedLevel(
                level=level,  # type: ignore[arg-type]
                grains=dict(sorted(Counter(c.grain_days for c in picked if c.grain_days).items())),
                not_judged=sum(c.grain_days is None for c in picked),
                young=sum(c.young for c in picked),
                notes=[c.reason() for c in _coarsest(by_entity, scope)],
            )
        )
    return out


def _detector(mode: ScanMode) -> str:
    return (
        f"pyod.MCD robust distance >= {DEFAULT_THRESHOLD:g} with a KPI "
        f">= {ADVERSE_MIN_Z:g} SD adverse, or a KPI >= {EXTREME_Z:g} SD adverse "
        f"(store no-shows: binomial z >= {NO_SHOW_EXTREME_Z:g})"
        + (
            f"; windows and the chain: late rate alone at overdispersed-binomial "
            f"z >= {Z_OUTCOME:g}; late rate at least {100 * MIN_LATE_EXCESS:g} pts above normal"
            if mode == "full"
            else ""
        )
    )


def scan_anomalies(ctx: ToolContext, args: ScanAnomaliesInput) -> ScanAnomaliesResult:
    """Scan a scope and window for anomalous stores, regions or the whole chain.

    Raises:
        ToolError: unknown scope ids, a window outside the data, too little history, or
            too few deliveries anywhere to judge a late rate.
    """
    catalog = load_catalog(ctx.backend)
    scope = resolve_scope(catalog, args.scope, args.ids)
    first, last = resolve_window(catalog, args.day, args.days)
    ref_start = max(catalog.first_day, first - timedelta(days=args.lookback_days))
    if (first - catalog.first_day).days < MIN_REFERENCE_DAYS and args.days < MIN_REFERENCE_DAYS:
        raise ToolError(
            f"too little history before {first}: the data starts {catalog.first_day}; "
            f"scan a day from {catalog.first_day + timedelta(days=MIN_REFERENCE_DAYS)} on",
            kind="not_enough_data",
        )
    # Fit on the whole regions of the scope (one store alone is too little to learn
    # "normal"), and on every store when the whole chain is scanned.
    fit_stores = None if scope.level == "all" else catalog.stores_in(scope.regions)
    store_days = load_store_days(
        ctx.backend, as_of=last, start=ref_start, stores=fit_stores, medians=False
    )
    if store_days.empty:
        raise ToolError(
            f"no deliveries in {scope.label()} from {ref_start} to {last}", kind="not_enough_data"
        )

    def fit() -> Fit[ScanOutcome]:
        outcome = scan_cells(
            store_days, window=(first, last), mode=args.mode, random_state=ctx.random_state
        )
        return Fit(outcome, len(store_days), outcome.validation)

    try:
        outcome = ctx.models.fitted(
            "detector",
            f"{'the chain' if fit_stores is None else f'{len(fit_stores)} stores'}, "
            f"{args.mode} scan of {(last - first).days + 1} day(s)",
            ctx.backend.data_version(),
            {
                "stores": tuple(fit_stores or ()),
                "window": (first, last),
                "reference_start": ref_start,
                "random_state": ctx.random_state,
            },
            fit,
        )
    except ValueError as exc:
        raise ToolError(str(exc)) from exc
    found = outcome.anomalies
    if scope.level != "all":
        keep = set(scope.stores)
        found = [
            a
            for a in found
            if set(a.stores) & keep or (a.level == "region" and a.target in scope.regions)
        ]
    truncated = len(found) > args.max_results
    found = found[: args.max_results]
    summary = (
        f"{len(found)} anomal{'y' if len(found) == 1 else 'ies'} in {scope.label()} "
        f"{first}..{last}"
        + (
            ": "
            + "; ".join(
                f"{a.target} {a.date}"
                + (f" ({a.grain_days} days)" if a.grain_days > 1 else "")
                + f" ({', '.join(a.drivers[:3])})"
                for a in found[:5]
            )
            if found
            else ""
        )
    )
    in_scope = set(scope.stores)
    in_window = store_days.date >= pd.Timestamp(first)
    scanned = int((in_window & store_days.store_id.isin(in_scope)).sum())
    daily = {s for s, c in outcome.choices["store"].items() if c.grain_days == 1}
    silent = _silent(store_days, (first, last), daily, in_scope)
    judged = _judged(outcome.choices, in_scope)
    numbers = _numbers(found)
    numbers["detectable_excess"] = DETECTABLE_EXCESS
    numbers["coarsest_grain_days"] = GRAINS[-1]
    numbers["min_reference_days"] = MIN_REFERENCE_DAYS
    numbers["no_deliveries"] = len(silent)
    for level in judged:
        for i, choice in enumerate(_coarsest(outcome.choices[level.level], in_scope), start=1):
            prefix = f"judged.{level.level}{i}"
            numbers[f"{prefix}.grain_days"] = choice.grain_days or 0
            numbers[f"{prefix}.resolved_per_cell"] = choice.resolved_per_cell
            numbers[f"{prefix}.required"] = choice.required
            numbers[f"{prefix}.normal_late_rate"] = choice.normal_late_rate
            if choice.history_days is not None:
                numbers[f"{prefix}.history_days"] = choice.history_days
    evidence = ctx.evidence.register(
        "scan_anomalies", args.model_dump(mode="json"), numbers, summary
    )
    return ScanAnomaliesResult(
        evidence_id=evidence.id,
        scope=scope.label(),
        window=(first, last),
        reference=(ref_start, last),
        mode=args.mode,
        detector=_detector(args.mode),
        threshold=DEFAULT_THRESHOLD,
        store_days_scanned=scanned,
        judged=judged,
        no_deliveries=silent,
        anomalies=found,
        truncated=truncated,
    )


def _silent(
    store_days: pd.DataFrame, window: tuple[date, date], daily: set[str], scope: set[str]
) -> list[str]:
    """Return the stores of ``scope`` judged daily that delivered nothing in ``window``.

    Only stores that usually deliver on the window's weekdays (in at least
    :data:`CLOSED_WEEKDAY_SHARE` of the weeks since their first delivery) count: a store that
    delivers every day and has nothing is news (closed, a gap in the feed); a store's closed
    weekday or a seller that sells twice a month is not.
    """
    first, last = pd.Timestamp(window[0]), pd.Timestamp(window[1])
    busy = store_days[(store_days.orders > 0) & store_days.store_id.isin(daily & scope)]
    active = set(busy.loc[busy.date >= first, "store_id"])
    weekdays = set(pd.date_range(first, last).dayofweek)
    out = []
    for store, rows in busy[busy.date < first].groupby("store_id"):
        if store in active:
            continue
        calendar = pd.date_range(rows.date.min(), first - pd.Timedelta(days=1))
        weeks = calendar.dayofweek.value_counts()
        opened = rows.date.dt.dayofweek.value_counts()
        if any(opened.get(d, 0) >= CLOSED_WEEKDAY_SHARE * weeks.get(d, 0) for d in weekdays):
            out.append(str(store))
    return sorted(out)


def _numbers(found: list[Anomaly]) -> dict[str, float]:
    numbers: dict[str, float] = {"anomalies": len(found)}
    for i, a in enumerate(found, start=1):
        numbers[f"a{i}.score"] = a.score
        numbers[f"a{i}.stores"] = len(a.stores)
        numbers[f"a{i}.grain_days"] = a.grain_days
        numbers[f"a{i}.resolved"] = a.resolved
        if a.late_excess is not None:
            numbers[f"a{i}.late_excess"] = a.late_excess
        for k, reading in a.kpis.items():
            for part in ("value", "expected", "z"):
                v = getattr(reading, part)
                if v is not None:
                    numbers[f"a{i}.{k}.{part}"] = v
    return numbers
