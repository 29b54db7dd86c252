"""``store_day`` kept materialised: each load refreshes only the service dates it touches,
and the table always equals the view computed from every delivery."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tools.data.backend import DuckDBBackend
from tools.data.refresh import STORE_DAY_TABLE
from tools.data.store import AtomicLoad, connect
from tools.data.synthetic import WorldConfig, generate_world
from tools.data.synthetic.continuation import advance_world
from tools.data.views import LateRule, store_day_sql

CONFIG = WorldConfig(stores=6, days=30, seed=4)


def table_and_view(db: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    con = connect(db, read_only=True)
    try:
        order = " ORDER BY store_id, date"
        table = con.execute(f"SELECT * FROM {STORE_DAY_TABLE}{order}").df()
        view = con.execute(f"SELECT * FROM ({store_day_sql()}){order}").df()
    finally:
        con.close()
    return table, view


@pytest.fixture
def refreshed(monkeypatch: pytest.MonkeyPatch) -> list[set[date] | None]:
    """The dates each load refreshed (None: a full build)."""
    import tools.data.store as store

    seen: list[set[date] | None] = []
    real = store.refresh_store_day

    def spy(con, dates, *, has_timezone):  # type: ignore[no-untyped-def]
        seen.append(None if dates is None else set(dates))
        return real(con, dates, has_timezone=has_timezone)

    monkeypatch.setattr(store, "refresh_store_day", spy)
    return seen


def test_a_new_day_refreshes_its_dates_only(tmp_path: Path, refreshed: list) -> None:  # type: ignore[type-arg]
    db = tmp_path / "w.duckdb"
    generate_world(db, CONFIG, progress=False, through=CONFIG.day(20))
    assert refreshed == [None]  # a new world: built whole
    for _ in range(2):
        advance_world(db)
        table, view = table_and_view(db)
        pd.testing.assert_frame_equal(table, view)
    dates = refreshed[-1]
    assert dates is not None and CONFIG.day(22) in dates
    assert min(dates) >= CONFIG.day(20)  # the days before the old extract end are kept
    assert len(dates) <= 4


def test_late_arriving_deliveries_refresh_their_earlier_day(
    tmp_path: Path, refreshed: list
) -> None:  # type: ignore[type-arg]
    db = tmp_path / "w.duckdb"
    generate_world(db, CONFIG, progress=False)
    day = CONFIG.day(5)
    con = connect(db, read_only=True)
    late = con.execute(
        "SELECT * FROM deliveries WHERE CAST(promised_end AS DATE) = ? LIMIT 40", [day]
    ).df()
    con.close()
    late["delivery_id"] = "late-" + late["delivery_id"]
    late["order_id"] = "late-" + late["order_id"]
    late["status"] = "failed"
    late["delivered_ts"] = pd.NaT
    with AtomicLoad(db, source="late arrivals", mode="append", assume_tz="UTC") as load:
        load.add_frame("deliveries", late, "late.csv")
        load.commit()
    assert refreshed[-1] == {day}  # the extract's end did not move
    table, view = table_and_view(db)
    pd.testing.assert_frame_equal(table, view)
    backend = DuckDBBackend(db)
    assert backend.has_store_day_table
    row = backend.query(
        "SELECT failed FROM store_day WHERE store_id = ? AND date = ?", [late.store_id.iloc[0], day]
    )
    assert int(row.failed.iloc[0]) >= (late.store_id == late.store_id.iloc[0]).sum()
    # another definition of late reads the view, not the table built with the default one
    grace = DuckDBBackend(db, late=LateRule(grace_min=30)).query(
        "SELECT sum(late) AS n FROM store_day"
    )
    assert int(grace.n.iloc[0]) < int(
        backend.query("SELECT sum(late) AS n FROM store_day").n.iloc[0]
    )
    assert day - timedelta(days=1) not in (refreshed[-1] or set())
