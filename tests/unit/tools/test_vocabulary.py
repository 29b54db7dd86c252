"""One vocabulary: causes, actions and KPIs are defined once and every other place agrees."""

from __future__ import annotations

from datetime import date
from typing import get_args

import pytest
from pydantic import ValidationError

from agent.parsing import KPI_WORDS
from agent.schemas import ActionPlan, NotAssessedCause
from agent.verify import verify_plan
from evals.suite import Expect
from tools.analytics.baselines import KPIS as CELL_KPIS
from tools.catalog import LeverKind, load_catalog
from tools.causal.graph import load_graph
from tools.core.context import ToolContext
from tools.data.synthetic import CAUSES
from tools.data.synthetic.actions import ACTION_LEVERS
from tools.forecast import ForecastInput
from tools.query_kpis import CARRIER_KPIS, DEFAULT_KPIS, QueryKpisInput, query_kpis
from tools.vocabulary import action_ids, cause_ids, forecast_kpis, kpis


def test_every_graph_variable_and_cell_kpi_is_a_kpi_with_the_graphs_feed() -> None:
    graph = load_graph()
    assert set(graph.nodes) <= set(kpis()), "a graph variable is missing from tools/kpis.yaml"
    assert set(CELL_KPIS) <= set(kpis())
    stray = {n for n, k in kpis().items() if not k.query} - set(graph.nodes) - set(CELL_KPIS)
    assert not stray, f"not computed anywhere: {stray}"
    assert set(DEFAULT_KPIS) | CARRIER_KPIS <= {n for n, k in kpis().items() if k.query}
    for name, node in graph.nodes.items():
        assert kpis()[name].feed == node.feed


def test_every_query_kpi_is_computed_by_query_kpis(ctx: ToolContext) -> None:
    names = [k.name for k in kpis().values() if k.query]
    result = query_kpis(
        ctx,
        QueryKpisInput(
            scope="all", start=date(2026, 2, 1), end=date(2026, 2, 3), grain="day", kpis=names
        ),
    )
    reported = set(result.rows[0]) | set(result.totals)
    assert set(names) <= reported, set(names) - reported
    assert set(forecast_kpis()) <= set(names)


def test_tool_arguments_take_their_enums_from_the_vocabulary() -> None:
    kpi_enum = ForecastInput.model_json_schema()["properties"]["kpi"]["enum"]
    assert kpi_enum == forecast_kpis()
    with pytest.raises(ValidationError, match="unknown forecastable KPI 'lateness'; valid: orders"):
        ForecastInput(kpi="lateness")
    with pytest.raises(ValidationError, match="unknown KPI"):
        QueryKpisInput(kpis=["on_time"])


def test_the_plan_schema_names_causes_and_actions_from_the_reviewed_files() -> None:
    defs = ActionPlan.model_json_schema()["$defs"]
    assert defs["PlanHypothesis"]["properties"]["cause"]["enum"] == cause_ids()
    assert defs["PlannedAction"]["properties"]["action_id"]["enum"] == action_ids()
    # a stored plan stays readable when the vocabulary changes: the verifier refuses it
    stale = ActionPlan(
        summary="s", not_assessed=[NotAssessedCause(cause="driver shortage", reason="r")]
    )
    problems = verify_plan(stale, {}).problems
    assert f"unknown cause 'driver shortage'; use one of {', '.join(cause_ids())}" in problems


def test_parsing_generator_and_evals_name_only_vocabulary_values() -> None:
    assert set(KPI_WORDS.values()) <= {k.name for k in kpis().values() if k.query}
    assert set(ACTION_LEVERS) <= set(action_ids())
    with pytest.raises(ValidationError, match="unknown catalog action 'hire_drivers'"):
        Expect(action="hire_drivers")
    assert Expect(cause="unexplained").cause == "unexplained"


def test_the_reviewed_files_agree_with_the_simulators_ground_truth() -> None:
    """The generator's truth is written apart from the graph and catalog; they must agree."""
    graph = load_graph()
    for kind, (cause, column) in CAUSES.items():
        assert graph.nodes[column].cause == cause, kind
    levers = {
        "extra_drivers": "add_drivers",
        "defer_share": "defer_orders",
        "dispatch_cut_min": "cut_dispatch",
        "dsp_shift": "shift_carrier",
        "traffic_cut": "reduce_traffic",
        "window_extension_min": "widen_windows",
    }
    for action_id, field in ACTION_LEVERS.items():
        assert load_catalog().get(action_id).lever.kind == levers[field], action_id
    assert set(levers.values()) <= set(get_args(LeverKind))
