"""Exogenous draws of a synthetic world: stores, calendar, weather, noise, natural events.

Everything here is drawn from one seeded stream *before* the structural equations run and
stays fixed for counterfactuals (:func:`~tools.data.synthetic.scm.simulate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import holidays as holidays_lib
import numpy as np
from numpy.typing import NDArray

from tools.data.synthetic.config import ScmParams, WorldConfig
from tools.data.synthetic.coverage import Coverage, coverage_of
from tools.data.synthetic.shocks import (
    Shock,
    heavy_rain_events,
    make_shock,
    natural_store_shocks,
    observed_parts,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

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
    coverage: Coverage  # store-days that operate, and those the data shows
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


def draw_exogenous(config: WorldConfig, params: ScmParams | None = None) -> Exogenous:
    """Draw the exogenous part of a world from ``config.seed`` (deterministic).

    The random stream is consumed the same way whatever the data-shape options: with
    ``carriers: own_fleet`` the shares are drawn and then replaced, and closed days, openings
    and gaps only mark store-days (``coverage``). So a degraded world is the complete world
    with less of it in the data (``region_sizes`` does change the weather's regions).

    Returns:
        Exogenous draws with D = ``config.days``, S = ``config.stores``, R = regions.
    """
    params = params or ScmParams()
    # One stream, drawn in a fixed order: keep that order, or every seeded world changes.
    rng = np.random.default_rng([config.seed, 1])
    n_d, n_s = config.days, config.stores
    dates = [config.day(i) for i in range(n_d)]
    dow = np.array([d.weekday() for d in dates], dtype=np.int64)
    stores = _draw_stores(rng, config)
    calendar = _draw_calendar(rng, dates, n_s)
    precip, temp, traffic_base = _draw_weather(rng, params, dates, dow, config.n_regions)
    z_demand = rng.standard_normal((n_d, n_s))
    z_orders = rng.standard_normal((n_d, n_s))
    z_absent = rng.standard_normal((n_d, n_s))
    z_dispatch = rng.standard_normal((n_d, n_s))

    # Heavy-rain days are kept out of the baseline: with natural events on they come back as
    # labelled events (so ground truth knows them); with natural events off they are dry.
    heavy = precip >= params.heavy_rain_mm
    natural = _draw_natural(rng, params, precip, heavy, n_s) if config.natural_events else []
    coverage = coverage_of(config)
    if not coverage.complete:
        natural = [
            part
            for shock in natural
            for part in observed_parts(shock, coverage.observed, stores["store_region"], params)
        ]
    return Exogenous(
        config=config,
        params=params,
        dates=dates,
        dow=dow,
        **stores,
        **calendar,
        precip_base=np.where(heavy, 0.0, precip),
        temp=temp,
        traffic_base=traffic_base,
        z_demand=z_demand,
        z_orders=z_orders,
        z_absent=z_absent,
        z_dispatch=z_dispatch,
        coverage=coverage,
        natural=natural,
    )


def _store_regions(config: WorldConfig) -> IntArray:
    """Region of each store: contiguous blocks (S001.. in R1), so suites are easy to write."""
    if config.region_sizes is not None:
        return np.repeat(np.arange(len(config.region_sizes)), config.region_sizes).astype(np.int64)
    return ((np.arange(config.stores) * config.n_regions) // config.stores).astype(np.int64)


def _draw_stores(rng: np.random.Generator, config: WorldConfig) -> dict[str, Any]:
    """Store attributes: size, staffing target, carrier mix, dispatch speed, zones, place."""
    n_s, n_r = config.stores, config.n_regions
    store_region = _store_regions(config)
    region_market = [
        MARKETS[i % len(MARKETS)] + ("" if i < len(MARKETS) else f" {i // len(MARKETS) + 1}")
        for i in range(n_r)
    ]
    base_orders = config.mean_orders * np.clip(np.exp(rng.normal(0, 0.35, n_s)), 0.35, 3.0)
    target_opd = rng.uniform(17.0, 23.0, n_s)
    dsp = rng.uniform(0.20, 0.35, n_s)
    crowd = rng.uniform(0.04, 0.12, n_s)
    carrier_share = np.column_stack([1.0 - dsp - crowd, dsp, crowd])
    if config.carriers == "own_fleet":
        # Shares are still drawn above, so every later draw matches the mixed world's.
        carrier_share = np.zeros((n_s, 3))
        carrier_share[:, 0] = 1.0
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
    return {
        "store_region": store_region,
        "base_orders": base_orders,
        "target_opd": target_opd,
        "carrier_share": carrier_share,
        "dispatch_base": dispatch_base,
        "n_zones": n_zones.astype(np.int64),
        "store_names": names,
        "store_markets": markets,
        "lat": lat,
        "lon": lon,
        "region_market": region_market,
    }


def _draw_calendar(rng: np.random.Generator, dates: list[date], n_s: int) -> dict[str, Any]:
    """Chain promotions every 3-5 weeks for 1-3 days, rarer store promotions, US holidays."""
    n_d = len(dates)
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
    return {
        "chain_promo": chain_promo,
        "store_promo": store_promo,
        "holiday": holiday,
        "holiday_names": holiday_names,
    }


def _draw_weather(
    rng: np.random.Generator, params: ScmParams, dates: list[date], dow: IntArray, n_r: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Rain, temperature and traffic per region-day: (precip, temp, traffic_base)."""
    n_d = len(dates)
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float64)
    # Wet days with gamma-distributed rain.
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
    return precip, temp, 1.0 + weekday_effect[:, None] + ar


def _draw_natural(
    rng: np.random.Generator, params: ScmParams, precip: FloatArray, heavy: BoolArray, n_s: int
) -> list[Shock]:
    """Natural events: heavy-rain spells, store crunches, spikes, picking problems, jams."""
    n_d, n_r = precip.shape
    natural = heavy_rain_events(precip, heavy, params)
    natural += natural_store_shocks(rng, params, n_d, n_s)
    jam = rng.random((n_d, n_r)) < params.natural_jam_prob
    for d, r in zip(*np.nonzero(jam), strict=True):
        size = float(rng.uniform(0.40, 0.60))
        natural.append(make_shock("traffic_disruption", d, 1, None, int(r), size, params))
    return natural
