"""Loading contract files: the bad-input corpus, time zones, append/replace, and atomicity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tools.data import DataValidationError, connect
from tools.data.files import ingest_files, resolve_inputs
from tools.data.schema import CONTRACT_TABLES
from tools.data.synthetic import WorldConfig, generate_world
from tools.data.synthetic import generator as generator_module

FIXTURES = Path(__file__).parents[3] / "fixtures"
BAD = FIXTURES / "bad_inputs"
EXPECTED: dict[str, str] = yaml.safe_load((BAD / "EXPECTED.yaml").read_text())


def digest(db: Path) -> dict[str, tuple[int, int]]:
    """Row count and an order-independent hash of every table: equal means unchanged."""
    con = connect(db, read_only=True)
    try:
        out = {}
        for table in CONTRACT_TABLES:
            row = con.execute(
                f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {table} AS t"
            ).fetchone()
            assert row is not None
            out[table] = (int(row[0]), int(row[1]))
        return out
    finally:
        con.close()


def test_the_corpus_has_at_least_ten_broken_files() -> None:
    assert len(EXPECTED) >= 10
    assert set(EXPECTED) == {p.name for p in BAD.glob("*.csv")}


@pytest.mark.parametrize("mode", ["append", "replace"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_gives_a_clear_error_and_changes_nothing(
    world_copy: Path, name: str, mode: str
) -> None:
    before = digest(world_copy)
    with pytest.raises((DataValidationError, ValueError)) as info:
        ingest_files(world_copy, [str(BAD / name)], mode=mode)  # type: ignore[arg-type]
    assert EXPECTED[name] in str(info.value)
    assert "nothing was stored" in str(info.value) or "cannot load" in str(info.value)
    assert digest(world_copy) == before


def test_every_problem_is_reported_at_once_with_rows(world_copy: Path) -> None:
    with pytest.raises(DataValidationError) as info:
        ingest_files(world_copy, [str(BAD / "deliveries_many_problems.csv")], mode="append")
    problems = {(p.column, p.problem.split(" (")[0]) for p in info.value.problems}
    assert ("carrier", "values outside the allowed set {own_fleet, dsp, crowd}") in problems
    assert ("order_ts", "values that are not a valid timestamp") in problems
    assert ("distance_km", "values below the minimum 0") in problems
    assert ("delivery_id", "duplicate key") in problems
    message = str(info.value)
    assert "row 1: 'bike'" in message and "row 2: 'not a time'" in message


def test_problems_in_several_files_are_gathered(world_copy: Path) -> None:
    before = digest(world_copy)
    files = [BAD / "staffing_non_integer.csv", BAD / "deliveries_unknown_carrier.csv"]
    with pytest.raises(DataValidationError) as info:
        ingest_files(world_copy, [str(f) for f in files], mode="append")
    sources = {p.source for p in info.value.problems}
    assert sources == {f.name for f in files}
    assert digest(world_copy) == before


def test_a_clean_dataset_loads_and_derives_kpis(tmp_path: Path) -> None:
    db = tmp_path / "own.duckdb"
    report = ingest_files(db, [str(FIXTURES / "contract_ok")])
    assert report.rows == {
        "calendar": 2,
        "conditions": 2,
        "deliveries": 6,
        "staffing": 3,
        "stores": 3,
    }
    con = connect(db, read_only=True)
    # +01:00 is converted to UTC; Z and +00:00 are already UTC
    first = con.execute(
        "SELECT order_ts, promised_end FROM deliveries WHERE delivery_id = 'd1'"
    ).fetchone()
    assert first == (datetime(2026, 3, 1, 7, 0), datetime(2026, 3, 1, 11, 0))
    sd = con.execute(
        "SELECT store_id, orders, late, late_rate, in_transit, no_show_rate, promo, precip_mm "
        "FROM store_day ORDER BY store_id"
    ).fetchall()
    assert sd[0] == ("A01", 2, 1, 0.5, 0, 0.25, True, 12.5)  # d2 delivered after the window
    assert sd[1][:4] == ("A02", 1, 1, 1.0)  # failed counts as late; cancelled is not an order
    assert sd[2][:5] == ("B01", 2, 0, 0.0, 1)  # in transit: neither late nor on time


def test_zone_less_timestamps_load_when_their_zone_is_named(tmp_path: Path) -> None:
    naive = tmp_path / "deliveries.csv"
    text = (FIXTURES / "contract_ok" / "deliveries.csv").read_text()
    for suffix in ("+01:00", "+00:00", "Z"):
        text = text.replace(suffix, "")
    naive.write_text(text)
    stores = str(FIXTURES / "contract_ok" / "stores.csv")
    with pytest.raises(DataValidationError, match="timestamps without a time zone"):
        ingest_files(tmp_path / "a.duckdb", [stores, str(naive)])
    assert not (tmp_path / "a.duckdb").exists()  # a failed first load leaves no file behind
    ingest_files(tmp_path / "b.duckdb", [stores, str(naive)], assume_tz="Europe/Paris")
    con = connect(tmp_path / "b.duckdb", read_only=True)
    # 08:00 in Paris in March (CET, UTC+1) is 07:00 UTC
    row = con.execute("SELECT order_ts FROM deliveries WHERE delivery_id = 'd1'").fetchone()
    assert row == (datetime(2026, 3, 1, 7, 0),)


def test_parquet_round_trip_keeps_every_kpi(small_world_db: Path, tmp_path: Path) -> None:
    src = connect(small_world_db, read_only=True)
    out = tmp_path / "export"
    out.mkdir()
    for table, schema in CONTRACT_TABLES.items():
        cols = ", ".join(
            f"CAST({c.name} AS TIMESTAMPTZ) AS {c.name}" if c.dtype == "timestamp" else c.name
            for c in schema.columns
        )
        src.execute(
            f"COPY (SELECT {cols} FROM {table}) TO '{out / table}.parquet' (FORMAT parquet)"
        )
    expected = src.execute("SELECT * FROM store_day ORDER BY store_id, date").df()
    src.close()
    db = tmp_path / "rt.duckdb"
    ingest_files(db, [str(out)])
    con = connect(db, read_only=True)
    got = con.execute("SELECT * FROM store_day ORDER BY store_id, date").df()
    # parallel aggregation may sum floats in another order: equal up to rounding
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9)


def test_append_adds_rows_and_rejects_keys_already_stored(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    ingest_files(db, [str(FIXTURES / "contract_ok")])
    extra = tmp_path / "deliveries_more.csv"
    lines = (FIXTURES / "contract_ok" / "deliveries.csv").read_text().splitlines()
    extra.write_text("\n".join([lines[0], lines[1].replace("d1,o1", "d7,o7")]) + "\n")
    report = ingest_files(db, [str(extra)], mode="append")
    assert report.rows == {"deliveries": 1}
    assert digest(db)["deliveries"][0] == 7
    before = digest(db)
    with pytest.raises(DataValidationError, match="duplicate key with rows already stored"):
        ingest_files(db, [str(extra)], mode="append")
    assert digest(db) == before


def test_replacing_stores_cannot_orphan_stored_deliveries(world_copy: Path, tmp_path: Path) -> None:
    stores = tmp_path / "stores.csv"
    stores.write_text("store_id,name,region,market\nS001,Only one,R1,Dallas\n")
    before = digest(world_copy)
    with pytest.raises(
        DataValidationError, match=r"deliveries.store_id: references stores.store_id"
    ):
        ingest_files(world_copy, [str(stores)])
    assert digest(world_copy) == before


def test_inputs_are_resolved_by_name_folder_or_table_prefix(tmp_path: Path) -> None:
    odd = tmp_path / "export-01.csv"
    odd.write_text("x\n")
    pairs = resolve_inputs([f"deliveries={odd}", str(FIXTURES / "contract_ok")])
    assert [t for t, _ in pairs] == [
        "stores",
        "deliveries",
        "deliveries",
        "staffing",
        "conditions",
        "calendar",
    ]
    with pytest.raises(ValueError, match="no such file"):
        resolve_inputs([str(tmp_path / "nope.csv")])


def test_a_failure_half_way_through_a_world_leaves_the_old_one(
    world_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = digest(world_copy)
    real = generator_module.day_deliveries

    def failing(exo, sd, day, first_seq):  # type: ignore[no-untyped-def]
        if day == 25:
            raise RuntimeError("disk full (simulated)")
        return real(exo, sd, day, first_seq)

    monkeypatch.setattr(generator_module, "day_deliveries", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        generate_world(
            world_copy,
            WorldConfig(stores=8, days=40, seed=9),
            [],
            progress=False,
            rows_per_chunk=3000,
        )
    assert digest(world_copy) == before
    con = connect(world_copy, read_only=True)
    leftovers = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_load_%'"
    ).fetchone()
    assert leftovers == (0,)


def test_a_killed_load_leaves_the_old_data_and_the_next_load_works(world_copy: Path) -> None:
    before = digest(world_copy)
    script = (
        "from tools.data.synthetic import WorldConfig, generate_world\n"
        f"generate_world({str(world_copy)!r}, WorldConfig(stores=200, days=120, seed=3), [],"
        " progress=False, rows_per_chunk=100_000)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
    time.sleep(6)  # well into the deliveries (the whole load takes ~20 s)
    assert proc.poll() is None, "the load finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert digest(world_copy) == before
    generate_world(world_copy, WorldConfig(stores=5, days=20, seed=1), [], progress=False)
    assert digest(world_copy)["stores"][0] == 5


def _refusal(deliveries: Path) -> str:
    """Load the contract's stores with ``deliveries``; return the validation error's text."""
    with pytest.raises(DataValidationError) as info:
        ingest_files(
            deliveries.parent / "w.duckdb",
            [str(FIXTURES / "contract_ok" / "stores.csv"), str(deliveries)],
        )
    return str(info.value)


def test_a_renamed_column_is_named_with_the_way_to_map_it(tmp_path: Path) -> None:
    source = (FIXTURES / "contract_ok" / "deliveries.csv").read_text()
    header, rest = source.split("\n", 1)
    header = header.replace("store_id", "shop_id").replace("delivered_ts", "delivery_time")
    (tmp_path / "deliveries.csv").write_text(header + "\n" + rest)
    message = _refusal(tmp_path / "deliveries.csv")
    assert "missing required column(s): store_id" in message
    assert "perhaps shop_id as store_id" in message and "--mapping" in message


def test_an_unreadable_value_is_not_reported_again_by_the_rules_that_read_it(
    tmp_path: Path,
) -> None:
    source = (FIXTURES / "contract_ok" / "deliveries.csv").read_text().splitlines()
    header = source[0].split(",")
    at = header.index("delivered_ts")
    rows = [r.split(",") for r in source[1:]]
    row = next(r for r in rows if r[header.index("status")] == "delivered")
    row[at] = "31/02/2026 11:00"
    (tmp_path / "deliveries.csv").write_text(
        "\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n"
    )
    message = _refusal(tmp_path / "deliveries.csv")
    assert "deliveries.delivered_ts: values that are not a valid timestamp" in message
    assert "delivered_ts is empty" not in message
