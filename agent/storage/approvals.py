"""Decisions per action and the dispatch outbox (SQLAlchemy Core, SQLite or PostgreSQL).

A decision is one row keyed by (run, position): the first insert wins, and a second
manager deciding the same action is told who decided it and when. An approved action is
written once to the outbox (``actions``) with an idempotency key; delivery claims a row
with a lease (a conditional update), so two deliverers never send it twice, and a delivery
that fails is retried later with the same key until the receiver acknowledges it.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from agent.storage.db import insert_ignore
from agent.storage.schema import actions, decisions

DeliveryStatus = Literal["pending", "retrying", "delivered", "recorded"]
"""``recorded``: written before the outbox existed, never sent anywhere."""


class DecisionRecord(BaseModel):
    """A manager's decision on one action of a run, as stored."""

    run_id: str
    idx: int
    action_id: str
    target: str | None = None
    decision: Literal["approve", "reject", "edit"]
    parameters: dict[str, float] | None = None
    note: str | None = None
    decided_by: str
    decided_at: str


class AlreadyDecidedError(ValueError):
    """Someone decided this action first."""

    def __init__(self, existing: DecisionRecord) -> None:
        super().__init__(
            f"action {existing.idx} ({existing.action_id}) of run {existing.run_id} was already "
            f"decided ({existing.decision}) by {existing.decided_by} at {existing.decided_at}"
        )
        self.existing = existing


class DispatchedAction(BaseModel):
    """An approved action, written once to the outbox."""

    run_id: str
    idx: int
    action_id: str
    target: str | None
    parameters: dict[str, float]
    expected_avoided: float | None
    avoided_ci: list[float] | None
    cost: float | None
    decision: str
    decided_by: str | None
    decided_at: str | None
    dispatched_at: str
    evidence_ids: list[str]
    idempotency_key: str | None = None
    delivery_status: DeliveryStatus = "pending"
    attempts: int = 0
    next_attempt_at: str | None = None
    delivered_at: str | None = None
    last_error: str | None = None


_JSON = ("parameters", "avoided_ci", "evidence_ids")
_OUTBOX_ONLY = {"lease_until", "lease_token"}


def record_decision(engine: Engine, record: DecisionRecord) -> DecisionRecord:
    """Store a decision unless the action has one already.

    Raises:
        AlreadyDecidedError: the action was decided first by someone (or by this caller).
    """
    row = record.model_dump()
    row["parameters"] = json.dumps(row["parameters"]) if row["parameters"] is not None else None
    try:
        with engine.begin() as con:
            con.execute(decisions.insert().values(**row))
    except IntegrityError:
        existing = decision_of(engine, record.run_id, record.idx)
        assert existing is not None
        raise AlreadyDecidedError(existing) from None
    return record


def _decision(row: Any) -> DecisionRecord:
    data = dict(row)
    data["parameters"] = json.loads(data["parameters"]) if data["parameters"] else None
    return DecisionRecord.model_validate(data)


def decision_of(engine: Engine, run_id: str, idx: int) -> DecisionRecord | None:
    """Return the decision on one action, or None."""
    with engine.connect() as con:
        row = (
            con.execute(
                select(decisions).where(decisions.c.run_id == run_id, decisions.c.idx == idx)
            )
            .mappings()
            .first()
        )
    return _decision(row) if row else None


def decisions_of(engine: Engine, run_id: str | None = None) -> list[DecisionRecord]:
    """Return the decisions of one run (or all), in the order they were taken."""
    query = select(decisions).order_by(decisions.c.decided_at, decisions.c.run_id, decisions.c.idx)
    if run_id is not None:
        query = query.where(decisions.c.run_id == run_id)
    with engine.connect() as con:
        return [_decision(r) for r in con.execute(query).mappings().all()]


def enqueue(engine: Engine, action: DispatchedAction) -> bool:
    """Write an approved action to the outbox once; False if it was there already."""
    row = action.model_dump(include=set(DispatchedAction.model_fields))  # not a subclass's
    for key in _JSON:
        row[key] = json.dumps(row[key])
    row["idempotency_key"] = row["idempotency_key"] or f"lastmile:{action.run_id}:{action.idx}"
    with engine.begin() as con:
        done = con.execute(insert_ignore(engine, actions, ["run_id", "idx"]).values(**row))
    return done.rowcount == 1


def _action(row: Any) -> DispatchedAction:
    data = {k: v for k, v in dict(row).items() if k not in _OUTBOX_ONLY}
    for key in _JSON:
        data[key] = json.loads(data[key]) if data[key] else None
    data["evidence_ids"] = data["evidence_ids"] or []
    data["parameters"] = data["parameters"] or {}
    return DispatchedAction.model_validate(data)


def outbox(engine: Engine, run_id: str | None = None) -> list[DispatchedAction]:
    """Dispatched actions (of one run, or all), oldest first."""
    query = select(actions).order_by(actions.c.dispatched_at, actions.c.run_id, actions.c.idx)
    if run_id is not None:
        query = query.where(actions.c.run_id == run_id)
    with engine.connect() as con:
        return [_action(r) for r in con.execute(query).mappings().all()]


def due_keys(engine: Engine, now: str, limit: int = 50) -> list[tuple[str, int]]:
    """Return the (run, position) of actions due for delivery now."""
    with engine.connect() as con:
        rows = con.execute(select(actions.c.run_id, actions.c.idx).where(_due(now)).limit(limit))
        return [(str(r[0]), int(r[1])) for r in rows]


def _due(now: str) -> Any:
    return and_(
        actions.c.delivery_status.in_(("pending", "retrying")),
        or_(actions.c.next_attempt_at.is_(None), actions.c.next_attempt_at <= now),
        or_(actions.c.lease_until.is_(None), actions.c.lease_until < now),
    )


def claim(
    engine: Engine, key: tuple[str, int], now: str, lease_until: str, token: str
) -> DispatchedAction | None:
    """Lease one due action for one send; None if someone else holds or settled it."""
    run_id, idx = key
    where = (actions.c.run_id == run_id, actions.c.idx == idx)
    with engine.begin() as con:
        done = con.execute(
            update(actions)
            .where(*where, _due(now))
            .values(lease_until=lease_until, lease_token=token)
        )
        if done.rowcount != 1:
            return None
        row = con.execute(select(actions).where(*where)).mappings().one()
    return _action(row)


def settle(
    engine: Engine,
    action: DispatchedAction,
    token: str,
    *,
    delivered_at: str | None,
    error: str | None = None,
    next_attempt_at: str | None = None,
) -> bool:
    """Record a send's outcome and release the lease; False if the lease was not ours."""
    values: dict[str, Any] = {
        "attempts": actions.c.attempts + 1,
        "lease_until": None,
        "lease_token": None,
        "last_error": error,
    }
    if delivered_at is not None:
        values |= {"delivery_status": "delivered", "delivered_at": delivered_at}
    else:
        values |= {"delivery_status": "retrying", "next_attempt_at": next_attempt_at}
    with engine.begin() as con:
        done = con.execute(
            update(actions)
            .where(
                actions.c.run_id == action.run_id,
                actions.c.idx == action.idx,
                # a slow sender whose lease ran out never overwrites a later outcome
                actions.c.lease_token == token,
                actions.c.delivery_status.in_(("pending", "retrying")),
            )
            .values(**values)
        )
    return done.rowcount == 1


def pending_count(engine: Engine) -> int:
    """Return how many actions wait for delivery."""
    with engine.connect() as con:
        rows = con.execute(
            select(actions.c.run_id).where(actions.c.delivery_status.in_(("pending", "retrying")))
        ).all()
    return len(rows)


def decisions_csv(records: list[DecisionRecord]) -> str:
    """Write the decision log as CSV (one row per decision; parameters as JSON).

    A free-text cell that a spreadsheet would run as a formula ("=HYPERLINK(...)") is
    quoted with a leading apostrophe (OWASP's CSV-injection advice).
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(DecisionRecord.model_fields))
    writer.writeheader()
    for record in records:
        row = record.model_dump()
        row["parameters"] = json.dumps(row["parameters"]) if row["parameters"] else ""
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
