"""Stability of causal effects: a changed mechanism is flagged, stable worlds are not.

Worlds of 20 stores x 196 days (14 windows of 14 days); in the shifted one every extra order
per present driver costs twice the lateness from day 182 on (a concept drift: the data's
columns keep their distributions, only the effect of load on lateness changes), so the
latest window is wholly after the change. No-shows and volume act on lateness through load.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from agent.monitor_report import write_report
from agent.service import AgentService
from agent.settings import Settings
from tools.analytics.scope import load_catalog
from tools.causal.stability import effect_stability
from tools.data.backend import DuckDBBackend
from tools.data.synthetic import MechanismShift, WorldConfig, generate_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOAD_CAUSES = {"no_show_rate", "volume", "orders_per_driver"}
SHIFT = MechanismShift(parameter="beta_opd", start_day=182, factor=2.0)


def _world(tmp: Path, name: str, seed: int, shifts: list[MechanismShift]) -> Path:
    path = tmp / f"{name}.duckdb"
    config = WorldConfig(stores=20, days=196, seed=seed, mechanism_shifts=shifts)
    generate_world(path, config, [], progress=False)
    return path


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("stability")
    return {
        "stable-11": _world(tmp, "stable11", 11, []),
        "stable-12": _world(tmp, "stable12", 12, []),
        "shifted-11": _world(tmp, "shifted11", 11, [SHIFT]),
    }


@pytest.mark.parametrize("name", ["stable-11", "stable-12"])
def test_a_stable_world_moves_no_effect(worlds: dict[str, Path], name: str) -> None:
    backend = DuckDBBackend(worlds[name])
    result = effect_stability(backend, load_catalog(backend).last_day)
    assert result.level == "store" and result.critical_t and len(result.effects) >= 10
    assert all(e.windows == 13 for e in result.effects)
    moved = [(e.node, e.t) for e in result.effects if e.flagged]
    assert moved == [], f"false alarms on a stable world: {moved}"
    # the empirical null holds the window-to-window spread: no |t| near the bar
    assert max(abs(e.t) for e in result.effects) < result.critical_t / 1.5


def test_a_doubled_effect_of_load_is_flagged_and_nothing_else(worlds: dict[str, Path]) -> None:
    backend = DuckDBBackend(worlds["shifted-11"])
    day = load_catalog(backend).last_day
    result = effect_stability(backend, day)
    moved = {e.node: e for e in result.effects if e.flagged}
    assert moved and set(moved) <= LOAD_CAUSES, moved
    for e in moved.values():
        assert e.latest > e.interval[1] and e.latest > 1.4 * e.reference_mean, "it grew"
    # before the change, the same world is stable
    before = effect_stability(backend, day - timedelta(days=14))
    assert not [e.node for e in before.effects if e.flagged]


def test_the_monitor_alerts_on_a_moved_effect_and_reports_it(
    worlds: dict[str, Path], tmp_path: Path
) -> None:
    service = AgentService(
        Settings(llm_offline=True),  # type: ignore[call-arg]
        db=worlds["shifted-11"],
        state_db=tmp_path / "s.sqlite",
    )
    try:
        result = service.monitor(days=3)
        # the next runs name the moved causes in their plans' caveats
        moved = service.moved_effects()
        assert set(moved) == {a.name for a in result.open_alerts if a.kind == "effects"}
        assert service.context(moved_effects=moved).moved_effects == moved
    finally:
        service.close()
    effects = [a for a in result.open_alerts if a.kind == "effects"]
    assert effects and {a.name for a in effects} <= LOAD_CAUSES
    assert "weighs more on the late rate" in effects[0].message
    text = write_report(result, tmp_path / "report").read_text()
    assert "## Causal effects" in text and "| **yes** |" in text


def test_short_or_thin_data_says_why_it_is_not_assessed(tmp_path: Path) -> None:
    short = tmp_path / "short.duckdb"
    generate_world(short, WorldConfig(stores=8, days=40, seed=3), [], progress=False)
    backend = DuckDBBackend(short)
    result = effect_stability(backend, load_catalog(backend).last_day)
    assert result.critical_t is None and result.effects == []
    assert "need 4" in result.not_assessed[0] and "70 days after the data" in result.not_assessed[0]


def test_a_world_without_weather_tests_the_causes_it_has(tmp_path: Path) -> None:
    path = tmp_path / "dry.duckdb"
    config = WorldConfig(stores=10, days=100, seed=4, weather_feed="none")
    generate_world(path, config, [], progress=False)
    backend = DuckDBBackend(path)
    result = effect_stability(backend, date(2026, 1, 1) + timedelta(days=99))
    assert result.critical_t is not None
    assert {"precip_mm", "traffic_index"}.isdisjoint(e.node for e in result.effects)
    assert any("no weather feed" in n for n in result.not_assessed)
    assert not [e.node for e in result.effects if e.flagged]
