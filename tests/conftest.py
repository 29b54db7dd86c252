"""Shared fixtures: small seeded worlds written once per session, and fixture paths.

Worlds are generated into a session temp folder; tests that modify a database copy it first.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import postgres_server
from tools.data.synthetic import IncidentSpec, WorldConfig, generate_world
from tools.data.truth_file import truth_path

# the session's headless Chromium (``browser``) and axe-core helpers for page tests
pytest_plugins = ["tests.browser"]

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


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A throwaway PostgreSQL server for the session (skips without one; fails under CI)."""
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> str:
    """A fresh database on the session's PostgreSQL server: tests never share state.

    (An approval one test records would otherwise be in effect in the next one's triage.)
    """
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return postgres_server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def world_copy(small_world_db: Path, tmp_path: Path) -> Iterator[Path]:
    """A private, writable copy of the small world."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(small_world_db, path)
    shutil.copy(truth_path(small_world_db), truth_path(path))
    yield path


# -- test families that print their figure at the end of the session (issue 11): a family
# is one module whose cases each state an input and its right outcome; a known gap
# (xfail(strict=True)) counts as not held, and is named.
FAMILIES = {
    "test_model_faults.py": "LLM fault family",
    "test_tool_schemas.py": "tool schema family",
    "test_untrusted.py": "untrusted-data family",
    "test_prompt_injection.py": "prompt injection family",
    "test_grounding_corpus.py": "grounding corpus (perturbed plans rejected, by kind)",
}
"""Module file name -> the family's name in the figure."""


@pytest.fixture
def figure(record_property: Callable[[str, object], None]) -> Callable[[str, str], None]:
    """Record a figure a test measured, printed with the families' tallies at the end.

    Kept on the test's report (``user_properties``), so it reaches the summary from an
    xdist worker too; a later figure of the same name replaces an earlier one.
    """

    def put(name: str, text: str) -> None:
        record_property(f"figure:{name}", text)

    return put


def _family(report: pytest.TestReport) -> str | None:
    return FAMILIES.get(Path(report.nodeid.split("::")[0]).name)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print each family's figure: ``LLM fault family: 11/11 cases as stated``."""
    held: dict[str, int] = {}
    not_held: dict[str, list[str]] = {}
    figures: dict[str, str] = {}
    for category in ("passed", "failed", "error", "xfailed", "xpassed"):
        for report in terminalreporter.stats.get(category, []):
            for key, value in getattr(report, "user_properties", []):
                if str(key).startswith("figure:"):
                    figures[str(key)[len("figure:") :]] = str(value)
            family = _family(report)
            if family is None or not isinstance(report, pytest.TestReport):
                continue
            if category == "passed":
                held[family] = held.get(family, 0) + 1
            else:
                name = report.nodeid.split("::")[-1]
                not_held.setdefault(family, []).append(f"{name} ({category})")
    for family in sorted({*held, *not_held}):
        ok, missed = held.get(family, 0), not_held.get(family, [])
        terminalreporter.write_sep("-", f"{family}: {ok}/{ok + len(missed)} cases as stated")
        for case in missed:
            terminalreporter.write_line(f"  not held: {case}")
    for name, text in sorted(figures.items()):
        terminalreporter.write_line(f"{name}: {text}")
