"""Shocks: injected incidents and natural disruptions, as the structural equations see them.

A shock adds to one structural channel (no-shows, rain, DSP lateness, unplanned volume,
dispatch delay, traffic) over a block of days at one store or a whole region. Injected
shocks come from incident entries; natural ones are drawn with the world (:mod:`.exogenous`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from tools.data.synthetic.config import IncidentSpec, ScmParams
from tools.data.synthetic.coverage import incident_problem

if TYPE_CHECKING:
    from tools.data.synthetic.exogenous import Exogenous

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# Shock channels: what a shock adds to (store-day grid unless noted).
CHANNELS = ("no_show", "precip", "outage", "surge", "dispatch", "traffic")
KIND_CHANNEL = {
    "driver_shortage": "no_show",
    "severe_weather": "precip",
    "carrier_outage": "outage",
    "volume_surge": "surge",
    "dispatch_delay": "dispatch",
    "traffic_disruption": "traffic",
}
REGION_CHANNELS = {"precip", "traffic"}


def kind_default_size(params: ScmParams, kind: str) -> float:
    """Shock size of an incident kind at magnitude 1.0, in its channel's unit."""
    return {
        "driver_shortage": params.shortage_no_show,
        "severe_weather": params.storm_precip_mm,
        "carrier_outage": params.outage_late,
        "volume_surge": params.surge_volume,
        "dispatch_delay": params.dispatch_delay_min,
        "traffic_disruption": params.traffic_jump,
    }[kind]


@dataclass
class Shock:
    """A disruption added to one channel over a block of days and stores (or regions)."""

    shock_id: str
    kind: str
    injected: bool
    magnitude: float
    first_day: int
    days: int
    store: int | None  # store index, or None for a regional shock
    region: int | None
    size: float | FloatArray  # scalar, or one value per day for natural rain
    # An *emergent* event is not applied by the structural equations: it labels a disruption
    # the everyday noise produced by itself (e.g. many no-shows at once). Its effect is known.
    emergent: bool = False
    effect: tuple[float, float, int] | None = None
    # An unlabelled shock still happens (the world keeps its rain on a closed Sunday) but
    # falls on days the data does not show, so it is not written to the ground truth.
    labelled: bool = True

    @property
    def channel(self) -> str:
        """Structural channel the shock acts on."""
        return KIND_CHANNEL[self.kind]


def make_shock(
    kind: str,
    day: int,
    days: int,
    store: int | None,
    region: int | None,
    size: float,
    params: ScmParams,
    *,
    injected: bool = False,
    shock_id: str = "",
) -> Shock:
    """Build a shock of ``size`` (its magnitude is the size against the kind's default)."""
    default = kind_default_size(params, kind)
    return Shock(
        shock_id=shock_id,
        kind=kind,
        injected=injected,
        magnitude=round(size / default, 3),
        first_day=day,
        days=days,
        store=store,
        region=region,
        size=size,
    )


def heavy_rain_events(precip: FloatArray, heavy: BoolArray, params: ScmParams) -> list[Shock]:
    """Group consecutive heavy-rain days of a region into one labelled natural event."""
    events: list[Shock] = []
    n_d, n_r = heavy.shape
    for r in range(n_r):
        d = 0
        while d < n_d:
            if not heavy[d, r]:
                d += 1
                continue
            end = d
            while end + 1 < n_d and heavy[end + 1, r]:
                end += 1
            sizes = precip[d : end + 1, r].astype(np.float64)
            events.append(
                Shock(
                    shock_id="",
                    kind="severe_weather",
                    injected=False,
                    magnitude=round(float(sizes.mean()) / params.storm_precip_mm, 3),
                    first_day=d,
                    days=end - d + 1,
                    store=None,
                    region=r,
                    size=sizes,
                )
            )
            d = end + 1
    return events


def natural_store_shocks(
    rng: np.random.Generator, params: ScmParams, n_d: int, n_s: int
) -> list[Shock]:
    """Rare one-day store disruptions: capacity crunches, demand spikes, picking problems."""
    out: list[Shock] = []
    specs = (
        ("driver_shortage", params.natural_crunch_prob, (0.22, 0.35)),
        ("volume_surge", params.natural_spike_prob, (0.35, 0.55)),
        ("dispatch_delay", params.natural_picking_prob, (22.0, 36.0)),
    )
    for kind, prob, (lo, hi) in specs:
        hit = rng.random((n_d, n_s)) < prob
        sizes = rng.uniform(lo, hi, (n_d, n_s))
        for d, s in zip(*np.nonzero(hit), strict=True):
            out.append(make_shock(kind, int(d), 1, int(s), None, float(sizes[d, s]), params))
    return out


def observed_parts(
    shock: Shock, observed: BoolArray, store_region: IntArray, params: ScmParams
) -> list[Shock]:
    """Split a natural shock into runs of days the data shows (labelled) and does not.

    A heavy rain over a weekend when stores close on Sundays is labelled on the Saturday
    only; the Sunday's rain still falls (the conditions feed shows it) but nothing in the
    data can reveal it, so it is kept as an unlabelled shock.

    Args:
        shock: a natural shock.
        observed: (D, S) store-days the data shows.
        store_region: (S,) region index of each store.
        params: model constants (for the magnitude of a rain event's parts).
    """
    rows = observed[shock.first_day : shock.first_day + shock.days]
    members = store_region == shock.region if shock.store is None else [shock.store]
    seen: BoolArray = np.asarray(rows[:, members].any(axis=1))
    if seen.all():
        return [shock]
    parts: list[Shock] = []
    start = 0
    for end in range(1, shock.days + 1):
        if end < shock.days and seen[end] == seen[start]:
            continue
        part = replace(shock, first_day=shock.first_day + start, days=end - start)
        part.labelled = bool(seen[start])
        if not np.isscalar(shock.size):
            sizes = np.asarray(shock.size, dtype=np.float64)[start:end]
            part.size = sizes
            part.magnitude = round(float(sizes.mean()) / params.storm_precip_mm, 3)
        parts.append(part)
        start = end
    return parts


def injected_shocks(exo: Exogenous, specs: list[IncidentSpec]) -> list[Shock]:
    """Turn incident entries into shocks, checking they fit the world and its data.

    Raises:
        ValueError: naming the entry when its store, region or days fall outside the world,
            or when the world's data cannot show it (a closed day, a store not yet open, a
            carrier outage in an own-fleet world, days all lost in gaps).
    """
    cfg = exo.config
    shocks: list[Shock] = []
    errors: list[str] = []
    for i, spec in enumerate(specs):
        first = spec.first_day(cfg.start_date)
        try:
            store, region = _target(exo, spec, first)
        except ValueError as exc:
            errors.append(f"incident #{i + 1} ({spec.kind}): {exc}")
            continue
        size = kind_default_size(exo.params, spec.kind) * spec.magnitude
        shock = make_shock(
            spec.kind,
            first,
            spec.days,
            store,
            region,
            size,
            exo.params,
            injected=True,
            shock_id=f"I{i + 1:03d}",
        )
        shock.magnitude = spec.magnitude
        shocks.append(shock)
    if errors:
        raise ValueError("incidents do not fit the world:\n  " + "\n  ".join(errors))
    return shocks


def _target(exo: Exogenous, spec: IncidentSpec, first: int) -> tuple[int | None, int | None]:
    """(store index, region index) an incident targets, one of them None.

    Raises:
        ValueError: saying why the incident does not fit the world or its data.
    """
    cfg = exo.config
    if first < 0 or first + spec.days > cfg.days:
        raise ValueError(
            f"days {first}..{first + spec.days - 1} fall outside the world "
            f"(days 0..{cfg.days - 1}, {cfg.start_date}..{cfg.day(cfg.days - 1)})"
        )
    store = region = None
    if spec.store is not None:
        store_index = {sid: i for i, sid in enumerate(cfg.store_ids)}
        if spec.store not in store_index:
            raise ValueError(
                f"unknown store {spec.store!r} (this world has "
                f"{cfg.store_ids[0]}..{cfg.store_ids[-1]})"
            )
        store = store_index[spec.store]
        members = np.array([store], dtype=np.int64)
    else:
        region_index = {rid: i for i, rid in enumerate(cfg.region_ids)}
        if spec.region not in region_index:
            raise ValueError(
                f"unknown region {spec.region!r} (this world has "
                f"{cfg.region_ids[0]}..{cfg.region_ids[-1]})"
            )
        region = region_index[spec.region]  # type: ignore[index]
        members = np.nonzero(exo.store_region == region)[0].astype(np.int64)
    days = range(first, first + spec.days)
    target = spec.store or spec.region or ""
    problem = incident_problem(cfg, exo.coverage, spec.kind, days, members, target)
    if problem is not None:
        raise ValueError(problem)
    return store, region


def shock_cells(exo: Exogenous, shock: Shock) -> BoolArray:
    """(D, S) mask of the store-days a shock touches."""
    mask = np.zeros((exo.n_days, exo.n_stores), dtype=bool)
    days = slice(shock.first_day, shock.first_day + shock.days)
    if shock.store is not None:
        mask[days, shock.store] = True
    else:
        mask[days, exo.store_region == shock.region] = True
    return mask
