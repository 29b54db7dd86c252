"""The morning digest of a triage run: its anomalies with their incidents, and its plan.

Built once here from the run's page, its scan and the incident store, so the Slack bot (and
any later surface) only lays it out. Strings are plain text: surfaces escape them.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from agent.nodes.triage import triage_order
from agent.presenter import RunPage
from agent.storage.incidents import Incident, InEffect
from agent.wording import target_name
from tools.vocabulary import kpi_label

MAX_LISTED = 8
"""Anomalies a digest lists by name; the rest are counted (a chat message, not a report)."""


class DigestAnomaly(BaseModel):
    """One anomaly of the triaged day, with the incident it belongs to."""

    level: str
    target: str
    name: str = Field(description="The target as people say it ('store S003').")
    grain_days: int = Field(description="Days of the flagged cell (1: the day itself).")
    severity: str
    drivers: list[str] = Field(description="KPIs off in their bad direction, worst first.")
    late_excess: float | None = None
    incident_id: str | None = None
    incident_status: str | None = None
    since: date | None = Field(None, description="The incident's first flagged day.")
    days_seen: int = 1
    snoozed_until: date | None = None


class DigestView(BaseModel):
    """What a morning digest says about one triage run."""

    day: date
    scope: str
    run_id: str
    status: str
    page: RunPage
    anomalies: list[DigestAnomaly] = Field(default_factory=list, description="Top first.")
    more: int = Field(0, description="Anomalies beyond the listed ones.")
    in_effect: list[InEffect] = Field(default_factory=list)
    snoozed: list[DigestAnomaly] = Field(default_factory=list)

    assessed: bool = Field(True, description="Whether the scan ran (False: nothing is known).")

    @property
    def quiet(self) -> bool:
        """Whether the scan ran and flagged nothing on the day (an 'all normal' morning)."""
        return self.assessed and not self.anomalies and not self.snoozed and not self.more


def digest_view(
    page: RunPage,
    day: date,
    scope: str,
    scan: dict[str, Any] | None,
    incidents: list[Incident],
    in_effect: list[InEffect],
    normal: set[str] | None = None,
) -> DigestView:
    """Return the digest of a triage run.

    Args:
        page: the run's page.
        day: the triaged service date.
        scope: the triage's scope ('all', 'region:R1', ...).
        scan: the run's ``scan_anomalies`` result (None: the scan did not run).
        incidents: the ongoing incidents after the run was tracked.
        in_effect: actions approved for ongoing incidents.
        normal: targets the scan flagged but whose diagnosis found within the normal range
            (the plan says so; the digest does not list them as anomalies).
    """
    found = [
        a
        for a in (scan or {}).get("anomalies", [])
        if a["date"] == day.isoformat() and a["target"] not in (normal or set())
    ]
    by_key = {(i.level, i.target): i for i in incidents}
    listed: list[DigestAnomaly] = []
    snoozed: list[DigestAnomaly] = []
    for a in triage_order(found):
        incident = by_key.get((a["level"], a["target"]))
        line = DigestAnomaly(
            level=a["level"],
            target=a["target"],
            name=target_name(a["target"]),
            grain_days=int(a.get("grain_days") or 1),
            severity=a["severity"],
            drivers=[kpi_label(d) for d in a.get("drivers", [])],
            late_excess=a.get("late_excess"),
            incident_id=incident.incident_id if incident else None,
            incident_status=incident.state_on(day) if incident else None,
            since=incident.opened_on if incident else None,
            days_seen=incident.days_seen if incident else 1,
            snoozed_until=incident.snoozed_until if incident else None,
        )
        (snoozed if line.incident_status == "snoozed" else listed).append(line)
    targets = {a.target for a in listed + snoozed}
    return DigestView(
        day=day,
        scope=scope,
        run_id=page.run_id,
        status=page.status,
        page=page,
        anomalies=listed[:MAX_LISTED],
        more=max(0, len(listed) - MAX_LISTED),
        in_effect=[e for e in in_effect if e.target in targets],
        snoozed=snoozed,
        assessed=scan is not None,
    )


__all__ = ["DigestAnomaly", "DigestView", "digest_view"]
