"""The offline planner: a deterministic chat model that follows the triage playbook.

It stands in for an LLM when no endpoint is configured (and in CI). It reads the question,
emits real tool calls one step at a time (scan -> diagnose -> forecast -> recommend, or
forecast / query_kpis for other intents), reacts to tool errors, and composes the plan with
the templates of :mod:`agent.templates`. The graph cannot tell it from a remote model: same
messages in, same messages and structured outputs out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ConfigDict, PrivateAttr

from agent.nodes.common import forecast_scope
from agent.parsing import Request, parse_request
from agent.templates import template_plan
from agent.untrusted import strip_untrusted
from tools.analytics.scope import Catalog, load_catalog
from tools.data.backend import DuckDBBackend

_TAG = re.compile(r"<(?P<tag>tool_results|request)>\s*(?P<body>.*?)\s*</(?P=tag)>", re.S)


class OfflinePlanner(BaseChatModel):
    """Deterministic planner over one database (see the module docstring)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    db: str
    max_diagnoses: int = 3
    horizon: int = 7
    _cached_catalog: Catalog | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "lastmile-offline-planner"

    @property
    def model_name(self) -> str:
        """Name recorded in traces."""
        return "offline-planner"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, BaseMessage]:  # type: ignore[override]
        """Tools are known by name already: binding changes nothing."""
        return self

    def with_structured_output(  # type: ignore[override]
        self, schema: Any, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[Any, Any]:
        """Compose the plan from the tool results embedded in the compose prompt."""

        def compose(messages: Any) -> Any:
            text = "\n".join(str(m.content) for m in _as_messages(messages))
            sections = {m.group("tag"): m.group("body") for m in _TAG.finditer(text)}
            results = json.loads(sections.get("tool_results") or "[]")
            request = json.loads(sections.get("request") or "{}")
            plan = template_plan(results, request.get("notes", []))
            raw = AIMessage(
                content=plan.model_dump_json(), response_metadata={"model_name": self.model_name}
            )
            return {"raw": raw, "parsed": plan, "parsing_error": None} if include_raw else plan

        return RunnableLambda(compose)

    def _catalog(self) -> Catalog:
        if self._cached_catalog is None:
            self._cached_catalog = load_catalog(DuckDBBackend(self.db))
        return self._cached_catalog

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        question = next((str(m.content) for m in messages if isinstance(m, HumanMessage)), "")
        message = self.next_step(question, messages)
        message.response_metadata = {"model_name": self.model_name}
        return ChatResult(generations=[ChatGeneration(message=message)])

    def next_step(self, question: str, messages: Sequence[BaseMessage]) -> AIMessage:
        """Apply the playbook: the next tool calls given what has been called, or a reply."""
        request = parse_request(question, self._catalog())
        done = _tool_outcomes(messages)
        n = sum(len(m.tool_calls) for m in messages if isinstance(m, AIMessage))

        def call(*calls: tuple[str, dict[str, Any]]) -> AIMessage:
            return AIMessage(
                content="",
                tool_calls=[
                    {"name": name, "args": args, "id": f"call_{n + i + 1}"}
                    for i, (name, args) in enumerate(calls)
                ],
            )

        errors = [o for o in done if o.error]
        if errors and not any(o.result for o in done):
            return AIMessage(content=f"I could not answer: {errors[-1].error}")
        day = request.day.isoformat() if request.day else None
        scope = {"scope": request.scope_level, "ids": request.scope_ids}

        if request.intents == ["kpis"]:
            if not _called(done, "query_kpis"):
                args: dict[str, Any] = {**scope, "grain": "day"}
                if request.start and request.end:
                    args.update(start=request.start.isoformat(), end=request.end.isoformat())
                    args["grain"] = "week" if (request.end - request.start).days > 20 else "day"
                elif day:
                    args.update(start=day, end=day)
                return call(("query_kpis", args))
            return AIMessage(content="Here are the KPIs.")

        if request.intents == ["forecast"]:
            if not _called(done, "forecast"):
                return call(
                    (
                        "forecast",
                        {
                            **scope,
                            "kpi": request.kpi if request.kpi != "avg_delay_min" else "late_rate",
                            "horizon": request.horizon,
                            **({"as_of": day} if day else {}),
                        },
                    )
                )
            return AIMessage(content="Here is the forecast.")

        # why / actions: scan, then diagnose, forecast and recommend for the targets
        scan = _result(done, "scan_anomalies")
        if scan is None:
            if _called(done, "scan_anomalies"):
                return AIMessage(
                    content="I could not scan the data: "
                    + str(errors[-1].error if errors else "no result")
                )
            return call(("scan_anomalies", {**scope, **({"day": day} if day else {})}))
        day = scan["window"][1]
        targets = self._targets(request, scan)
        if not targets:
            return AIMessage(content="Nothing stands out in that scope and day.")
        steps: list[tuple[str, dict[str, Any]]] = []
        for target in targets:
            if not _called(done, "diagnose", target=target):
                # the cell the scan judged the target over, when it flagged it
                flagged = next((a for a in scan["anomalies"] if a["target"] == target), None)
                window = {"window_days": flagged["grain_days"]} if flagged else {}
                steps.append(("diagnose", {"target": target, "day": day, **window}))
        if steps:
            return call(*steps)
        diagnosed = {t: _result(done, "diagnose", target=t) for t in targets}
        for target in targets:
            d = diagnosed[target]
            if d and not _called(done, "forecast", **forecast_scope(d)):
                steps.append(
                    (
                        "forecast",
                        {
                            **forecast_scope(d),
                            "kpi": "late_rate",
                            "horizon": self.horizon,
                            "as_of": d["day"],
                        },
                    )
                )
        if steps:
            return call(*steps)
        for target in targets:
            d = diagnosed[target]
            causes = [h["cause"] for h in d["hypotheses"]] if d else []
            if d and causes and not _called(done, "recommend_actions", target=target):
                steps.append(
                    (
                        "recommend_actions",
                        {
                            "target": target,
                            "day": d["day"],
                            "window_days": d["grain_days"],
                            "causes": causes,
                        },
                    )
                )
        if steps:
            return call(*steps)
        return AIMessage(content="Diagnosis, outlook and actions are ready.")

    def _targets(self, request: Request, scan: dict[str, Any]) -> list[str]:
        """Pick what to diagnose: the asked store or region, else the top anomalies."""
        if request.scope_level in ("store", "region") and request.scope_ids:
            return list(request.scope_ids[: self.max_diagnoses])
        return [a["target"] for a in scan["anomalies"][: self.max_diagnoses]]


class _Outcome(BaseModel):
    name: str
    args: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None


def _tool_outcomes(messages: Sequence[BaseMessage]) -> list[_Outcome]:
    calls = {c["id"]: c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls}
    out = []
    for m in messages:
        if isinstance(m, ToolMessage) and m.tool_call_id in calls:
            c = calls[m.tool_call_id]
            if m.status == "error":
                out.append(_Outcome(name=c["name"], args=c["args"], error=str(m.content)))
            else:
                try:
                    result = json.loads(strip_untrusted(str(m.content)))
                except json.JSONDecodeError:
                    result = {"text": str(m.content)}
                out.append(_Outcome(name=c["name"], args=c["args"], result=result))
    return out


def _called(done: list[_Outcome], name: str, **match: Any) -> bool:
    return any(o.name == name and all(o.args.get(k) == v for k, v in match.items()) for o in done)


def _result(done: list[_Outcome], name: str, **match: Any) -> dict[str, Any] | None:
    for o in reversed(done):
        if (
            o.name == name
            and all(o.args.get(k) == v for k, v in match.items())
            and o.result is not None
        ):
            return o.result
    return None


def _as_messages(value: Any) -> list[BaseMessage]:
    if isinstance(value, list):
        return value
    to_messages: Callable[[], list[BaseMessage]] | None = getattr(value, "to_messages", None)
    return to_messages() if to_messages else [HumanMessage(content=str(value))]
