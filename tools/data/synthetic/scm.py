"""The structural causal model of a synthetic last-mile world, at store-day grain.

The world is split into *exogenous* draws (store attributes, calendar, weather, noise terms)
and *shocks* (injected incidents and rare natural disruptions). :func:`simulate` applies the
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

from dataclasses import dataclass, field, replace
from datetime import date

import holidays as holidays_lib
import numpy as np
from numpy.typing import NDArray

from tools.data.synthetic.config import IncidentSpec, ScmParams, WorldConfig

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

CARRIER_ORDER = ("own_fleet", "dsp", "crowd")

MARKETS = (
    "Dallas",
    "Houston",
    "Phoenix",
    "Atlanta",
    "Denver",
    "Chicago",
    "Seattle",
    "Miami",
    "Boston",
    "Detroit",
    "Portland",
    "Tampa",
    "Austin",
    "Columbus",
    "Charlotte",
    "Nashville",
)
_MARKET_COORDS = {
    "Dallas": (32.78, -96.80),
    "Houston": (29.76, -95.37),
    "Phoenix": (33.45, -112.07),
    "Atlanta": (33.75, -84.39),
    "Denver": (39.74, -104.99),
    "Chicago": (41.88, -87.63),
    "Seattle": (47.61, -122.33),
    "Miami": (25.76, -80.19),
    "Boston": (42.36, -71.06),
    "Detroit": (42.33, -83.05),
    "Portland": (45.52, -122.68),
    "Tampa": (27.95, -82.46),
    "Austin": (30.27, -97.74),
    "Columbus": (39.96, -83.00),
    "Charlotte": (35.23, -80.84),
    "Nashville": (36.16, -86.78),
}

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

    @property
    def channel(self) -> str:
        """Structural channel the shock acts on."""
        return KIND_CHANNEL[self.kind]


@dataclass
class Exogenous:
    """Everything drawn before the structural equations run (fixed for counterfactuals)."""

    config: WorldConfig
    params: ScmParams
    dates: list[date]
    dow: IntArray  # (D,) Monday = 0
    store_region: IntArray  # (S,)
    base_orders: FloatArray  # (S,)
    target_opd: FloatArray  # (S,)
    carrier_share: FloatArray  # (S, 3) own_fleet, dsp, crowd
    dispatch_base: FloatArray  # (S,)
    n_zones: IntArray  # (S,)
    store_names: list[str]
    store_markets: list[str]
    lat: FloatArray
    lon: FloatArray
    region_market: list[str]
    chain_promo: BoolArray  # (D,)
    store_promo: BoolArray  # (D, S)
    holiday: BoolArray  # (D,)
    holiday_names: dict[int, str]
    precip_base: FloatArray  # (D, R) rain without the labelled heavy-rain days
    temp: FloatArray  # (D, R)
    traffic_base: FloatArray  # (D, R)
    z_demand: FloatArray  # (D, S)
    z_orders: FloatArray
    z_absent: FloatArray
    z_dispatch: FloatArray
    natural: list[Shock] = field(default_factory=list)

    @property
    def n_days(self) -> int:
        """Number of days D."""
        return len(self.dates)

    @property
    def n_stores(self) -> int:
        """Number of stores S."""
        return int(self.store_region.shape[0])

    @property
    def n_regions(self) -> int:
        """Number of regions R."""
        return len(self.region_market)

    @property
    def promo(self) -> BoolArray:
        """(D, S) promotion flag: chain-wide or store promotion."""
        return self.store_promo | self.chain_promo[:, None]


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


def draw_exogenous(config: WorldConfig, params: ScmParams | None = None) -> Exogenous:
    """Draw the exogenous part of a world from ``config.seed`` (deterministic).

    Returns:
        Exogenous draws with D = ``config.days``, S = ``config.stores``, R = regions.
    """
    params = params or ScmParams()
    rng = np.random.default_rng([config.seed, 1])
    n_d, n_s, n_r = config.days, config.stores, config.n_regions
    dates = [config.day(i) for i in range(n_d)]
    dow = np.array([d.weekday() for d in dates], dtype=np.int64)
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float64)

    # Stores in contiguous blocks per region (S001.. in R1), so suites are easy to write.
    store_region = (np.arange(n_s) * n_r) // n_s
    region_market = [
        MARKETS[i % len(MARKETS)] + ("" if i < len(MARKETS) else f" {i // len(MARKETS) + 1}")
        for i in range(n_r)
    ]
    base_orders = config.mean_orders * np.clip(np.exp(rng.normal(0, 0.35, n_s)), 0.35, 3.0)
    target_opd = rng.uniform(17.0, 23.0, n_s)
    dsp = rng.uniform(0.20, 0.35, n_s)
    crowd = rng.uniform(0.04, 0.12, n_s)
    carrier_share = np.column_stack([1.0 - dsp - crowd, dsp, crowd])
    dispatch_base = rng.uniform(4.0, 12.0, n_s)
    n_zones = rng.integers(4, 9, n_s)
    counters: dict[int, int] = {}
    names, markets = [], []
    lat = np.empty(n_s)
    lon = np.empty(n_s)
    jitter = rng.normal(0, 0.08, (n_s, 2))
    for s in range(n_s):
        r = int(store_region[s])
        counters[r] = counters.get(r, 0) + 1
        market = region_market[r]
        names.append(f"{market} #{counters[r]}")
        markets.append(market)
        base = _MARKET_COORDS.get(market.split(" ")[0], (39.0, -95.0))
        lat[s], lon[s] = base[0] + jitter[s, 0], base[1] + jitter[s, 1]

    # Calendar: chain promotions every 3-5 weeks for 1-3 days, rarer store promotions.
    chain_promo = np.zeros(n_d, dtype=bool)
    start = int(rng.integers(5, 20))
    while start < n_d:
        chain_promo[start : start + int(rng.integers(1, 4))] = True
        start += int(rng.integers(21, 36))
    store_promo = np.zeros((n_d, n_s), dtype=bool)
    starts = rng.random((n_d, n_s)) < 0.012
    lengths = rng.integers(1, 3, (n_d, n_s))
    for d, s in zip(*np.nonzero(starts), strict=True):
        store_promo[d : d + lengths[d, s], s] = True
    us_holidays = holidays_lib.country_holidays("US", years=sorted({d.year for d in dates}))
    holiday = np.array([d in us_holidays for d in dates])
    holiday_names = {i: str(us_holidays.get(d)) for i, d in enumerate(dates) if d in us_holidays}

    # Weather per region-day: wet days with gamma-distributed rain; heavy days are labelled.
    season = np.cos(2 * np.pi * (doy - 15) / 365.0)
    wet = rng.random((n_d, n_r)) < params.wet_day_prob * (1 + 0.25 * season)[:, None]
    amount = rng.gamma(params.rain_shape, params.rain_scale, (n_d, n_r)) + 0.2
    precip = np.where(wet, amount, 0.0)
    temp = (
        12.0
        + 11.0 * np.sin(2 * np.pi * (doy - 105) / 365.0)[:, None]
        + rng.normal(0, 4, n_r)[None, :]
        + rng.normal(0, 2.5, (n_d, n_r))
    )
    weekday_effect = np.array([0.04, 0.04, 0.04, 0.04, 0.05, -0.03, -0.08])[dow]
    ar = np.zeros((n_d, n_r))
    eps = rng.normal(0, params.traffic_noise_sd, (n_d, n_r))
    for d in range(n_d):
        ar[d] = (0.5 * ar[d - 1] if d else 0.0) + eps[d]
    traffic_base = 1.0 + weekday_effect[:, None] + ar

    z_demand = rng.standard_normal((n_d, n_s))
    z_orders = rng.standard_normal((n_d, n_s))
    z_absent = rng.standard_normal((n_d, n_s))
    z_dispatch = rng.standard_normal((n_d, n_s))

    # Heavy-rain days are kept out of the baseline: with natural events on they come back as
    # labelled events (so ground truth knows them); with natural events off they are dry.
    natural: list[Shock] = []
    heavy = precip >= params.heavy_rain_mm
    precip_base = np.where(heavy, 0.0, precip)
    if config.natural_events:
        natural += _heavy_rain_events(precip, heavy, params)
        natural += _natural_store_shocks(rng, params, n_d, n_s)
        jam = rng.random((n_d, n_r)) < params.natural_jam_prob
        for d, r in zip(*np.nonzero(jam), strict=True):
            size = float(rng.uniform(0.40, 0.60))
            natural.append(_shock("traffic_disruption", d, 1, None, int(r), size, params))

    return Exogenous(
        config=config,
        params=params,
        dates=dates,
        dow=dow,
        store_region=store_region.astype(np.int64),
        base_orders=base_orders,
        target_opd=target_opd,
        carrier_share=carrier_share,
        dispatch_base=dispatch_base,
        n_zones=n_zones.astype(np.int64),
        store_names=names,
        store_markets=markets,
        lat=lat,
        lon=lon,
        region_market=region_market,
        chain_promo=chain_promo,
        store_promo=store_promo,
        holiday=holiday,
        holiday_names=holiday_names,
        precip_base=precip_base,
        temp=temp,
        traffic_base=traffic_base,
        z_demand=z_demand,
        z_orders=z_orders,
        z_absent=z_absent,
        z_dispatch=z_dispatch,
        natural=natural,
    )


def _shock(
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


def _heavy_rain_events(precip: FloatArray, heavy: BoolArray, params: ScmParams) -> list[Shock]:
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


def _natural_store_shocks(
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
            out.append(_shock(kind, int(d), 1, int(s), None, float(sizes[d, s]), params))
    return out


def injected_shocks(exo: Exogenous, specs: list[IncidentSpec]) -> list[Shock]:
    """Turn incident entries into shocks, checking they fit the world.

    Raises:
        ValueError: naming the entry when its store, region or days fall outside the world.
    """
    cfg = exo.config
    store_index = {sid: i for i, sid in enumerate(cfg.store_ids)}
    region_index = {rid: i for i, rid in enumerate(cfg.region_ids)}
    shocks: list[Shock] = []
    errors: list[str] = []
    for i, spec in enumerate(specs):
        label = f"incident #{i + 1} ({spec.kind})"
        first = spec.first_day(cfg.start_date)
        if first < 0 or first + spec.days > cfg.days:
            last = cfg.day(cfg.days - 1)
            errors.append(
                f"{label}: days {first}..{first + spec.days - 1} fall outside the world "
                f"(days 0..{cfg.days - 1}, {cfg.start_date}..{last})"
            )
            continue
        store = region = None
        if spec.store is not None:
            if spec.store not in store_index:
                errors.append(
                    f"{label}: unknown store {spec.store!r} (this world has "
                    f"{cfg.store_ids[0]}..{cfg.store_ids[-1]})"
                )
                continue
            store = store_index[spec.store]
        else:
            if spec.region not in region_index:
                errors.append(
                    f"{label}: unknown region {spec.region!r} (this world has "
                    f"{cfg.region_ids[0]}..{cfg.region_ids[-1]})"
                )
                continue
            region = region_index[spec.region]  # type: ignore[index]
        size = kind_default_size(exo.params, spec.kind) * spec.magnitude
        shocks.append(
            _shock(
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
        )
        shocks[-1].magnitude = spec.magnitude
    if errors:
        raise ValueError("incidents do not fit the world:\n  " + "\n  ".join(errors))
    return shocks


def shock_cells(exo: Exogenous, shock: Shock) -> BoolArray:
    """(D, S) mask of the store-days a shock touches."""
    mask = np.zeros((exo.n_days, exo.n_stores), dtype=bool)
    days = slice(shock.first_day, shock.first_day + shock.days)
    if shock.store is not None:
        mask[days, shock.store] = True
    else:
        mask[days, exo.store_region == shock.region] = True
    return mask


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
    common = (
        p.beta_opd * (opd - p.opd_ref)
        + p.beta_precip * precip
        + p.beta_traffic * (traffic - 1.0)
        + p.beta_dispatch * (dispatch - p.dispatch_ref)
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


def emergent_crunches(exo: Exogenous, shocks: list[Shock], actual: StoreDays) -> list[Shock]:
    """Label store-days where everyday no-shows alone cost as much as an incident would.

    Small rosters make clusters of absences common enough to matter: a store of ten drivers
    missing three is a genuine natural disruption. The counterfactual keeps each store-day's
    absences at (or below) their expected number; where that lowers the expected late rate by
    at least ``natural_min_effect`` and no shortage shock explains the day, the day is
    labelled as a natural driver shortage.
    """
    calm = simulate(replace(exo, z_absent=np.minimum(exo.z_absent, 0.0)), shocks)
    rise = actual.p_store - calm.p_store
    covered = np.zeros_like(rise, dtype=bool)
    for shock in shocks:
        if shock.channel == "no_show":
            covered |= shock_cells(exo, shock)
    out = []
    for d, s in zip(*np.nonzero((rise >= exo.params.natural_min_effect) & ~covered), strict=True):
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
    """Give natural events readable ids N001, N002, ... in order of day."""
    natural = [s for s in shocks if not s.injected]

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
    stays fixed, so the difference is the shock's causal effect.
    """
    if shock.effect is not None:
        return shock.effect
    without = simulate(exo, [s for s in shocks if s is not shock])
    cells = shock_cells(exo, shock)
    rise = float((actual.p_store - without.p_store)[cells].mean())
    excess = float((actual.expected_late() - without.expected_late())[cells].sum())
    return rise, excess, int(cells.sum())
