"""The tool registry: every tool by the name the model sees."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from tools.core.context import ToolContext
from tools.diagnose import DiagnoseInput, DiagnoseResult, diagnose
from tools.forecast import ForecastInput, ForecastResult, forecast
from tools.query_kpis import QueryKpisInput, QueryKpisResult, query_kpis
from tools.recommend_actions import RecommendActionsInput, RecommendActionsResult, recommend_actions
from tools.run_sql import RunSqlInput, RunSqlResult, run_sql
from tools.scan_anomalies import ScanAnomaliesInput, ScanAnomaliesResult, scan_anomalies


@dataclass(frozen=True)
class ToolSpec:
    """A registered tool: its name (as the model sees it), input and result models, function."""

    name: str
    description: str
    input_model: type[BaseModel]
    result_model: type[BaseModel]
    fn: Callable[[ToolContext, Any], BaseModel]

    def __call__(self, ctx: ToolContext, args: BaseModel | dict[str, Any]) -> BaseModel:
        """Validate ``args`` and run the tool."""
        parsed = (
            args if isinstance(args, self.input_model) else self.input_model.model_validate(args)
        )
        return self.fn(ctx, parsed)


def _spec(
    name: str,
    input_model: type[BaseModel],
    result_model: type[BaseModel],
    fn: Callable[..., BaseModel],
) -> ToolSpec:
    doc = (fn.__doc__ or "").strip().splitlines()[0]
    return ToolSpec(
        name=name, description=doc, input_model=input_model, result_model=result_model, fn=fn
    )


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        _spec("query_kpis", QueryKpisInput, QueryKpisResult, query_kpis),
        _spec("run_sql", RunSqlInput, RunSqlResult, run_sql),
        _spec("scan_anomalies", ScanAnomaliesInput, ScanAnomaliesResult, scan_anomalies),
        _spec("diagnose", DiagnoseInput, DiagnoseResult, diagnose),
        _spec("forecast", ForecastInput, ForecastResult, forecast),
        _spec(
            "recommend_actions", RecommendActionsInput, RecommendActionsResult, recommend_actions
        ),
    )
}
"""Every tool, by the name the model sees (the module name)."""
