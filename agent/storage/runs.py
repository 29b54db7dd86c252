"""Run records and conversation threads (SQLAlchemy Core, SQLite or PostgreSQL).

Writes are idempotent: a run record is upserted. The one transition that must happen once,
a paused run being resumed, is a conditional update (:meth:`RunStore.claim`): whoever changes
the status first resumes it, everyone else sees it already taken.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import DBAPIError

from agent.errors import StateStoreUnavailableError, path_problem
from agent.storage.db import open_engine, sqlite_url
from agent.storage.schema import runs, threads

JSON_FIELDS: dict[str, Any] = {
    "prompts": {},
    "plan": None,
    "evidence": [],
    "trace": [],
    "decisions": [],
}


def utc_now() -> str:
    """Return the current UTC time as stored (ISO 8601, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunRecord(BaseModel):
    """A stored run."""

    run_id: str
    kind: str
    question: str | None
    day: str | None
    scope: str | None
    db: str | None
    status: str
    model: str | None
    prompts: dict[str, str]
    created_at: str
    updated_at: str
    plan: dict[str, Any] | None
    evidence: list[dict[str, Any]]
    trace: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    error: str | None
    input_tokens: int
    output_tokens: int
    thread_id: str | None = None
    started_by: str | None = None
    approval_expires_at: str | None = None


class ThreadRecord(BaseModel):
    """A conversation thread: the runs asked with one ``thread_id``."""

    thread_id: str
    title: str
    created_by: str | None
    created_at: str
    updated_at: str
    active_run_id: str | None = None


def _open_problem(path: Path, exc: BaseException) -> str:
    """Say in a few words why the SQLite run store at ``path`` could not be opened."""
    orig = getattr(exc, "orig", exc)
    # SQLite checks the file's header before anything is written: other files stay as they were.
    if getattr(orig, "sqlite_errorname", None) == "SQLITE_NOTADB":
        return "it is not a SQLite database"
    return path_problem(path, orig if isinstance(orig, OSError) else None)


class RunStore:
    """Run records and threads, in the state database the service was given."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, path: str | Path | None = None, url: str | None = None) -> RunStore:
        """Open (or create and migrate) the store: a SQLite file, or a database URL.

        Raises:
            StateStoreUnavailableError: the SQLite file cannot be created or written (a
                folder that cannot be written, a file where a folder should be), or is not
                SQLite.
        """
        if url is not None:
            return cls(open_engine(url))
        assert path is not None
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return cls(open_engine(sqlite_url(path)))
        except (OSError, sqlite3.Error, DBAPIError) as exc:
            raise StateStoreUnavailableError(path, _open_problem(path, exc)) from exc

    def close(self) -> None:
        """Close the store's connections."""
        self.engine.dispose()

    # -- runs ------------------------------------------------------------------------------
    def save_run(self, **fields: Any) -> None:
        """Insert or update a run record (JSON fields are serialised here)."""
        fields = dict(fields)
        for key in JSON_FIELDS:
            if key in fields:
                fields[key] = json.dumps(fields[key], default=str)
        fields.setdefault("updated_at", utc_now())
        run_id = fields.pop("run_id")
        with self.engine.begin() as con:
            done = con.execute(update(runs).where(runs.c.run_id == run_id).values(**fields))
            if done.rowcount == 0:
                fields.setdefault("created_at", fields["updated_at"])
                con.execute(runs.insert().values(run_id=run_id, **fields))

    def claim(
        self, run_id: str, from_status: str, to_status: str, *, unexpired: bool = False
    ) -> bool:
        """Move a run from one status to another; False if it was not in ``from_status``.

        With ``unexpired``, only while its approval window is open (checked in the same
        statement, so a decision a moment after the deadline cannot resume the run).
        """
        now = utc_now()
        where = [runs.c.run_id == run_id, runs.c.status == from_status]
        if unexpired:
            where.append(runs.c.approval_expires_at.is_(None) | (runs.c.approval_expires_at > now))
        with self.engine.begin() as con:
            done = con.execute(update(runs).where(*where).values(status=to_status, updated_at=now))
        return done.rowcount == 1

    def take(self, run_id: str, seen_updated_at: str) -> bool:
        """Take a stale run for recovery: True for the one caller that saw it unchanged."""
        with self.engine.begin() as con:
            done = con.execute(
                update(runs)
                .where(runs.c.run_id == run_id, runs.c.updated_at == seen_updated_at)
                .values(updated_at=utc_now())
            )
        return done.rowcount == 1

    def delete_run(self, run_id: str) -> None:
        """Delete a run record (one that never started)."""
        with self.engine.begin() as con:
            con.execute(runs.delete().where(runs.c.run_id == run_id))

    def purge_runs(self, older_than_days: int) -> list[str]:
        """Delete run records last updated more than ``older_than_days`` days ago.

        Runs still waiting for a decision are kept, and so are decisions and dispatched
        actions (the audit of what a manager approved). Returns the ids of the deleted runs:
        each run's checkpoints are kept under its own id, and the caller deletes them too.
        """
        cutoff = (datetime.now(UTC) - timedelta(days=older_than_days)).isoformat()
        with self.engine.begin() as con:
            old = con.execute(
                select(runs.c.run_id).where(
                    runs.c.updated_at < cutoff, runs.c.status != "waiting_approval"
                )
            ).all()
            ids = sorted(str(r[0]) for r in old)
            if ids:
                con.execute(runs.delete().where(runs.c.run_id.in_(ids)))
        return ids

    def get_run(self, run_id: str) -> RunRecord | None:
        """Return the run, or None."""
        with self.engine.connect() as con:
            row = con.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
        if row is None:
            return None
        data = dict(row)
        for key, empty in JSON_FIELDS.items():
            data[key] = json.loads(data[key]) if data.get(key) else empty
        data["input_tokens"] = data.get("input_tokens") or 0
        data["output_tokens"] = data.get("output_tokens") or 0
        return RunRecord.model_validate(data)

    def thread_runs(self, thread_id: str) -> list[RunRecord]:
        """Return the runs of a conversation thread, oldest first."""
        with self.engine.connect() as con:
            ids = con.execute(
                select(runs.c.run_id)
                .where(runs.c.thread_id == thread_id)
                .order_by(runs.c.created_at, runs.c.run_id)
            ).all()
        return [r for (run_id,) in ids if (r := self.get_run(str(run_id))) is not None]

    def run_ids_starting(self, prefix: str, limit: int = 2) -> list[str]:
        """Return up to ``limit`` run ids that start with ``prefix``."""
        with self.engine.connect() as con:
            rows = con.execute(
                select(runs.c.run_id)
                .where(func.substr(runs.c.run_id, 1, len(prefix)) == prefix)
                .order_by(runs.c.run_id)
                .limit(limit)
            ).all()
        return [str(r[0]) for r in rows]

    def list_runs(
        self, limit: int = 20, statuses: tuple[str, ...] | None = None
    ) -> list[dict[str, Any]]:
        """Most recent runs first (summary columns), optionally of some statuses only."""
        cols = [
            runs.c[c]
            for c in (
                "run_id",
                "kind",
                "status",
                "day",
                "scope",
                "question",
                "thread_id",
                "created_at",
                "updated_at",
                "approval_expires_at",
            )
        ]
        query = select(*cols).order_by(runs.c.created_at.desc(), runs.c.run_id.desc())
        if statuses:
            query = query.where(runs.c.status.in_(statuses))
        with self.engine.connect() as con:
            rows = con.execute(query.limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    def count_runs(self, statuses: tuple[str, ...]) -> int:
        """Count the runs of some statuses (one ``COUNT(*)``, for each /metrics scrape)."""
        query = select(func.count()).select_from(runs).where(runs.c.status.in_(statuses))
        with self.engine.connect() as con:
            return int(con.execute(query).scalar() or 0)

    # -- threads ---------------------------------------------------------------------------
    def save_thread(self, thread_id: str, title: str, created_by: str | None) -> ThreadRecord:
        """Create a thread, or touch an existing one; return it."""
        now = utc_now()
        with self.engine.begin() as con:
            done = con.execute(
                update(threads).where(threads.c.thread_id == thread_id).values(updated_at=now)
            )
            if done.rowcount == 0:
                con.execute(
                    threads.insert().values(
                        thread_id=thread_id,
                        title=title[:200],
                        created_by=created_by,
                        created_at=now,
                        updated_at=now,
                    )
                )
        thread = self.get_thread(thread_id)
        assert thread is not None
        return thread

    def claim_thread(self, thread_id: str, run_id: str, title: str, by: str | None) -> str | None:
        """Make ``run_id`` the thread's answering run; return the run in the way, if any.

        A thread answers one question at a time: a run still running (or resuming) holds
        it. A holder that has stopped (or crashed and was recovered) no longer counts.
        """
        self.save_thread(thread_id, title, by)
        busy = select(runs.c.run_id).where(runs.c.status.in_(("running", "resuming")))
        with self.engine.begin() as con:
            done = con.execute(
                update(threads)
                .where(
                    threads.c.thread_id == thread_id,
                    (threads.c.active_run_id.is_(None)) | (threads.c.active_run_id.not_in(busy)),
                )
                .values(active_run_id=run_id, updated_at=utc_now())
            )
            if done.rowcount == 1:
                return None
            holder = con.execute(
                select(threads.c.active_run_id).where(threads.c.thread_id == thread_id)
            ).scalar()
        return str(holder)

    def release_thread(self, run_id: str) -> None:
        """Free the thread ``run_id`` was answering in (a no-op if it holds none)."""
        with self.engine.begin() as con:
            con.execute(
                update(threads).where(threads.c.active_run_id == run_id).values(active_run_id=None)
            )

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        """Return the thread, or None."""
        with self.engine.connect() as con:
            row = (
                con.execute(select(threads).where(threads.c.thread_id == thread_id))
                .mappings()
                .first()
            )
        return ThreadRecord.model_validate(dict(row)) if row else None

    def list_threads(self, limit: int = 50) -> list[ThreadRecord]:
        """Most recently active threads first."""
        with self.engine.connect() as con:
            rows = (
                con.execute(
                    select(threads)
                    .order_by(threads.c.updated_at.desc(), threads.c.thread_id)
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [ThreadRecord.model_validate(dict(r)) for r in rows]
