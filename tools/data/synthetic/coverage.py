"""Which store-days of a synthetic world exist, and which of them the data shows.

A store *operates* on a day when it has opened (``store_opening``) and the day is not one
of the ``closed_weekdays``: only then are deliveries due and drivers rostered. The data
*shows* an operating store-day unless one of the ``gaps`` lost it from the export.

The structural model still runs on the full (day, store) grid with the same random draws,
so degrading the data never changes what happens on the store-days that remain: ground
truth is the full world's counterfactual effect, summed over the store-days the data shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tools.data.synthetic.config import WorldConfig

BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Coverage:
    """The store-days a world has, drawn from its config (no randomness)."""

    closed: BoolArray  # (D,) a closed weekday: no store operates
    opening: IntArray  # (S,) day index from which each store exists
    operating: BoolArray  # (D, S) deliveries due and drivers rostered
    observed: BoolArray  # (D, S) operating and not lost in a gap: deliveries in the data

    @property
    def complete(self) -> bool:
        """True when the data shows every store-day (the default world)."""
        return bool(self.observed.all())


def coverage_of(config: WorldConfig) -> Coverage:
    """Compute which store-days operate and which the data shows."""
    index = {sid: i for i, sid in enumerate(config.store_ids)}
    closed = np.zeros(config.days, dtype=bool)
    if config.closed_weekdays:
        weekdays = np.array([config.day(i).weekday() for i in range(config.days)])
        closed = np.isin(weekdays, config.closed_weekdays)
    opening = np.zeros(config.stores, dtype=np.int64)
    for store, day in config.store_opening.items():
        opening[index[store]] = day
    operating = (np.arange(config.days)[:, None] >= opening[None, :]) & ~closed[:, None]
    observed = operating.copy()
    for gap in config.gaps:
        days = slice(gap.start_day, gap.start_day + gap.days)
        if gap.store is None:
            observed[days, :] = False
        else:
            observed[days, index[gap.store]] = False
    return Coverage(closed=closed, opening=opening, operating=operating, observed=observed)


def incident_problem(
    config: WorldConfig,
    coverage: Coverage,
    kind: str,
    days: range,
    members: IntArray,
    target: str,
) -> str | None:
    """Say why an incident cannot happen in this world's data, or None when it can.

    Args:
        config: the world.
        coverage: its store-days.
        kind: incident kind.
        days: the incident's day indexes (inside the world).
        members: indexes of the stores it targets (one store, or a region's stores).
        target: store or region id, for the message.
    """
    if kind == "carrier_outage" and config.carriers == "own_fleet":
        return (
            f"a carrier outage at {target} cannot happen: this world has no DSP or crowd "
            "deliveries (carriers: own_fleet)"
        )
    for d in days:
        when = config.day(d)
        if coverage.closed[d]:
            return (
                f"day {d} ({when}, a {_WEEKDAYS[when.weekday()]}) is a closed weekday "
                f"(closed_weekdays: {config.closed_weekdays}): no deliveries are due"
            )
        if not (coverage.opening[members] <= d).any():
            if len(members) == 1:
                opens = int(coverage.opening[members[0]])
                return f"{target} opens on day {opens} ({config.day(opens)}), after day {d}"
            return f"no store of {target} is open yet on day {d} ({when})"
    if not coverage.observed[days.start : days.stop, members].any():
        return (
            f"days {days.start}..{days.stop - 1} at {target} all fall in data gaps: "
            "the data cannot show it"
        )
    return None
