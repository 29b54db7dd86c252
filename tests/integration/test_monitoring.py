"""The monitor end to end: alert load on stable worlds, decay after a regime change, report.

Worlds are 12 stores x 90 days (the monitor covers days 29-90: the drift test needs four
weeks of reference). A fault is injected on day 50.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from agent.interfaces.cli import app
from agent.interfaces.slack.alerts import post_alerts
from agent.monitoring import MonitorResult
from agent.service import AgentService
from agent.settings import Settings
from agent.storage import monitoring as store
from tests.servers import lastmile_server
from tests.slack_fake import FakeSlack
from tools.data.synthetic import WorldConfig, generate_world
from tools.data.synthetic.faults import DataFault, inject

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAYS = 90
MONITORED = 62
STABLE_SEEDS = (21, 22, 23, 24, 25)
FAULT_DAY = 50


def world(seed: int) -> WorldConfig:
    return WorldConfig(stores=12, days=DAYS, seed=seed)


def last_day(seed: int) -> pd.Timestamp:
    return pd.Timestamp(world(seed).start_date + timedelta(days=DAYS - 1))


def fault_day(seed: int) -> pd.Timestamp:
    return pd.Timestamp(world(seed).start_date + timedelta(days=FAULT_DAY))


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("monitor")
    out = {}
    for seed in STABLE_SEEDS:
        out[seed] = folder / f"stable{seed}.duckdb"
        generate_world(out[seed], world(seed), [], progress=False)
    return out


def monitor(db: Path, state: Path, seed: int) -> MonitorResult:
    service = AgentService(Settings(llm_offline=True), db=db, state_db=state)  # type: ignore[call-arg]
    try:
        return service.monitor(last_day(seed).date(), MONITORED)
    finally:
        service.close()


def test_stable_worlds_raise_at_most_one_alert(
    worlds: dict[int, Path], tmp_path: Path, figure: Callable[[str, str], None]
) -> None:
    """The multiple-testing rule: drift Bonferroni at 0.001 per day; decay and alarm-rate
    tests at 0.001 per series and day; an alert is an episode, not a day."""
    opened = []
    for seed, db in worlds.items():
        result = monitor(db, tmp_path / f"state{seed}.sqlite", seed)
        opened += [(seed, a.kind, a.name, a.subject, a.opened_on) for a in result.opened]
    figure(
        "monitor on stable worlds",
        f"{len(opened)} alert(s) over {len(worlds)} worlds x {MONITORED} days: {opened}",
    )
    assert len(opened) <= 1, opened


@pytest.fixture(scope="module")
def regime(worlds: dict[int, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stable world 21 with 60 % more deliveries from day 50 on (a new large customer)."""
    db = tmp_path_factory.mktemp("regime") / "regime.duckdb"
    shutil.copy(worlds[21], db)
    inject(db, [DataFault(kind="demand", start=fault_day(21).date(), factor=1.6)])
    return db


def test_a_regime_change_raises_drift_and_decay_then_the_refit_recovers(
    regime: Path, tmp_path: Path
) -> None:
    result = monitor(regime, tmp_path / "state.sqlite", 21)
    start = fault_day(21).date()
    alerts = {(a.kind, a.name, a.subject): a.opened_on for a in result.opened}
    assert start <= alerts[("health", "drift", "orders")] <= start + timedelta(days=2)
    assert start <= alerts[("decay", "orders", "all")] <= start + timedelta(days=7)
    errors = (
        pd.DataFrame(
            [
                {"day": f.day, "e": f.value}
                for f in result.figures
                if f.kind == "forecast" and f.name == "orders"
            ]
        )
        .set_index("day")
        .e
    )
    before = errors[(errors.index < start) & (errors.index >= start - timedelta(days=28))]
    weekly = errors.rolling(7).mean()
    # the first weekly refit with the new regime in its history is within 7 days of it
    by = start + timedelta(days=7 + 14)
    recovered = weekly[(weekly.index > start) & (weekly.index <= by)]
    assert weekly[weekly.index > start].max() > 2 * before.mean()  # the error rose
    assert (recovered <= 1.2 * before.mean()).any(), (before.mean(), recovered.to_dict())


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def faulty(worlds: dict[int, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stable world 22 whose distances arrive in metres from day 50 on."""
    db = tmp_path_factory.mktemp("faulty") / "metres.duckdb"
    shutil.copy(worlds[22], db)
    inject(
        db, [DataFault(kind="units", start=fault_day(22).date(), column="distance_km", factor=1000)]
    )
    return db


@pytest.fixture(scope="module")
def monitored(faulty: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state store the monitor has run on (the faulty world's 62 days)."""
    state = tmp_path_factory.mktemp("monstate") / "state.sqlite"
    monitor(faulty, state, 22)
    return state


def test_the_cli_writes_the_report_and_each_chart_draws_its_series(
    faulty: Path, tmp_path: Path
) -> None:
    day = last_day(22).date().isoformat()
    state = tmp_path / "state.sqlite"
    args = [
        "monitor",
        "--db",
        str(faulty),
        "--state-db",
        str(state),
        "--date",
        day,
        "--days",
        str(MONITORED),
        "--out-dir",
        str(tmp_path / "report"),
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "delivery distance" in first.stdout
    report = tmp_path / "report"
    text = (report / "monitor.md").read_text()
    assert "avg_distance_km" in text and f"{fault_day(22).date()}" in text
    for name in ("drift", "forecast_error", "alarm_rate"):
        width, height = _png_size(report / f"{name}.png")
        assert width >= 600 and height >= 250
    drift = pd.read_csv(report / "drift.csv")
    distance = drift[drift.feature == "avg_distance_km"].set_index("day")
    on = str(fault_day(22).date())
    assert distance.loc[on, "z"] > distance.loc[on, "bar"] and distance.loc[on, "flagged"]
    before = distance[distance.index < on]
    assert not before.flagged.any()  # (a z over the bar with a shift under 25 % is not drift)
    forecast = pd.read_csv(report / "forecast_error.csv")
    assert set(forecast.kpi) == {"orders", "late_rate"}
    assert forecast.groupby("kpi").size().min() >= MONITORED - 8  # closed days aside
    alarms = pd.read_csv(report / "alarm_rate.csv")
    assert len(alarms) == MONITORED and (alarms.ceiling_per_day > 0).all()
    # a second run over the same days opens nothing new
    again = CliRunner().invoke(app, [*args, "--json"])
    assert again.exit_code == 0, again.output
    assert '"opened": []' in again.stdout


def test_alerts_reach_slack_once(faulty: Path, monitored: Path) -> None:
    with FakeSlack() as slack:
        settings = Settings(  # type: ignore[call-arg]
            llm_offline=True, slack_bot_token="xoxb-test-token", slack_api_url=slack.url
        )
        service = AgentService(settings, db=faulty, state_db=monitored)
        try:
            assert post_alerts(service, "C0MON") >= 1
            assert post_alerts(service, "C0MON") == 0
        finally:
            service.close()
        posted = slack.messages("C0MON")
        assert len(posted) == 1
        assert "delivery distance" in posted[0]["text"]


def test_metrics_expose_the_monitor_gauges(faulty: Path, monitored: Path) -> None:
    """The gauges are the latest monitored day's figures, and the open alerts by kind."""
    with lastmile_server(faulty, monitored) as url:
        text = httpx.get(f"{url}/metrics").text
    lines = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    service = AgentService(Settings(llm_offline=True), db=faulty, state_db=monitored)  # type: ignore[call-arg]
    try:
        snap = store.snapshot(service.store.engine)
        opened = len(store.alerts(service.store.engine, open_only=True))
    finally:
        service.close()
    assert snap.day == last_day(22).date()
    assert float(lines["lastmile_data_trusted"]) == snap.trusted
    assert float(lines["lastmile_data_drift_max_abs_z"]) == pytest.approx(snap.max_drift_z)
    for kpi in ("orders", "late_rate"):
        assert float(lines[f'lastmile_forecast_mase{{kpi="{kpi}"}}']) == pytest.approx(
            snap.mase[kpi]
        )
    kinds = ("health", "decay", "alarms", "agent")
    assert sum(float(lines[f'lastmile_monitor_open_alerts{{kind="{k}"}}']) for k in kinds) == (
        opened
    )
