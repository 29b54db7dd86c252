"""CSV files as spreadsheets save them: separators, decimal commas, encodings, byte-order marks."""

from __future__ import annotations

import codecs
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from tools.data import DataValidationError, connect
from tools.data.dialect import CsvOptions
from tools.data.files import ingest_files

FIXTURES = Path(__file__).parents[3] / "fixtures"
EXCEL = FIXTURES / "ingest" / "excel_fr"


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = connect(db, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_french_excel_export_loads_with_its_encoding_named(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    ingest_files(db, [str(EXCEL)], csv=CsvOptions(encoding="cp1252"))
    assert rows(db, "SELECT store_id, name, lat, lon, timezone FROM stores ORDER BY 1") == [
        ("P01", "Café Müller", 48.8532, 2.3692, "Europe/Paris"),
        ("P02", "Boulangerie Noël (€ 2,50 le pain)", 48.8483, 2.3959, "Europe/Paris"),
    ]
    # ';' and decimal commas detected; the UTF-8 byte-order mark does not hide delivery_id;
    # offsets after a space read as offsets
    assert rows(db, "SELECT delivery_id, distance_km, order_ts FROM deliveries ORDER BY 1") == [
        ("f1", 3.5, datetime(2026, 3, 1, 7, 0)),
        ("f2", 12.25, datetime(2026, 3, 1, 8, 0)),
        ("f3", 0.8, datetime(2026, 3, 1, 8, 30)),
    ]


def test_forced_separator_and_decimal_mark_give_the_same_rows(tmp_path: Path) -> None:
    forced = CsvOptions(delimiter=";", decimal=",", encoding="cp1252")
    ingest_files(tmp_path / "a.duckdb", [str(EXCEL)], csv=forced)
    ingest_files(tmp_path / "b.duckdb", [str(EXCEL)], csv=CsvOptions(encoding="windows-1252"))
    query = "SELECT * FROM deliveries ORDER BY 1"
    assert rows(tmp_path / "a.duckdb", query) == rows(tmp_path / "b.duckdb", query)


def test_without_its_encoding_the_error_names_it_and_nothing_changes(world_copy: Path) -> None:
    before = rows(world_copy, "SELECT count(*), sum(hash(s)) FROM stores AS s")
    with pytest.raises(DataValidationError) as info:
        ingest_files(world_copy, [str(EXCEL / "stores.csv")])
    message = str(info.value)
    assert "file cannot be read as CSV: it is not UTF-8 text (byte 0xE9 on line 2)" in message
    assert "it looks like cp1252" in message and "load it with --encoding cp1252" in message
    assert "CSV Error on Line" not in message and "Possible Solution" not in message
    assert rows(world_copy, "SELECT count(*), sum(hash(s)) FROM stores AS s") == before


def test_a_wrong_encoding_is_reported_with_the_byte_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "stores.csv"
    bad.write_bytes(b"store_id,name,region,market\nA1,ok,R,M\nA2,\x81 bad,R,M\n")
    with pytest.raises(DataValidationError, match=r"not cp1252 text \(byte 0x81 on line 3\)"):
        ingest_files(tmp_path / "x.duckdb", [str(bad)], csv=CsvOptions(encoding="cp1252"))


def test_a_byte_order_mark_declares_the_encoding(tmp_path: Path) -> None:
    text = "store_id\tname\tregion\tmarket\nA1\tSão Paulo Centro\tBR-SP\tSão Paulo\n"
    path = tmp_path / "stores.tsv"  # Excel's "Unicode text"
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    # the mark wins even over a wrong option, as it does for the UTF-8 deliveries.csv above
    ingest_files(tmp_path / "a.duckdb", [str(path)], csv=CsvOptions(encoding="cp1252"))
    assert rows(tmp_path / "a.duckdb", "SELECT name FROM stores") == [("São Paulo Centro",)]
    path.write_bytes(text.encode("utf-16-le"))  # no mark: recognised, named, not guessed
    hint = "it is utf-16-le text, not UTF-8: load it with --encoding utf-16-le"
    with pytest.raises(DataValidationError, match=hint):
        ingest_files(tmp_path / "b.duckdb", [str(path)])
    ingest_files(tmp_path / "b.duckdb", [str(path)], csv=CsvOptions(encoding="utf-16-le"))
    assert rows(tmp_path / "b.duckdb", "SELECT name FROM stores") == [("São Paulo Centro",)]


def test_a_semicolon_file_with_decimal_points_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv"
    path.write_text("store_id;name;region;market;lat\nA1;One;R;M;48.5\nA2;Two, Ltd;R;M;-3.25\n")
    ingest_files(tmp_path / "a.duckdb", [str(path)])
    assert rows(tmp_path / "a.duckdb", "SELECT name, lat FROM stores ORDER BY 1") == [
        ("One", 48.5),
        ("Two, Ltd", -3.25),
    ]


def test_numbers_a_decimal_comma_cannot_read_are_reported_as_written(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv"
    path.write_text("store_id;name;region;market;lat\nA1;One;R;M;48,5\nA2;Two;R;M;1.234,5\n")
    with pytest.raises(DataValidationError) as info:
        ingest_files(tmp_path / "a.duckdb", [str(path)], csv=CsvOptions(decimal=","))
    assert "stores.lat: values that are not a valid float" in str(info.value)
    assert "row 2: '1.234,5'" in str(info.value)


def test_parquet_files_load_as_they_are_and_naive_times_take_the_assumed_zone(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src.duckdb"
    con = connect(src)
    con.execute(
        "CREATE TABLE d AS SELECT 'p1' AS delivery_id, 'o1' AS order_id, 'A01' AS store_id, "
        "'dsp' AS carrier, TIMESTAMP '2017-10-15 00:00:00' AS order_ts, "
        "TIMESTAMP '2017-10-15 00:00:00' AS promised_start, DATE '2017-10-16' AS promised_end, "
        "'in_transit' AS status, 2 AS items, 1.5 AS distance_km"
    )
    con.execute(f"COPY d TO '{tmp_path / 'deliveries.parquet'}' (FORMAT parquet)")
    con.close()
    shutil.copy(FIXTURES / "contract_ok" / "stores.csv", tmp_path / "stores.csv")
    db = tmp_path / "p.duckdb"
    files = [str(tmp_path / "stores.csv"), str(tmp_path / "deliveries.parquet")]
    with pytest.raises(DataValidationError, match="timestamps without a time zone"):
        ingest_files(db, files)
    ingest_files(db, files, assume_tz="America/Sao_Paulo")
    assert rows(db, "SELECT order_ts, promised_end, items, distance_km FROM deliveries") == [
        (datetime(2017, 10, 15, 3, 0), datetime(2017, 10, 16, 2, 0), 2, 1.5)
    ]


def test_cli_options_are_checked_with_readable_messages() -> None:
    assert CsvOptions.from_cli(delimiter="tab", decimal=None, encoding="CP1252") == CsvOptions(
        delimiter="\t", encoding="cp1252"
    )
    with pytest.raises(ValueError, match="^--delimiter: the delimiter must be one character"):
        CsvOptions.from_cli(delimiter=";;", decimal=None, encoding=None)
    with pytest.raises(ValueError, match="^--decimal: the decimal mark must be '.' or ','"):
        CsvOptions.from_cli(delimiter=None, decimal=";", encoding=None)
    with pytest.raises(ValueError, match="^--encoding: unknown encoding 'latin-9000'"):
        CsvOptions.from_cli(delimiter=None, decimal=None, encoding="latin-9000")
