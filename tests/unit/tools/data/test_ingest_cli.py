"""`lastmile ingest csv` / `ingest olist` options: mappings, dialects, encodings, promises."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.interfaces.cli import app
from tools.data import connect

FIXTURES = Path(__file__).parents[3] / "fixtures"
INGEST = FIXTURES / "ingest"
runner = CliRunner()


def run(argv: list[str], code: int) -> str:
    result = runner.invoke(app, argv)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def test_a_mapping_loads_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    mapping = INGEST / "courier" / "courier.yaml"
    out = run(["ingest", "csv", "--mapping", str(mapping), "--db", str(db), "--json"], 0)
    assert '"deliveries": 6' in out
    con = connect(db, read_only=True)
    assert con.execute(
        "SELECT count(*) FROM stores WHERE timezone = 'Europe/Paris'"
    ).fetchone() == (2,)
    con.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{mapping}", "{excel}"], "give either FILES or --mapping, not both"),
        ([], "name the files to load (or a folder), or a --mapping file"),
        (["{excel}", "--delimiter", "semicolon"], "--delimiter: the delimiter must be one"),
        (["{excel}", "--decimal", "comma"], "--decimal: the decimal mark must be '.' or ','"),
        (["{excel}", "--encoding", "win-1252"], "--encoding: unknown encoding 'win-1252'"),
        (["{excel}", "--assume-timezone", "Paris"], "unknown time zone 'Paris' in"),
        (["{excel}"], "it looks like cp1252 (or "),
    ],
)
def test_bad_options_exit_2_with_one_readable_message(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    subs = {
        "{mapping}": ["--mapping", str(INGEST / "courier" / "courier.yaml")],
        "{excel}": [str(INGEST / "excel_fr")],
    }
    args = [part for a in argv for part in subs.get(a, [a])]
    out = run(["ingest", "csv", *args, "--db", str(tmp_path / "x.duckdb")], 2)
    assert message in out
    assert not (tmp_path / "x.duckdb").exists()


def test_spreadsheet_options_load_a_french_excel_export(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    excel = str(INGEST / "excel_fr")
    run(["ingest", "csv", excel, "--db", str(db), "--encoding", "cp1252"], 0)
    run(["ingest", "csv", excel, "--db", str(db), "--encoding", "cp1252", "--delimiter", ";"], 0)
    run(["ingest", "csv", excel, "--db", str(db), "--encoding", "cp1252", "--decimal", ","], 0)
    con = connect(db, read_only=True)
    assert con.execute("SELECT name FROM stores ORDER BY 1 LIMIT 1").fetchone() == (
        "Boulangerie Noël (€ 2,50 le pain)",
    )
    con.close()


def test_a_bad_mapping_exits_2_naming_the_line(tmp_path: Path) -> None:
    shutil.copytree(INGEST / "courier", tmp_path / "courier")
    mapping = tmp_path / "courier" / "courier.yaml"
    mapping.write_text(mapping.read_text().replace("status: State", "status: Statee"))
    out = run(["ingest", "csv", "--mapping", str(mapping), "--db", str(tmp_path / "x.db")], 2)
    assert "courier.yaml line 28, tables.deliveries.columns.status: column 'Statee' is not" in out


def test_olist_promise_date_option(tmp_path: Path) -> None:
    db = tmp_path / "o.duckdb"
    dst = str(INGEST / "olist_dst")
    run(["ingest", "olist", "--path", dst, "--db", str(db), "--promise-date", "end_of_day"], 0)
    con = connect(db, read_only=True)
    got = con.execute(
        "SELECT promised_end FROM deliveries WHERE order_id LIKE 'dst%2' LIMIT 1"
    ).fetchone()
    con.close()
    assert got == (datetime(2017, 10, 16, 1, 59, 59, 999999),)
    out = run(["ingest", "olist", "--path", dst, "--db", str(db), "--promise-date", "eod"], 2)
    assert "--promise-date must be 'start_of_day' or 'end_of_day', got 'eod'" in out
