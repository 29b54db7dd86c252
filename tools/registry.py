"""The tool registry: every tool by the name the model sees."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from tools.check_data_health import (
    CheckDataHealthInput,
    CheckDataHealthResult,
    check_data_health,
)
from tools.core.context import ToolContext
from tools.core.errors import InsufficientDataError, ToolError, ToolErrorKind
from tools.data.store import DatabaseUnavailableError
from tools.diagnose import DiagnoseInput, DiagnoseResult, diagnose
from tools.forecast import ForecastInput, ForecastResult, forecast
from tools.query_kpis import QueryKpisInput, QueryKpisResult, query_kpis
from tools.rank_scopes import RankScopesInput, RankScopesResult, rank_scopes
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
        """Validate ``args`` and run the tool.

        Every expected failure of the analysis becomes a typed :class:`ToolError` the caller
        (and the plan) can see: a value the data cannot support (``ValueError``: too few rows,
        a singular fit) or arithmetic that breaks on it. Anything else is a bug and raises.

        Raises:
            pydantic.ValidationError: invalid arguments.
            ToolError: a recoverable problem, with its kind.
        """
        parsed = (
            args if isinstance(args, self.input_model) else self.input_model.model_validate(args)
        )
        try:
            return self.fn(ctx, parsed)
        except ToolError:
            raise
        except DatabaseUnavailableError as exc:
            raise ToolError(str(exc), kind="data_unavailable") from exc
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            kind: ToolErrorKind = (
                "not_enough_data" if isinstance(exc, InsufficientDataError) else "failed"
            )
            message = str(exc) or type(exc).__name__
            raise ToolError(f"{self.name} could not complete: {message}", kind=kind) from exc


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
        _spec("rank_scopes", RankScopesInput, RankScopesResult, rank_scopes),
        _spec("diagnose", DiagnoseInput, DiagnoseResult, diagnose),
        _spec("forecast", ForecastInput, ForecastResult, forecast),
        _spec(
            "recommend_actions", RecommendActionsInput, RecommendActionsResult, recommend_actions
        ),
        _spec("check_data_health", CheckDataHealthInput, CheckDataHealthResult, check_data_health),
    )
}
"""Every tool, by the name the model sees (the module name)."""
