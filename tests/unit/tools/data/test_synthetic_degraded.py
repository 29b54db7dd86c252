"""Degraded synthetic worlds: feeds, carriers, region sizes, openings, closed days, gaps.

Each option changes what the data shows (or, for carriers and region sizes, the world's
make-up) while the ground truth stays each incident's counterfactual effect on the
store-days that exist.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from evals.groundtruth import simulated_avoided, world_of
from evals.suite import load_suite
from tests.truth import connect_with_truth
from tests.unit.tools.data.test_synthetic_pinned import table_digests as _table_digests
from tools.data import connect
from tools.data.synthetic import (
    DataGap,
    IncidentSpec,
    ScmParams,
    World,
    WorldConfig,
    build_world,
    generate_world,
)
from tools.data.synthetic.scm import Shock, shock_cells, simulate
from tools.data.synthetic.shocks import observed_parts

# 10 stores in two regions (S001-S005 in R1, S006-S010 in R2), 60 days from Thu 2026-01-01.
BASE: dict[str, Any] = {"stores": 10, "days": 60, "seed": 5, "regions": 2}
SHORTAGE = IncidentSpec(kind="driver_shortage", store="S003", start_day=41, days=3)  # Wed-Fri
STORM = IncidentSpec(kind="severe_weather", region="R2", start_day=33, days=2)  # Tue-Wed
OUTAGE = IncidentSpec(kind="carrier_outage", region="R1", start_day=20)  # Wed
INCIDENTS = [SHORTAGE, STORM, OUTAGE]

MakeWorld = Callable[..., Path]
table_digests = functools.cache(_table_digests)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> MakeWorld:
    """Generate ``BASE`` with options (once per name): ``worlds(name, incidents, **options)``."""
    root = tmp_path_factory.mktemp("degraded")
    made: dict[str, Path] = {}

    def make(name: str, incidents: list[IncidentSpec] = INCIDENTS, **options: Any) -> Path:
        if name not in made:
            path = root / f"{name}.duckdb"
            generate_world(path, WorldConfig(**BASE, **options), incidents, progress=False)
            made[name] = path
        return made[name]

    return make


def _frame(db: Path, sql: str) -> pd.DataFrame:
    con = connect_with_truth(db)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def _count(db: Path, sql: str) -> int:
    return int(_frame(db, f"SELECT count(*) AS n FROM ({sql})").n.iloc[0])


def _rows_digest(db: Path, sql: str) -> str:
    con = connect(db, read_only=True)
    try:
        rows = con.execute(sql).fetchall()
    finally:
        con.close()
    return hashlib.sha256("\n".join(map(repr, rows)).encode()).hexdigest()


def _incidents(db: Path) -> pd.DataFrame:
    return _frame(db, "SELECT * FROM incidents ORDER BY incident_id").set_index("incident_id")


def _effect_on(world: World, shock_id: str, cells: np.ndarray) -> float:
    """Extra late deliveries a shock of ``world`` causes on ``cells``, simulated afresh."""
    shock = next(s for s in world.shocks if s.shock_id == shock_id)
    without = simulate(world.exo, [s for s in world.shocks if s is not shock])
    diff = world.store_days.expected_late() - without.expected_late()
    return float(diff[shock_cells(world.exo, shock) & cells].sum())


# --- feeds ---------------------------------------------------------------------------------


def test_weather_feed_none_writes_no_conditions_but_the_weather_still_acts(
    worlds: MakeWorld,
) -> None:
    full, blind = worlds("full"), worlds("weather_none", weather_feed="none")
    assert _count(full, "SELECT * FROM conditions") == 2 * 60
    assert _count(blind, "SELECT * FROM conditions") == 0
    assert _frame(blind, "SELECT precip_mm FROM store_day").precip_mm.isna().all()
    # the same rain made the same deliveries late: only the feed is missing
    same = table_digests(full), table_digests(blind)
    for table in ("stores", "deliveries", "staffing", "calendar", "incidents"):
        assert same[0][table] == same[1][table], table


def test_weather_feed_flat_carries_no_information(worlds: MakeWorld) -> None:
    full, flat = worlds("full"), worlds("weather_flat", weather_feed="flat")
    cond = _frame(flat, "SELECT * FROM conditions")
    assert len(cond) == 2 * 60
    assert (cond.precip_mm == 0).all() and (cond.traffic_index == 1.0).all()
    assert not cond.severe_weather.any()
    real = _frame(full, "SELECT * FROM conditions")
    assert real.precip_mm.sum() > 50 and real.traffic_index.std() > 0.02
    assert table_digests(full)["deliveries"] == table_digests(flat)["deliveries"]
    assert table_digests(full)["incidents"] == table_digests(flat)["incidents"]


def test_staffing_feed_none_keeps_the_shortage_and_its_ground_truth(worlds: MakeWorld) -> None:
    full, blind = worlds("full"), worlds("staffing_none", staffing_feed="none")
    assert _count(blind, "SELECT * FROM staffing") == 0
    assert _frame(blind, "SELECT present_drivers FROM store_day").present_drivers.isna().all()
    truth, seen = _incidents(full), _incidents(blind)
    assert truth.loc["I001", "kind"] == "driver_shortage"
    assert seen.loc["I001", "late_excess"] == truth.loc["I001", "late_excess"] > 20
    assert seen.loc["I001", "true_effect"] == truth.loc["I001", "true_effect"]
    assert table_digests(full)["deliveries"] == table_digests(blind)["deliveries"]


# --- own fleet, region sizes ---------------------------------------------------------------


def test_own_fleet_carries_every_delivery_and_rejects_a_carrier_outage(
    worlds: MakeWorld,
) -> None:
    db = worlds("own_fleet", [SHORTAGE, STORM], carriers="own_fleet")
    carriers = _frame(db, "SELECT carrier, count(*) AS n FROM deliveries GROUP BY carrier")
    assert carriers.carrier.tolist() == ["own_fleet"]
    assert _count(db, "SELECT * FROM deliveries WHERE driver_id LIKE 'C%'") == 0
    assert _frame(db, "SELECT dsp_share FROM store_day").dsp_share.eq(0).all()
    with pytest.raises(ValueError, match=r"incident #3 \(carrier_outage\).*carriers: own_fleet"):
        build_world(WorldConfig(**BASE, carriers="own_fleet"), INCIDENTS)
    # the demand and the rosters are the mixed world's: only the carrier mix changed
    own = build_world(WorldConfig(**BASE, carriers="own_fleet"), [SHORTAGE])
    mixed = build_world(WorldConfig(**BASE), [SHORTAGE])
    np.testing.assert_array_equal(own.store_days.orders, mixed.store_days.orders)
    np.testing.assert_array_equal(own.store_days.present, mixed.store_days.present)


def test_region_sizes_put_a_single_store_in_r1(tmp_path: Path) -> None:
    cfg = WorldConfig(stores=20, days=30, seed=1, region_sizes=[1, 19])
    db = tmp_path / "sizes.duckdb"
    storm = IncidentSpec(kind="severe_weather", region="R1", start_day=10)
    generate_world(db, cfg, [storm], progress=False)
    stores = _frame(db, "SELECT store_id, region FROM stores ORDER BY store_id")
    assert stores[stores.region == "R1"].store_id.tolist() == ["S001"]
    assert (stores.region == "R2").sum() == 19
    assert _count(db, "SELECT DISTINCT region FROM conditions") == 2
    assert _incidents(db).loc["I001", "affected_store_days"] == 1


# --- store openings, closed weekdays, gaps --------------------------------------------------


def test_a_store_opening_on_day_54_of_60_has_six_days_of_history(worlds: MakeWorld) -> None:
    db = worlds("opening", store_opening={"S004": 54, "S007": 34})
    start = WorldConfig(**BASE).day(54)
    days = _frame(db, "SELECT date FROM store_day WHERE store_id = 'S004' ORDER BY date")
    assert len(days) == 6 and days.date.iloc[0].date() == start
    assert _count(db, "SELECT * FROM staffing WHERE store_id = 'S004'") == 6
    assert _count(db, f"SELECT * FROM calendar WHERE store_id = 'S004' AND date < '{start}'") == 0
    # the storm hits R2 on days 33-34; S007 exists only from day 34
    assert _incidents(db).loc["I002", "affected_store_days"] == 5 + 4
    with pytest.raises(ValueError, match=r"incident #1 \(driver_shortage\): S004 opens on day 54"):
        build_world(
            WorldConfig(**BASE, store_opening={"S004": 54}),
            [IncidentSpec(kind="driver_shortage", store="S004", start_day=52, days=3)],
        )


def test_closed_weekdays_have_no_deliveries_rosters_or_labels(worlds: MakeWorld) -> None:
    db = worlds("weekends", closed_weekdays=[5, 6])
    weekdays = _frame(db, "SELECT DISTINCT isodow(CAST(promised_end AS DATE)) AS d FROM deliveries")
    assert sorted(weekdays.d) == [1, 2, 3, 4, 5]
    assert _count(db, "SELECT * FROM staffing WHERE isodow(date) > 5") == 0
    assert _count(db, "SELECT * FROM conditions") == 2 * 60  # the weather does not close
    for inc in _incidents(db).itertuples():
        for day in pd.date_range(inc.start_date, inc.end_date):
            assert day.weekday() < 5, (inc.Index, day)
    saturday = IncidentSpec(kind="driver_shortage", store="S001", start_day=9)
    with pytest.raises(ValueError, match=r"day 9 \(2026-01-10, a Saturday\) is a closed weekday"):
        build_world(WorldConfig(**BASE, closed_weekdays=[5, 6]), [saturday])


def test_gaps_lose_exactly_the_deliveries_due_those_days(worlds: MakeWorld) -> None:
    full = worlds("full")
    gaps = [DataGap(start_day=30, days=2), DataGap(start_day=40, days=3, store="S003")]
    db = worlds("gaps", gaps=gaps)
    lost = (
        "(CAST(promised_end AS DATE) IN ('2026-01-31', '2026-02-01')) OR (store_id = 'S003' "
        "AND CAST(promised_end AS DATE) BETWEEN '2026-02-10' AND '2026-02-12')"
    )
    kept = f"SELECT * FROM deliveries WHERE NOT ({lost}) ORDER BY delivery_id"
    assert _count(db, f"SELECT * FROM deliveries WHERE {lost}") == 0
    assert _count(full, f"SELECT * FROM deliveries WHERE {lost}") > 3000
    assert _rows_digest(db, kept) == _rows_digest(full, kept)  # the rest is untouched
    assert _count(db, "SELECT * FROM staffing") == 10 * 60  # the rosters were not lost
    incidents = _incidents(db)
    # the shortage (days 41-43) shows on day 43 only, and its truth is that day's effect
    assert incidents.loc["I001", "affected_store_days"] == 1
    world = build_world(WorldConfig(**BASE), INCIDENTS)
    day43 = np.zeros((60, 10), dtype=bool)
    day43[43, 2] = True
    assert incidents.loc["I001", "late_excess"] == pytest.approx(
        _effect_on(world, "I001", day43), abs=0.006
    )
    natural = incidents[~incidents.injected]
    lost_days = (natural.start_date <= pd.Timestamp("2026-02-01")) & (
        natural.end_date >= pd.Timestamp("2026-01-31")
    )
    assert not lost_days.any()
    with pytest.raises(ValueError, match=r"incident #1 \(driver_shortage\).*all fall in data gaps"):
        build_world(
            WorldConfig(**BASE, gaps=gaps),
            [IncidentSpec(kind="driver_shortage", store="S003", start_day=40, days=2)],
        )


def test_a_natural_event_is_labelled_only_on_days_the_data_shows() -> None:
    # a four-day rain spell over R1 (stores 0-1) whose middle two days are closed
    observed = np.ones((10, 4), dtype=bool)
    observed[5:7] = False
    spell = Shock(
        shock_id="",
        kind="severe_weather",
        injected=False,
        magnitude=0.58,
        first_day=3,
        days=6,
        store=None,
        region=0,
        size=np.arange(12.0, 18.0),
    )
    parts = observed_parts(spell, observed, np.array([0, 0, 1, 1]), ScmParams())
    assert [(p.first_day, p.days, p.labelled) for p in parts] == [
        (3, 2, True),
        (5, 2, False),
        (7, 2, True),
    ]
    np.testing.assert_array_equal(np.concatenate([p.size for p in parts]), spell.size)
    assert [p.magnitude for p in parts] == [0.5, 0.58, 0.66]  # mean rain / storm_precip_mm


# --- everything at once --------------------------------------------------------------------

DEGRADED: dict[str, Any] = {
    "weather_feed": "flat",
    "staffing_feed": "none",
    "carriers": "own_fleet",
    "region_sizes": [1, 9],
    "store_opening": {"S004": 54, "S007": 34},
    "closed_weekdays": [6],
    "gaps": [{"start_day": 30, "days": 2}, {"start_day": 40, "days": 3, "store": "S003"}],
}


def test_every_option_together_keeps_the_counterfactual_ground_truth(
    worlds: MakeWorld,
) -> None:
    db = worlds("degraded", [SHORTAGE, STORM], **DEGRADED)
    # the same world made of the same stores, with every store-day in the data
    reference = build_world(
        WorldConfig(**BASE, carriers="own_fleet", region_sizes=[1, 9]), [SHORTAGE, STORM]
    )
    cfg = WorldConfig(**BASE, **DEGRADED)
    rebuilt = world_of(db)
    assert rebuilt.config == cfg
    np.testing.assert_array_equal(rebuilt.store_days.p_store, reference.store_days.p_store)
    observed = rebuilt.exo.coverage.observed
    incidents = _incidents(db)
    for shock_id in ("I001", "I002"):
        expected = _effect_on(reference, shock_id, observed)
        assert incidents.loc[shock_id, "late_excess"] == pytest.approx(expected, abs=0.006)
    # R2 is S002-S010 here; S004 opens on day 54 and S007 on day 34
    assert incidents.loc["I002", "affected_store_days"] == 7 + 8
    # no labelled event lies on a store-day without data
    for inc in incidents.itertuples():
        if inc.store_id:
            days = pd.date_range(inc.start_date, inc.end_date)
            store = cfg.store_ids.index(inc.store_id)
            index = [(d.date() - cfg.start_date).days for d in days]
            assert observed[index, store].any(), inc.Index
    # an action can still be simulated in the rebuilt world
    avoided = simulated_avoided(rebuilt, "call_backup_drivers", 3, cfg.day(43), ["S003"])
    assert avoided > 1.0


def test_a_suite_world_block_takes_the_options_and_round_trips(tmp_path: Path) -> None:
    suite = tmp_path / "degraded.yaml"
    suite.write_text(
        "name: degraded\n"
        "world:\n"
        "  {stores: 20, days: 60, seed: 3, weather_feed: none, staffing_feed: none,\n"
        "   carriers: own_fleet, region_sizes: [1, 19], store_opening: {S005: 54},\n"
        "   closed_weekdays: [5, 6], gaps: [{start_day: 10, days: 2, store: S002}]}\n"
        "incidents: []\n"
        "cases:\n  - {triage_day: 59}\n"
    )
    world = load_suite(suite).world
    assert isinstance(world, WorldConfig)
    assert world.gaps == [DataGap(start_day=10, days=2, store="S002")]
    assert world.store_opening == {"S005": 54} and world.n_regions == 2
    assert WorldConfig(**json.loads(json.dumps(world.model_dump(mode="json")))) == world
    assert WorldConfig(**json.loads(json.dumps(WorldConfig().model_dump(mode="json")))) == (
        WorldConfig()
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"region_sizes": [4, 5]}, "hold 9 stores, not the world's 10"),
        ({"region_sizes": [5, 5], "regions": 3}, "regions is 3 but region_sizes lists 2"),
        ({"region_sizes": [10, 0]}, "greater than or equal to 1"),
        ({"store_opening": {"S099": 3}}, "store_opening: unknown store 'S099'"),
        ({"store_opening": {"S001": 60}}, "S001 opens on day 60, after the last day"),
        ({"closed_weekdays": [0, 1, 2, 3, 4, 5, 6]}, "closes every day of the week"),
        ({"closed_weekdays": [5, 5]}, "repeats a weekday"),
        ({"closed_weekdays": [7]}, "less than or equal to 6"),
        ({"gaps": [{"start_day": 58, "days": 3}]}, r"gaps\[0\]: days 58..60 fall outside"),
        ({"gaps": [{"start_day": 5, "store": "S099"}]}, r"gaps\[0\]: unknown store 'S099'"),
        ({"weather_feed": "partial"}, "'full', 'flat' or 'none'"),
        ({"carriers": "dsp"}, "'mixed' or 'own_fleet'"),
    ],
)
def test_world_options_are_validated(options: dict[str, Any], message: str) -> None:
    base = {k: v for k, v in BASE.items() if k not in options}
    with pytest.raises(ValueError, match=message):
        WorldConfig(**base, **options)
