"""What every node needs: run a tool with the run's evidence, and record it in the trace.

A node's tool results go to the graph's store (:mod:`agent.results`) and its evidence and
trace events to the state: :func:`merge` does both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from pydantic import ValidationError

from agent.context import Context
from agent.periods import latest_known_day
from agent.results import ToolResult, get_results, put_results, run_id
from agent.state import State, TraceEvent
from tools import TOOLS, ToolError
from tools.analytics.scope import load_catalog
from tools.core.context import ToolContext
from tools.core.evidence import Evidence, EvidenceStore


def now() -> str:
    """UTC timestamp for traces."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def llm_event(
    node: str,
    model: str,
    prompt: tuple[str, str],
    started: float,
    reply: Any = None,
    **extra: Any,
) -> TraceEvent:
    """Trace event of one model call: model, prompt id and hash, latency and tokens.

    Args:
        node: the graph node that called the model.
        model: the model's name.
        prompt: (prompt id, its sha256).
        started: ``time.perf_counter()`` before the call.
        reply: the model's message (None when the call failed: no tokens).
        **extra: more fields (attempt, tool calls, error).
    """
    usage = getattr(reply, "usage_metadata", None) or {}
    return TraceEvent(
        at=now(),
        kind="llm",
        node=node,
        model=model,
        prompt=prompt[0],
        prompt_sha256=prompt[1],
        ms=round((time.perf_counter() - started) * 1000, 1),
        input_tokens=usage.get("input_tokens", 0),
        output_tokens=usage.get("output_tokens", 0),
        **extra,
    )


def known_day(state: State, context: Context) -> date:
    """Return the run's latest complete day: a triage's own day, else the day before today.

    Actions may treat a cell of this day (or be for a day to come); an earlier cell is over.
    """
    if state.mode == "triage" and state.day:
        return date.fromisoformat(state.day)
    catalog = load_catalog(context.backend())
    if state.mode == "triage":
        return catalog.last_day
    return latest_known_day(context.today, catalog.first_day, catalog.last_day)


def forecast_scope(diagnosis: dict[str, Any]) -> dict[str, Any]:
    """Return the forecast scope of a diagnosed target (the whole chain is scope ``all``)."""
    if diagnosis["level"] == "chain":
        return {"scope": "all", "ids": []}
    return {"scope": diagnosis["level"], "ids": [diagnosis["target"]]}


def tool_context(state: State, context: Context) -> ToolContext:
    """Build a tool context over the run's database, continuing the run's evidence."""
    ctx = ToolContext(
        backend=context.backend(),
        evidence=EvidenceStore(list(state.evidence)),
        random_state=context.random_state,
        in_effect=context.in_effect,
        feed_max_age_days=context.feed_max_age_days,
        calibration=context.calibration,
    )
    if context.models is not None:
        ctx.models = context.models
    return ctx


@dataclass
class ToolOutcome:
    """One tool call: its result and evidence, or the error the caller can act on."""

    name: str
    args: dict[str, Any]
    result: dict[str, Any] | None
    evidence: Evidence | None
    error: str | None
    trace: TraceEvent

    def tool_result(self) -> ToolResult | None:
        """Return the call's result, keyed by its evidence id (None when it failed)."""
        if self.evidence is None or self.result is None:
            return None
        return ToolResult(id=self.evidence.id, tool=self.name, result=self.result)


def call_tool(ctx: ToolContext, name: str, args: dict[str, Any], node: str) -> ToolOutcome:
    """Run a registered tool; recoverable errors (bad arguments, ToolError) are returned.

    The registry already turns the analyses' expected failures into typed tool errors (too
    little data, a fit that cannot complete); anything else is a bug and fails the run with
    its own message.
    """
    started = time.perf_counter()
    write = _stream_writer()
    write({"type": "tool_started", "tool": name, "node": node})
    result = evidence = error = kind = None
    if name not in TOOLS:
        error, kind = f"unknown tool {name!r}; tools: {', '.join(TOOLS)}", "invalid_request"
    else:
        try:
            output = TOOLS[name](ctx, args)
            result = output.model_dump(mode="json")
            evidence = ctx.evidence.get(result["evidence_id"])
        except ToolError as exc:
            error, kind = str(exc), exc.kind
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            error, kind = f"invalid arguments for {name}: {problems}", "invalid_request"
    trace = TraceEvent(
        at=now(),
        kind="tool",
        node=node,
        tool=name,
        args=args,
        ms=round((time.perf_counter() - started) * 1000, 1),
        evidence_id=evidence.id if evidence else None,
        error=error,
        error_kind=kind,
    )
    write(
        {
            "type": "tool_finished",
            "tool": name,
            "ok": error is None,
            "summary": evidence.summary if evidence else str(error),
            "ms": trace.ms,
        }
    )
    return ToolOutcome(
        name=name, args=args, result=result, evidence=evidence, error=error, trace=trace
    )


def _stream_writer() -> Callable[[Any], None]:
    """Return the run's stream writer (tool events for chat surfaces), or a no-op outside one."""
    try:
        return get_stream_writer()
    except RuntimeError:  # called outside a graph run (a test, the eval scorer)
        return lambda _chunk: None


def merge(
    outcomes: list[ToolOutcome],
    runtime: Runtime[Context],
    *,
    notes: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """Keep the results of several tool calls and return their state updates.

    Results go to the graph's store; the updates carry the evidence and trace events (plus
    any ``extra`` keys). With ``notes``, failed calls become caveats of the plan (the pipeline
    cannot retry them; in chat mode the model sees the error and may fix the call, so no
    note is added).
    """
    put_results(runtime.store, run_id(), [r for o in outcomes if (r := o.tool_result())])
    out: dict[str, Any] = {
        "trace": [o.trace for o in outcomes],
        "evidence": [o.evidence for o in outcomes if o.tool_result() is not None],
    }
    failed = [f"{o.name} could not run: {o.error}" for o in outcomes if o.error]
    if notes and failed:
        out["notes"] = failed
    out.update(extra)
    return out


def results_of(
    state: State, runtime: Runtime[Context], tool: str | None = None
) -> list[ToolResult]:
    """Return the run's tool results (of ``tool`` only, when given), in call order."""
    results = get_results(runtime.store, run_id(), state.evidence)
    return [r for r in results if tool is None or r.tool == tool]
