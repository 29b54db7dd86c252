"""A default world is pinned bit for bit: eval suites' expected results depend on it.

The digests below were recorded with the generator as it was before the data-shape options
(feeds, carriers, region sizes, openings, closed weekdays, gaps) were added. Any change of a
default world's rows fails here: if it is intended, bump ``GENERATOR_VERSION`` (so cached
eval worlds are rebuilt), re-run the eval baselines, and record the new digests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.truth import connect_with_truth
from tools.data import connect
from tools.data.store import read_metadata
from tools.data.synthetic import IncidentSpec, WorldConfig, generate_world
from tools.data.synthetic.generator import GENERATOR_VERSION

# Each table's columns as the generator wrote them when the digests were recorded (columns a
# later contract adds, filled by the loader, are not the generator's output), and its
# primary key to sort by (calendar has none: every column, chain-wide rows first).
TABLES: dict[str, tuple[str, str]] = {
    "stores": ("store_id, name, region, market, lat, lon", "store_id"),
    "deliveries": (
        "delivery_id, order_id, store_id, zone_id, driver_id, carrier, order_ts, "
        "promised_start, promised_end, dispatched_ts, delivered_ts, status, failure_reason, "
        "distance_km, items, driver_note",
        "delivery_id",
    ),
    "staffing": ("date, store_id, scheduled_drivers, present_drivers", "date, store_id"),
    "conditions": (
        "date, region, precip_mm, temp_c, severe_weather, traffic_index",
        "date, region",
    ),
    "calendar": ("date, store_id, kind, name", "date, store_id NULLS FIRST, kind, name"),
    "incidents": (
        "incident_id, kind, store_id, region, start_date, end_date, kpi, true_cause, "
        "cause_variable, magnitude, true_effect, late_excess, affected_store_days, injected, "
        "description",
        "incident_id",
    ),
}

PINNED_WORLD = WorldConfig(stores=8, days=30, seed=3, regions=2)
PINNED_INCIDENTS = [
    IncidentSpec(kind="driver_shortage", store="S002", start_day=10),
    IncidentSpec(kind="carrier_outage", region="R1", start_day=20),
    IncidentSpec(kind="severe_weather", region="R2", start_day=24, days=2),
]
PINNED_DIGESTS = {
    "stores": "fa1c5be8491fb080e16ad3c493c8b80debecab30ee9c849793eced19ae032ff8",
    "deliveries": "3323364494262eb9e7a3b823fef83c3a07a0f820b65d80844c36288cd0267ea4",
    "staffing": "317b95c965ee560b1e7bcf637bedc8099470f8f884aaab465bf39f67ddab886c",
    "conditions": "dbdeaa6e3cc3e30ea466ae42c7656f4a0bcd87a09e2af3c42c6b03e55e2aec65",
    "calendar": "1131edfa6e2d2ba6be486350b41d9bcf385d0fe7a8223e2eadde02c92bbf2c90",
    "incidents": "a7689bf2441440199fbf4784682a6f646da91217b54d5c8b68499e1693d533bd",
}


def table_digests(db: Path) -> dict[str, str]:
    """sha256 of every table's rows in key order (each row's Python repr, one a line).

    Python's repr of floats, dates and timestamps is exact and stable, unlike a pandas hash.
    """
    con = connect_with_truth(db)
    try:
        out = {}
        for table, (columns, key) in TABLES.items():
            digest = hashlib.sha256()
            cursor = con.execute(f"SELECT {columns} FROM {table} ORDER BY {key}")
            while rows := cursor.fetchmany(50_000):
                for row in rows:
                    digest.update(repr(row).encode())
                    digest.update(b"\n")
            out[table] = digest.hexdigest()
        return out
    finally:
        con.close()


def test_a_default_world_is_bit_for_bit_what_it_was(tmp_path: Path) -> None:
    db = tmp_path / "pinned.duckdb"
    generate_world(db, PINNED_WORLD, PINNED_INCIDENTS, progress=False)
    assert table_digests(db) == PINNED_DIGESTS
    assert GENERATOR_VERSION == 1


def test_the_world_metadata_rebuilds_the_same_config(tmp_path: Path) -> None:
    db = tmp_path / "pinned.duckdb"
    generate_world(db, PINNED_WORLD, PINNED_INCIDENTS, progress=False)
    con = connect(db, read_only=True)
    try:
        stored = read_metadata(con, "world")
        raw = con.execute("SELECT value FROM metadata WHERE key = 'world'").fetchone()
    finally:
        con.close()
    assert raw is not None
    assert WorldConfig(**json.loads(raw[0])) == PINNED_WORLD
    assert isinstance(stored, dict) and stored["weather_feed"] == "full"
