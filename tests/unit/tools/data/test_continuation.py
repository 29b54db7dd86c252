"""A world continued day by day: the world generated at once, unless actions are carried out."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tools.data.synthetic import IncidentSpec, WorldConfig, generate_world
from tools.data.synthetic.actions import AppliedAction
from tools.data.synthetic.continuation import advance_world, world_clock

# closed Sundays and a lost day near the end: the continued days keep the world's gaps
WORLD = WorldConfig(
    stores=6, days=30, seed=9, closed_weekdays=[6], gaps=[{"start_day": 28, "days": 1}]
)
SHORTAGE = IncidentSpec.model_validate(
    {"kind": "driver_shortage", "store": "S002", "start_day": 27, "days": 2, "magnitude": 1.5}
)
THROUGH = date(2026, 1, 26)  # day 25
NEXT = date(2026, 1, 27)
TABLES = ("deliveries", "staffing", "conditions", "calendar", "stores")


def _table(db: Path, table: str) -> pd.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("worlds") / "full.duckdb"
    generate_world(path, WORLD, [SHORTAGE], progress=False)
    return path


def _continued(tmp_path: Path, world: WorldConfig = WORLD) -> Path:
    path = tmp_path / "continued.duckdb"
    generate_world(path, world, [SHORTAGE], progress=False, through=THROUGH)
    return path


def _drivers(n: float, day: date = NEXT) -> AppliedAction:
    return AppliedAction(action_id="call_backup_drivers", day=day, stores=["S002"], value=n)


def test_a_world_lived_day_by_day_without_actions_is_the_world_generated_at_once(
    full: Path, tmp_path: Path
) -> None:
    db = _continued(tmp_path)
    assert _table(db, "deliveries").promised_end.max() < pd.Timestamp(NEXT)
    for _ in range(4):  # through the gap and to the world's last day
        advance_world(db)
    assert world_clock(db).through == date(2026, 1, 30)
    for table in TABLES:
        assert _table(db, table).equals(_table(full, table)), table


def test_approved_backup_drivers_turn_up_in_the_data_and_cut_lateness(
    full: Path, tmp_path: Path
) -> None:
    db = _continued(tmp_path)
    advance_world(db, [_drivers(5)])
    day = pd.Timestamp(NEXT)
    lived = _table(db, "staffing")
    world = _table(full, "staffing").pipe(lambda f: f[f.date <= day].reset_index(drop=True))
    on = (lived.date == day) & (lived.store_id == "S002")
    assert int(lived[on].present_drivers.iloc[0]) == int(world[on].present_drivers.iloc[0]) + 5
    assert lived[~on].equals(world[~on]), "other store-days untouched"

    def late(frame: pd.DataFrame) -> int:
        rows = frame[(frame.store_id == "S002") & (frame.promised_end.dt.normalize() == day)]
        return int((rows.delivered_ts > rows.promised_end).sum() + (rows.status == "failed").sum())

    assert late(_table(db, "deliveries")) < late(_table(full, "deliveries"))
    assert world_clock(db).applied == [_drivers(5)]


def test_a_world_carrying_out_half_an_action_gets_half_the_drivers(tmp_path: Path) -> None:
    halved = WORLD.model_copy(update={"action_efficacy": {"call_backup_drivers": 0.5}})
    db = _continued(tmp_path, halved)
    advance_world(db, [_drivers(6)])
    (tmp_path / "plain").mkdir()
    plain = _continued(tmp_path / "plain")
    advance_world(plain)

    def present(db: Path) -> int:
        f = _table(db, "staffing")
        return int(
            f[(f.date == pd.Timestamp(NEXT)) & (f.store_id == "S002")].present_drivers.iloc[0]
        )

    assert present(db) == present(plain) + 3


def test_bad_continuations_are_refused_and_write_nothing(full: Path, tmp_path: Path) -> None:
    db = _continued(tmp_path)
    rows = len(_table(db, "deliveries"))
    with pytest.raises(ValueError, match=r"next day of the world is 2026-01-27"):
        advance_world(db, [_drivers(2, date(2026, 1, 28))])
    with pytest.raises(ValueError, match="cannot apply 'hire_more_staff'"):
        advance_world(
            db, [AppliedAction(action_id="hire_more_staff", day=NEXT, stores=["S002"], value=1)]
        )
    assert len(_table(db, "deliveries")) == rows and world_clock(db).through == THROUGH
    with pytest.raises(ValueError, match="the world ends on 2026-01-30"):
        advance_world(full)
    with pytest.raises(ValueError, match="outside the world"):
        generate_world(tmp_path / "x.duckdb", WORLD, [], progress=False, through=date(2026, 3, 1))


def test_a_mechanism_shift_outside_the_world_is_refused() -> None:
    with pytest.raises(ValueError, match="starts on day 30, after the world's last day"):
        WorldConfig(
            stores=2,
            days=20,
            mechanism_shifts=[{"parameter": "beta_opd", "start_day": 30, "factor": 2}],
        )
