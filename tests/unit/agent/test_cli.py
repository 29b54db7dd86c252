"""The ``lastmile`` command line, through the installed console script and in-process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.interfaces.cli import app
from agent.settings import get_settings
from tools.data import connect
from tools.data.truth_file import truth_path

FIXTURES = Path(__file__).parents[2] / "fixtures"
runner = CliRunner()


def lastmile() -> str:
    # The script sits next to the interpreter running the tests (the project's .venv).
    exe = Path(sys.executable).parent / "lastmile"
    assert exe.exists(), "the lastmile console script is not installed (run make setup)"
    return str(exe)


def test_help_lists_every_command() -> None:
    out = subprocess.run([lastmile(), "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("generate", "ingest", "info", "kpis"):
        assert command in out
    sub = subprocess.run(
        [lastmile(), "ingest", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "olist" in sub and "csv" in sub


def test_generate_acceptance_command(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    done = subprocess.run(
        [
            lastmile(),
            "generate",
            "--stores",
            "20",
            "--days",
            "60",
            "--seed",
            "1",
            "--db",
            str(db),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(done.stdout)
    assert report["rows"]["stores"] == 20
    con = connect(db, read_only=True)
    names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    views = {
        r[0]
        for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    assert {"stores", "deliveries", "staffing", "conditions", "calendar"} <= names
    # the answer key is not in the agent's database but in a file of its own beside it
    assert "incidents" not in names and truth_path(db).exists()
    assert "store_day" in views
    assert con.execute("SELECT count(*) FROM store_day").fetchone() == (1200,)


def test_generate_with_an_incidents_file_and_inspect(tmp_path: Path) -> None:
    incidents = tmp_path / "incidents.yaml"
    incidents.write_text("incidents:\n  - {kind: driver_shortage, store: S002, start_day: 20}\n")
    db = tmp_path / "w.duckdb"
    result = runner.invoke(
        app,
        [
            "generate",
            "--stores",
            "6",
            "--days",
            "30",
            "--seed",
            "2",
            "--incidents",
            str(incidents),
            "--db",
            str(db),
        ],
    )
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["info", "--db", str(db), "--json"])
    payload = json.loads(info.stdout)
    injected = [i for i in payload["incidents"] if i["injected"]]
    assert injected[0]["kind"] == "driver_shortage" and injected[0]["target"] == "S002"
    kpis = runner.invoke(
        app,
        [
            "kpis",
            "--db",
            str(db),
            "--store",
            "S002",
            "--from",
            "2026-01-20",
            "--to",
            "2026-01-21",
            "--json",
        ],
    )
    rows = json.loads(kpis.stdout)
    assert len(rows) == 2 and rows[1]["no_show_rate"] > rows[0]["no_show_rate"]  # day 20 = Jan 21


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["generate", "--stores", "5", "--days", "20", "--incidents", "{missing}"],
            "does not exist",
        ),
        (["generate", "--stores", "0", "--days", "20"], "stores"),
        (["generate", "--start-date", "2026-02-30"], "day is out of range"),
        (["generate", "--weather-feed", "nope"], "--weather-feed must be 'full', 'flat' or"),
        (["kpis", "--by", "month"], "--by must be day, week or total"),
        (["info"], "does not exist: generate or ingest data first"),
        (["ingest", "csv", "{bad}"], "deliveries.carrier: values outside the allowed set"),
        (["ingest", "olist", "--path", "{tmp}"], "is not an Olist dataset folder"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path: Path, args: list[str], message: str) -> None:
    subs = {
        "{missing}": str(tmp_path / "none.yaml"),
        "{bad}": str(FIXTURES / "bad_inputs" / "deliveries_unknown_carrier.csv"),
        "{tmp}": str(tmp_path),
    }
    argv = [subs.get(a, a) for a in args] + ["--db", str(tmp_path / "x.duckdb")]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_generate_shapes_the_world_like_real_data(tmp_path: Path) -> None:
    db = tmp_path / "shaped.duckdb"
    argv = ["generate", "--stores", "4", "--days", "14", "--db", str(db), "--json"]
    shape = ["--weather-feed", "none", "--staffing-feed", "none", "--carriers", "own_fleet"]
    result = runner.invoke(app, [*argv, *shape, "--mean-orders", "50"])
    assert result.exit_code == 0, result.output
    con = connect(db, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM staffing").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM conditions").fetchone() == (0,)
        carriers = con.execute("SELECT DISTINCT carrier FROM deliveries").fetchall()
        assert carriers == [("own_fleet",)]
        per_day = con.execute("SELECT avg(orders) FROM store_day").fetchone()[0]  # type: ignore[index]
        assert 30 < per_day < 80
    finally:
        con.close()


def test_the_database_defaults_to_the_lastmile_db_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "from_env.duckdb"
    monkeypatch.setenv("LASTMILE_DB", str(db))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["generate", "--stores", "3", "--days", "14"])
        assert result.exit_code == 0, result.output
        assert db.exists()
    finally:
        get_settings.cache_clear()


def test_triage_approve_and_inspect_from_the_command_line(
    small_world_db: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite"
    out_dir = tmp_path / "out"
    common = ["--db", str(small_world_db), "--state-db", str(state)]
    result = runner.invoke(
        app, ["triage", "--date", "2026-02-10", "--out-dir", str(out_dir), *common]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads((out_dir / "plan.json").read_text())
    run_id = plan["run"]["run_id"]
    assert plan["run"]["status"] == "waiting_approval"
    assert "S003" in (out_dir / "plan.md").read_text()
    assert {p.name for p in out_dir.glob("*.png")} == {
        "kpi_S003.png",
        "forecast_S003.png",
        "causes_S003.png",
    }
    # The hint names the databases the triage used, so that it works when copied verbatim.
    assert (
        f"lastmile approve {run_id} --all --db {small_world_db} --state-db {state}" in result.output
    )
    twice = runner.invoke(app, ["approve", run_id, "--approve", "0", "--reject", "0", *common])
    assert twice.exit_code == 2 and "action 0 is decided twice" in twice.output
    approved = runner.invoke(
        app,
        ["approve", run_id, "--edit", "0:drivers=3", "--by", "maria", "--format", "json", *common],
    )
    assert approved.exit_code == 0, approved.output
    payload = json.loads(approved.stdout)
    assert payload["run"]["status"] == "done"
    assert payload["run"]["dispatched"][0]["parameters"] == {"drivers": 3.0}
    again = runner.invoke(app, ["approve", run_id, "--all", *common])
    assert again.exit_code == 2 and "not waiting for approval" in again.output
    # a unique start of the id is enough (runs list may be read on a narrow terminal)
    shown = runner.invoke(app, ["runs", "show", run_id[:6], "--json", *common])
    record = json.loads(shown.stdout)
    assert record["run_id"] == run_id
    assert [e["tool"] for e in record["trace"] if e["kind"] == "tool"][:5] == [
        "check_data_health",
        "scan_anomalies",
        "diagnose",
        "forecast",
        "recommend_actions",
    ]
    listed = runner.invoke(app, ["runs", "list", *common])
    assert run_id in listed.output


def test_ask_gives_a_grounded_answer_offline(small_world_db: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "ask",
            "why were deliveries late at store S003 on 2026-02-10?",
            "--today",
            "2026-02-11",
            "--format",
            "json",
            "--db",
            str(small_world_db),
            "--state-db",
            str(tmp_path / "s.sqlite"),
        ],
    )
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)["run"]
    assert run["plan"]["hypotheses"][0]["cause"] == "driver_no_shows"
    assert run["plan"]["actions"][0]["action_id"] == "call_backup_drivers"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["triage", "--scope", "shelf:3"], "--scope must be all, region:ID or store:ID"),
        (["triage", "--scope", "store:S777"], "unknown store 'S777'"),
        (["approve", "nope"], "no run 'nope'"),
        (["approve", "x", "--edit", "drivers=3"], "no run 'x'"),
        (["ask", " "], "the question is empty"),
    ],
)
def test_agent_commands_reject_bad_input(
    small_world_db: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(
        app, [*args, "--db", str(small_world_db), "--state-db", str(tmp_path / "s.sqlite")]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_chat_streams_tool_steps_then_the_plan(small_world_db: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["chat", "--db", str(small_world_db), "--state-db", str(tmp_path / "s.sqlite")],
        input="why was S003 late on 2026-02-10?\n\n",
    )
    assert result.exit_code == 0, result.output
    for step in ("scan_anomalies: ->", "diagnose: ->", "forecast: ->", "recommend_actions: ->"):
        assert step in result.output
    assert "Action plan" in result.output


def test_a_run_that_breaks_is_one_clear_line_not_a_traceback(
    small_world_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent.nodes.triage as triage

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the detector fell over")

    monkeypatch.setattr(triage, "call_tool", broken)
    state = tmp_path / "state.sqlite"
    common = ["--db", str(small_world_db), "--state-db", str(state)]
    result = runner.invoke(app, ["triage", "--date", "2026-02-10", *common])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    run_id = re.search(r"run (\w{12}) failed: RuntimeError: the detector fell over", result.output)
    assert run_id, result.output
    shown = runner.invoke(app, ["runs", "show", run_id.group(1), "--json", *common])
    assert json.loads(shown.stdout)["status"] == "failed"
