"""Incidents in the service: what each triage flags, and the approvals still in effect.

After a triage run is recorded, the anomalies its scan flagged on its day continue or open
incidents (:mod:`agent.storage.incidents`), and those its scope covers that are gone are
resolved. Before any run starts, the actions approved for ongoing incidents are put in the
run's context, so ``recommend_actions`` does not propose them again.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING, Any

from agent.decisions import NotAllowed
from agent.nodes.triage import triage_order
from agent.roles import allowed_scopes, may_decide
from agent.storage import incidents as store
from agent.storage.incidents import Incident, InEffect

if TYPE_CHECKING:
    from agent.results import ToolResult
    from agent.settings import Settings
    from agent.storage.runs import RunRecord, RunStore

logger = logging.getLogger(__name__)


class Incidents:
    """Incident tracking for :class:`agent.service.AgentService` (a mixin)."""

    if TYPE_CHECKING:  # what the service provides
        store: RunStore
        settings: Settings

        def _regions(self) -> dict[str, str]: ...
        def results(self, run_id: str) -> list[ToolResult]: ...  # noqa: D102
        def record(self, run_id: str) -> RunRecord: ...  # noqa: D102

    def incidents(self, include_resolved: bool = False) -> list[Incident]:
        """Return incidents, most recently seen first (ongoing only by default)."""
        return store.list_incidents(self.store.engine, include_resolved=include_resolved)

    def incident(self, incident_id: str) -> Incident:
        """Return one incident.

        Raises:
            IncidentError: no such incident.
        """
        return store.get_incident(self.store.engine, incident_id)

    def acknowledge_incident(self, incident_id: str, by: str) -> Incident:
        """Mark an ongoing incident as known and handled.

        Raises:
            IncidentError: no such incident, or it is resolved.
            NotAllowed: ``by`` may not decide on the incident's store or region.
        """
        self._may_handle(incident_id, by)
        return store.acknowledge(self.store.engine, incident_id, by)

    def snooze_incident(self, incident_id: str, by: str, days: int = 1) -> Incident:
        """Keep an ongoing incident out of the digest's alerts for ``days`` service dates.

        Raises:
            IncidentError: no such incident, it is resolved, or ``days`` is not 1..30.
            NotAllowed: ``by`` may not decide on the incident's store or region.
        """
        self._may_handle(incident_id, by)
        return store.snooze(self.store.engine, incident_id, by, days)

    def _may_handle(self, incident_id: str, by: str) -> None:
        """Check ``by`` against LASTMILE_APPROVERS, as for the incident's actions."""
        target = store.get_incident(self.store.engine, incident_id).target
        if not may_decide(self.settings.approvers, by, target, self._regions()):
            raise NotAllowed(
                f"{by} may not handle incidents at {target} "
                f"(allowed: {allowed_scopes(self.settings.approvers, by)})"
            )

    def in_effect(self, day: date | None = None) -> list[InEffect]:
        """Return actions approved for incidents ongoing on ``day``."""
        return store.in_effect(self.store.engine, day)

    def _in_effect_context(self) -> dict[str, dict[str, str]]:
        """Return the in-effect actions as a run's context wants them: target -> id -> why."""
        out: dict[str, dict[str, str]] = {}
        for a in self.in_effect():
            out.setdefault(a.target, {}).setdefault(a.action_id, a.reason)
        return out

    def _track_incidents(self, run_id: str) -> list[Incident]:
        """Record what a finished triage run flagged on its day (a no-op for other runs)."""
        record = self.record(run_id)
        if record.kind != "triage" or record.day is None:
            return []
        day = date.fromisoformat(str(record.day)[:10])
        results = self.results(run_id)
        scans = [r for r in results if r.tool == "scan_anomalies"]
        if not scans:
            return []
        normal = within_normal(results)
        flagged = [
            a
            for a in scans[-1].result.get("anomalies", [])
            if a["date"] == day.isoformat() and a["target"] not in normal
        ]
        return store.track(
            self.store.engine, day, triage_order(flagged), _covers(record.scope), run_id
        )


def within_normal(results: list[ToolResult]) -> set[str]:
    """Return the targets the scan flagged but whose diagnosis found within the normal range."""
    return {
        str(r.result.get("target"))
        for r in results
        if r.tool == "diagnose" and r.result.get("within_normal")
    }


def _covers(scope: str | None) -> Any:
    """Return whether a triage of ``scope`` ('all', 'region:R1,R2', 'store:S1') covers one."""
    level, _, ids = (scope or "all").partition(":")
    wanted = set(ids.split(",")) if ids else set()

    def covers(incident: Incident) -> bool:
        if level == "all":
            return True
        if level == "region":
            return (incident.level == "region" and incident.target in wanted) or (
                incident.level == "store" and incident.region in wanted
            )
        return incident.level == "store" and incident.target in wanted

    return covers


__all__ = ["Incidents", "within_normal"]
