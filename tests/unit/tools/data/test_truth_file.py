"""The answer key lives beside the database, never in it, and follows the data it belongs to."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.groundtruth import load_truth, world_of
from tools.data import connect
from tools.data.files import ingest_files
from tools.data.synthetic import IncidentSpec, WorldConfig, generate_world, generator
from tools.data.truth_file import TruthMissingError, truth_path

FIXTURES = Path(__file__).parents[3] / "fixtures"
WORLD = WorldConfig(stores=6, days=21, seed=5)
SHORTAGE = IncidentSpec(kind="driver_shortage", store="S002", start_day=12)


def _tables(db: Path) -> set[str]:
    con = connect(db, read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()


def test_the_generator_writes_the_truth_beside_the_database(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    generate_world(db, WORLD, [SHORTAGE], progress=False)
    assert "incidents" not in _tables(db)
    assert truth_path(db) == tmp_path / "w.truth.duckdb" and truth_path(db).exists()
    truth = load_truth(db)
    injected = truth.injected
    assert injected.kind.tolist() == ["driver_shortage"] and injected.store_id.tolist() == ["S002"]
    # the incident specs to rebuild the world are in the truth file too, not the metadata
    injected_shocks = [s for s in world_of(db).shocks if s.injected]
    assert [s.kind for s in injected_shocks] == ["driver_shortage"]
    assert not list(tmp_path.glob("*.tmp-*"))


def test_a_truth_file_of_another_generation_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    generate_world(a, WORLD, [SHORTAGE], progress=False)
    generate_world(b, WORLD, [], progress=False)
    shutil.copy(truth_path(b), truth_path(a))
    with pytest.raises(TruthMissingError, match="another generation"):
        load_truth(a)
    truth_path(a).unlink()
    with pytest.raises(TruthMissingError, match="missing"):
        load_truth(a)


def test_loading_real_data_over_a_world_removes_its_truth(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    generate_world(db, WORLD, [SHORTAGE], progress=False)
    ingest_files(db, [str(FIXTURES / "contract_ok")])
    assert not truth_path(db).exists()
    with pytest.raises(TruthMissingError, match="no ground truth"):
        load_truth(db)


def test_a_failed_generation_keeps_the_previous_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "w.duckdb"
    generate_world(db, WORLD, [SHORTAGE], progress=False)
    before = truth_path(db).read_bytes()

    def killed(*args: object, **kwargs: object) -> Iterator[object]:
        raise RuntimeError("killed half-way")
        yield

    monkeypatch.setattr(generator, "delivery_chunks", killed)
    with pytest.raises(RuntimeError, match="half-way"):
        generate_world(db, WORLD.model_copy(update={"seed": 6}), [], progress=False)
    assert truth_path(db).read_bytes() == before
    assert not list(tmp_path.glob("*.tmp-*"))
    assert load_truth(db).injected.store_id.tolist() == ["S002"]
