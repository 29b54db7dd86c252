"""The data-health check: each kind of data fault is flagged on its first day, good data is not.

Faults are injected into copies of the session's small world (20 stores x 60 days, one
incident of each kind) from day 52 on; the check must flag each on that day, name it, and
stay quiet the day before. The stable-world false-alarm figure is in
``tests/integration/test_monitoring.py`` (slow).
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import SMALL_WORLD
from tools.analytics.health import assess
from tools.check_data_health import CheckDataHealthInput, check_data_health
from tools.core.context import ToolContext
from tools.core.errors import ToolError
from tools.data.backend import DuckDBBackend
from tools.data.synthetic.faults import DataFault, inject

START = SMALL_WORLD.start_date + timedelta(days=52)
LOOKBACK = 56

CASES: dict[str, tuple[list[DataFault], str, str]] = {
    "distance in metres (x1000)": (
        [DataFault(kind="units", start=START, column="distance_km", factor=1000)],
        "drift",
        "avg_distance_km",
    ),
    "roster in driver-minutes (x60)": (
        [
            DataFault(kind="units", start=START, table="staffing", column=c, factor=60)
            for c in ("scheduled_drivers", "present_drivers")
        ],
        "drift",
        "scheduled_drivers",
    ),
    "a new demand regime (+60 %)": (
        [DataFault(kind="demand", start=START, factor=1.6)],
        "drift",
        "orders",
    ),
    "items stuck at one": (
        [DataFault(kind="constant", start=START, column="items", value=1)],
        "constant",
        "items_per_order",
    ),
    "distance emptied": (
        [DataFault(kind="all_null", start=START, column="distance_km")],
        "missing",
        "distance_km",
    ),
    "dispatch times emptied": (
        [DataFault(kind="all_null", start=START, column="dispatched_ts")],
        "missing",
        "handover_h",
    ),
    "weather feed stops": (
        [DataFault(kind="feed_stop", start=START, table="conditions")],
        "feed",
        "conditions",
    ),
}


def _faulty(small_world_db: Path, tmp_path: Path, faults: list[DataFault]) -> Path:
    db = tmp_path / "faulty.duckdb"
    shutil.copy(small_world_db, db)
    inject(db, faults)
    return db


@pytest.mark.parametrize("name", list(CASES))
def test_each_fault_is_flagged_on_its_first_day(
    name: str, small_world_db: Path, tmp_path: Path
) -> None:
    faults, check, subject = CASES[name]
    backend = DuckDBBackend(_faulty(small_world_db, tmp_path, faults))
    before = assess(backend, START - timedelta(days=1), lookback_days=LOOKBACK)
    on = assess(backend, START, lookback_days=LOOKBACK)
    assert before.trusted, [f.message for f in before.findings]
    assert (check, subject) in {(f.check, f.subject) for f in on.findings}, [
        f.message for f in on.findings
    ]
    assert not on.trusted and not on.severe


def test_a_new_carrier_is_named(tmp_path: Path) -> None:
    from tools.data.synthetic.config import WorldConfig
    from tools.data.synthetic.generator import generate_world

    world = WorldConfig(stores=8, days=40, seed=3, carriers="own_fleet")
    db = tmp_path / "own.duckdb"
    generate_world(db, world, [], progress=False)
    start = world.start_date + timedelta(days=35)
    inject(db, [DataFault(kind="new_carrier", start=start, carrier="crowd", share=0.2)])
    health = assess(DuckDBBackend(db), start, lookback_days=LOOKBACK)
    labels = {f.subject: f.label for f in health.findings}
    assert labels["carrier:crowd"] == "carrier crowd appears for the first time"


def test_a_dropped_column_is_severe(small_world_db: Path, tmp_path: Path) -> None:
    db = _faulty(
        small_world_db, tmp_path, [DataFault(kind="drop_column", start=START, column="distance_km")]
    )
    health = assess(DuckDBBackend(db), START, lookback_days=LOOKBACK)
    assert [f.subject for f in health.severe] == ["deliveries"]
    assert "deliveries.distance_km is missing" in health.severe[0].message
    assert "lastmile ingest" in health.severe[0].message


def test_a_day_without_deliveries_is_severe_unless_a_holiday(
    small_world_db: Path, tmp_path: Path
) -> None:
    db = _faulty(small_world_db, tmp_path, [])
    from tools.data.connection import connect

    con = connect(db)
    con.execute("DELETE FROM deliveries WHERE CAST(promised_end AS DATE) = ?", [START])
    con.close()
    backend = DuckDBBackend(db)
    health = assess(backend, START, lookback_days=LOOKBACK)
    assert [f.check for f in health.severe] == ["volume"]
    con = connect(db)
    con.execute("INSERT INTO calendar VALUES (?, NULL, 'holiday', 'closed')", [START])
    con.close()
    assert assess(backend, START, lookback_days=LOOKBACK).trusted


def test_a_stale_feed_stops_only_beyond_its_configured_age(
    small_world_db: Path, tmp_path: Path
) -> None:
    faults = [DataFault(kind="feed_stop", start=START - timedelta(days=3), table="conditions")]
    backend = DuckDBBackend(_faulty(small_world_db, tmp_path, faults))
    loose = assess(backend, START, lookback_days=LOOKBACK)
    strict = assess(backend, START, lookback_days=LOOKBACK, feed_max_age={"conditions": 2})
    assert [f.severity for f in loose.findings if f.check == "feed"] == ["warn"]
    assert [f.subject for f in strict.severe] == ["conditions"]
    assert "LASTMILE_FEED_MAX_AGE_DAYS" in strict.severe[0].message


def test_the_small_world_is_trusted_on_every_testable_day(small_world_db: Path) -> None:
    """Six injected incidents (a storm, a surge at one store...) are the world, not bad data."""
    backend = DuckDBBackend(small_world_db)
    flagged = {}
    for i in range(30, SMALL_WORLD.days):
        day = SMALL_WORLD.start_date + timedelta(days=i)
        health = assess(backend, day, lookback_days=LOOKBACK)
        if not health.trusted:
            flagged[day] = [f.message for f in health.findings]
    assert not flagged


def test_the_tool_registers_evidence_and_refuses_days_outside_the_data(ctx: ToolContext) -> None:
    out = check_data_health(ctx, CheckDataHealthInput(day=None))
    assert out.trusted and out.evidence_id == "check_data_health#1"
    assert ctx.evidence.get(out.evidence_id).numbers["trusted"] == 1  # type: ignore[union-attr]
    with pytest.raises(ToolError, match="outside the data"):
        check_data_health(ctx, CheckDataHealthInput(day=date(2030, 1, 1)))
