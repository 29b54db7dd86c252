"""A scripted chat model for graph tests: replies and plans are given in advance.

Patched in at ``agent.llm.load_chat_model``, it lets the tests drive every path of the graph
(tool loop, tool errors, budget, verify failures) without any network.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ConfigDict, Field, ValidationError

from agent.references import plan_to_references
from agent.results import ToolResult, parse_results
from agent.schemas import ActionPlan
from agent.templates import template_plan
from agent.untrusted import compose_data

Reply = AIMessage | Callable[[list[BaseMessage]], AIMessage]
PlanScript = ActionPlan | dict[str, Any] | Callable[[str], ActionPlan | dict[str, Any]]


def tool_call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    """An AIMessage asking for one tool call."""
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


def results_in(prompt: str) -> list[ToolResult]:
    """The tool results a compose prompt carries."""
    return parse_results(compose_data(prompt).get("tool_results", []))


def template_from_prompt(prompt: str) -> ActionPlan:
    """What a well-behaved model would write: the template plan of the prompt's results."""
    data = compose_data(prompt)
    notes = data.get("request", {}).get("notes", [])
    plan = template_plan(results_in(prompt), notes)
    # a well-behaved model refers to the evidence for every number it writes
    evidence = {i: {"numbers": n} for i, n in data.get("evidence", {}).items()}
    return plan_to_references(plan, evidence)


class ScriptedChatModel(BaseChatModel):
    """Replies in order; plans in order (the last one repeats)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[Any] = Field(default_factory=list)
    plans: list[Any] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    prompts: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def model_name(self) -> str:
        return "scripted-model"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        if not self.replies:
            raise AssertionError("the scripted model ran out of replies")
        reply = self.replies.pop(0)
        message = reply(messages) if callable(reply) else reply
        message = message.model_copy(
            update={"usage_metadata": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, BaseMessage]:  # type: ignore[override]
        return self

    def with_structured_output(
        self, schema: Any, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[Any, Any]:  # type: ignore[override]
        def run(messages: Any) -> Any:
            prompt = "\n".join(str(m.content) for m in messages)
            self.prompts.append(prompt)
            script = (
                self.plans.pop(0)
                if len(self.plans) > 1
                else (self.plans[0] if self.plans else template_from_prompt)
            )
            value = script(prompt) if callable(script) else script
            # like LangChain's parser: a reply outside the schema is a parsing error
            parsed, error = (value, None) if isinstance(value, ActionPlan) else (None, None)
            if parsed is None:
                try:
                    parsed = ActionPlan.model_validate(value)
                except ValidationError as exc:
                    error = exc
            raw = AIMessage(
                content=parsed.model_dump_json() if parsed else json.dumps(value, default=str),
                usage_metadata={"input_tokens": 100, "output_tokens": 50, "total_tokens": 150},
            )
            return {"raw": raw, "parsed": parsed, "parsing_error": error} if include_raw else parsed

        return RunnableLambda(run)
