"""Living a generated world's next days with the approved actions carried out.

``lastmile advance`` (a mixin of :class:`agent.service.AgentService`) appends the day after a
continued world's last one (:func:`tools.data.synthetic.continuation.advance_world`),
carrying out every action approved for that day: the data the next triage reads then holds
what the approved actions did. Only generated worlds (``lastmile generate --through``) can
be continued; real data arrives by ``lastmile ingest``.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from agent.errors import RunInputError
from agent.outcomes import action_days, stores_by_target
from agent.storage.approvals import outbox
from tools.analytics.scope import load_catalog
from tools.data.backend import DuckDBBackend
from tools.data.synthetic.actions import AppliedAction, simulable, world_of
from tools.data.synthetic.continuation import advance_world, world_clock
from tools.data.truth_file import TruthMissingError

if TYPE_CHECKING:
    from agent.storage.runs import RunRecord, RunStore


class DayLived(BaseModel):
    """One appended day of a continued world."""

    day: date
    deliveries: int = Field(description="Delivery rows appended.")
    carried_out: list[AppliedAction] = Field(description="Approved actions carried out.")
    not_simulable: list[str] = Field(
        default_factory=list, description="Approved actions the world cannot carry out."
    )


class WorldDays:
    """``advance_world`` for :class:`agent.service.AgentService` (a mixin)."""

    db: Path
    store: RunStore

    if TYPE_CHECKING:

        def record(self, run_id: str) -> RunRecord: ...  # noqa: D102

    def advance_world(self, days: int = 1) -> list[DayLived]:
        """Append the next ``days`` days of the world, each with its approved actions.

        Raises:
            RunInputError: not a continued generated world, or its last day is written.
        """
        try:
            clock = world_clock(self.db)
            end = world_of(self.db).config
        except (ValueError, TruthMissingError, FileNotFoundError) as exc:
            raise RunInputError(str(exc)) from None
        left = (end.day(end.days - 1) - clock.through).days
        if days > left:
            raise RunInputError(
                f"the world ends on {end.day(end.days - 1)}: {left} day(s) left after "
                f"{clock.through}; ask for at most {left}, or generate a longer world (--days)"
            )
        lived = []
        for _ in range(days):
            try:
                day = world_clock(self.db).through + timedelta(days=1)
                actions, skipped = self._approved_for(day)
                report = advance_world(self.db, actions)
            except (ValueError, TruthMissingError, FileNotFoundError) as exc:
                raise RunInputError(str(exc)) from None
            lived.append(
                DayLived(
                    day=day,
                    deliveries=report.rows.get("deliveries", 0),
                    carried_out=actions,
                    not_simulable=skipped,
                )
            )
        return lived

    def triages_recorded(self) -> int:
        """Return how many runs over this world the state store holds (0: maybe the wrong one)."""
        return sum(1 for r in self.store.list_runs(limit=1000) if r["kind"] == "triage")

    def _approved_for(self, day: date) -> tuple[list[AppliedAction], list[str]]:
        """Return the approved actions carried out on ``day``, and the ones it cannot do."""
        stores_of = stores_by_target(load_catalog(DuckDBBackend(self.db)))
        records: dict[str, RunRecord] = {}
        actions, skipped = [], []
        for a in outbox(self.store.engine):
            if a.run_id not in records:
                records[a.run_id] = self.record(a.run_id)
            record = records[a.run_id]
            plan_actions = (record.plan or {}).get("actions", [])
            if a.idx >= len(plan_actions):
                continue
            days = action_days(plan_actions[a.idx])
            if days is None or days[0] != day:
                continue
            stores = stores_of.get(a.target or str(plan_actions[a.idx].get("target") or "all"))
            values = list(a.parameters.values())
            if not simulable(a.action_id) or not stores or not values:
                skipped.append(a.action_id)
                continue
            actions.append(
                AppliedAction(action_id=a.action_id, day=day, stores=stores, value=values[0])
            )
        return actions, skipped
