"""At which level and grain can a late rate be judged? A standard-error rule, not an order count.

A cell (a store, a region or the chain, over a day or a trailing window of days) is judged
only when the binomial standard error of its late rate is small enough that a
:data:`DETECTABLE_EXCESS` rise stands :data:`Z_DETECT` standard errors above normal. The
error is taken halfway between the normal rate ``p0`` and the risen one, so an entity that is
almost never late (``p0`` near 0, where the error at ``p0`` alone would vanish) still needs
enough deliveries for a rise to mean something:

    sqrt(p (1 - p) / n) <= delta / z,  p = p0 + delta / 2,  i.e.  n >= p (1 - p) (z / delta)^2.

Each entity gets the finest grain of :data:`GRAINS` whose typical cell (the median over the
reference days) is that large; an entity too thin even over four weeks is not judged alone
(it still counts in its region and the chain). At 300 orders a store-day and an 8 % late
rate a store is judged daily (it needs 66); the Olist chain (about 50 deliveries due a
day, 5-8 % late) over three days, its busiest state over three days to a week, the smaller
states over two to four weeks, and its sellers never alone.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from tools.analytics.cells import CHAIN, Level, entity_of
from tools.analytics.thresholds import DETECTABLE_EXCESS, GRAINS, MIN_REFERENCE_DAYS, Z_DETECT


class LevelChoice(BaseModel):
    """The grain one entity is judged at, and why."""

    level: Literal["store", "region", "chain"]
    entity: str
    grain_days: int | None = Field(description="Days per cell; None: too thin to judge alone.")
    resolved_per_cell: float = Field(description="Typical resolved deliveries per cell.")
    required: float = Field(description="Resolved deliveries a cell needs (the rule).")
    normal_late_rate: float = Field(description="Late rate over the reference period.")
    history_days: int | None = Field(
        default=None,
        description="Days from its first delivery to the analysed ones, when that first "
        "delivery falls inside the loaded history (a new store); None: it was already there.",
    )

    @property
    def young(self) -> bool:
        """Judged, but on fewer days of history than a baseline needs (a new store)."""
        return (
            self.grain_days is not None
            and self.history_days is not None
            and self.history_days < MIN_REFERENCE_DAYS
        )

    def reason(self) -> str:
        """One sentence saying why this grain, in a manager's words."""
        name = "all stores" if self.entity == CHAIN else self.entity
        if self.young:
            days = self.history_days
            span = "day by day" if self.grain_days == 1 else f"over {self.grain_days} days"
            return (
                f"{name} has only {days} day{'s' * (days != 1)} of history before the day, "
                f"where a normal needs {MIN_REFERENCE_DAYS} (two of every weekday): it is judged "
                f"{span} against those days, so only a large problem shows"
            )
        need = (
            f"{self.required:,.0f} are needed to see a {100 * DETECTABLE_EXCESS:.0f}-point rise "
            f"over its {100 * self.normal_late_rate:.1f}% normal"
        )
        if self.grain_days is None:
            return (
                f"{name} is too small to judge alone: about {self.resolved_per_cell:,.0f} "
                f"deliveries with an outcome in {GRAINS[-1]} days, where {need}"
            )
        span = "a day" if self.grain_days == 1 else f"{self.grain_days} days"
        longer = ", and over the week for problems that last" if 1 < self.grain_days < 7 else ""
        return (
            f"{name} judged over {span}{longer}: about {self.resolved_per_cell:,.0f} deliveries "
            f"with an outcome (delivered, failed or overdue) per {span}, where {need}"
        )


def required_volume(p0: float, delta: float = DETECTABLE_EXCESS) -> float:
    """Return the resolved deliveries a cell needs for a ``delta`` rise to be Z_DETECT SEs.

    Args:
        p0: the normal late rate (0..1).
        delta: the rise to see (late-rate points as a fraction).
    """
    p = min(max(p0, 0.0), 1.0 - delta) + delta / 2
    return p * (1 - p) * (Z_DETECT / delta) ** 2


def choose_grains(
    store_days: pd.DataFrame, level: Level, *, reference_end: date
) -> dict[str, LevelChoice]:
    """Choose the finest judgeable grain of every entity of ``level``.

    Args:
        store_days: rows of :func:`tools.analytics.cells.load_store_days` (history and the
            analysed days).
        level: ``store``, ``region`` or ``chain``.
        reference_end: last day of the reference period (the day before the analysed ones).

    Returns:
        entity -> its :class:`LevelChoice`.
    """
    ref = store_days[store_days.date <= pd.Timestamp(reference_end)]
    if ref.empty:
        ref = store_days
    entity = entity_of(ref, level)
    totals = ref.groupby(entity)[["late", "resolved"]].sum()
    p0 = (totals.late + 0.5) / (totals.resolved + 1.0)  # Jeffreys: never exactly 0
    # entities x calendar days of resolved deliveries (closed days and gaps are 0)
    matrix = (
        ref.assign(entity=entity)
        .pivot_table(index="entity", columns="date", values="resolved", aggfunc="sum")
        .reindex(columns=pd.date_range(ref.date.min(), ref.date.max(), freq="D"))
        .fillna(0.0)
    )
    values = matrix.to_numpy(dtype=float)
    cumulative = np.concatenate([np.zeros((len(values), 1)), values.cumsum(axis=1)], axis=1)
    days = values.shape[1]
    # an entity exists from its first day with deliveries (a store opened last week): the
    # days before it are not quiet cells
    opened = np.argmax(values > 0, axis=1)
    typical: dict[int, np.ndarray] = {}
    for grain in GRAINS:
        if days >= grain:  # the typical full cell: median of the complete windows
            sums = cumulative[:, grain:] - cumulative[:, :-grain]
            starts = np.arange(sums.shape[1])[None, :]
            sums = np.where(starts >= opened[:, None], sums, np.nan)
            whole: np.ndarray = np.asarray(np.isfinite(sums).any(axis=1))
            since = cumulative[:, -1] - cumulative[np.arange(len(values)), opened]
            typical[grain] = np.where(
                whole, np.nanmedian(np.where(whole[:, None], sums, 0.0), axis=1), since
            )
        else:  # shorter history than the window: what exists
            typical[grain] = cumulative[:, -1]
    out: dict[str, LevelChoice] = {}
    for i, name in enumerate(matrix.index.astype(str)):
        need = required_volume(float(p0[name]))
        chosen = next((g for g in GRAINS if typical[g][i] >= need), None)
        volume = typical[chosen if chosen is not None else GRAINS[-1]][i]
        out[name] = LevelChoice(
            level=level,
            entity=name,
            grain_days=chosen,
            resolved_per_cell=round(float(volume), 1),
            required=round(need, 1),
            normal_late_rate=round(float(p0[name]), 4),
            history_days=int(days - opened[i]) if opened[i] > 0 else None,
        )
    return out
