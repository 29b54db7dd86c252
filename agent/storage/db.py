"""Open the operational database (SQLite file or PostgreSQL) and bring its schema up to date.

One engine per service. SQLite transactions start with ``BEGIN IMMEDIATE`` (the
SQLAlchemy recipe for pysqlite), so two writers queue on the file lock instead of failing
half-way with "database is locked"; PostgreSQL runs at its default isolation, and the
statements that must be exclusive (one decision per action, one resume per run, one
delivery per lease) are single conditional writes that both dialects serialise.
"""

from __future__ import annotations

import threading
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite write waits for the file lock (other processes, the checkpointer)."""
POSTGRES_POOL_SIZE = 4
"""Connections one process's run store holds at most (the checkpointer has its own pool)."""


_MIGRATING = threading.Lock()


def sqlite_url(path: str | Path) -> str:
    """Return the SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{Path(path)}"


def postgres_url(url: str) -> str:
    """Return a ``postgresql://`` URL with the psycopg 3 driver SQLAlchemy needs named."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy, not the driver, decide when a transaction begins
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_engine(url: str) -> Engine:
    """Return a new engine for ``url``, its schema migrated to the latest revision.

    One per service (closed with it): a SQLite file can be deleted and made again under the
    same name, and an engine kept across that would write to the file that is gone.

    Raises:
        sqlalchemy.exc.OperationalError: the database cannot be opened or reached.
    """
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url)
    else:
        engine = create_engine(
            url, pool_size=POSTGRES_POOL_SIZE, max_overflow=4, pool_pre_ping=True
        )
    try:
        migrate(engine)
    except Exception:
        engine.dispose()
        raise
    return engine


def alembic_config() -> Config:
    """Return the Alembic configuration of the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(files("agent.storage") / "migrations"))
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest migration (a no-op when it is current).

    Two processes opening a new store at once would both migrate it: PostgreSQL serialises
    them with an advisory lock, SQLite with its write lock (``BEGIN IMMEDIATE``).
    """
    config = alembic_config()
    # Alembic keeps the running migration in module globals (its context and op proxies):
    # two threads migrating at once would run each other's steps on the wrong connection
    with _MIGRATING, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7246125)"))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def insert_ignore(engine: Engine, table: Table, keys: list[str]) -> Any:
    """Return an INSERT into ``table`` that does nothing when ``keys`` already exist.

    The dialect's own ``ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL): the first insert
    wins, which is how the stores make an action, an event or an incident happen once.
    """
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=keys)
