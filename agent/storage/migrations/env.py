"""Alembic environment: migrate the connection the caller hands over (no ``alembic.ini``).

:func:`agent.storage.db.migrate` passes an open connection in ``config.attributes``; the
command line (``alembic -x url=...``) is not used, so there is one way in.
"""

from __future__ import annotations

from alembic import context

from agent.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
