"""The Slack bot's and the scheduler's state: threads, handled events, morning digests.

Each write that must happen once is an insert on a primary key, so it holds across
processes and both dialects: an event id is handled by the first insert (Slack retries an
event whose acknowledgement it missed), and a (service date, scope) digest is claimed by the
first triage that inserts it (a second one, even concurrent, is told where the first is).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import Engine, and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from agent.storage.db import insert_ignore
from agent.storage.runs import utc_now
from agent.storage.schema import digests, runs, slack_events, slack_runs, slack_threads

DigestStatus = Literal["posting", "posted", "failed"]

EVENT_MEMORY_DAYS = 2
"""Handled event ids are kept this long: Slack retries an event within minutes (3 times)."""


def first_delivery(engine: Engine, event_id: str) -> bool:
    """Record an event id; True the first time it is seen, False for a retry of it."""
    stmt = insert_ignore(engine, slack_events, ["event_id"]).values(
        event_id=event_id, received_at=utc_now()
    )
    cutoff = (datetime.now(UTC) - timedelta(days=EVENT_MEMORY_DAYS)).isoformat()
    with engine.begin() as con:
        new = con.execute(stmt).rowcount == 1
        if new:
            con.execute(delete(slack_events).where(slack_events.c.received_at < cutoff))
    return new


def thread_of(engine: Engine, channel: str, thread_ts: str) -> str | None:
    """Return the service thread of a Slack thread, if it has one."""
    with engine.connect() as con:
        return con.execute(
            select(slack_threads.c.thread_id).where(
                and_(slack_threads.c.channel == channel, slack_threads.c.thread_ts == thread_ts)
            )
        ).scalar()


def link_thread(engine: Engine, channel: str, thread_ts: str, thread_id: str) -> str:
    """Link a Slack thread to a service thread; return the one linked first (a race's winner)."""
    stmt = insert_ignore(engine, slack_threads, ["channel", "thread_ts"]).values(
        channel=channel, thread_ts=thread_ts, thread_id=thread_id, created_at=utc_now()
    )
    with engine.begin() as con:
        con.execute(stmt)
    linked = thread_of(engine, channel, thread_ts)
    assert linked is not None
    return linked


class SlackRun(BaseModel):
    """Where a run answers in Slack, and whether its answer was posted."""

    run_id: str
    channel: str
    thread_ts: str
    progress_ts: str
    posted_at: str | None = None


def record_slack_run(
    engine: Engine, run_id: str, channel: str, thread_ts: str, progress_ts: str
) -> None:
    """Remember where a run answers (its progress message), before it runs."""
    with engine.begin() as con:
        con.execute(
            slack_runs.insert().values(
                run_id=run_id, channel=channel, thread_ts=thread_ts, progress_ts=progress_ts
            )
        )


def mark_posted(engine: Engine, run_id: str) -> None:
    """Record that a run's answer is in Slack."""
    with engine.begin() as con:
        con.execute(
            update(slack_runs).where(slack_runs.c.run_id == run_id).values(posted_at=utc_now())
        )


def unposted(engine: Engine, quiet_s: float = 60.0) -> list[SlackRun]:
    """Return runs whose answer never reached Slack, finished ``quiet_s`` s ago or more.

    A live process posts a run's answer within a second of its end; one recorded as
    finished a minute ago and not posted lost its process (recovery finished the run).
    """
    stale = (datetime.now(UTC) - timedelta(seconds=quiet_s)).isoformat(timespec="seconds")
    query = (
        select(slack_runs)
        .join(runs, runs.c.run_id == slack_runs.c.run_id)
        .where(
            and_(
                slack_runs.c.posted_at.is_(None),
                runs.c.status.notin_(("running", "resuming")),
                runs.c.updated_at < stale,
            )
        )
    )
    with engine.connect() as con:
        return [SlackRun.model_validate(dict(r)) for r in con.execute(query).mappings()]


class Digest(BaseModel):
    """A morning digest of one (service date, scope)."""

    day: str
    scope: str
    status: DigestStatus
    claimed_by: str
    claimed_at: str
    run_id: str | None = None
    channel: str | None = None
    ts: str | None = None
    error: str | None = None


def get_digest(engine: Engine, day: str, scope: str) -> Digest | None:
    """Return the digest of (day, scope), if one was claimed."""
    with engine.connect() as con:
        row = (
            con.execute(select(digests).where(and_(digests.c.day == day, digests.c.scope == scope)))
            .mappings()
            .first()
        )
    return Digest.model_validate(dict(row)) if row else None


def claim_digest(
    engine: Engine, day: str, scope: str, by: str, stale_after_s: float
) -> tuple[bool, Digest]:
    """Claim the digest of (day, scope) for posting.

    The first claim wins; one that failed, or that has been posting for longer than
    ``stale_after_s`` (its process died), may be taken over.

    Returns:
        (whether this caller holds it now, the digest as stored).
    """
    now = utc_now()
    try:
        with engine.begin() as con:
            con.execute(
                digests.insert().values(
                    day=day, scope=scope, status="posting", claimed_by=by, claimed_at=now
                )
            )
        return True, _must(engine, day, scope)
    except IntegrityError:
        pass
    stale = (datetime.now(UTC) - timedelta(seconds=stale_after_s)).isoformat(timespec="seconds")
    with engine.begin() as con:
        taken = con.execute(
            update(digests)
            .where(
                and_(
                    digests.c.day == day,
                    digests.c.scope == scope,
                    or_(
                        digests.c.status == "failed",
                        and_(digests.c.status == "posting", digests.c.claimed_at < stale),
                    ),
                )
            )
            .values(status="posting", claimed_by=by, claimed_at=now, error=None)
        ).rowcount
    return taken == 1, _must(engine, day, scope)


def finish_digest(
    engine: Engine,
    day: str,
    scope: str,
    status: DigestStatus,
    *,
    run_id: str | None = None,
    channel: str | None = None,
    ts: str | None = None,
    error: str | None = None,
    claimed_by: str | None = None,
) -> Digest:
    """Record how a claimed digest ended (posted where, or failed why).

    With ``claimed_by``, only while that claim holds it (one taken over is not overwritten).
    """
    mine = digests.c.claimed_by == claimed_by if claimed_by else digests.c.claimed_by.isnot(None)
    with engine.begin() as con:
        con.execute(
            update(digests)
            .where(and_(digests.c.day == day, digests.c.scope == scope, mine))
            .values(status=status, run_id=run_id, channel=channel, ts=ts, error=error)
        )
    return _must(engine, day, scope)


def _must(engine: Engine, day: str, scope: str) -> Digest:
    digest = get_digest(engine, day, scope)
    assert digest is not None
    return digest


__all__ = [
    "Digest",
    "SlackRun",
    "mark_posted",
    "record_slack_run",
    "unposted",
    "claim_digest",
    "finish_digest",
    "first_delivery",
    "get_digest",
    "link_thread",
    "thread_of",
]
