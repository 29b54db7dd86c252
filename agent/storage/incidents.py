"""Incidents: an anomaly seen on consecutive triaged days is one incident, not one a morning.

An incident is keyed by (level, target). A triage of day D that flags the target continues
its ongoing incident (``last_seen`` = D) or opens one on D; a triage of a later day that
covers the target and no longer flags it resolves it. Days no triage ran (closed days,
weekends without a schedule) neither continue nor resolve anything, up to
:data:`~tools.analytics.thresholds.INCIDENT_MAX_GAP_DAYS`: flagged again after a longer gap,
it is a new incident. A day already counted (a re-run, a run resumed after its approval, a
backfill of an earlier day) changes nothing.

Managers may acknowledge an incident (it is known and handled) or snooze it for some days
(the digest lists it apart until then). An action approved for an ongoing incident is in
effect: it is not proposed again while the incident lasts (:func:`in_effect`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Engine, and_, or_, select, update

from agent.storage.db import insert_ignore
from agent.storage.runs import utc_now
from agent.storage.schema import actions, incidents, runs
from tools.analytics.thresholds import INCIDENT_MAX_GAP_DAYS

logger = logging.getLogger(__name__)

IncidentStatus = Literal["open", "acknowledged", "snoozed", "resolved"]


class Incident(BaseModel):
    """An anomaly's life across triaged days."""

    incident_id: str
    level: str
    target: str
    region: str | None = None
    opened_on: date = Field(description="First service date it was flagged.")
    last_seen: date = Field(description="Latest service date it was flagged.")
    days_seen: int = Field(description="Triaged days it was flagged on.")
    status: IncidentStatus
    severity: str | None = None
    drivers: list[str] = Field(default_factory=list, description="KPIs off, worst first.")
    late_excess: float | None = Field(None, description="Late deliveries above normal.")
    last_run_id: str | None = None
    resolved_on: date | None = None
    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    snoozed_until: date | None = Field(None, description="Last service date it is snoozed.")

    def state_on(self, day: date) -> IncidentStatus:
        """Return its status as of ``day`` (a snooze that has run out is open again)."""
        if self.status == "snoozed" and (self.snoozed_until is None or day > self.snoozed_until):
            return "acknowledged" if self.acknowledged_by else "open"
        return self.status


class IncidentError(ValueError):
    """An incident that does not exist or cannot change that way."""


def _incident(row: Any) -> Incident:
    data = dict(row)
    data["drivers"] = json.loads(data["drivers"] or "[]")
    return Incident.model_validate({k: v for k, v in data.items() if k != "updated_at"})


def ongoing(engine: Engine) -> list[Incident]:
    """Incidents not resolved, oldest first."""
    query = (
        select(incidents)
        .where(incidents.c.status != "resolved")
        .order_by(incidents.c.opened_on, incidents.c.target)
    )
    with engine.connect() as con:
        return [_incident(r) for r in con.execute(query).mappings()]


def list_incidents(engine: Engine, *, include_resolved: bool = False) -> list[Incident]:
    """Incidents, most recently seen first (ongoing only unless ``include_resolved``)."""
    query = select(incidents).order_by(incidents.c.last_seen.desc(), incidents.c.target)
    if not include_resolved:
        query = query.where(incidents.c.status != "resolved")
    with engine.connect() as con:
        return [_incident(r) for r in con.execute(query).mappings()]


def get_incident(engine: Engine, incident_id: str) -> Incident:
    """Return one incident.

    Raises:
        IncidentError: no such incident.
    """
    with engine.connect() as con:
        row = (
            con.execute(select(incidents).where(incidents.c.incident_id == incident_id))
            .mappings()
            .first()
        )
    if row is None:
        raise IncidentError(f"no incident {incident_id!r}")
    return _incident(row)


def track(
    engine: Engine,
    day: date,
    anomalies: list[dict[str, Any]],
    covers: Callable[[Incident], bool],
    run_id: str,
) -> list[Incident]:
    """Record a triage of ``day``: continue or open an incident per flagged anomaly.

    Args:
        engine: the state store.
        day: the triaged service date.
        anomalies: the scan's anomalies (``level``, ``target``, ``region``, ``severity``,
            ``drivers``, ``late_excess``), one per (level, target) taken.
        covers: whether the triage's scope covers an incident's target (only those it
            covers and did not flag are resolved).
        run_id: the triage run.

    Returns:
        The incidents flagged on ``day``, in the anomalies' order.
    """
    flagged: dict[tuple[str, str], dict[str, Any]] = {}
    for a in anomalies:
        flagged.setdefault((a["level"], a["target"]), a)
    stamp, iso = utc_now(), day.isoformat()
    # read and write in one transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: rows locked),
    # and every update is guarded by last_seen, so two triages of one day count it once
    with engine.begin() as con:
        targets = sorted({k[1] for k in flagged})
        rows = con.execute(
            select(incidents)
            .where(or_(incidents.c.status != "resolved", incidents.c.target.in_(targets)))
            .order_by(incidents.c.opened_on)
            .with_for_update()
        ).mappings()
        latest = {(i.level, i.target): i for i in map(_incident, rows)}  # the newest per key
        current = {k: i for k, i in latest.items() if i.status != "resolved"}
        for key, a in flagged.items():
            fields = {
                "severity": a.get("severity"),
                "drivers": json.dumps(list(a.get("drivers") or [])),
                "late_excess": a.get("late_excess"),
                "last_run_id": run_id,
                "updated_at": stamp,
            }
            known, last = current.get(key), latest.get(key)
            if last is not None and last.last_seen >= day:
                continue  # that day is counted already (a re-run, a resumed run, a backfill)
            if known is not None and (day - known.last_seen).days > INCIDENT_MAX_GAP_DAYS:
                # seen again after a long quiet spell: a new event, the old one is over
                con.execute(
                    update(incidents)
                    .where(incidents.c.incident_id == known.incident_id)
                    .values(status="resolved", resolved_on=iso, updated_at=stamp)
                )
                del current[key]
                known = None
            if known is None:
                con.execute(
                    insert_ignore(engine, incidents, ["incident_id"]).values(
                        incident_id=f"{key[0]}-{key[1]}-{iso}",
                        level=key[0],
                        target=key[1],
                        region=a.get("region"),
                        opened_on=iso,
                        last_seen=iso,
                        days_seen=1,
                        status="open",
                        **fields,
                    )
                )
            else:
                con.execute(
                    update(incidents)
                    .where(
                        and_(
                            incidents.c.incident_id == known.incident_id,
                            incidents.c.last_seen < iso,
                        )
                    )
                    .values(last_seen=iso, days_seen=incidents.c.days_seen + 1, **fields)
                )
        for key, known in current.items():
            if key not in flagged and day > known.last_seen and covers(known):
                con.execute(
                    update(incidents)
                    .where(
                        and_(
                            incidents.c.incident_id == known.incident_id,
                            incidents.c.status != "resolved",
                            incidents.c.last_seen < iso,
                        )
                    )
                    .values(status="resolved", resolved_on=iso, updated_at=stamp)
                )
    now = {(i.level, i.target): i for i in ongoing(engine)}
    return [now[k] for k in flagged if k in now]


def acknowledge(engine: Engine, incident_id: str, by: str) -> Incident:
    """Mark an ongoing incident as known and handled by ``by``.

    Raises:
        IncidentError: no such incident, or it is resolved.
    """
    return _change(
        engine,
        incident_id,
        status="acknowledged",
        acknowledged_by=by,
        acknowledged_at=utc_now(),
        snoozed_until=None,
    )


def snooze(engine: Engine, incident_id: str, by: str, days: int) -> Incident:
    """Keep an ongoing incident out of the digest's alerts for ``days`` service dates.

    Raises:
        IncidentError: no such incident, it is resolved, or ``days`` is not 1..30.
    """
    if not 1 <= days <= 30:
        raise IncidentError(f"snooze for 1 to 30 days, not {days}")
    known = get_incident(engine, incident_id)
    until = (known.last_seen + timedelta(days=days)).isoformat()
    logger.info("incident %s snoozed by %s until %s", incident_id, by, until)
    return _change(engine, incident_id, status="snoozed", snoozed_until=until)


def _change(engine: Engine, incident_id: str, **values: Any) -> Incident:
    with engine.begin() as con:
        done = con.execute(
            update(incidents)
            .where(and_(incidents.c.incident_id == incident_id, incidents.c.status != "resolved"))
            .values(updated_at=utc_now(), **values)
        )
    if done.rowcount != 1:
        known = get_incident(engine, incident_id)  # raises for an unknown id
        raise IncidentError(f"incident {incident_id} was resolved on {known.resolved_on}")
    return get_incident(engine, incident_id)


class InEffect(BaseModel):
    """An action approved for an ongoing incident: not proposed again while it lasts."""

    incident_id: str
    target: str
    action_id: str
    run_id: str
    day: date | None
    decided_by: str | None
    reason: str


def in_effect(engine: Engine, day: date | None = None) -> list[InEffect]:
    """Actions approved (or edited) for incidents ongoing on ``day`` (None: any day).

    An action counts for an incident when it was dispatched at the incident's target by a
    run about a service date from the incident's first day on.
    """
    query = (
        select(
            incidents.c.incident_id,
            incidents.c.opened_on,
            actions.c.target,
            actions.c.action_id,
            actions.c.run_id,
            actions.c.decided_by,
            runs.c.day,
        )
        .select_from(
            incidents.join(actions, actions.c.target == incidents.c.target).join(
                runs, runs.c.run_id == actions.c.run_id
            )
        )
        .where(
            and_(
                incidents.c.status != "resolved",
                actions.c.decision.in_(("approve", "edit")),
                runs.c.day >= incidents.c.opened_on,
            )
        )
        .order_by(runs.c.day, actions.c.run_id, actions.c.idx)
    )
    if day is not None:
        query = query.where(runs.c.day <= day.isoformat())
    out: list[InEffect] = []
    with engine.connect() as con:
        for r in con.execute(query).mappings():
            out.append(
                InEffect(
                    incident_id=r["incident_id"],
                    target=r["target"],
                    action_id=r["action_id"],
                    run_id=r["run_id"],
                    day=r["day"],
                    decided_by=r["decided_by"],
                    reason=f"approved by {r['decided_by'] or 'policy'} for {r['day']} "
                    f"(the incident ongoing since {r['opened_on']})",
                )
            )
    return out


__all__ = [
    "InEffect",
    "Incident",
    "IncidentError",
    "acknowledge",
    "get_incident",
    "in_effect",
    "list_incidents",
    "ongoing",
    "snooze",
    "track",
]
