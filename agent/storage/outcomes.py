"""Outcomes of dispatched actions (SQLAlchemy Core, SQLite or PostgreSQL).

One row per dispatched action, written once when its day is in the data (the first
measurement wins: an outcome is a fact about a past day, not re-estimated).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Engine, select

from agent.storage.db import insert_ignore
from agent.storage.schema import action_outcomes
from tools.catalog.calibration import TrackedOutcome, side

Method = Literal["simulated", "no_action_forecast"]


class OutcomeRecord(BaseModel):
    """What one dispatched action realised against what it promised, in late deliveries."""

    run_id: str
    idx: int
    action_id: str
    target: str | None
    stores: list[str]
    applied_on: str = Field(description="Service date the action was for (ISO).")
    sized_for: str = Field(description="Service date whose excess the promise measured (ISO).")
    judged: bool = Field(
        True, description="Enters the action's track record (its figure judges the estimate)."
    )
    model_avoided: float
    model_low: float
    model_high: float
    promised: float
    promised_low: float
    promised_high: float
    realised: float
    method: Method
    caveat: str | None = None
    dispatched_at: str
    measured_at: str

    def tracked(self) -> TrackedOutcome:
        """Return the figures the calibration judges."""
        return TrackedOutcome.model_validate(self.model_dump())

    @property
    def inside(self) -> bool:
        """Whether the realised figure is inside the interval as promised (as shown)."""
        return side(self.realised, self.promised_low, self.promised_high) == 0


def record_outcome(engine: Engine, record: OutcomeRecord) -> bool:
    """Store an outcome; False when the action's outcome was already measured."""
    row: dict[str, Any] = record.model_dump()
    row["stores"] = json.dumps(record.stores)
    with engine.begin() as con:
        done = con.execute(insert_ignore(engine, action_outcomes, ["run_id", "idx"]).values(**row))
        return bool(done.rowcount)


def list_outcomes(engine: Engine, action_id: str | None = None) -> list[OutcomeRecord]:
    """Outcomes in dispatch order, oldest first (one action's, or all)."""
    query = select(action_outcomes).order_by(
        action_outcomes.c.dispatched_at, action_outcomes.c.run_id, action_outcomes.c.idx
    )
    if action_id is not None:
        query = query.where(action_outcomes.c.action_id == action_id)
    with engine.connect() as con:
        rows = con.execute(query).mappings().all()
    return [
        OutcomeRecord.model_validate({**row, "stores": json.loads(row["stores"] or "[]")})
        for row in rows
    ]


def measured_keys(engine: Engine) -> set[tuple[str, int]]:
    """(run, position) of every action whose outcome is stored."""
    with engine.connect() as con:
        rows = con.execute(select(action_outcomes.c.run_id, action_outcomes.c.idx)).all()
    return {(r[0], int(r[1])) for r in rows}
