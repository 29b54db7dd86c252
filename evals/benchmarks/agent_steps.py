"""Benchmark steps through the agent: the morning triage, a chat answer, the triage on Spark.

Each runs in its own process (:mod:`evals.benchmarks.steps`) with an empty state folder, so the
fitted-model cache beside the state database starts cold, as on a service's first morning.

Prompt tokens are counted "by construction": the offline planner makes the same model calls a
real model would be sent, and each call's prompt is estimated with LangChain's
``count_tokens_approximately`` (about 4 characters a token, what the agent itself budgets
with), plus the tool definitions a real call sends (their JSON over 4). The naive agent's
prompt is the raw ``store_day`` table of the last 28 days for every store, as CSV, counted the
same way (a lower bound: its instructions are not counted).
"""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from evals.benchmarks.steps import peak_rss_mb, state_dir

TOKEN_COUNTER = (
    "prompt tokens estimated offline with langchain_core count_tokens_approximately "
    "(~4 characters a token; tiktoken's encodings cannot be downloaded here)"
)
NAIVE_DAYS = 28
"""Days of ``store_day`` the naive agent puts in its prompt."""


class _PromptMeter:
    """Counts the offline planner's tool-calling turns and estimates each prompt's tokens."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.tool_tokens = 0

    def install(self) -> None:
        """Wrap the offline planner's model call (this process only) to measure each prompt.

        The tool definitions are added afterwards (:meth:`set_tools`): they are the same for
        every turn.
        """
        from langchain_core.messages.utils import count_tokens_approximately

        from agent.offline import OfflinePlanner

        original = OfflinePlanner._generate
        meter = self

        def measured(planner: Any, messages: Any, *args: Any, **kwargs: Any) -> Any:
            meter.calls.append(count_tokens_approximately(messages))
            return original(planner, messages, *args, **kwargs)

        OfflinePlanner._generate = measured  # type: ignore[method-assign,assignment]

    def set_tools(self, service: Any) -> None:
        """Count the tool definitions a real model is sent with every tool-calling turn."""
        from agent.tool_schemas import tool_definitions

        self.tool_tokens = len(json.dumps(tool_definitions(service.context()))) // 4


def model_calls(trace: list[dict[str, Any]], meter: _PromptMeter) -> tuple[int, int]:
    """Return a run's model calls and prompt tokens from its trace.

    A call's tokens are the endpoint's count when it gave one, else the estimate the trace
    recorded (the plan composition), else the meter's estimate of that tool-calling turn.
    """
    llm = [e for e in trace if e.get("kind") == "llm"]
    metered = iter(meter.calls)
    tokens = 0
    for e in llm:
        counted = int(e.get("input_tokens") or 0) or int(e.get("input_tokens_estimate") or 0)
        if not counted and e.get("node") == "call_model":
            counted = next(metered, 0) + meter.tool_tokens
        tokens += counted
    return len(llm), tokens


def naive_prompt_tokens(db: str, day: date) -> dict[str, Any]:
    """Estimate the naive agent's prompt: ``store_day`` of the last 28 days, every store, CSV."""
    from langchain_core.messages import HumanMessage
    from langchain_core.messages.utils import count_tokens_approximately

    from tools.data.backend import DuckDBBackend

    first = day - timedelta(days=NAIVE_DAYS - 1)
    frame = DuckDBBackend(db).query(
        "SELECT * FROM store_day WHERE date BETWEEN ? AND ? ORDER BY date, store_id", [first, day]
    )
    csv = frame.to_csv(index=False)
    tokens = count_tokens_approximately([HumanMessage(content=csv)])
    return {"naive_tokens": tokens, "naive_rows": len(frame), "naive_chars": len(csv)}


def triage(args: dict[str, Any]) -> dict[str, Any]:
    """Time ``AgentService.triage`` of the day, offline; count its model calls and tokens."""
    from agent.service import AgentService

    meter = _PromptMeter()
    meter.install()
    day = date.fromisoformat(args["day"])
    state = state_dir(args["state_dir"])
    started = time.perf_counter()
    service = AgentService(db=args["db"], state_db=state / "state.sqlite", offline=True)
    view = service.triage(day)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    meter.set_tools(service)
    calls, tokens = model_calls(service.record(view.run_id).trace, meter)
    plan = view.plan
    return {
        "seconds": seconds,
        "peak_rss_mb": peak,
        "status": view.status,
        "targets": sorted({h.target for h in plan.hypotheses}) if plan else [],
        "actions": len(plan.actions) if plan else 0,
        "llm_calls": calls,
        "prompt_tokens": tokens,
        **naive_prompt_tokens(args["db"], day),
    }


def chat(args: dict[str, Any]) -> dict[str, Any]:
    """Time ``AgentService.ask`` of why the late rate was high on the day, offline."""
    from agent.service import AgentService

    meter = _PromptMeter()
    meter.install()
    state = state_dir(args["state_dir"])
    question = f"Why was the late rate high on {args['day']}?"
    started = time.perf_counter()
    service = AgentService(db=args["db"], state_db=state / "state.sqlite", offline=True)
    view = service.ask(question)
    seconds = time.perf_counter() - started
    meter.set_tools(service)
    calls, tokens = model_calls(service.record(view.run_id).trace, meter)
    return {
        "seconds": seconds,
        "question": question,
        "status": view.status,
        "llm_calls": calls,
        "prompt_tokens": tokens,
    }


def spark_triage(args: dict[str, Any]) -> dict[str, Any]:
    """Time the triage on the Spark backend (local[2]) over the world's Parquet lake.

    ``start_s`` is the service and Spark session start (a first query); ``seconds`` is the
    whole, start included.
    """
    from agent.service import AgentService
    from agent.settings import Settings

    state = state_dir(args["state_dir"])
    settings = Settings(backend="spark", data=str(Path(args["lake"])), spark_master="local[2]")
    started = time.perf_counter()
    service = AgentService(settings, db=args["db"], state_db=state / "state.sqlite", offline=True)
    service.backend().table_counts()
    start = time.perf_counter() - started
    view = service.triage(date.fromisoformat(args["day"]))
    return {
        "seconds": time.perf_counter() - started,
        "start_s": start,
        "status": view.status,
        "actions": len(view.plan.actions) if view.plan else 0,
    }
