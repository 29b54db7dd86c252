"""Loading a user's own files through a mapping file: values, promises, errors with lines."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from tools.data import DataValidationError, connect
from tools.data.mapping import MappingError, load_mapping
from tools.data.mapping_load import ingest_mapping
from tools.data.schema import CONTRACT_TABLES, LATE_SQL

COURIER = Path(__file__).parents[3] / "fixtures" / "ingest" / "courier"
END_OF_DAY = datetime(2026, 3, 9, 22, 59, 59, 999999)  # 2026-03-09 23:59:59.999999 in Paris


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = connect(db, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def digest(db: Path) -> list[tuple[object, ...]]:
    """Row count and content hash of every table: equal means unchanged."""
    return [
        query(db, f"SELECT '{t}', count(*), coalesce(sum(hash(x)), 0) FROM {t} AS x")[0]
        for t in CONTRACT_TABLES
    ]


@pytest.fixture
def courier(tmp_path: Path) -> Path:
    """A writable copy of the courier fixture; returns its mapping file."""
    shutil.copytree(COURIER, tmp_path / "courier")
    return tmp_path / "courier" / "courier.yaml"


@pytest.fixture(scope="module")
def courier_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("courier") / "c.duckdb"
    report = ingest_mapping(db, COURIER / "courier.yaml")
    assert report.rows == {"stores": 3, "deliveries": 6, "staffing": 3}
    return db


def edit(path: Path, old: str, new: str) -> int:
    """Replace text in a file; return the 1-based line where the new text starts."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return text[: text.index(new)].count("\n") + 1 if new else 0


def test_the_courier_exports_load_with_utc_times_and_end_of_day_promises(
    courier_db: Path,
) -> None:
    assert query(courier_db, "SELECT store_id, name, lat, timezone FROM stores ORDER BY 1") == [
        ("LYO-01", "Lyon Gerland", 45.7275, "Europe/Paris"),
        ("PAR-01", "Café Müller – Bastille", 48.8532, "Europe/Paris"),  # cp1252, decimal comma
        ("PAR-02", "Dépôt Nation (€ tarif réduit)", 48.8483, "UTC"),  # no zone given: UTC
    ]
    got = query(
        courier_db,
        "SELECT delivery_id, order_id, carrier, status, order_ts, promised_start, promised_end, "
        "delivered_ts, items, distance_km FROM deliveries ORDER BY 1",
    )
    assert got[0] == (
        "A-1001",
        "A-1001",
        "own_fleet",  # a constant
        "delivered",  # DELIVERED
        datetime(2026, 3, 8, 8, 15),  # 03/08/2026 09:15 in Paris (CET, UTC+1)
        datetime(2026, 3, 8, 8, 15),
        END_OF_DAY,  # promised by 03/09/2026: the end of that day in Paris
        datetime(2026, 3, 9, 17, 5),
        2,
        3.4,
    )
    assert [r[3] for r in got] == [
        "delivered",
        "delivered",
        "failed",
        "cancelled",
        "delivered",
        "in_transit",
    ]
    # A-1005: delivered at 02:30 on 2026-03-29, a time Paris skipped: 03:30 CEST = 01:30 UTC;
    # its promise ends at 23:59:59.999999 CEST (UTC+2) that day
    assert got[4][6:8] == (datetime(2026, 3, 29, 21, 59, 59, 999999), datetime(2026, 3, 29, 1, 30))
    assert query(courier_db, "SELECT date, store_id, present_drivers FROM staffing")[0] == (
        datetime(2026, 3, 9).date(),
        "PAR-01",
        3,
    )


def test_a_date_only_promise_can_mean_the_start_of_the_local_day(
    courier: Path, courier_db: Path, tmp_path: Path
) -> None:
    edit(courier, "promise_date: end_of_day", "promise_date: start_of_day")
    db = tmp_path / "start.duckdb"
    ingest_mapping(db, courier)
    late = f"SELECT delivery_id FROM deliveries WHERE {LATE_SQL} ORDER BY 1"
    first = "SELECT promised_end FROM deliveries WHERE delivery_id = 'A-1001'"
    assert query(db, first) == [(datetime(2026, 3, 8, 23, 0),)]  # 2026-03-09 00:00 in Paris
    assert query(courier_db, first) == [(END_OF_DAY,)]
    # delivered on the promised day (A-1001 at 18:05, A-1005 at 03:30): late against 00:00,
    # on time against 23:59:59.999999
    assert query(db, late) == [("A-1001",), ("A-1002",), ("A-1003",), ("A-1005",)]
    assert query(courier_db, late) == [("A-1002",), ("A-1003",)]


def test_parquet_files_work_through_the_mapping(courier: Path, courier_db: Path) -> None:
    folder = courier.parent
    con = connect(":memory:")
    src = f"read_csv('{folder / 'deliveries_2026-03.csv'}', all_varchar = true)"
    # as text, and typed the way a database export writes them (local times, a DATE promise)
    con.execute(f"COPY (SELECT * FROM {src}) TO '{folder / 'deliveries_text.parquet'}'")
    con.execute(
        "COPY (SELECT * REPLACE ("
        'strptime("Created (local)", \'%m/%d/%Y %H:%M\') AS "Created (local)", '
        'CAST(strptime("Promised by", \'%m/%d/%Y\') AS DATE) AS "Promised by", '
        'try_strptime("Delivered at", \'%m/%d/%Y %H:%M\') AS "Delivered at", '
        'CAST("Parcels" AS INTEGER) AS "Parcels", CAST("Km" AS DOUBLE) AS "Km") '
        f"FROM {src}) TO '{folder / 'deliveries_typed.parquet'}'"
    )
    con.close()
    expected = query(courier_db, "SELECT * FROM deliveries ORDER BY 1")
    for name in ("deliveries_text.parquet", "deliveries_typed.parquet"):
        text = courier.read_text().replace("files: [deliveries_*.csv]", f"files: [{name}]")
        courier.write_text(text)
        db = folder / f"{name}.duckdb"
        ingest_mapping(db, courier)
        assert query(db, "SELECT * FROM deliveries ORDER BY 1") == expected, name
        courier.write_text(text.replace(f"files: [{name}]", "files: [deliveries_*.csv]"))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "order_ts: Created",
            "order_tz: Created",
            "'order_tz' is not a column of deliveries; did you mean 'order_ts'",
        ),
        (
            "driver_id: Driver",
            "driver_id: Drivers",
            "column 'Drivers' is not in "
            "deliveries_2026-03.csv; did you mean 'Driver'? (its columns: Order Ref, Depot,",
        ),
        (
            "OUT_FOR_DELIVERY: in_transit",
            "OUT_FOR_DELIVERY: on_the_way",
            "'on_the_way' is not a "
            "deliveries.status value (use one of delivered, failed, cancelled, in_transit)",
        ),
        (
            'promised_end: "%m/%d/%Y"',
            'promised_end: "%m/%d/%Q"',
            "'%m/%d/%Q' is not a valid strptime pattern",
        ),
        (
            'timestamp_format: "%m/%d/%Y %H:%M"',
            'timestamp_format: "%H:%M"',
            "'%H:%M' does not read a whole date: it needs a year",
        ),
        (
            "timezone: Europe/Paris  ",
            "timezone: Europe/Pariss  ",
            "unknown time zone 'Europe/Pariss'; did you mean 'Europe/Paris'",
        ),
        (
            "csv: {encoding: cp1252}",
            "csv: {encoding: cp1252, separator: ';'}",
            "unknown key 'separator' (keys here: delimiter, decimal, encoding)",
        ),
        ("csv: {encoding: cp1252}", "csv: {encoding: cp-1252}", "unknown encoding 'cp-1252'"),
        ("  staffing:", "  staff:", "'staff' is not a contract table; did you mean 'staffing'?"),
        ("carrier: own_fleet", "carrier: bike", "'bike' is not a deliveries.carrier value"),
        (
            "files: [deliveries_*.csv]",
            "files: [exports/*.xlsx]",
            "no file matches 'exports/*.xlsx' (paths are relative to",
        ),
        (
            "promise_date: end_of_day",
            "promise_date: end_of_the_day",
            "Input should be 'start_of_day' or 'end_of_day'",
        ),
        ("status: State", "status: State: now", "not valid YAML: mapping values are not allowed"),
        (
            "      status:\n        DELIVERED",
            "      state:\n        DELIVERED",
            "'state' is not a column of deliveries; did you mean 'status'",
        ),
        ("      items: Parcels\n", "", "deliveries.items is required: map it under columns"),
    ],
)
def test_a_bad_mapping_names_its_line_and_stores_nothing(
    courier: Path, courier_db: Path, tmp_path: Path, old: str, new: str, message: str
) -> None:
    db = tmp_path / "loaded.duckdb"
    shutil.copy(courier_db, db)
    before = digest(db)
    line = edit(courier, old, new)
    if not new:  # a required column left out: reported at the table's `columns:` line
        text = courier.read_text().splitlines()
        line = text.index("    columns:", text.index("  deliveries:")) + 1
    with pytest.raises(MappingError) as info:
        ingest_mapping(db, courier)
    rendered = str(info.value)
    assert rendered.startswith(f"mapping {courier} has 1 problem; nothing was stored:")
    assert f"courier.yaml line {line}" in rendered and message in rendered, rendered
    assert digest(db) == before


def test_values_no_pattern_or_vocabulary_can_read_are_reported_by_row(
    courier: Path, courier_db: Path, tmp_path: Path
) -> None:
    data = courier.parent / "deliveries_2026-03.csv"
    edit(data, "A-1004,PAR-02,03/08/2026 12:00", "A-1004,PAR-02,13/45/2026 12:00")
    edit(data, "FAILED,1,2.0", "RETURNED,1,2.0")
    db = tmp_path / "loaded.duckdb"
    shutil.copy(courier_db, db)
    before = digest(db)
    with pytest.raises(DataValidationError) as info:
        ingest_mapping(db, courier, mode="append")
    message = str(info.value)
    assert "deliveries.order_ts: values that are not a valid timestamp" in message
    assert "row 4: '13/45/2026 12:00 (does not match %m/%d/%Y %H:%M)'" in message
    # a European date in a US-pattern column: the note says what would read it
    edit(data, "13/45/2026 12:00", "13/03/2026 12:00")
    with pytest.raises(DataValidationError) as info:
        ingest_mapping(db, courier, mode="append")
    assert (
        "'13/03/2026 12:00 (does not match %m/%d/%Y %H:%M; it reads as %d/%m/%Y %H:%M: "
        "are day and month the other way round?)'"
    ) in str(info.value)
    status_line = courier.read_text().splitlines().index("      status:") + 1
    assert (
        f"row 3: 'RETURNED (not under values.status in courier.yaml, line {status_line})'"
        in message
    )
    assert digest(db) == before


def test_a_value_with_its_own_zone_needs_no_pattern(courier: Path, tmp_path: Path) -> None:
    data = courier.parent / "deliveries_2026-03.csv"
    edit(data, "A-1006,LYO-01,03/09/2026 08:00", "A-1006,LYO-01,2026-03-09 08:00 America/New_York")
    ingest_mapping(tmp_path / "z.duckdb", courier)
    got = query(
        tmp_path / "z.duckdb", "SELECT order_ts FROM deliveries WHERE delivery_id = 'A-1006'"
    )
    assert got == [(datetime(2026, 3, 9, 12, 0),)]  # EDT since 2026-03-08 (UTC-04:00), not Paris


def test_mapping_scalars_stay_text_and_repeated_keys_are_reported(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x\n")
    path = tmp_path / "m.yaml"
    path.write_text(
        "tables:\n"
        "  deliveries:\n"
        "    file: d.csv\n"
        "    values:\n"
        "      status: {YES: delivered, NO: failed, 01: cancelled}\n"
    )
    vocab = load_mapping(path).table("deliveries").values["status"]
    assert vocab == {"YES": "delivered", "NO": "failed", "01": "cancelled"}
    path.write_text("tables:\n  stores:\n    file: d.csv\n  stores:\n    file: e.csv\n")
    with pytest.raises(MappingError, match=r"m.yaml line 4, tables.stores: 'stores' is written"):
        load_mapping(path)
    with pytest.raises(ValueError, match="does not exist"):
        load_mapping(tmp_path / "nope.yaml")


def test_several_patterns_per_column_zoned_timed_and_dated(tmp_path: Path) -> None:
    shutil.copy(COURIER / "depots.csv", tmp_path / "depots.csv")
    (tmp_path / "d.csv").write_text(
        "ref,depot,created,due,state\n"
        "r1,PAR-01,2026-03-01T10:00:00+01:00,05-Mar-26,DELIVERED\n"
        "r2,PAR-01,03/01/2026 10:00,03/05/2026 18:00,DELIVERED\n"
        "r3,PAR-01,03/01/2026,05-Mar-26,OUT_FOR_DELIVERY\n"
    )
    (tmp_path / "m.yaml").write_text(
        "timezone: Europe/Paris\n"
        "tables:\n"
        "  stores:\n"
        "    file: depots.csv\n"
        "    csv: {encoding: cp1252}\n"
        "    columns: {store_id: Depot, name: Depot name, region: Area, market: City}\n"
        "  deliveries:\n"
        "    file: d.csv\n"
        "    columns: {delivery_id: ref, order_id: ref, store_id: depot, order_ts: created,\n"
        "              promised_start: created, promised_end: due, status: state}\n"
        "    constants: {carrier: dsp, items: '1'}\n"
        "    values: {status: {DELIVERED: in_transit, OUT_FOR_DELIVERY: in_transit}}\n"
        '    timestamp_format: ["%Y-%m-%dT%H:%M:%S%z", "%m/%d/%Y %H:%M", "%m/%d/%Y"]\n'
        '    formats: {promised_end: ["%d-%b-%y", "%m/%d/%Y %H:%M"]}\n'
    )
    db = tmp_path / "p.duckdb"
    ingest_mapping(db, tmp_path / "m.yaml")
    assert query(db, "SELECT order_ts, promised_end FROM deliveries ORDER BY 1, 2") == [
        (datetime(2026, 2, 28, 23, 0), datetime(2026, 3, 4, 23, 0)),  # a date: local midnight
        (datetime(2026, 3, 1, 9, 0), datetime(2026, 3, 4, 23, 0)),  # its own +01:00
        (datetime(2026, 3, 1, 9, 0), datetime(2026, 3, 5, 17, 0)),  # Paris, CET
    ]
    # without a zone in the mapping, --assume-timezone applies to the zone-less values
    mapping = (tmp_path / "m.yaml").read_text().replace("timezone: Europe/Paris\n", "")
    (tmp_path / "m.yaml").write_text(mapping)
    with pytest.raises(DataValidationError, match="timestamps without a time zone"):
        ingest_mapping(tmp_path / "q.duckdb", tmp_path / "m.yaml")
    ingest_mapping(tmp_path / "q.duckdb", tmp_path / "m.yaml", assume_tz="Europe/Paris")
    same = "SELECT order_ts, promised_end FROM deliveries ORDER BY 1, 2"
    assert query(tmp_path / "q.duckdb", same) == query(db, same)
