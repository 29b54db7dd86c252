"""Find anomalous cells: stores, regions and the chain, each at the grain its volume allows.

Each entity is judged at the finest grain of :mod:`tools.analytics.levels` (a day when it has
the volume, else a trailing window of several days). Cell KPIs (outcomes and leading
indicators) are compared with seasonal baselines and scored by the robust PyOD detector of
:mod:`tools.analytics.detect`; cells of several days, and the whole chain, are also judged on
their late rate alone with an overdispersed binomial test (:data:`Z_OUTCOME`), since they
carry few leading indicators. Once a day's outcomes are in, only anomalies that cost late
deliveries are kept. Several stores of a region off together are one regional anomaly; the
chain is scanned only when part of its volume is too thin to judge region by region, and a
chain anomaly stands for its day only when no single region explains it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import cast

import numpy as np
import pandas as pd
from scipy import stats

from tools.analytics.anomalies import Anomaly, group
from tools.analytics.baselines import (
    KPIS,
    ScanMode,
    kpi_residuals,
    kpis_for,
    late_rate_z,
    region_residuals,
)
from tools.analytics.cells import CHAIN, Level, aggregate
from tools.analytics.detect import Direction, assemble, detect
from tools.analytics.levels import LevelChoice, choose_grains, required_volume
from tools.analytics.thresholds import (
    DEFAULT_THRESHOLD,
    EXTREME_Z,
    GRAINS,
    MIN_LATE_EXCESS,
    MIN_REFERENCE_CELLS,
    NO_SHOW_EXTREME_Z,
    Z_OUTCOME,
)
from tools.core.errors import InsufficientDataError


@dataclass
class ScanOutcome:
    """Anomalies with the level and grain each entity was judged at."""

    anomalies: list[Anomaly]
    choices: dict[str, dict[str, LevelChoice]]
    kpis: list[str] = field(default_factory=list)
    validation: dict[str, float] = field(default_factory=dict)
    """The detector's figures (:func:`score_summary`): cells scored, alarm rates and score
    quantiles of the reference cells and of the scanned window, and how far apart the two
    score distributions are (two-sample KS)."""


def scan_cells(
    store_days: pd.DataFrame,
    *,
    window: tuple[date, date],
    mode: ScanMode = "full",
    threshold: float = DEFAULT_THRESHOLD,
    random_state: int = 0,
) -> ScanOutcome:
    """Find anomalous cells ending in ``window`` (pure: no I/O).

    Args:
        store_days: rows of :func:`tools.analytics.cells.load_store_days` covering the
            window and the history that defines normal (all rows are the reference; the
            estimators are robust to the few anomalous ones).
        window: first and last day to report.
        mode: ``full`` or ``morning`` (only KPIs known before deliveries; day cells only).
        threshold: detector distance threshold.
        random_state: detector seed.

    Returns:
        The anomalies, highest score first, and every entity's level choice.

    Raises:
        ValueError: when no entity has the volume to be judged, or the data carries none of
            the watched KPIs.
    """
    reference_end = window[0] - timedelta(days=1)
    choices: dict[str, dict[str, LevelChoice]] = {
        level: choose_grains(store_days, level, reference_end=reference_end)
        for level in ("store", "region", "chain")
    }
    regions_of = store_days.groupby("region").store_id.nunique()
    # A single-store region is that store: judge it once, at store level.
    choices["region"] = {r: c for r, c in choices["region"].items() if regions_of[r] > 1}
    chain = choices["chain"][CHAIN]
    # The chain is judged only for what its regions cannot show: some region (or the store
    # a one-store region is) too thin to judge at the chain's grain.
    lone = store_days[store_days.region.isin(regions_of[regions_of == 1].index)]
    parts = list(choices["region"].values()) + [
        choices["store"].get(s) for s in lone.store_id.unique()
    ]
    thin = [
        c
        for c in parts
        if c is None  # no history at all before the window
        or c.grain_days is None
        or chain.grain_days is None
        or c.grain_days > chain.grain_days
    ]
    if len(regions_of) < 2 or not thin or chain.grain_days is None:
        choices_scanned = {k: v for k, v in choices.items() if k != "chain"}
    else:
        choices_scanned = choices
    rows: dict[tuple[str, int], pd.DataFrame] = {}
    scored: list[pd.DataFrame] = []
    kpis_seen: set[str] = set()
    for level, by_entity in choices_scanned.items():
        grains = {e: scan_grains(c.grain_days) for e, c in by_entity.items()}
        for grain in sorted({g for gs in grains.values() for g in gs}):
            if mode == "morning" and grain > 1:
                continue  # a window needs the outcomes of its days
            members = [e for e, gs in grains.items() if grain in gs]
            panel = _panel(
                store_days,
                cast(Level, level),
                grain,
                members,
                by_entity,
                mode,
                random_state,
                reference_end=_reference_end(window, grain, store_days),
            )
            if panel is None:
                continue
            panel_rows, kpis = panel
            kpis_seen.update(kpis)
            reference_end = _reference_end(window, grain, store_days)
            scored.append(
                pd.DataFrame(
                    {
                        "score": panel_rows.score.to_numpy(),
                        "flagged": panel_rows.flagged.to_numpy(),
                        "reference": (panel_rows.date <= pd.Timestamp(reference_end)).to_numpy(),
                        "window": panel_rows.date.between(
                            pd.Timestamp(window[0]), pd.Timestamp(window[1])
                        ).to_numpy(),
                    }
                )
            )
            rows[(level, grain)] = panel_rows[
                panel_rows.date.between(pd.Timestamp(window[0]), pd.Timestamp(window[1]))
            ]
    if not rows:
        raise InsufficientDataError(_nothing_judged(choices, window))
    anomalies = group(rows, store_days, sorted(kpis_seen), choices)
    return ScanOutcome(
        anomalies=anomalies,
        choices=choices,
        kpis=sorted(kpis_seen),
        validation=score_summary(pd.concat(scored, ignore_index=True)),
    )


def score_summary(scored: pd.DataFrame) -> dict[str, float]:
    """Summarise the detector's scores: reference cells against the scanned window.

    Args:
        scored: one row per scored cell of every panel: ``score`` (robust distance),
            ``flagged``, ``reference`` and ``window`` (booleans).

    Returns:
        ``reference_cells``, ``window_cells``; per part ``*_alarm_rate`` (share flagged) and
        ``*_score_p50/p90/p99``; ``score_ks`` and ``score_ks_p``: the two-sample
        Kolmogorov-Smirnov statistic between the window's and the reference's scores
        (scipy). The reference cells are the ones the detector was fitted on, so their
        distances run smaller than out-of-sample ones: the figures compare versions and
        days, they are not a test of the detector.
    """
    out: dict[str, float] = {}
    parts = {"reference": scored[scored.reference], "window": scored[scored.window]}
    for name, part in parts.items():
        out[f"{name}_cells"] = float(len(part))
        if part.empty:
            continue
        out[f"{name}_alarm_rate"] = float(part.flagged.mean())
        for q in (50, 90, 99):
            out[f"{name}_score_p{q}"] = float(np.percentile(part.score, q))
    ref, win = parts["reference"].score, parts["window"].score
    if len(ref) and len(win):
        test = stats.ks_2samp(win.to_numpy(), ref.to_numpy())
        out["score_ks"], out["score_ks_p"] = float(test.statistic), float(test.pvalue)
    return out


def _nothing_judged(choices: dict[str, dict[str, LevelChoice]], window: tuple[date, date]) -> str:
    """Say why no cell could be judged: too thin everywhere, or too little history yet."""
    every = [c for level in choices.values() for c in level.values()]
    busiest = max(every, key=lambda c: c.resolved_per_cell)
    judgeable = [c for c in every if c.grain_days is not None]
    if not judgeable:
        return (
            "nothing in this scope has enough deliveries to judge its late rate even over "
            f"{GRAINS[-1]} days ({busiest.reason()}); a wider scope has more"
        )
    finest = min(judgeable, key=lambda c: (c.grain_days, -c.resolved_per_cell))
    return (
        f"too little history before {window[0]} to know what is normal: {finest.reason()}, "
        f"but fewer than {MIN_REFERENCE_CELLS} such cells end before the day; a later day "
        "has more"
    )


def _reference_end(window: tuple[date, date], grain: int, store_days: pd.DataFrame) -> date:
    """Last day of the cells that define normal.

    Baselines (medians) and the detector (MCD on the central 97 % of cells) are robust: a
    scanned day among eight weeks of cells barely moves them, and the detector's threshold
    was calibrated with it in (``make quality``). Cells of several days are different: a
    3-day problem fills three overlapping cells of each window, so a short scan over windows
    (a triage, "last week") learns normal only from the cells that end before it. A longer,
    retrospective scan lets its own days define normal, which a baseline fitted on the few
    weeks before it would do worse.
    """
    if (window[1] - window[0]).days < 7 and grain > 1:
        return window[0] - timedelta(days=grain)
    return max(window[1], pd.Timestamp(store_days.date.max()).date())


def scan_grains(finest: int | None) -> list[int]:
    """Grains an entity is scanned at: its finest judgeable one, and coarser ones up to a week.

    A problem that lasts several days at a moderate level is invisible in short cells of a
    thin entity and plain over the week (Olist, May 2017: the chain's 3-day cells were 2.5
    SEs up, its week 4.2). Entities judged daily are not scanned over windows: their
    leading indicators and daily cells already see such problems.
    """
    if finest is None:
        return []
    if finest == 1:
        return [1]
    return [g for g in GRAINS if finest <= g <= max(finest, 7)]


def _panel(
    store_days: pd.DataFrame,
    level: Level,
    grain: int,
    members: list[str],
    by_entity: dict[str, LevelChoice],
    mode: ScanMode,
    random_state: int,
    *,
    reference_end: date,
) -> tuple[pd.DataFrame, list[str]] | None:
    """Detect anomalous cells of one level and grain; return (rows, kpis) or None.

    Normal is learned from the cells that end by ``reference_end``: none of them shares a
    day with the scanned cells, so a problem lasting several days does not raise its own
    baseline.
    """
    cells = aggregate(store_days, level, grain)
    cells = cells[cells.entity.isin(members)].reset_index(drop=True)
    # Cells too thin to judge (a closed day, a quiet window) are left out, as the rule says.
    need = cells.entity.map({e: required_volume(c.normal_late_rate) for e, c in by_entity.items()})
    cells = cells[cells.resolved >= need].reset_index(drop=True)
    if cells.empty:
        return None
    reference = cells.date <= pd.Timestamp(reference_end)
    kpis = kpis_for(mode, cells[reference])
    if not kpis:
        return None
    if level == "store":
        expected, z = kpi_residuals(cells, "entity", kpis, reference)
    else:
        expected, z = region_residuals(cells, kpis, "entity", reference)
    outcome_rule = mode == "full" and "late_rate" in kpis and (grain > 1 or level == "chain")
    if outcome_rule:
        z["late_rate"] = late_rate_z(cells, expected["late_rate"], "entity", reference)
    directions: dict[str, Direction] = {k: KPIS[k].direction for k in kpis}
    leading = [k for k in kpis if KPIS[k].role == "leading"]
    # A late rate far beyond what the day's leading KPIs explain flags a cell too: where no
    # feed shows why (no staffing rows, no weather), lateness is all the data has, and a
    # 20-point jump at a store must not wait for a distance calibrated on every feed.
    outcomes = ["late_rate"] if "late_rate" in kpis and not outcome_rule else []
    try:
        flags = detect(
            z,
            directions=directions,
            reference=reference,
            extreme_z={"no_show_rate": NO_SHOW_EXTREME_Z} if level == "store" else EXTREME_Z,
            extreme_kpis=leading,
            outcome_kpis=outcomes,
            random_state=random_state,
        )
    except ValueError:  # too few cells to fit the detector (short history): no verdict
        flags = pd.DataFrame(
            {
                "score": 0.0,
                "adverse_z": z.get("late_rate", pd.Series(0.0, index=z.index)).fillna(0.0),
                "flagged": False,
                "drivers": [[] for _ in range(len(z))],
            },
            index=z.index,
        )
    if outcome_rule:
        alone = z["late_rate"] >= Z_OUTCOME
        flags["flagged"] = flags.flagged | alone
        flags["drivers"] = [
            d if "late_rate" in d or not hit else ["late_rate", *d]
            for d, hit in zip(flags.drivers, alone, strict=True)
        ]
        flags["adverse_z"] = flags.adverse_z.where(~alone, z["late_rate"])
    out = assemble(cells, "entity", "date", kpis, expected, z, flags)
    if mode == "full":
        out["flagged"] &= _material(out)
    extra = ["level", "grain", "region", "orders", "late", "resolved", "delivered", "failed"]
    return pd.concat([out, cells[extra]], axis=1), kpis


def _material(rows: pd.DataFrame) -> pd.Series:
    """Rows whose late rate is at least MIN_LATE_EXCESS above normal (or unknown)."""
    if "late_rate" not in rows or "late_rate__expected" not in rows:
        return pd.Series(True, index=rows.index)
    excess = rows["late_rate"] - rows["late_rate__expected"]
    return (excess >= MIN_LATE_EXCESS) | excess.isna()
