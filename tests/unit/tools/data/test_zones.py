"""Timestamps as users write them, store time zones, and the skipped/repeated local-time rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from tools.data import DataValidationError, connect
from tools.data.files import ingest_files
from tools.data.zones import check_zone, local_to_utc

FIXTURES = Path(__file__).parents[3] / "fixtures"
STORES = FIXTURES / "contract_ok" / "stores.csv"
HEADER = "delivery_id,order_id,store_id,carrier,order_ts,promised_start,promised_end,status,items"


def load_order_times(tmp_path: Path, values: list[str], assume_tz: str | None = None) -> list:
    """Load one in-transit delivery per value (as its order time); return stored order_ts."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    lines = [HEADER]
    for i, value in enumerate(values):
        lines.append(f"d{i},o{i},A01,dsp,{value},{value},2030-01-01T00:00:00Z,in_transit,1")
    path = tmp_path / "deliveries.csv"
    path.write_text("\n".join(lines) + "\n")
    db = tmp_path / "z.duckdb"
    ingest_files(db, [str(STORES), str(path)], assume_tz=assume_tz)
    con = connect(db, read_only=True)
    try:
        rows = con.execute(
            "SELECT order_ts FROM deliveries ORDER BY CAST(substr(delivery_id, 2) AS INT)"
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    ("zone", "days"),
    [
        ("America/Sao_Paulo", ["2016-10-16", "2017-02-18", "2017-10-15", "2018-02-17"]),
        ("Europe/Paris", ["2026-03-29", "2026-10-25"]),
        ("America/New_York", ["2026-03-08", "2026-11-01"]),
        ("Australia/Lord_Howe", ["2026-04-05", "2026-10-04"]),  # a 30-minute shift
        ("Asia/Kolkata", ["2026-06-01"]),
    ],
)
def test_local_times_follow_pythons_fold_0_around_every_clock_change(
    zone: str, days: list[str]
) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Tokyo'")  # the rule must not depend on the session zone
    sql = f"SELECT {local_to_utc('CAST($1 AS TIMESTAMP)', zone)}"
    for day in days:
        start = datetime.fromisoformat(day) - timedelta(hours=3)
        for minutes in range(0, 30 * 60, 10):
            local = start + timedelta(minutes=minutes)
            expected = local.replace(tzinfo=ZoneInfo(zone), fold=0).astimezone(UTC)
            got = con.execute(sql, [local]).fetchone()
            assert got == (expected.replace(tzinfo=None),), (zone, local)


def test_skipped_times_move_forward_and_repeated_ones_take_the_first(tmp_path: Path) -> None:
    sao_paulo = load_order_times(
        tmp_path / "sp",
        ["2017-10-15 00:00:00", "2017-10-15 00:30:00", "2017-02-18 23:30:00", "2017-10-15"],
        assume_tz="America/Sao_Paulo",
    )
    assert sao_paulo == [
        datetime(2017, 10, 15, 3, 0),  # 00:00 did not exist: 01:00 local, UTC-02:00
        datetime(2017, 10, 15, 3, 30),  # 00:30 -> 01:30 local: forward by the gap
        datetime(2017, 2, 19, 1, 30),  # 23:30 came twice: the first, still UTC-02:00
        datetime(2017, 10, 15, 3, 0),  # a date-only value: local midnight, shifted the same
    ]
    paris = load_order_times(
        tmp_path / "paris",
        ["2026-03-29 02:30:00", "2026-10-25 02:30:00", "2026-10-25 03:30:00", "2026-03-09"],
        assume_tz="Europe/Paris",
    )
    assert paris == [
        datetime(2026, 3, 29, 1, 30),  # 02:30 did not exist: 03:30 CEST
        datetime(2026, 10, 25, 0, 30),  # 02:30 came twice: the first, CEST (+02:00)
        datetime(2026, 10, 25, 2, 30),  # after the change: CET (+01:00)
        datetime(2026, 3, 8, 23, 0),  # local midnight of 2026-03-09 (CET)
    ]


def test_a_skipped_midnight_keeps_its_local_date(tmp_path: Path) -> None:
    (stored,) = load_order_times(tmp_path, ["2017-10-15"], assume_tz="America/Sao_Paulo")
    local = stored.replace(tzinfo=UTC).astimezone(ZoneInfo("America/Sao_Paulo"))
    assert local.date().isoformat() == "2017-10-15" and local.hour == 1


def test_a_zone_name_in_the_value_wins_over_the_assumed_zone(tmp_path: Path) -> None:
    value = "2026-10-25 12:00:00 America/New_York"  # EDT, UTC-04:00
    assert load_order_times(tmp_path / "a", [value], assume_tz="Europe/Paris") == [
        datetime(2026, 10, 25, 16, 0)
    ]
    # ... and without any assumed zone it is not "a timestamp without a time zone"
    assert load_order_times(tmp_path / "b", [value]) == [datetime(2026, 10, 25, 16, 0)]
    # a zone name on a time its zone repeats follows the same rule: the first occurrence
    assert load_order_times(tmp_path / "c", ["2026-11-01 01:30 America/New_York"]) == [
        datetime(2026, 11, 1, 5, 30)
    ]


def test_offsets_may_follow_a_space(tmp_path: Path) -> None:
    got = load_order_times(
        tmp_path,
        ["2026-10-25 01:30:00 +02:00", "2026-10-25 01:30:00 -0300", "2026-10-25 01:30:00 Z"],
        assume_tz="Europe/Paris",  # must not apply to values with an offset
    )
    assert got == [
        datetime(2026, 10, 24, 23, 30),
        datetime(2026, 10, 25, 4, 30),
        datetime(2026, 10, 25, 1, 30),
    ]


def test_unknown_zone_names_in_values_are_reported_with_rows(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError) as info:
        load_order_times(
            tmp_path, ["2026-03-01 10:00 Europe/Paris", "2026-03-01 10:00 Mars/Olympus_Mons"]
        )
    message = str(info.value)
    assert "deliveries.order_ts: timestamps naming an unknown time zone" in message
    assert "row 2: '2026-03-01 10:00 Mars/Olympus_Mons'" in message
    assert "not a valid timestamp" not in message  # one problem, told once
    assert not (tmp_path / "z.duckdb").exists()


def test_twelve_hour_times_are_read_with_their_am_or_pm(tmp_path: Path) -> None:
    # DuckDB's cast drops the AM/PM: '08:00 PM' was stored as 08:00 (newcomer report)
    values = [
        "2026-03-02 08:00 PM",
        "2026-03-02 08:00:00 am",
        "2026-03-02 12:30PM",
        "2026-03-02 08:00 PM America/New_York",  # with its own zone too
    ]
    assert load_order_times(tmp_path, values, "UTC") == [
        datetime(2026, 3, 2, 20, 0),
        datetime(2026, 3, 2, 8, 0),
        datetime(2026, 3, 2, 12, 30),
        datetime(2026, 3, 3, 1, 0),
    ]


def test_a_zone_abbreviation_is_refused_not_read_as_local_time(tmp_path: Path) -> None:
    # '08:00 CET' was taken as a zone-less value (and with --assume-timezone, as local time)
    with pytest.raises(DataValidationError) as info:
        load_order_times(
            tmp_path,
            ["2026-03-02 08:00:00 CET", "2026-03-02 08:00:00 GMT+1"],
            assume_tz="America/New_York",
        )
    message = str(info.value)
    assert "zone abbreviation" in message and "(2 rows)" in message
    assert "row 1: '2026-03-02 08:00:00 CET'" in message
    assert "without a time zone" not in message and "not a valid timestamp" not in message


def test_day_first_dates_say_how_to_read_them(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError) as info:
        load_order_times(tmp_path, ["13/02/2026 08:00"], assume_tz="UTC")
    assert "values that are not a valid timestamp" in str(info.value)
    assert "timestamp_format" in str(info.value) and "--mapping" in str(info.value)


def test_date_only_values_still_need_a_zone(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="timestamps without a time zone"):
        load_order_times(tmp_path, ["2026-03-09"])


def test_an_unknown_assumed_zone_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown time zone 'Europe/Pariss'.*'Europe/Paris'"):
        load_order_times(tmp_path, ["2026-03-09 10:00"], assume_tz="Europe/Pariss")
    assert check_zone("America/Sao_Paulo", "test") == "America/Sao_Paulo"


def test_store_time_zones_default_to_utc_and_unknown_ones_are_reported(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    ingest_files(db, [str(STORES)])  # no timezone column at all
    stores = tmp_path / "stores.csv"
    stores.write_text(
        "store_id,name,region,market,timezone\n"
        "A01,Lyon,FR-ARA,Lyon,Europe/Paris\n"
        "A02,Lyon 2,FR-ARA,Lyon,\n"
        "B01,Recife,BR-PE,Recife,  America/Recife \n"
    )
    con = connect(db, read_only=True)
    assert con.execute("SELECT DISTINCT timezone FROM stores").fetchall() == [("UTC",)]
    con.close()
    ingest_files(db, [str(stores)])
    con = connect(db, read_only=True)
    zones = con.execute("SELECT store_id, timezone FROM stores ORDER BY 1").fetchall()
    con.close()
    assert zones == [("A01", "Europe/Paris"), ("A02", "UTC"), ("B01", "America/Recife")]
    stores.write_text(
        "store_id,name,region,market,timezone\n"
        "A01,Lyon,FR-ARA,Lyon,Europe/Lyon\n"
        "A02,Lyon 2,FR-ARA,Lyon,CET\n"
        "B01,Paris,FR-IDF,Paris,paris\n"
    )
    with pytest.raises(DataValidationError) as info:
        ingest_files(db, [str(stores)])
    message = str(info.value)
    assert "stores: unknown time zone names" in message and "(2 rows)" in message
    assert "row 1 (timezone=Europe/Lyon)" in message and "row 3 (timezone=paris)" in message
    con = connect(db, read_only=True)
    assert con.execute("SELECT store_id, timezone FROM stores ORDER BY 1").fetchall() == zones
    con.close()
