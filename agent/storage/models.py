"""The model registry's records (SQLAlchemy Core, SQLite or PostgreSQL).

One row per fitted artefact (:class:`tools.core.models.ModelRecord`), written when it is
fitted; the monitor reads them to compare a model's versions.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from agent.storage.db import insert_ignore
from agent.storage.schema import model_registry
from tools.core.models import ModelRecord


def record_model(engine: Engine, record: ModelRecord) -> bool:
    """Store a fitted artefact's record; False when it is already there."""
    row: dict[str, Any] = record.model_dump(mode="json")
    row["params"] = json.dumps(record.params, sort_keys=True)
    row["validation"] = json.dumps(record.validation, sort_keys=True)
    with engine.begin() as con:
        done = con.execute(insert_ignore(engine, model_registry, ["artefact_id"]).values(**row))
        return bool(done.rowcount)


def list_models(
    engine: Engine, kind: str | None = None, since: datetime | None = None
) -> list[ModelRecord]:
    """Return the records in the order they were fitted, oldest first (one kind's, or all)."""
    query = select(model_registry).order_by(model_registry.c.fitted_at)
    if kind is not None:
        query = query.where(model_registry.c.kind == kind)
    if since is not None:
        query = query.where(model_registry.c.fitted_at >= since.isoformat())
    with engine.connect() as con:
        rows = con.execute(query).mappings().all()
    return [
        ModelRecord.model_validate(
            {
                **row,
                "params": json.loads(row["params"]),
                "validation": json.loads(row["validation"]),
            }
        )
        for row in rows
    ]
