"""Ground truth of a synthetic world: labelled events and their counterfactual effects.

Each shock's effect is the difference between the world as simulated and the same world
without that shock (noise and every other shock fixed). Effects are summed over the
store-days the data shows (:mod:`.coverage`), so a degraded world's ground truth is what
its data can reveal: the full world's effect on the days and stores that exist.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tools.data.synthetic.scm import Exogenous, StoreDays, simulate
from tools.data.synthetic.shocks import Shock, shock_cells


def emergent_crunches(exo: Exogenous, shocks: list[Shock], actual: StoreDays) -> list[Shock]:
    """Label store-days where everyday no-shows alone cost as much as an incident would.

    Small rosters make clusters of absences common enough to matter: a store of ten drivers
    missing three is a genuine natural disruption. The counterfactual keeps each store-day's
    absences at (or below) their expected number; where that lowers the expected late rate by
    at least ``natural_min_effect`` and no shortage shock explains the day, the day is
    labelled as a natural driver shortage (only on store-days the data shows).
    """
    calm = simulate(replace(exo, z_absent=np.minimum(exo.z_absent, 0.0)), shocks)
    rise = actual.p_store - calm.p_store
    covered = np.zeros_like(rise, dtype=bool)
    for shock in shocks:
        if shock.channel == "no_show":
            covered |= shock_cells(exo, shock)
    found = (rise >= exo.params.natural_min_effect) & ~covered & exo.coverage.observed
    out = []
    for d, s in zip(*np.nonzero(found), strict=True):
        missing = float((calm.present[d, s] - actual.present[d, s]) / actual.scheduled[d, s])
        excess = float(actual.expected_late()[d, s] - calm.expected_late()[d, s])
        out.append(
            Shock(
                shock_id="",
                kind="driver_shortage",
                injected=False,
                magnitude=round(missing / exo.params.shortage_no_show, 3),
                first_day=int(d),
                days=1,
                store=int(s),
                region=None,
                size=missing,
                emergent=True,
                effect=(float(rise[d, s]), excess, 1),
            )
        )
    return out


def number_natural(shocks: list[Shock]) -> None:
    """Give labelled natural events readable ids N001, N002, ... in order of day."""
    natural = [s for s in shocks if not s.injected and s.labelled]

    def key(s: Shock) -> tuple[int, str, int, int]:
        return (
            s.first_day,
            s.kind,
            -1 if s.store is None else s.store,
            -1 if s.region is None else s.region,
        )

    for i, shock in enumerate(sorted(natural, key=key)):
        shock.shock_id = f"N{i + 1:03d}"


def effect_of(
    exo: Exogenous, shocks: list[Shock], shock: Shock, actual: StoreDays
) -> tuple[float, float, int]:
    """Counterfactual effect of one shock: (mean late-rate rise, extra late deliveries, cells).

    The same world is simulated without ``shock``; everything else (noise, other shocks)
    stays fixed, so the difference is the shock's causal effect. Only the store-days the
    data shows count (a region's store that has not opened yet is not affected).
    """
    if shock.effect is not None:
        return shock.effect
    without = simulate(exo, [s for s in shocks if s is not shock])
    cells = shock_cells(exo, shock) & exo.coverage.observed
    rise = float((actual.p_store - without.p_store)[cells].mean())
    excess = float((actual.expected_late() - without.expected_late())[cells].sum())
    return rise, excess, int(cells.sum())
