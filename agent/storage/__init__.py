"""The operational store: run records, threads, decisions and the dispatch outbox.

Kept apart from the DuckDB analytics file on purpose (DuckDB admits one writer, and the tools
must never wait on the agent's bookkeeping), and in the same database as the graph's
checkpoints: the SQLite state file by default, PostgreSQL when ``LASTMILE_POSTGRES_URL`` is
set. The schema is :mod:`agent.storage.schema`, versioned by Alembic migrations.
"""
