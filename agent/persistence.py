"""Where a run's graph state lives: the checkpointer and the result store, built together.

Both sit in one database: the SQLite state file by default, PostgreSQL when
``LASTMILE_POSTGRES_URL`` is set (LangGraph's own savers and stores for each). The
checkpoint serializer rebuilds only the state's own models (:data:`agent.state.STATE_TYPES`)
and LangGraph's and LangChain's safe types: a checkpoint row cannot make the process import
anything else.
"""

from __future__ import annotations

import sqlite3
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.store.base import BaseStore
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random_exponential

from agent.errors import PostgresUnavailableError
from agent.settings import Settings
from agent.state import STATE_TYPES

POSTGRES_POOL_SIZE = 4
"""Connections one service holds at most (checkpoints and results share them)."""
POSTGRES_CONNECT_TIMEOUT_S = 10.0
"""How long opening the state store waits for the PostgreSQL server before failing."""


def _host(url: str) -> str:
    """Return where a PostgreSQL URL points (host, port, database), without credentials."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except Exception:  # an unreadable URL: say nothing of it that could hold a password
        return "LASTMILE_POSTGRES_URL"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def state_serializer() -> JsonPlusSerializer:
    """Return the checkpoint serializer, restricted to the state's models and safe types."""
    return JsonPlusSerializer(allowed_msgpack_modules=None).with_msgpack_allowlist(STATE_TYPES)


@dataclass
class Persistence:
    """A graph's checkpointer and store, and the connections they hold."""

    checkpointer: BaseCheckpointSaver[Any]
    store: BaseStore
    _closers: list[Any] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings, state_db: Path) -> Persistence:
        """Connect to the configured database and create the tables that are missing.

        Raises:
            psycopg.OperationalError: the PostgreSQL server cannot be reached (a
                ``psycopg_pool.PoolTimeout`` after :data:`POSTGRES_CONNECT_TIMEOUT_S`).
        """
        if settings.postgres_url is not None:
            return cls._postgres(settings.postgres_url.get_secret_value())
        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.store.sqlite import SqliteStore

        # one connection each: both take their own lock around their transactions
        saver_conn = sqlite3.connect(state_db, check_same_thread=False)
        store_conn = sqlite3.connect(state_db, check_same_thread=False, isolation_level=None)
        for conn in (saver_conn, store_conn):
            conn.execute("PRAGMA busy_timeout = 10000")
        sqlite_saver = SqliteSaver(saver_conn, serde=state_serializer())
        sqlite_store = SqliteStore(store_conn)
        # two processes opening a new file at once: its WAL switch fails fast ("database is
        # locked", busy_timeout does not apply to it), or both apply one migration step;
        # the loser tries again
        _while_locked(sqlite_saver.setup)
        _while_locked(sqlite_store.setup)
        return cls(sqlite_saver, sqlite_store, [saver_conn, store_conn])

    @classmethod
    def _postgres(cls, url: str) -> Persistence:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from langgraph.store.postgres import PostgresStore
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        # a pool checks each connection before lending it: a server restart or an idle
        # timeout costs a reconnect, not every later call
        pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=1,
            max_size=POSTGRES_POOL_SIZE,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            check=ConnectionPool.check_connection,
            open=False,
        )
        try:
            # one plain connection first: its error says why (the pool's says only "timeout")
            psycopg.connect(url, connect_timeout=int(POSTGRES_CONNECT_TIMEOUT_S)).close()
            pool.open(wait=True, timeout=POSTGRES_CONNECT_TIMEOUT_S)
            saver = PostgresSaver(pool, serde=state_serializer())  # type: ignore[arg-type]
            store = PostgresStore(pool)  # type: ignore[arg-type]
            saver.setup()
            store.setup()
        except psycopg.Error as exc:
            pool.close()
            raise PostgresUnavailableError(_host(url), str(exc).splitlines()[0]) from None
        return cls(saver, store, [pool])

    def close(self) -> None:
        """Release the connections."""
        for conn in self._closers:
            with suppress(Exception):
                conn.close()
        self._closers.clear()


_RACES = ("locked", "duplicate column name", "already exists")
"""What a SQLite setup raises when another process is setting up the same new file: its
lock, or a migration step the other process applied between our version read and our
ALTER TABLE (LangGraph's store migrations are not one transaction). A retry reads the
version again and skips what is done."""


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(r in str(exc) for r in _RACES)


_while_locked = retry(
    retry=retry_if_exception(_is_locked),
    stop=stop_after_delay(30),
    wait=wait_random_exponential(multiplier=0.05, max=1.0),
    reraise=True,
)(lambda setup: setup())
"""Call a SQLite setup, again while another process is setting the file up (up to 30 s)."""
