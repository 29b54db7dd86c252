"""Ground truth of a synthetic world, kept in a file of its own beside the database.

The ``incidents`` table and the incident specs a world was generated from are the answer key
of every eval. They never live in the database the agent reads: the generator writes them to
``<name>.truth.duckdb`` next to ``<name>.duckdb`` (no agent tool opens that file), and the
database keeps only a ``truth_id`` (a digest of that truth) in its ``metadata`` so a truth file
left over from another generation is refused rather than scored against.

Writes follow the database's load: :func:`stage_truth` writes a temporary file before the
load commits, :func:`publish_truth` moves it into place after; a load that replaces
deliveries without truth (real data) removes the old file with :func:`discard_truth`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import duckdb
import pandas as pd

from tools.data.connection import connect
from tools.data.schema import INCIDENTS

TRUTH_SUFFIX = ".truth.duckdb"
TRUTH_KEY = "truth_id"
"""``metadata`` key of the database that names the truth file's generation."""


class TruthMissingError(ValueError):
    """The database has no ground truth file, or the file belongs to another generation."""


def truth_path(db: str | Path) -> Path:
    """Return the truth file of a database: ``world.duckdb`` -> ``world.truth.duckdb``."""
    path = Path(db)
    return path.with_name(path.stem + TRUTH_SUFFIX)


def truth_id(incidents: pd.DataFrame, specs: list[dict[str, object]]) -> str:
    """Digest of a world's truth (sha256 of its rows and specs): stable for the same world."""
    raw = incidents.to_json(orient="records", date_format="iso") + json.dumps(specs, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def stage_truth(
    db: str | Path, incidents: pd.DataFrame, specs: list[dict[str, object]]
) -> tuple[Path, str]:
    """Write the truth to a temporary file beside the database.

    Args:
        db: the database the truth belongs to.
        incidents: rows of the ``incidents`` table (:data:`~tools.data.schema.INCIDENTS`).
        specs: the incident specs the world was generated from (JSON-able mappings).

    Returns:
        The temporary file, to pass to :func:`publish_truth` once the database has committed,
        and the truth's digest (:func:`truth_id`), for the database's metadata.
    """
    final = truth_path(db)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    digest = truth_id(incidents, specs)
    con = connect(tmp)
    try:
        con.execute(INCIDENTS.ddl())
        con.register("_incidents", incidents)
        cols = ", ".join(INCIDENTS.column_names)
        con.execute(f"INSERT INTO incidents ({cols}) SELECT {cols} FROM _incidents")
        con.execute("CREATE TABLE metadata (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
        con.execute(
            "INSERT INTO metadata VALUES (?, ?), (?, ?)",
            [TRUTH_KEY, json.dumps(digest), "specs", json.dumps(specs)],
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return tmp, digest


def publish_truth(staged: Path, db: str | Path) -> None:
    """Move a staged truth file into place (atomic on one file system)."""
    os.replace(staged, truth_path(db))


def discard_truth(db: str | Path) -> None:
    """Remove a database's truth file, if any (its deliveries were replaced by other data)."""
    truth_path(db).unlink(missing_ok=True)


def read_truth(db: str | Path, expected_id: object) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """Read a world's ground truth: the ``incidents`` rows and the incident specs.

    Args:
        db: the database (its truth file is found beside it).
        expected_id: the ``truth_id`` the database's metadata holds.

    Returns:
        ``(incidents, specs)``: incidents ordered by ``incident_id``.

    Raises:
        TruthMissingError: no truth file, or one written for another generation of the data.
    """
    path = truth_path(db)
    if expected_id is None:
        raise TruthMissingError(
            f"{db} has no ground truth: only worlds made by `lastmile generate` have one"
        )
    if not path.exists():
        raise TruthMissingError(
            f"the ground truth of {db} is missing ({path}): generate the world again"
        )
    con = connect(path, read_only=True)
    try:
        meta = dict(con.execute("SELECT key, value FROM metadata").fetchall())
        incidents = con.execute("SELECT * FROM incidents ORDER BY incident_id").df()
    except duckdb.Error as exc:
        raise TruthMissingError(f"{path} is not a ground-truth file: {exc}") from None
    finally:
        con.close()
    if json.loads(meta.get(TRUTH_KEY, "null")) != expected_id:
        raise TruthMissingError(
            f"{path} belongs to another generation of {db}: generate the world again"
        )
    return incidents, json.loads(meta.get("specs", "[]"))
