"""Chart numbers: the day a chart marks is called an anomaly only when it is one."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.charts import chart_sets, render_charts
from agent.results import ToolResult
from tools.data.backend import DuckDBBackend


def _diagnosis(within_normal: bool) -> ToolResult:
    return ToolResult(
        id="diagnose#1",
        tool="diagnose",
        result={
            "target": "S001",
            "level": "store",
            "day": "2026-02-10",
            "window_start": "2026-02-10",
            "grain_days": 1,
            "value": 0.09,
            "expected": 0.0835,
            "excess": 0.0065,
            "within_normal": within_normal,
            "hypotheses": [],
        },
    )


@pytest.mark.parametrize(("within", "word"), [(True, "diagnosed"), (False, "anomaly")])
def test_the_marked_day_is_named_for_what_it_is(
    small_world_db: Path, tmp_path: Path, within: bool, word: str
) -> None:
    (charts,) = chart_sets([_diagnosis(within)], DuckDBBackend(small_world_db))
    assert charts.kpi.within_normal is within
    assert f", {word} on 2026-02-10" in charts.kpi.title
    assert charts.kpi.normal == 8.35  # the precision the text rounds from, not 8.4
    assert render_charts([_diagnosis(within)], DuckDBBackend(small_world_db), tmp_path)
