"""The operational store: run records and dispatched actions (SQLite file, or Postgres).

This is kept apart from the DuckDB analytics file on purpose: DuckDB admits one writer, and
the tools must never wait on the agent's bookkeeping (nor the agent on a data load).
Writes are idempotent: a run record is upserted, and an action is dispatched once per
(run, position) however often a resumed run replays its last step.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agent.errors import StateStoreUnavailableError, path_problem

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, question TEXT, day TEXT, scope TEXT,
        db TEXT, status TEXT NOT NULL, model TEXT, prompts TEXT, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, plan TEXT, evidence TEXT, trace TEXT, decisions TEXT,
        error TEXT, input_tokens INTEGER, output_tokens INTEGER)""",
    """CREATE TABLE IF NOT EXISTS actions (
        run_id TEXT NOT NULL, idx INTEGER NOT NULL, action_id TEXT NOT NULL, target TEXT,
        parameters TEXT, expected_avoided REAL, avoided_ci TEXT, cost REAL, decision TEXT,
        decided_by TEXT, decided_at TEXT, dispatched_at TEXT NOT NULL, evidence_ids TEXT,
        PRIMARY KEY (run_id, idx))""",
)
MIGRATIONS = (("runs", "thread_id", "TEXT"),)
"""Columns added since a store was first created: (table, column, type), added when missing."""


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


class DispatchedAction(BaseModel):
    """An approved action, written once."""

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


def _open_problem(path: Path, exc: OSError | sqlite3.Error) -> str:
    """Say in a few words why the run store at ``path`` could not be opened."""
    # SQLite checks the file's header before anything is written: other files stay as they were.
    if getattr(exc, "sqlite_errorname", None) == "SQLITE_NOTADB":
        return "it is not a SQLite database"
    return path_problem(path, exc)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunStore:
    """Run records and dispatched actions in a SQLite file."""

    def __init__(self, path: str | Path):
        """Open (or create) the run store at ``path``.

        Raises:
            StateStoreUnavailableError: the file cannot be created or written (a folder that
                cannot be written, a file where a folder should be), or is not SQLite.
        """
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                for ddl in SCHEMA:
                    con.execute(ddl)
                for table, column, kind in MIGRATIONS:
                    have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
                    if column not in have:
                        con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        except (OSError, sqlite3.Error) as exc:
            raise StateStoreUnavailableError(self.path, _open_problem(self.path, exc)) from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            with con:
                yield con
        finally:
            con.close()

    def save_run(self, **fields: Any) -> None:
        """Insert or update a run record (JSON fields are serialised here)."""
        fields = dict(fields)
        for key in ("prompts", "plan", "evidence", "trace", "decisions"):
            if key in fields:
                fields[key] = json.dumps(fields[key], default=str)
        fields.setdefault("updated_at", _now())
        with self._lock, self._connect() as con:
            exists = con.execute(
                "SELECT 1 FROM runs WHERE run_id = ?", [fields["run_id"]]
            ).fetchone()
            if exists:
                cols = [k for k in fields if k != "run_id"]
                con.execute(
                    f"UPDATE runs SET {', '.join(f'{c} = ?' for c in cols)} WHERE run_id = ?",
                    [fields[c] for c in cols] + [fields["run_id"]],
                )
            else:
                fields.setdefault("created_at", fields["updated_at"])
                cols = list(fields)
                con.execute(
                    f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                    [fields[c] for c in cols],
                )

    def purge_runs(self, older_than_days: int) -> list[str]:
        """Delete run records last updated more than ``older_than_days`` days ago.

        Runs still waiting for a decision are kept, and so are dispatched actions (the audit
        of what a manager approved). Returns the ids of the deleted runs: each run's
        checkpoints are kept under its own id, and the caller deletes them too.
        """
        cutoff = (datetime.now(UTC) - timedelta(days=older_than_days)).isoformat()
        with self._lock, self._connect() as con:
            rows = con.execute(
                "SELECT run_id FROM runs WHERE updated_at < ? AND status != 'waiting_approval'",
                [cutoff],
            ).fetchall()
            con.executemany("DELETE FROM runs WHERE run_id = ?", [[r[0]] for r in rows])
        return sorted(r[0] for r in rows)

    def get_run(self, run_id: str) -> RunRecord | None:
        """Return the run, or None."""
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            row = con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            return None
        data = dict(row)
        for key, empty in (
            ("prompts", {}),
            ("plan", None),
            ("evidence", []),
            ("trace", []),
            ("decisions", []),
        ):
            data[key] = json.loads(data[key]) if data.get(key) else empty
        data["input_tokens"] = data.get("input_tokens") or 0
        data["output_tokens"] = data.get("output_tokens") or 0
        return RunRecord.model_validate(data)

    def thread_runs(self, thread_id: str) -> list[RunRecord]:
        """Return the runs of a conversation thread, oldest first."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT run_id FROM runs WHERE thread_id = ? ORDER BY created_at, rowid",
                [thread_id],
            ).fetchall()
        return [r for (run_id,) in rows if (r := self.get_run(str(run_id))) is not None]

    def run_ids_starting(self, prefix: str, limit: int = 2) -> list[str]:
        """Return up to ``limit`` run ids that start with ``prefix``."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY run_id LIMIT ?",
                [len(prefix), prefix, limit],
            ).fetchall()
        return [str(r[0]) for r in rows]

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Most recent runs first (summary columns)."""
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute(
                "SELECT run_id, kind, status, day, scope, question, created_at, updated_at "
                "FROM runs "
                "ORDER BY created_at DESC, run_id DESC LIMIT ?",
                [limit],
            ).fetchall()
        return [dict(r) for r in rows]

    def dispatch(self, action: DispatchedAction) -> bool:
        """Record an approved action once; return False if it was already dispatched."""
        row = action.model_dump()
        for key in ("parameters", "avoided_ci", "evidence_ids"):
            row[key] = json.dumps(row[key])
        cols = list(row)
        with self._lock, self._connect() as con:
            cur = con.execute(
                f"INSERT OR IGNORE INTO actions ({', '.join(cols)}) "
                f"VALUES ({', '.join('?' for _ in cols)})",
                [row[c] for c in cols],
            )
            return cur.rowcount == 1

    def actions(self, run_id: str | None = None) -> list[DispatchedAction]:
        """Dispatched actions (of one run, or all), oldest first."""
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            sql = (
                "SELECT * FROM actions"
                + (" WHERE run_id = ?" if run_id else "")
                + " ORDER BY dispatched_at, run_id, idx"
            )
            rows = con.execute(sql, [run_id] if run_id else []).fetchall()
        out = []
        for r in rows:
            data = dict(r)
            for key in ("parameters", "avoided_ci", "evidence_ids"):
                data[key] = json.loads(data[key]) if data[key] else None
            data["evidence_ids"] = data["evidence_ids"] or []
            data["parameters"] = data["parameters"] or {}
            out.append(DispatchedAction.model_validate(data))
        return out
