"""Seeded incident sets for evaluating the tools on synthetic worlds.

* :func:`mixed_incidents`: every incident kind, several times, on random days, stores and
  regions (they may overlap, as real disruptions do).
* :func:`confounded_incidents`: cases where the most *correlated* factor is not the cause:
  shortages and unplanned surges on promotion days and on rainy days (rain lifts no-shows and
  lateness together), and moderate storms (which raise no-shows too).
"""

from __future__ import annotations

import random

from tools.data.schema import INCIDENT_KINDS
from tools.data.synthetic import IncidentSpec, WorldConfig
from tools.data.synthetic.scm import draw_exogenous


def mixed_incidents(
    config: WorldConfig, *, magnitude: float = 1.0, per_kind: int = 3, first_day: int = 30
) -> list[IncidentSpec]:
    """``per_kind`` incidents of every kind at ``magnitude`` (seeded by the world's seed)."""
    rng = random.Random(config.seed * 7919 + 13)
    regions = config.region_ids
    specs: list[IncidentSpec] = []
    for kind in INCIDENT_KINDS:
        for j in range(per_kind):
            day = rng.randrange(first_day, config.days - 3)
            regional = (
                kind in ("severe_weather", "traffic_disruption")
                or (kind == "carrier_outage" and j % 2 == 0)
                or (kind == "volume_surge" and j == 2)
            )
            if regional:
                length = rng.choice([1, 1, 2]) if kind != "volume_surge" else 1
                specs.append(
                    IncidentSpec(
                        kind=kind,
                        region=rng.choice(regions),
                        start_day=day,
                        days=length,
                        magnitude=magnitude,
                    )
                )
            else:
                specs.append(
                    IncidentSpec(
                        kind=kind,
                        store=rng.choice(config.store_ids),
                        start_day=day,
                        magnitude=magnitude,
                    )
                )
    return specs


def confounded_incidents(config: WorldConfig, *, first_day: int = 30) -> list[IncidentSpec]:
    """Incidents whose most correlated factor is not their cause (see the module docstring)."""
    exo = draw_exogenous(config)
    rng = random.Random(config.seed * 104729 + 7)
    promo_days = [d for d in range(first_day, config.days) if exo.chain_promo[d]]
    rainy = [
        (d, r)
        for d in range(first_day, config.days)
        for r in range(config.n_regions)
        if 4.0 <= exo.precip_base[d, r] < 10.0
    ]
    specs: list[IncidentSpec] = []
    used: set[tuple[int, int]] = set()

    def add(kind: str, store: int, day: int) -> None:
        if (store, day) not in used:
            used.add((store, day))
            specs.append(IncidentSpec(kind=kind, store=config.store_ids[store], start_day=day))  # type: ignore[arg-type]

    for kind in ("driver_shortage", "volume_surge"):
        for day in rng.sample(promo_days, min(3, len(promo_days))):
            add(kind, rng.randrange(config.stores), day)
    for kind in ("driver_shortage", "driver_shortage", "volume_surge"):
        for day, region in rng.sample(rainy, min(2, len(rainy))):
            members = [s for s in range(config.stores) if exo.store_region[s] == region]
            add(kind, rng.choice(members), day)
    for _ in range(3):
        specs.append(
            IncidentSpec(
                kind="severe_weather",
                region=rng.choice(config.region_ids),
                start_day=rng.randrange(first_day, config.days),
                magnitude=0.6,
            )
        )
    return specs
