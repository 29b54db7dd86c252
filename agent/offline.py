"""The offline planner: a deterministic chat model that follows the triage playbook.

It stands in for an LLM when no endpoint is configured (and in CI). It reads the question,
emits real tool calls one step at a time (scan -> diagnose -> forecast -> recommend, or
forecast / query_kpis for other intents), reacts to tool errors, and composes the plan with
the templates of :mod:`agent.templates`. The graph cannot tell it from a remote model: same
messages in, same messages and structured outputs out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ConfigDict, PrivateAttr

from agent.nodes.common import forecast_scope
from agent.nodes.triage import triage_order
from agent.parsing import SQL_QUERY, Request, parse_request, sql_of
from agent.results import parse_results
from agent.templates import template_plan
from agent.untrusted import DATA_NAME, compose_data, unfence
from tools.analytics.scope import Catalog, load_catalog
from tools.data.backends import DataSource

MAX_OUTLOOK_REGIONS = 8
"""Regions forecast one by one for a day to come when nothing stands out yet (one Prophet fit
each, within the chat's tool budget of 12 with the scan); more regions (a national network,
Olist's 20+ states): the chain's forecast only."""


class OfflinePlanner(BaseChatModel):
    """Deterministic planner over one database (see the module docstring)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    data: DataSource
    max_diagnoses: int = 3
    horizon: int = 7
    today: date | None = None
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
            data = compose_data(text)
            results = parse_results(data.get("tool_results", []))
            request = data.get("request", {})
            known = request.get("known_day")
            plan = template_plan(
                results,
                request.get("notes", []),
                known_day=date.fromisoformat(known) if known else None,
            )
            raw = AIMessage(
                content=plan.model_dump_json(), response_metadata={"model_name": self.model_name}
            )
            return {"raw": raw, "parsed": plan, "parsing_error": None} if include_raw else plan

        return RunnableLambda(compose)

    def _catalog(self) -> Catalog:
        if self._cached_catalog is None:
            self._cached_catalog = load_catalog(self.data.open())
        return self._cached_catalog

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        asked = [
            str(m.content) for m in messages if isinstance(m, HumanMessage) and m.name != DATA_NAME
        ]
        message = self.next_step(asked[-1] if asked else "", messages, asked[:-1])
        message.response_metadata = {"model_name": self.model_name}
        return ChatResult(generations=[ChatGeneration(message=message)])

    def next_step(
        self, question: str, messages: Sequence[BaseMessage], earlier: Sequence[str] = ()
    ) -> AIMessage:
        """Apply the playbook: the next tool calls given what has been called, or a reply.

        ``earlier`` are the thread's previous questions, oldest first: a follow-up carries
        their scope and day.
        """
        catalog = self._catalog()
        previous = None
        for text in earlier:
            previous = parse_request(text, catalog, self.today, previous)
        request = parse_request(question, catalog, self.today, previous)
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

        if request.problem:
            return AIMessage(content=f"I could not answer: {request.problem}.")
        if request.intents[0] in ("rank", "compare"):
            return self._rank(request, catalog, done, call)
        errors = [o for o in done if o.error]
        if errors and not any(o.result for o in done):
            return AIMessage(content=f"I could not answer: {errors[-1].error}")
        if request.intents == ["sql"]:
            if _called(done, "run_sql"):
                return AIMessage(content="Here is the query's result.")
            m = SQL_QUERY.match(question)
            return call(("run_sql", {"sql": sql_of(m).strip() if m else question.strip()}))
        if request.intents == ["kpis"]:
            return self._kpis(request, done, call)
        if request.intents == ["forecast"]:
            if not _called(done, "forecast"):
                return call(("forecast", _forecast_args(request)))
            return AIMessage(content="Here is the forecast.")
        return self._why(request, done, errors, call)

    def _rank(
        self, request: Request, catalog: Catalog, done: list[_Outcome], call: _Call
    ) -> AIMessage:
        """Rank stores or regions over the period (the past week when none is named)."""
        start, end = _span(request, request.known_day or catalog.last_day)
        if _called(done, "rank_scopes"):
            ranked = _result(done, "rank_scopes")
            if ranked is None and len(request.scope_ids) >= 2 and not _called(done, "query_kpis"):
                # no normal to judge by (the data's first days): the KPIs side by side
                period = {"start": start.isoformat(), "end": end.isoformat(), "grain": "total"}
                return call(
                    *[
                        ("query_kpis", {"scope": request.scope_level, "ids": [i], **period})
                        for i in request.scope_ids
                    ]
                )
            errors = [o.error for o in done if o.error]
            if ranked is None and errors and not any(o.result for o in done):
                return AIMessage(content=f"I could not answer: {errors[-1]}")
            return AIMessage(content="Here is the ranking.")
        args: dict[str, Any] = {
            "level": request.rank_level,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "limit": request.limit,
        }
        if "compare" in request.intents and request.scope_ids:
            args["ids"] = request.scope_ids
        elif request.rank_level == "store" and request.scope_level == "region":
            # "which stores in R2 were worst": the region's stores
            args["ids"] = catalog.stores_in(request.scope_ids)
        return call(("rank_scopes", args))

    def _kpis(self, request: Request, done: list[_Outcome], call: _Call) -> AIMessage:
        if _called(done, "query_kpis"):
            return AIMessage(content="Here are the KPIs.")
        args: dict[str, Any] = {"scope": request.scope_level, "ids": request.scope_ids}
        args["grain"] = "day"
        if request.start and request.end:
            args.update(start=request.start.isoformat(), end=request.end.isoformat())
            args["grain"] = "week" if (request.end - request.start).days > 20 else "day"
        elif request.day:
            args.update(start=request.day.isoformat(), end=request.day.isoformat())
        elif request.known_day:  # the latest days known as of today, never later ones
            args["end"] = request.known_day.isoformat()
        if request.kpi_named:
            args["kpis"] = list(dict.fromkeys(["orders", "late_rate", request.kpi]))
        return call(("query_kpis", args))

    def _why(
        self, request: Request, done: list[_Outcome], errors: list[_Outcome], call: _Call
    ) -> AIMessage:
        """Why / what to do: scan the day or period, then diagnose, forecast and recommend."""
        scope = {"scope": request.scope_level, "ids": request.scope_ids}
        scan = _result(done, "scan_anomalies")
        if scan is None:
            if _called(done, "scan_anomalies"):
                return AIMessage(
                    content="I could not scan the data: "
                    + str(errors[-1].error if errors else "no result")
                )
            when: dict[str, Any] = {}
            if request.day:
                when = {"day": request.day.isoformat()}
            elif request.start and request.end:
                when = {
                    "day": request.end.isoformat(),
                    "days": (request.end - request.start).days + 1,
                }
            return call(("scan_anomalies", {**scope, **when}))
        targets = self._targets(request, scan)
        if not targets and request.apply_on is not None:
            return self._outlooks(request, done, call)
        if not targets:
            return AIMessage(content="Nothing stands out in that scope and day.")
        steps: list[tuple[str, dict[str, Any]]] = []
        for target, day, grain in targets:
            if not _called(done, "diagnose", target=target, day=day):
                steps.append(("diagnose", {"target": target, "day": day, **grain}))
        if steps:
            return call(*steps)
        diagnosed = [_result(done, "diagnose", target=t, day=d) for t, d, _ in targets]
        for d in diagnosed:
            if d and not _called(done, "forecast", **forecast_scope(d)):
                horizon = max(self.horizon, request.horizon if request.apply_on else 0)
                args = {**forecast_scope(d), "kpi": "late_rate", "horizon": horizon}
                steps.append(("forecast", {**args, "as_of": d["day"]}))
        if steps:
            return call(*steps)
        for d in diagnosed:
            causes = [h["cause"] for h in d["hypotheses"]] if d else []
            if d and causes and not _called(done, "recommend_actions", target=d["target"]):
                args = {"target": d["target"], "day": d["day"], "window_days": d["grain_days"]}
                if request.apply_on is not None:
                    args["apply_on"] = request.apply_on.isoformat()
                steps.append(("recommend_actions", {**args, "causes": causes}))
        if steps:
            return call(*steps)
        return AIMessage(content="Diagnosis, outlook and actions are ready.")

    def _outlooks(self, request: Request, done: list[_Outcome], call: _Call) -> AIMessage:
        """Forecast the scope asked (the chain: and its regions) for a day to come."""
        if _called(done, "forecast"):
            return AIMessage(content="Nothing stands out yet; here is the outlook.")
        if request.scope_level == "all":
            # the chain, and each region when there are few enough to forecast one by one
            regions = self._catalog().regions
            scopes: list[tuple[str, list[str]]] = [("all", [])]
            if len(regions) <= MAX_OUTLOOK_REGIONS:
                scopes += [("region", [r]) for r in regions]
        else:
            scopes = [(request.scope_level, request.scope_ids)]
        as_of = request.day.isoformat() if request.day else None
        return call(
            *[
                (
                    "forecast",
                    {"scope": level, "ids": ids, "kpi": "late_rate", "horizon": request.horizon}
                    | ({"as_of": as_of} if as_of else {}),
                )
                for level, ids in scopes
            ]
        )

    def _targets(
        self, request: Request, scan: dict[str, Any]
    ) -> list[tuple[str, str, dict[str, int]]]:
        """Pick what to diagnose: (target, day, window) of the asked scope or top anomalies.

        An asked store or region is diagnosed where the scan flagged it, else on the last
        day asked; otherwise the top anomalies, each on its own day and grain.
        """
        flagged = {a["target"]: a for a in reversed(scan["anomalies"])}
        if request.scope_level in ("store", "region") and request.scope_ids:
            out = []
            for target in request.scope_ids[: self.max_diagnoses]:
                a = flagged.get(target)
                if a:
                    out.append((target, str(a["date"]), {"window_days": a["grain_days"]}))
                else:
                    out.append((target, str(scan["window"][1]), {}))
            return out
        # problems of their own first; over a period, one cell per target (its top-scored),
        # cells inside the period asked before those reaching back before it
        anomalies = triage_order(scan["anomalies"])
        if request.start is not None:
            start = request.start
            anomalies.sort(key=lambda a: _window_start(a) < start)
        first = {a["target"]: a for a in reversed(anomalies)}
        ordered = [a for a in anomalies if first[a["target"]] is a]
        return [
            (a["target"], str(a["date"]), {"window_days": a["grain_days"]})
            for a in ordered[: self.max_diagnoses]
        ]


_Call = Callable[..., AIMessage]


def _window_start(anomaly: dict[str, Any]) -> date:
    day = date.fromisoformat(str(anomaly["date"]))
    return day - timedelta(days=int(anomaly.get("grain_days", 1)) - 1)


def _span(request: Request, last_day: date) -> tuple[date, date]:
    """Return the period asked, or the day, or the past week of data."""
    if request.start and request.end:
        return request.start, request.end
    if request.day:
        return request.day, request.day
    return last_day - timedelta(days=6), last_day


def _forecast_args(request: Request) -> dict[str, Any]:
    args: dict[str, Any] = {
        "scope": request.scope_level,
        "ids": request.scope_ids,
        # a KPI the forecast cannot predict is still asked for: the tool's error, naming the
        # ones it can, becomes the answer's caveat instead of a silent late-rate forecast
        "kpi": request.kpi,
        "horizon": request.horizon,
    }
    if request.day:
        args["as_of"] = request.day.isoformat()
    return args


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
                out.append(_Outcome(name=c["name"], args=c["args"], error=_error(m.content)))
            else:
                try:
                    result = unfence(str(m.content))
                except ValueError:  # JSONDecodeError is one
                    result = {"text": str(m.content)}
                out.append(_Outcome(name=c["name"], args=c["args"], result=result))
    return out


def _error(content: Any) -> str:
    """Return a tool error's text (fenced as data by the tools node)."""
    try:
        value = unfence(str(content))
    except ValueError:
        return str(content)
    return str(value.get("error", value)) if isinstance(value, dict) else str(value)


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
