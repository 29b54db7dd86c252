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

from agent.settings import Settings
from agent.state import STATE_TYPES


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
            psycopg.OperationalError: the PostgreSQL server cannot be reached.
        """
        if settings.postgres_url is not None:
            from langgraph.checkpoint.postgres import PostgresSaver
            from langgraph.store.postgres import PostgresStore
            from psycopg import Connection
            from psycopg.rows import dict_row

            url = settings.postgres_url.get_secret_value()
            conns = [
                Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
                for _ in range(2)
            ]
            saver = PostgresSaver(conns[0], serde=state_serializer())  # type: ignore[arg-type]
            pg_store = PostgresStore(conns[1])  # type: ignore[arg-type]
            saver.setup()
            pg_store.setup()
            return cls(saver, pg_store, conns)
        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.store.sqlite import SqliteStore

        # one connection each: both take their own lock around their transactions
        saver_conn = sqlite3.connect(state_db, check_same_thread=False)
        store_conn = sqlite3.connect(state_db, check_same_thread=False, isolation_level=None)
        for conn in (saver_conn, store_conn):
            conn.execute("PRAGMA busy_timeout = 10000")
        sqlite_saver = SqliteSaver(saver_conn, serde=state_serializer())
        sqlite_store = SqliteStore(store_conn)
        sqlite_saver.setup()
        sqlite_store.setup()
        return cls(sqlite_saver, sqlite_store, [saver_conn, store_conn])

    def close(self) -> None:
        """Release the connections."""
        for conn in self._closers:
            with suppress(Exception):
                conn.close()
        self._closers.clear()
