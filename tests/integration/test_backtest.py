"""``lastmile backtest``: the alert load of replayed mornings, on a world and on real data."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.interfaces.cli import app
from tests.conftest import SMALL_WORLD
from tools.data.olist import ingest_olist

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OLIST = Path(__file__).parents[1] / "fixtures" / "olist_2017h1"


def _backtest(db: Path, start: str, end: str, out: Path) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(
        app,
        ["backtest", "--from", start, "--to", end, "--db", str(db), "--report", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (out / "backtest.md").exists()
    assert json.loads((out / "backtest.json").read_text()) == payload
    return payload  # type: ignore[no-any-return]


def test_the_small_world_reports_its_load_and_finds_the_injected_incidents(
    small_world_db: Path, tmp_path: Path
) -> None:
    start = SMALL_WORLD.start_date + timedelta(days=28)
    end = SMALL_WORLD.start_date + timedelta(days=SMALL_WORLD.days - 1)
    report = _backtest(small_world_db, start.isoformat(), end.isoformat(), tmp_path)
    assert len(report["days"]) == (end - start).days + 1
    assert report["alerts"] == sum(d["alerts"] for d in report["days"]) > 0
    store_weeks = sum(d["stores"] for d in report["days"]) / 7
    assert report["store_weeks"] == pytest.approx(store_weeks)
    assert report["alerts_per_100_store_weeks"] == pytest.approx(
        100 * report["alerts"] / store_weeks
    )
    truth = report["truth"]
    assert truth["incidents"] == 6  # every injected incident starts on day 30-52
    assert truth["recall"] >= 5 / 6 and truth["precision"] >= 0.5


def test_the_olist_slice_has_no_truth_and_a_modest_load(tmp_path: Path) -> None:
    db = tmp_path / "olist.duckdb"
    ingest_olist(OLIST, db)
    report = _backtest(db, "2017-05-01", "2017-05-31", tmp_path / "out")
    assert report["truth"] is None
    assert len(report["days"]) == 31
    assert report["alerts_per_100_store_weeks"] < 50


def test_a_period_outside_the_data_is_refused(small_world_db: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--from",
            "2030-01-01",
            "--to",
            "2030-01-05",
            "--db",
            str(small_world_db),
            "--report",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2 and "not inside the data" in result.output
