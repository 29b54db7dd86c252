"""The structural causal model of a synthetic last-mile world, at store-day grain.

The world is split into *exogenous* draws (store attributes, calendar, weather, noise terms;
:mod:`.exogenous`) and *shocks* (injected incidents and rare natural disruptions;
:mod:`.shocks`). :func:`simulate` applies the
structural equations to both and returns every endogenous store-day quantity, including the
expected late probability per carrier. Because the noise terms are fixed, simulating again
with a shock removed gives that shock's exact counterfactual effect: this is how the ground
truth (``incidents.true_effect``) is computed, and how action impacts can be checked.

Causal structure (arrows are structural equations)::

    calendar (promo, holiday) -> planned volume -> scheduled drivers
    planned volume, rain, surges -> orders
    rain, crunches, shortages -> no-show rate -> present drivers
    orders, present drivers -> orders_per_driver -> late
    rain -> traffic -> late;  rain -> late (directly)
    unplanned volume, picking problems -> dispatch delay -> late
    carrier outages -> DSP late rate -> late
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tools.data.synthetic.exogenous import MARKETS, Exogenous, draw_exogenous
from tools.data.synthetic.shocks import (
    CHANNELS,
    KIND_CHANNEL,
    REGION_CHANNELS,
    Shock,
    injected_shocks,
    kind_default_size,
    shock_cells,
)

# Draws live in .exogenous and shocks in .shocks; they stay importable from here.
__all__ = [
    "CARRIER_ORDER",
    "CHANNELS",
    "KIND_CHANNEL",
    "MARKETS",
    "REGION_CHANNELS",
    "Exogenous",
    "Intervention",
    "Shock",
    "StoreDays",
    "draw_exogenous",
    "injected_shocks",
    "kind_default_size",
    "shock_cells",
    "simulate",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

CARRIER_ORDER = ("own_fleet", "dsp", "crowd")


@dataclass
class StoreDays:
    """Endogenous store-day quantities from one run of the structural equations."""

    planned_orders: FloatArray  # (D, S)
    orders: IntArray
    scheduled: IntArray
    present: IntArray
    no_show_rate: FloatArray
    orders_per_driver: FloatArray
    precip: FloatArray  # (D, S), the store's region
    traffic: FloatArray  # (D, S)
    dispatch_delay: FloatArray  # (D, S) mean minutes from window start to dispatch
    outage: FloatArray  # (D, S) extra late probability of DSP deliveries
    p_late: FloatArray  # (D, S, 3) per carrier
    p_store: FloatArray  # (D, S) expected late rate
    region_precip: FloatArray  # (D, R)
    region_traffic: FloatArray  # (D, R)

    def expected_late(self) -> FloatArray:
        """Return the expected late deliveries per store-day, shape (D, S)."""
        return self.p_store * self.orders


def _channel_grids(exo: Exogenous, shocks: list[Shock]) -> dict[str, FloatArray]:
    n_d, n_s, n_r = exo.n_days, exo.n_stores, exo.n_regions
    grids = {c: np.zeros((n_d, n_r) if c in REGION_CHANNELS else (n_d, n_s)) for c in CHANNELS}
    for shock in shocks:
        if shock.emergent:
            continue
        grid = grids[shock.channel]
        days = slice(shock.first_day, shock.first_day + shock.days)
        size = np.asarray(shock.size, dtype=np.float64)
        if shock.channel in REGION_CHANNELS:
            grid[days, shock.region] += size
        elif shock.store is not None:
            grid[days, shock.store] += size
        else:
            grid[days, np.nonzero(exo.store_region == shock.region)[0]] += size
    return grids


@dataclass(frozen=True)
class Intervention:
    """A manager's action applied to one store-day, as the structural equations see it.

    Every field is a concrete quantity, so the impact an action's estimate promises can be
    checked against the world simulated with exactly that action.
    """

    day: int
    store: int
    extra_drivers: int = 0  # drivers called in on top of those present
    defer_share: float = 0.0  # share of the day's orders moved to later slots
    dispatch_cut_min: float = 0.0  # minutes of dispatch delay recovered
    dsp_shift: float = 0.0  # share of DSP orders moved to the own fleet
    traffic_cut: float = 0.0  # share of the traffic excess (index above 1.0) avoided
    window_extension_min: float = 0.0  # promised windows end this much later


def _intervention_grids(exo: Exogenous, interventions: list[Intervention]) -> dict[str, FloatArray]:
    names = (
        "extra_drivers",
        "defer_share",
        "dispatch_cut_min",
        "dsp_shift",
        "traffic_cut",
        "window_extension_min",
    )
    grids = {n: np.zeros((exo.n_days, exo.n_stores)) for n in names}
    for action in interventions:
        for n in names:
            grids[n][action.day, action.store] += float(getattr(action, n))
    return grids


def _mechanism(exo: Exogenous) -> dict[str, FloatArray]:
    """Return each lateness coefficient per day, shape (D, 1), with the world's shifts."""
    p = exo.params
    out = {
        name: np.full((exo.n_days, 1), float(getattr(p, name)))
        for name in ("beta_opd", "beta_precip", "beta_traffic", "beta_dispatch")
    }
    for shift in exo.config.mechanism_shifts:
        out[shift.parameter][shift.start_day :] *= shift.factor
    return out


def simulate(
    exo: Exogenous, shocks: list[Shock], interventions: list[Intervention] | None = None
) -> StoreDays:
    """Run the structural equations over every store-day with the given shocks.

    Args:
        exo: exogenous draws of the world.
        shocks: injected incidents and natural events to apply (pass a subset for a
            counterfactual).
        interventions: actions applied to store-days (the counterfactual "with the action").

    Returns:
        Endogenous store-day quantities, arrays of shape (D, S) (per carrier: (D, S, 3)).
    """
    p = exo.params
    g = _channel_grids(exo, shocks)
    act = _intervention_grids(exo, interventions or [])
    reg = exo.store_region
    doy = np.array([d.timetuple().tm_yday for d in exo.dates], dtype=np.float64)

    region_precip = exo.precip_base + g["precip"]
    region_traffic = exo.traffic_base + p.traffic_per_mm * region_precip + g["traffic"]
    precip = region_precip[:, reg]
    traffic = region_traffic[:, reg]
    traffic = traffic - act["traffic_cut"] * np.maximum(traffic - 1.0, 0.0)

    weekly = np.asarray(p.weekly)[exo.dow]
    yearly = 1.0 + p.yearly_amplitude * np.cos(2 * np.pi * (doy - 355) / 365.0)
    planned = (
        exo.base_orders[None, :]
        * (weekly * yearly * np.where(exo.holiday, p.holiday_factor, 1.0))[:, None]
        * (1.0 + p.promo_uplift * exo.promo)
    )
    sd = p.demand_noise_sd
    unplanned = (
        np.exp(sd * exo.z_demand - sd * sd / 2)
        * (1.0 + p.rain_demand_per_mm * precip)
        * (1.0 + g["surge"])
    )
    expected = planned * unplanned
    orders = np.maximum(1, np.round(expected + np.sqrt(expected) * exo.z_orders)).astype(np.int64)
    orders = np.maximum(1, np.round(orders * (1.0 - act["defer_share"]))).astype(np.int64)

    # Pre-staffing follows the plan (promotions and holidays included), not the surprise.
    scheduled = np.maximum(2, np.round(planned / exo.target_opd[None, :])).astype(np.int64)
    # Everyday no-shows are binomial around a weather-dependent rate; a shortage (incident or
    # crunch) removes a further share of the roster on top of them.
    no_show = np.clip(p.no_show_base + p.no_show_per_mm * precip, 0.0, 0.95)
    spread = np.sqrt(scheduled * no_show * (1 - no_show))
    everyday = np.maximum(0.0, np.round(scheduled * no_show + spread * exo.z_absent))
    absent = np.clip(everyday + np.round(scheduled * g["no_show"]), 0, scheduled - 1)
    present = (scheduled - absent + act["extra_drivers"]).astype(np.int64)
    opd = orders / present

    surprise = np.maximum(0.0, orders / planned - 1.0)
    dispatch = np.maximum(
        0.0,
        exo.dispatch_base[None, :]
        + p.dispatch_per_surge * surprise
        + g["dispatch"]
        + p.dispatch_noise_sd * exo.z_dispatch
        - act["dispatch_cut_min"],
    )
    beta = _mechanism(exo)
    common = (
        beta["beta_opd"] * (opd - p.opd_ref)
        + beta["beta_precip"] * precip
        + beta["beta_traffic"] * (traffic - 1.0)
        + beta["beta_dispatch"] * (dispatch - p.dispatch_ref)
    )
    base = np.array([p.base_late[c] for c in CARRIER_ORDER])
    p_late = base[None, None, :] + common[:, :, None]
    p_late[:, :, 1] += g["outage"]
    p_late = np.clip(p_late, p.p_min, p.p_max)
    # Widened windows: deliveries at most that late (delay ~ 1 + Exp(mean)) become on time.
    stays_late = np.exp(-np.maximum(act["window_extension_min"] - 1.0, 0.0) / p.late_delay_mean_min)
    failed = np.full(p_late.shape, p.failed_share)
    failed[:, :, 1] = np.where(g["outage"] > 0, p.failed_share_outage, p.failed_share)
    p_late = np.where(
        act["window_extension_min"][:, :, None] > 0,
        p_late * (failed + (1.0 - failed) * stays_late[:, :, None]),
        p_late,
    )
    share = np.broadcast_to(exo.carrier_share[None, :, :], p_late.shape).copy()
    moved = share[:, :, 1] * act["dsp_shift"]
    share[:, :, 1] -= moved
    share[:, :, 0] += moved
    p_store = (p_late * share).sum(axis=2)
    return StoreDays(
        planned_orders=planned,
        orders=orders,
        scheduled=scheduled,
        present=present,
        no_show_rate=1.0 - present / scheduled,
        orders_per_driver=opd,
        precip=precip,
        traffic=traffic,
        dispatch_delay=dispatch,
        outage=g["outage"],
        p_late=p_late,
        p_store=p_store,
        region_precip=region_precip,
        region_traffic=region_traffic,
    )
