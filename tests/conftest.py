"""Shared fixtures: small seeded worlds written once per session, and fixture paths.

Worlds are generated into a session temp folder; tests that modify a database copy it first.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.data.synthetic import IncidentSpec, WorldConfig, generate_world
from tools.data.truth_file import truth_path

FIXTURES = Path(__file__).parent / "fixtures"

# One incident of every kind, spread so they do not overlap (20 stores, 2 regions, 60 days).
ALL_KINDS = [
    IncidentSpec(kind="driver_shortage", store="S003", start_day=40),
    IncidentSpec(kind="severe_weather", region="R2", start_day=45, days=2),
    IncidentSpec(kind="carrier_outage", region="R1", start_day=50),
    IncidentSpec(kind="volume_surge", store="S012", start_day=52),
    IncidentSpec(kind="dispatch_delay", store="S006", start_day=30),
    IncidentSpec(kind="traffic_disruption", region="R2", start_day=35),
]
SMALL_WORLD = WorldConfig(stores=20, days=60, seed=1)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def small_world_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 stores x 60 days, seed 1, one incident of each kind. Read-only for tests."""
    path = tmp_path_factory.mktemp("worlds") / "small.duckdb"
    generate_world(path, SMALL_WORLD, ALL_KINDS, progress=False)
    return path


@pytest.fixture
def world_copy(small_world_db: Path, tmp_path: Path) -> Iterator[Path]:
    """A private, writable copy of the small world."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(small_world_db, path)
    shutil.copy(truth_path(small_world_db), truth_path(path))
    yield path
