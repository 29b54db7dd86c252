"""Continue a generated world day by day, with the actions approved meanwhile carried out.

``lastmile generate --through D`` writes a world up to D; :func:`advance_world` appends the
next day as the world lives it: the structural model simulated with every action approved
for that day (backup drivers who turn up, deferred slots, widened windows...), then that
day's deliveries, rosters and conditions drawn and appended in one atomic load. The agent
then triages data in which its own approved actions happened, and their realised effect is
in the deliveries, not only in the simulated outcome record.

Without actions the continued world is the world generated at once, row for row (the same
random streams per day, the same delivery ids). A world's ``action_efficacy`` is carried out
as a share of each lever's setting (half the backup drivers turn up); the outcome record
(:func:`tools.data.synthetic.actions.realised_outcomes`) moves the store-days that share of
the way, which for a lever acting linearly is the same.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from tools.data.backend import DuckDBBackend
from tools.data.store import AtomicLoad, LoadReport
from tools.data.synthetic.actions import AppliedAction, interventions, world_of
from tools.data.synthetic.deliveries import day_deliveries
from tools.data.synthetic.generator import (
    World,
    conditions_frame,
    deliveries_sql,
    staffing_frame,
)
from tools.data.synthetic.scm import Intervention, simulate

__all__ = ["WorldClock", "advance_world", "world_clock"]


class WorldClock(BaseModel):
    """Where a generated world's data ends, and what was carried out in it so far."""

    through: date
    next_seq: int
    id_width: int
    applied: list[AppliedAction] = []


def world_clock(db: str | Path) -> WorldClock:
    """Return the clock of a generated world.

    Raises:
        ValueError: the database was not generated, or by a version without a clock.
    """
    meta = DuckDBBackend(db).metadata("world_clock")
    if meta is None:
        raise ValueError(
            f"{db} is not a generated world that can be continued (real data grows with "
            "`lastmile ingest --mode append`; a world generated before continuation existed "
            "must be generated again, e.g. with `lastmile generate --through DATE`)"
        )
    return WorldClock.model_validate(meta)


def advance_world(db: str | Path, actions: list[AppliedAction] | None = None) -> LoadReport:
    """Append the day after the world's last one, with ``actions`` carried out on it.

    Args:
        db: a world generated with ``through`` (or advanced since).
        actions: approved actions for that day (each on its stores, at its setting).

    Returns:
        What the append load wrote.

    Raises:
        ValueError: not a continued world, its last day already written, an action for
            another day or one the simulator cannot carry out; nothing is written.
        TruthMissingError: the world's ground truth file is gone (it holds its incidents).
    """
    clock = world_clock(db)
    world = world_of(db)
    cfg = world.config
    day = clock.through + timedelta(days=1)
    if day > cfg.day(cfg.days - 1):
        raise ValueError(
            f"the world ends on {clock.through}: generate a longer one (--days) to go on"
        )
    actions = list(actions or [])
    wrong = sorted({a.day.isoformat() for a in actions if a.day != day})
    if wrong:
        raise ValueError(f"the next day of the world is {day}; actions given for {wrong}")
    d = (day - cfg.start_date).days
    carried: list[Intervention] = []
    for action in actions:
        share = cfg.action_efficacy.get(action.action_id, 1.0)
        carried += interventions(world, action.model_copy(update={"value": action.value * share}))
    lived = World(
        exo=world.exo, shocks=world.shocks, store_days=simulate(world.exo, world.shocks, carried)
    )
    frame = day_deliveries(world.exo, lived.store_days, d, clock.next_seq)
    drawn = len(frame)
    frame = frame[world.exo.coverage.observed[d][frame["store_idx"].to_numpy()]]
    stamp = pd.Timestamp(day)
    with AtomicLoad(db, source=f"world day {day}", mode="append", assume_tz="UTC") as load:
        if cfg.staffing_feed != "none":
            staffing = staffing_frame(lived)
            load.add_frame("staffing", staffing[staffing.date == stamp], "generator:staffing")
        if cfg.weather_feed != "none":
            conditions = conditions_frame(lived)
            load.add_frame(
                "conditions", conditions[conditions.date == stamp], "generator:conditions"
            )
        store_map = pd.DataFrame({"store_idx": range(cfg.stores), "store_id": cfg.store_ids})
        load.con.register("_store_map_frame", store_map)
        load.con.execute("CREATE TEMP TABLE _store_map AS SELECT * FROM _store_map_frame")
        load.con.register("_chunk", frame)
        load.add_sql("deliveries", deliveries_sql("_chunk", clock.id_width), f"world day {day}")
        load.con.unregister("_chunk")
        load.con.execute("DROP TABLE _store_map")
        applied: list[dict[str, Any]] = [
            a.model_dump(mode="json") for a in [*clock.applied, *actions]
        ]
        load.set_metadata(
            "world_clock",
            {
                "through": day.isoformat(),
                "next_seq": clock.next_seq + drawn,
                "id_width": clock.id_width,
                "applied": applied,
            },
        )
        return load.commit()
