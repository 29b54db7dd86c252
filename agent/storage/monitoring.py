"""The monitor's history (one figure per day, kind, name and subject) and its alerts.

A day's rows are replaced as a whole in one transaction, so a re-run of the monitor over a
day never leaves half of an old run beside half of a new one. Alerts are episodes: the
first flagged day of a figure opens one (with a new id, posted once), later flagged days
extend it, and the first day it is checked and not flagged closes it.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import Engine, and_, delete, insert, select, update

from agent.storage.runs import utc_now
from agent.storage.schema import monitoring, monitoring_alerts

Kind = Literal["health", "drift", "forecast", "decay", "alarms", "agent", "outcomes", "effects"]

ALERT_KINDS: tuple[str, ...] = ("health", "decay", "alarms", "outcomes", "effects")
"""Kinds whose flagged rows raise alerts (a drift row is also a ``health`` finding)."""


class Figure(BaseModel):
    """One monitored figure of one day."""

    day: date
    kind: Kind
    name: str
    subject: str = "all"
    value: float | None = None
    threshold: float | None = None
    flagged: bool = False
    severity: str | None = None
    message: str | None = None


class Alert(BaseModel):
    """An episode of a flagged figure."""

    alert_id: str
    kind: str
    name: str
    subject: str
    opened_on: date
    last_seen: date
    closed_on: date | None
    message: str
    posted_at: str | None


def record_day(engine: Engine, day: date, figures: list[Figure], data_version: str) -> None:
    """Replace the figures of ``day`` (only the kinds present in ``figures``) atomically."""
    kinds = sorted({f.kind for f in figures})
    now = utc_now()
    with engine.begin() as con:
        con.execute(
            delete(monitoring).where(
                and_(monitoring.c.day == day.isoformat(), monitoring.c.kind.in_(kinds))
            )
        )
        if figures:
            con.execute(
                insert(monitoring),
                [
                    {
                        **f.model_dump(exclude={"day", "flagged"}),
                        "day": f.day.isoformat(),
                        "flagged": int(f.flagged),
                        "data_version": data_version,
                        "recorded_at": now,
                    }
                    for f in figures
                ],
            )


def figures(engine: Engine, start: date, end: date, kind: str | None = None) -> list[Figure]:
    """Return the figures from ``start`` to ``end`` (inclusive), of ``kind`` when given."""
    cond = and_(monitoring.c.day >= start.isoformat(), monitoring.c.day <= end.isoformat())
    if kind is not None:
        cond = and_(cond, monitoring.c.kind == kind)
    with engine.connect() as con:
        rows = con.execute(select(monitoring).where(cond).order_by(monitoring.c.day)).mappings()
        return [Figure.model_validate({**r, "flagged": bool(r["flagged"])}) for r in rows]


def latest_day(engine: Engine) -> date | None:
    """Return the last day the monitor recorded."""
    with engine.connect() as con:
        day = con.execute(select(monitoring.c.day).order_by(monitoring.c.day.desc())).scalar()
    return date.fromisoformat(day) if day else None


def update_alerts(
    engine: Engine,
    day: date,
    figures: list[Figure],
    unknown: frozenset[tuple[str, str, str]] = frozenset(),
) -> list[Alert]:
    """Open, extend or close alerts with the figures of ``day``; return those opened now.

    Only kinds in :data:`ALERT_KINDS` count. A figure flagged on ``day`` extends its open
    alert (taking that day's message) or opens a new one; an open alert of a kind checked on
    ``day`` whose figure is not flagged is closed, unless its key is in ``unknown`` (not
    assessed that day: a feature left out of the drift test on a promotion day is not back
    to normal).
    """
    flagged = {
        (f.kind, f.name, f.subject): f for f in figures if f.flagged and f.kind in ALERT_KINDS
    }
    checked = {f.kind for f in figures}
    iso = day.isoformat()
    opened: list[Alert] = []
    with engine.begin() as con:
        rows = con.execute(select(monitoring_alerts)).mappings().all()
        for row in rows:
            key = (row["kind"], row["name"], row["subject"])
            if row["closed_on"] is not None or key in flagged or row["kind"] not in checked:
                continue
            if key in unknown:
                continue
            # a re-run over earlier days closes nothing; the latest day's re-run may (the
            # figures it replaced are gone)
            if iso >= row["last_seen"]:
                con.execute(
                    update(monitoring_alerts)
                    .where(monitoring_alerts.c.alert_id == row["alert_id"])
                    .values(closed_on=iso)
                )
        for key, fig in flagged.items():
            covering = [
                r
                for r in rows
                if (r["kind"], r["name"], r["subject"]) == key
                and r["opened_on"] <= iso
                and (r["closed_on"] is None or iso < r["closed_on"])
            ]
            if covering:  # the episode goes on (or a re-run saw this day already)
                row = covering[0]
                if row["closed_on"] is None and iso >= row["last_seen"]:
                    # the latest day's words: a feed a day staler, a drift grown larger
                    con.execute(
                        update(monitoring_alerts)
                        .where(monitoring_alerts.c.alert_id == row["alert_id"])
                        .values(last_seen=iso, message=fig.message or row["message"])
                    )
                continue
            alert = Alert(
                alert_id=uuid.uuid4().hex[:12],
                kind=fig.kind,
                name=fig.name,
                subject=fig.subject,
                opened_on=day,
                last_seen=day,
                closed_on=None,
                message=fig.message or f"{fig.kind} {fig.name} {fig.subject}",
                posted_at=None,
            )
            con.execute(insert(monitoring_alerts).values(**_row(alert)))
            opened.append(alert)
    return opened


def _row(alert: Alert) -> dict[str, object]:
    out = alert.model_dump()
    for key in ("opened_on", "last_seen", "closed_on"):
        out[key] = out[key].isoformat() if out[key] else None
    return out


def alerts(engine: Engine, *, open_only: bool = False) -> list[Alert]:
    """Return the alerts, newest first (only open ones with ``open_only``)."""
    stmt = select(monitoring_alerts).order_by(monitoring_alerts.c.opened_on.desc())
    if open_only:
        stmt = stmt.where(monitoring_alerts.c.closed_on.is_(None))
    with engine.connect() as con:
        return [Alert.model_validate(dict(r)) for r in con.execute(stmt).mappings()]


def mark_posted(engine: Engine, alert_ids: list[str]) -> None:
    """Record that these alerts reached Slack (they are never posted again)."""
    if not alert_ids:
        return
    with engine.begin() as con:
        con.execute(
            update(monitoring_alerts)
            .where(monitoring_alerts.c.alert_id.in_(alert_ids))
            .values(posted_at=utc_now())
        )


def unposted(engine: Engine) -> list[Alert]:
    """Return the alerts not yet posted, oldest first, open or closed since.

    A post that failed is tried on the next run; an episode that opened and closed within
    one run's days (a backfill) was still never told to anyone.
    """
    return sorted((a for a in alerts(engine) if a.posted_at is None), key=lambda a: a.opened_on)


class Snapshot(BaseModel):
    """The monitor's latest figures, as /metrics exposes them."""

    day: date | None = None
    trusted: float | None = None
    max_drift_z: float | None = None
    mase: dict[str, float] = {}
    alarms: float | None = None
    open_alerts: dict[str, int] = {}
    outcome_coverage: dict[str, float] = {}


def snapshot(engine: Engine) -> Snapshot:
    """Return the figures of the latest monitored service date, and the open alerts by kind."""
    open_by_kind: dict[str, int] = {}
    for a in alerts(engine, open_only=True):
        open_by_kind[a.kind] = open_by_kind.get(a.kind, 0) + 1
    with engine.connect() as con:
        day = con.execute(
            select(monitoring.c.day)
            .where(monitoring.c.kind.in_(("health", "drift", "decay", "alarms")))
            .order_by(monitoring.c.day.desc())
        ).scalar()
    if day is None:
        return Snapshot(open_alerts=open_by_kind)
    rows = figures(engine, date.fromisoformat(day), date.fromisoformat(day))
    trusted = [f.value for f in rows if f.kind == "health" and f.name == "trusted"]
    drift = [abs(f.value) for f in rows if f.kind == "drift" and f.value is not None]
    alarms = [f.value for f in rows if f.kind == "alarms"]
    return Snapshot(
        day=date.fromisoformat(day),
        trusted=trusted[0] if trusted else None,
        max_drift_z=max(drift) if drift else None,
        mase={f.name: f.value for f in rows if f.kind == "decay" and f.value is not None},
        alarms=alarms[0] if alarms else None,
        open_alerts=open_by_kind,
        outcome_coverage={
            f.name: f.value for f in rows if f.kind == "outcomes" and f.value is not None
        },
    )
