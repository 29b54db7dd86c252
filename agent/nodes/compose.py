"""Compose the action plan with the model, verify it, and fall back to the template."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Literal, cast

import openai
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.runnables import Runnable
from langgraph.runtime import Runtime
from pydantic import ValidationError

from agent import llm
from agent.context import Context
from agent.errors import is_context_length
from agent.health import with_health
from agent.moved_effects import with_moved_effects
from agent.nodes.common import known_day, llm_event, now, results_of
from agent.offline import OfflinePlanner
from agent.prompting import ComposeInput, compose_input, data_budget_chars
from agent.references import render_plan
from agent.schemas import ActionPlan
from agent.state import State, TraceEvent
from agent.templates import template_plan
from agent.track_record import with_track_record
from agent.untrusted import DATA_NAME, fence
from agent.verify import verify_plan as check_plan
from prompts import Prompt, load_prompt
from tools.analytics.thresholds import ACTION_INTERVAL
from tools.vocabulary import cause_ids

MAX_RESULT_CHARS = 60_000
"""The most data a compose request carries, whatever the model's context (a long prompt
dilutes a model's attention and costs tokens)."""
MIN_RESULT_CHARS = 4_000
"""The smallest result budget a context-length refusal shrinks the compose input to (each
refusal halves what was sent)."""


def plan_request_hash() -> str:
    """Hash what a plan request sends besides its prompt: the plan schema and the causes.

    Both derive from the vocabulary (:mod:`tools.vocabulary`): a renamed cause or action
    changes the request, so recorded cassettes must say which they were recorded with.
    """
    sent = {"schema": ActionPlan.model_json_schema(), "causes": _causes()}
    return hashlib.sha256(json.dumps(sent, sort_keys=True).encode()).hexdigest()


def _causes() -> str:
    return ", ".join(cause_ids())


def run_notes(state: State) -> list[str]:
    """Return what the run could not do: pipeline notes, tool errors the chat left standing.

    In chat the model sees a tool's error and may fix the call; an error with no later
    successful call of that tool is part of the answer ("MG is too small to judge alone").
    """
    return standing_notes(state.notes, state.trace)


def standing_notes(notes: list[str], trace: list[TraceEvent]) -> list[str]:
    """Return `notes` followed by the tool errors of `trace` no later call of the tool fixed."""
    calls = [t for t in trace if t.kind == "tool"]
    standing = [
        f"{t.tool} could not run: {t.error}"
        for i, t in enumerate(calls)
        if t.error and not any(u.tool == t.tool and not u.error for u in calls[i + 1 :])
    ]
    return list(dict.fromkeys([*notes, *standing]))


def _request(state: State, context: Context) -> dict[str, Any]:
    return {
        "mode": state.mode,
        "question": state.question,
        "day": state.day,
        "known_day": known_day(state, context).isoformat(),
        "scope": {"level": state.scope_level, "ids": state.scope_ids},
        "notes": run_notes(state),
    }


def _fallback(
    state: State,
    runtime: Runtime[Context],
    attempts: int,
    reason: str,
    note: str | None = None,
    **details: Any,
) -> dict[str, Any]:
    """Replace the model's plan with the verified template plan, saying why in the trace.

    ``note`` becomes a caveat of the plan (and a run note); ``details`` go to the trace event.
    """
    notes = [note] if note else []
    results = results_of(state, runtime)
    plan = template_plan(
        results,
        run_notes(state) + notes,
        known_day=known_day(state, runtime.context),
        fallback=True,
    )
    plan = with_moved_effects(
        with_track_record(with_health(plan, results), results), runtime.context.moved_effects
    )
    event = TraceEvent(
        at=now(), kind="node", node="compose_plan", fallback=True, reason=reason, **details
    )
    return {
        "plan": plan,
        "plan_by_model": False,
        "compose_attempts": attempts,
        "trace": [event],
        "notes": notes,
    }


def compose_plan(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the model for a structured ActionPlan; after the last attempt, use the template.

    Error policy: a context-length refusal is retried at once with half the results sent
    (whole results dropped, down to :data:`MIN_RESULT_CHARS`); any other 4xx ends the compose
    step with the template plan, the refusal in its caveats and a typed
    ``model_request_rejected`` event in the trace (5xx, timeouts and 429 are the client's
    retries).
    """
    attempts = state.compose_attempts + 1
    if attempts > runtime.context.max_compose_attempts:
        return _fallback(
            state,
            runtime,
            attempts,
            "the model's plans failed verification",
            problems=state.verify_problems,
            note="The model's plan could not be used (unreadable, or rejected by the "
            "verifier): this plan was written from the evidence by templates.",
        )
    call = _PlanCall.build(state, runtime)
    started = time.perf_counter()
    try:
        out, data, messages = call.invoke(state, runtime)
    except _Rejected as rejected:
        return _fallback(
            state,
            runtime,
            runtime.context.max_compose_attempts + 1,
            "the model endpoint rejected the plan request",
            **rejected.details,
        )
    parsed, problem = _read_plan(out)
    event = llm_event(
        "compose_plan",
        llm.model_name(call.model),
        (call.prompt.id, call.prompt.sha256),
        started,
        out.get("raw"),
        attempt=attempts,
        input=data.trace(),
        input_tokens_estimate=count_tokens_approximately(messages),
        error=problem,
    )
    if parsed is None:
        return {
            "plan": None,
            "compose_attempts": attempts,
            "verify_problems": [problem],
            "trace": [event],
        }
    return {
        "plan": with_moved_effects(
            with_track_record(
                with_health(parsed, results_of(state, runtime)), results_of(state, runtime)
            ),
            runtime.context.moved_effects,
        ),
        # the offline planner's plans are the templates: code wrote their numbers
        "plan_by_model": not isinstance(call.model, OfflinePlanner),
        "compose_attempts": attempts,
        "trace": [event],
    }


class _Rejected(Exception):
    """The endpoint refused the plan request for good (details for the fallback)."""

    def __init__(self, **details: Any) -> None:
        super().__init__(details.get("note"))
        self.details = details


@dataclass
class _PlanCall:
    """One plan request: the model, its prompt, the instructions and the data budget."""

    model: Any
    prompt: Prompt
    structured: Runnable[Any, Any]
    instructions: str
    ask: str
    budget: int | None

    @classmethod
    def build(cls, state: State, runtime: Runtime[Context]) -> _PlanCall:
        """Prepare the request: prompt, feedback on the last plan, structured output."""
        context = runtime.context
        name, _, version = context.compose_prompt.partition("@")
        prompt = load_prompt(name, version or None)
        feedback = ""
        if state.verify_problems:
            feedback = (
                "\n<feedback>\nThe previous plan was rejected. Fix every problem:\n"
                + "\n".join(f"- {p}" for p in state.verify_problems)
                + "\n</feedback>"
            )
        model = llm.load_chat_model(context)
        method = context.model.structured_output
        strict = {"strict": True} if context.model.strict_tools and method != "json_mode" else {}
        structured = model.with_structured_output(
            ActionPlan, include_raw=True, method=method, **strict
        )
        instructions = prompt.format(causes=_causes())
        ask = "Write the action plan." + feedback
        budget: int | None = None  # the offline planner reads everything
        if not isinstance(model, OfflinePlanner):
            fixed = len(instructions) + len(ask) + len(json.dumps(ActionPlan.model_json_schema()))
            room = data_budget_chars(context.model.context_tokens, context.model.max_tokens, fixed)
            budget = max(MIN_RESULT_CHARS, min(MAX_RESULT_CHARS, room))
        return cls(model, prompt, structured, instructions, ask, budget)

    def invoke(
        self, state: State, runtime: Runtime[Context]
    ) -> tuple[dict[str, Any], ComposeInput, list[BaseMessage]]:
        """Send the request, halving the data on a context-length refusal.

        Raises:
            _Rejected: any other 4xx, or too long even at the smallest input.
        """
        request = _request(state, runtime.context)
        results = results_of(state, runtime)
        budget = self.budget
        while True:
            data = compose_input(request, results, state.evidence, budget)
            messages: list[BaseMessage] = [
                SystemMessage(content=self.instructions),
                HumanMessage(content=fence(data.payload), name=DATA_NAME),
                HumanMessage(content=self.ask),
            ]
            try:
                return cast(dict[str, Any], self.structured.invoke(messages)), data, messages
            except openai.APIStatusError as exc:
                if not 400 <= exc.status_code < 500 or exc.status_code in (408, 409, 429):
                    raise
                if is_context_length(exc) and (budget is None or budget > MIN_RESULT_CHARS):
                    # half of what was sent (whole results dropped, never cut JSON)
                    sent = len(json.dumps(data.payload, default=str))
                    budget = max(MIN_RESULT_CHARS, min(budget or sent, sent) // 2)
                    continue
                why = ", too long even at the smallest input" if is_context_length(exc) else ""
                error = {"type": "model_request_rejected", "status": exc.status_code}
                raise _Rejected(
                    error={**error, "message": str(exc)[:500]},
                    input=data.trace(),
                    note=f"The model endpoint rejected the plan request (HTTP {exc.status_code}"
                    f"{why}): this plan was written from the evidence by templates.",
                ) from None


def _read_plan(out: dict[str, Any]) -> tuple[ActionPlan | None, str | None]:
    """Return the reply's plan, or the problem to send back (schema errors included)."""
    parsed, error = out.get("parsed"), out.get("parsing_error")
    if parsed is not None and not isinstance(parsed, ActionPlan):
        try:  # a client that returns the arguments unparsed: held to the same schema
            parsed = ActionPlan.model_validate(parsed)
        except ValidationError as exc:
            parsed, error = None, exc
    if parsed is not None:
        return parsed, None
    if error is not None:
        return None, f"the plan did not match the ActionPlan schema: {error}"
    return None, (
        "no readable plan came back: call the ActionPlan function once, with the whole plan "
        "as valid JSON"
    )


def verify_plan(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Check the plan against the evidence (no LLM): ids, numbers, catalog actions."""
    if state.plan is None:
        return {}  # the composer already recorded why there is no plan
    plan = state.plan
    evidence = {e.id: e.model_dump(mode="json") for e in state.evidence}
    report = check_plan(
        plan,
        evidence,
        run_notes(state),
        known_day=known_day(state, runtime.context),
        by_model=state.plan_by_model,
        question=state.question,
        levels=(100 * ACTION_INTERVAL, runtime.context.horizon_days),
    )
    event = TraceEvent(
        at=now(),
        kind="node",
        node="verify_plan",
        ok=report.ok,
        numbers_checked=report.numbers_checked,
        numbers_grounded=report.numbers_grounded,
        problems=report.problems[:20],
    )
    if not report.ok and plan.fallback:
        raise RuntimeError(
            "the template plan failed verification: " + "; ".join(report.problems[:5])
        )
    update: dict[str, Any] = {"verify_problems": report.problems, "trace": [event]}
    if report.ok and state.plan_by_model:  # code writes the numbers the model referred to
        update["plan"] = render_plan(plan, evidence)
        update["plan_by_model"] = False
    return update


def route_after_verify(state: State) -> Literal["compose_plan", "approve_actions", "__end__"]:
    """Retry composing on problems; ask for approval when the plan proposes actions."""
    if state.plan is None or state.verify_problems:
        return "compose_plan"
    return "approve_actions" if state.plan.actions else "__end__"
