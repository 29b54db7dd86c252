"""The synthetic world: ids, determinism, incident checks, and a causal structure that is real."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from tests.conftest import ALL_KINDS, SMALL_WORLD
from tests.truth import connect_with_truth
from tools.data import connect
from tools.data.schema import CONTRACT_TABLES, is_late
from tools.data.synthetic import (
    IncidentSpec,
    ScmParams,
    WorldConfig,
    build_world,
    generate_world,
    load_incident_specs,
)
from tools.data.synthetic.config import SUITE_KEYS
from tools.data.synthetic.scm import shock_cells, simulate


def _table_digest(db: Path) -> dict[str, str]:
    con = connect_with_truth(db)
    try:
        out = {}
        for table in [*CONTRACT_TABLES, "incidents"]:
            schema_cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            frame = con.execute(f"SELECT * FROM {table} ORDER BY {', '.join(schema_cols)}").df()
            out[table] = hashlib.sha256(
                pd.util.hash_pandas_object(frame, index=False).values.tobytes()
            ).hexdigest()
        return out
    finally:
        con.close()


def test_ids_are_readable_and_stable() -> None:
    cfg = WorldConfig(stores=1200, days=30, regions=12)
    assert cfg.store_ids[:2] == ["S0001", "S0002"] and cfg.store_ids[-1] == "S1200"
    assert WorldConfig(stores=20).store_ids[:3] == ["S001", "S002", "S003"]
    assert cfg.region_ids[0] == "R1" and cfg.region_ids[-1] == "R12"
    assert WorldConfig(stores=60).n_regions == 4
    assert WorldConfig().day(0) == date(2026, 1, 1)


def test_stores_are_contiguous_blocks_per_region(small_world_db: Path) -> None:
    con = connect(small_world_db, read_only=True)
    stores = con.execute("SELECT store_id, region FROM stores ORDER BY store_id").df()
    assert stores.region.tolist() == ["R1"] * 10 + ["R2"] * 10


def test_same_seed_same_tables_and_different_seed_differs(tmp_path: Path) -> None:
    cfg = WorldConfig(stores=6, days=21, seed=3)
    incidents = [IncidentSpec(kind="driver_shortage", store="S002", start_day=10)]
    generate_world(tmp_path / "a.duckdb", cfg, incidents, progress=False)
    # a different chunk size must not change anything either
    generate_world(tmp_path / "b.duckdb", cfg, incidents, progress=False, rows_per_chunk=1500)
    generate_world(
        tmp_path / "c.duckdb", cfg.model_copy(update={"seed": 4}), incidents, progress=False
    )
    a, b, c = (_table_digest(tmp_path / f"{n}.duckdb") for n in "abc")
    assert a == b
    for table in ("deliveries", "staffing", "conditions", "incidents"):
        assert a[table] != c[table], table
    assert a["stores"] != c["stores"]  # coordinates and names differ by seed


def test_contract_tables_and_views_are_present(small_world_db: Path) -> None:
    con = connect_with_truth(small_world_db)
    counts = {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
        for t in [
            "stores",
            "deliveries",
            "staffing",
            "conditions",
            "calendar",
            "incidents",
            "store_day",
        ]
    }
    assert counts["stores"] == 20
    assert counts["staffing"] == 20 * 60
    assert counts["conditions"] == 2 * 60
    assert counts["store_day"] == 20 * 60
    assert counts["deliveries"] > 20 * 60 * 100
    assert counts["calendar"] > 0
    injected = con.execute("SELECT count(*) FROM incidents WHERE injected").fetchone()[0]  # type: ignore[index]
    assert injected == len(ALL_KINDS)


def test_store_day_late_rate_matches_the_late_definition(small_world_db: Path) -> None:
    con = connect(small_world_db, read_only=True)
    d = con.execute(
        "SELECT store_id, CAST(promised_end AS DATE) AS day, status, delivered_ts, promised_end "
        "FROM deliveries WHERE store_id IN ('S001', 'S003')"
    ).df()
    d["late"] = is_late(d.status, d.delivered_ts, d.promised_end)
    d["resolved"] = d.status.isin(["delivered", "failed"])
    g = d.groupby(["store_id", "day"]).agg(late=("late", "sum"), resolved=("resolved", "sum"))
    expected = (g.late / g.resolved).rename("expected").reset_index()
    got = con.execute(
        "SELECT store_id, date AS day, late_rate FROM store_day WHERE store_id IN ('S001', 'S003')"
    ).df()
    merged = got.merge(expected, on=["store_id", "day"])
    assert len(merged) == 120
    np.testing.assert_allclose(merged.late_rate, merged.expected)


def test_baseline_late_rate_is_realistic_and_never_total(small_world_db: Path) -> None:
    con = connect(small_world_db, read_only=True)
    sd = con.execute("SELECT * FROM store_day").df()
    assert 0.05 < sd.late_rate.median() < 0.11
    assert sd.late_rate.max() < 0.6
    assert 200 < sd.orders.median() < 450


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (dict(kind="driver_shortage", store="S999", start_day=3), "unknown store 'S999'"),
        (dict(kind="severe_weather", region="R9", start_day=3), "unknown region 'R9'"),
        (
            dict(kind="driver_shortage", store="S001", start_day=59, days=3),
            "fall outside the world",
        ),
        (
            dict(kind="driver_shortage", store="S001", start_date="2025-12-31"),
            "fall outside the world",
        ),
    ],
)
def test_incidents_that_do_not_fit_the_world_are_rejected(
    spec: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_world(SMALL_WORLD, [IncidentSpec.model_validate(spec)])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            dict(kind="severe_weather", store="S001", start_day=3),
            "applies to a region, not a store",
        ),
        (
            dict(kind="driver_shortage", region="R1", start_day=3),
            "applies to a store, not a region",
        ),
        (
            dict(kind="driver_shortage", store="S001", region="R1", start_day=3),
            "exactly one of 'store' or 'region'",
        ),
        (dict(kind="driver_shortage", store="S001"), "exactly one of 'start_day' or 'start_date'"),
        (dict(kind="meteor", store="S001", start_day=1), "driver_shortage"),
        (dict(kind="driver_shortage", store="S001", start_day=1, magnitud=2), "Extra inputs"),
        (dict(kind="driver_shortage", store="S001", start_day=1, magnitude=0), "greater than 0"),
    ],
)
def test_incident_entries_are_validated(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IncidentSpec.model_validate(spec)


def test_incident_files_accept_a_list_or_a_suite(tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text("- {kind: driver_shortage, store: S012, start_day: 10}\n")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: x\nworld: {stores: 60, days: 120, seed: 7}\n"
        "incidents:\n  - {kind: severe_weather, region: R2, start_date: 2026-02-01, days: 2}\n"
        "cases:\n  - {triage_day: 100}\n"
    )
    assert load_incident_specs(listed)[0].store == "S012"
    spec = load_incident_specs(suite)[0]
    assert spec.days == 2 and spec.magnitude == 1.0 and spec.start_date == date(2026, 2, 1)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "- {kind: driver_shortage, store: S012}\n- {kind: flood, region: R1, start_day: 1}\n"
    )
    with pytest.raises(ValueError, match=r"incident #1 .*start_day.*\n.*incident #2"):
        load_incident_specs(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("incidents: [ {kind: ")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_incident_specs(broken)
    with pytest.raises(ValueError, match="does not exist"):
        load_incident_specs(tmp_path / "missing.yaml")
    typo = tmp_path / "typo.yaml"
    typo.write_text("incident:\n  - {kind: driver_shortage, store: S012, start_day: 10}\n")
    with pytest.raises(ValueError, match="unknown key.*'incident'"):
        load_incident_specs(typo)


def test_the_suite_keys_an_incidents_file_accepts_are_the_suites() -> None:
    from evals.suite import Suite

    assert frozenset(Suite.model_fields) == SUITE_KEYS


# --- the causal structure is real ------------------------------------------------------------


@pytest.fixture(scope="module")
def quiet_store_days(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """60 stores x 120 days without incidents or natural events: the everyday mechanism."""
    path = tmp_path_factory.mktemp("quiet") / "quiet.duckdb"
    generate_world(
        path, WorldConfig(stores=60, days=120, seed=11, natural_events=False), [], progress=False
    )
    con = connect(path, read_only=True)
    frame = con.execute("SELECT * FROM store_day").df()
    con.close()
    # within-store comparison, the way an analyst would look at a store's own history
    for col in (
        "late_rate",
        "orders_per_driver",
        "precip_mm",
        "traffic_index",
        "dispatch_delay_min",
        "orders",
    ):
        frame[f"{col}_w"] = frame[col] - frame.groupby("store_id")[col].transform("mean")
    return frame


def test_weather_confounds_staffing_and_adjustment_recovers_the_configured_effect(
    quiet_store_days: pd.DataFrame,
) -> None:
    beta = ScmParams().beta_opd
    naive = (
        smf.ols("late_rate_w ~ orders_per_driver_w", quiet_store_days)
        .fit()
        .params["orders_per_driver_w"]
    )
    adjusted = (
        smf.ols(
            "late_rate_w ~ orders_per_driver_w + precip_mm_w + traffic_index_w"
            " + dispatch_delay_min_w",
            quiet_store_days,
        )
        .fit()
        .params["orders_per_driver_w"]
    )
    # Rain causes both no-shows (more orders per driver) and lateness: the naive slope is biased.
    assert naive > 1.2 * beta, naive
    assert abs(adjusted - beta) < 0.08 * beta, adjusted


def test_promotions_raise_orders_and_staffing_together(quiet_store_days: pd.DataFrame) -> None:
    sd = quiet_store_days
    promo, normal = sd[sd.promo & ~sd.holiday], sd[~sd.promo & ~sd.holiday]
    assert promo.orders.mean() > 1.2 * normal.orders.mean()
    assert promo.scheduled_drivers.mean() > 1.2 * normal.scheduled_drivers.mean()
    # pre-staffing keeps the load per driver and the late rate flat
    assert abs(promo.orders_per_driver.mean() - normal.orders_per_driver.mean()) < 1.0
    assert abs(promo.late_rate.mean() - normal.late_rate.mean()) < 0.01
    # so orders alone say little about lateness
    assert abs(np.corrcoef(sd.orders_w, sd.late_rate_w)[0, 1]) < 0.2


def test_rain_raises_no_shows_and_lateness(quiet_store_days: pd.DataFrame) -> None:
    sd = quiet_store_days
    wet, dry = sd[sd.precip_mm > 8], sd[sd.precip_mm == 0]
    assert wet.no_show_rate.mean() > dry.no_show_rate.mean() + 0.03
    assert wet.late_rate.mean() > dry.late_rate.mean() + 0.03


def test_injected_incidents_move_the_kpi_and_the_cause_they_claim(small_world_db: Path) -> None:
    con = connect_with_truth(small_world_db)
    sd = con.execute("SELECT * FROM store_day").df()
    incidents = con.execute("SELECT * FROM incidents").df()
    flagged = set()
    for inc in incidents.itertuples():
        store_ids = (
            [inc.store_id]
            if inc.store_id
            else sd[sd.region == inc.region].store_id.unique().tolist()
        )
        flagged |= {(s, d) for s in store_ids for d in pd.date_range(inc.start_date, inc.end_date)}
    sd["event"] = [
        (s, d) in flagged for s, d in zip(sd.store_id, pd.to_datetime(sd.date), strict=True)
    ]
    normal = sd[~sd.event]
    for inc in incidents[incidents.injected].itertuples():
        scope = sd.store_id == inc.store_id if inc.store_id else sd.region == inc.region
        hit = sd[
            scope
            & (pd.to_datetime(sd.date) >= inc.start_date)
            & (pd.to_datetime(sd.date) <= inc.end_date)
        ]
        base = normal[normal.store_id.isin(hit.store_id)]
        rise = hit.late_rate.mean() - base.late_rate.mean()
        # observed rise agrees with the counterfactual ground truth (noise: a few points)
        assert rise > 0.08, (inc.kind, rise)
        assert abs(rise - inc.true_effect) < 0.05, (inc.kind, rise, inc.true_effect)
        cause = inc.cause_variable
        z = (hit[cause].mean() - base[cause].mean()) / base[cause].std()
        assert z > 3, (inc.kind, cause, z)


def test_magnitude_one_is_big_but_not_absurd() -> None:
    """At magnitude 1.0 a store's late rate rises by >= ~4 SDs of its own everyday noise."""
    specs = []
    for i, kind in enumerate(["driver_shortage", "volume_surge", "dispatch_delay"]):
        specs += [
            IncidentSpec(kind=kind, store=f"S{s:03d}", start_day=30 + 5 * i)
            for s in range(1, 41, 3)
        ]
    specs += [
        IncidentSpec(kind=k, region=r, start_day=d)
        for k, r, d in [
            ("severe_weather", "R1", 50),
            ("carrier_outage", "R2", 52),
            ("traffic_disruption", "R3", 54),
            ("severe_weather", "R3", 56),
            ("carrier_outage", "R1", 58),
            ("traffic_disruption", "R2", 60),
        ]
    ]
    world = build_world(WorldConfig(stores=45, days=70, seed=2, natural_events=False), specs)
    exo, sd = world.exo, world.store_days
    quiet = simulate(exo, [])
    # everyday noise of the observed late rate: structural variation plus binomial sampling
    noise = np.sqrt(
        quiet.p_store.var(axis=0)
        + quiet.p_store.mean(axis=0) * (1 - quiet.p_store.mean(axis=0)) / quiet.orders.mean(axis=0)
    )
    ratios: dict[str, list[float]] = {}
    for shock in world.shocks:
        cells = shock_cells(exo, shock)
        rise = (sd.p_store - quiet.p_store)[cells]
        ratios.setdefault(shock.kind, []).extend(
            (rise / np.broadcast_to(noise, cells.shape)[cells]).tolist()
        )
        assert sd.p_store[cells].max() < 0.5
    for kind, r in ratios.items():
        assert np.median(r) >= 4.0, (kind, np.median(r))


def test_counterfactual_without_shocks_is_the_quiet_world() -> None:
    cfg = WorldConfig(stores=10, days=30, seed=5, natural_events=False)
    world = build_world(cfg, [IncidentSpec(kind="driver_shortage", store="S002", start_day=10)])
    quiet = build_world(cfg, [])
    np.testing.assert_array_equal(simulate(world.exo, []).p_store, quiet.store_days.p_store)
    changed = world.store_days.p_store != quiet.store_days.p_store
    assert changed.sum() == 1 and changed[10, 1]


def test_natural_heavy_rain_is_labelled_in_ground_truth(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    generate_world(path, WorldConfig(stores=30, days=365, seed=4), [], progress=False)
    con = connect_with_truth(path)
    heavy = con.execute("SELECT date, region FROM conditions WHERE severe_weather").fetchall()
    labelled = con.execute(
        "SELECT region, start_date, end_date FROM incidents "
        "WHERE kind = 'severe_weather' AND NOT injected"
    ).fetchall()
    assert heavy, "a year of weather should contain heavy rain"
    for day, region in heavy:
        assert any(r == region and s <= day <= e for r, s, e in labelled), (day, region)
    natural = con.execute("SELECT kind, count(*) FROM incidents GROUP BY kind").fetchall()
    assert {k for k, _ in natural} >= {"severe_weather", "driver_shortage"}
    notes = con.execute("SELECT count(*) FROM deliveries WHERE driver_note IS NOT NULL").fetchone()[
        0
    ]  # type: ignore[index]
    total = con.execute("SELECT count(*) FROM deliveries").fetchone()[0]  # type: ignore[index]
    assert 0.002 < notes / total < 0.03


def test_actions_can_be_simulated_in_the_same_world() -> None:
    from tools.data.synthetic.scm import Intervention

    cfg = WorldConfig(stores=10, days=30, seed=5, natural_events=False)
    world = build_world(
        cfg,
        [
            IncidentSpec(kind="driver_shortage", store="S002", start_day=20),
            IncidentSpec(kind="carrier_outage", store="S003", start_day=20),
        ],
    )
    exo, sd, p = world.exo, world.store_days, world.exo.params
    base = sd.p_store[20]
    helped = simulate(exo, world.shocks, [Intervention(day=20, store=1, extra_drivers=5)])
    assert helped.present[20, 1] == sd.present[20, 1] + 5
    assert helped.p_store[20, 1] < base[1]
    np.testing.assert_array_equal(
        np.delete(helped.p_store, 1, axis=1), np.delete(sd.p_store, 1, axis=1)
    )
    moved = simulate(exo, world.shocks, [Intervention(day=20, store=2, dsp_shift=1.0)])
    assert moved.p_store[20, 2] < base[2] - 0.9 * exo.carrier_share[2, 1] * p.outage_late
    wider = simulate(exo, world.shocks, [Intervention(day=20, store=0, window_extension_min=60)])
    kept = p.failed_share + (1 - p.failed_share) * np.exp(-59 / p.late_delay_mean_min)
    assert wider.p_store[20, 0] == pytest.approx(base[0] * kept)
