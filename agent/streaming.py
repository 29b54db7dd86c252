"""Runs as streams of typed events (:mod:`agent.events`): the chat surfaces' half of the service.

The graph streams three modes at once: ``updates`` (a node finished: a ``step``),
``custom`` (``tool_started`` / ``tool_finished`` written by :func:`agent.nodes.common.call_tool`)
and ``messages`` (model tokens). A run can be cancelled between two events: the stream stops,
the checkpoint keeps the last finished step, and the run is recorded as ``cancelled``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any, cast

from langchain_core.messages import AIMessageChunk
from langgraph.errors import GraphRecursionError
from langgraph.types import StreamMode

from agent.errors import RunInputError, run_failure
from agent.events import (
    ApprovalRequested,
    PlanReady,
    RunFailed,
    RunFinished,
    RunStarted,
    Token,
    from_custom,
    step,
)

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph.graph.state import CompiledStateGraph

    from agent.context import Context
    from agent.service import RunView
    from agent.storage.runs import RunStore

logger = logging.getLogger(__name__)

StreamEvent = Any  # one of agent.events' models


class Streaming:
    """The streaming half of :class:`agent.service.AgentService` (a mixin)."""

    if TYPE_CHECKING:  # what the service provides
        graph: CompiledStateGraph[Any, Any, Any, Any]
        store: RunStore

        def _check_data(self) -> None: ...
        def _ask_request(self, question: str, thread_id: str | None) -> dict[str, Any]: ...
        def _triage_request(
            self, day: date | None, scope_level: str, scope_ids: list[str] | None
        ) -> tuple[dict[str, Any], str]: ...
        def _begin(
            self,
            kind: str,
            request: dict[str, Any],
            question: str | None,
            scope: str | None,
            thread_id: str | None,
            by: str | None = None,
            **overrides: Any,
        ) -> tuple[str, Context]: ...
        def _config(self, run_id: str, context: Context) -> RunnableConfig: ...
        def _record(self, run_id: str, *, error: str | None = None) -> RunView: ...
        def _after_step(self, run_id: str, nodes: Any) -> None: ...

    def stream_ask(
        self,
        question: str,
        thread_id: str | None = None,
        *,
        by: str | None = None,
        cancel: threading.Event | None = None,
        **overrides: Any,
    ) -> Iterator[StreamEvent]:
        """Answer a question, yielding its events as they happen; ``run_finished`` is last.

        With a ``thread_id``, earlier turns of the thread are the question's context, and the
        thread answers one question at a time.

        Raises:
            RunInputError: no data, an empty question, or a thread busy with another run
                (raised before any event, so nothing was started).
        """
        self._check_data()
        if not question.strip():
            raise RunInputError("the question is empty")
        request = self._ask_request(question, thread_id)
        run_id, context = self._begin("ask", request, question, None, thread_id, by, **overrides)
        yield RunStarted(run_id=run_id, thread_id=thread_id, kind="ask", question=question)
        yield from self.stream_run(run_id, request, context, cancel)

    def stream_triage(
        self,
        day: date | None = None,
        scope_level: str = "all",
        scope_ids: list[str] | None = None,
        *,
        by: str | None = None,
        cancel: threading.Event | None = None,
        **overrides: Any,
    ) -> Iterator[StreamEvent]:
        """Run the morning triage, yielding its events; ``run_finished`` is last.

        Raises:
            RunInputError: unknown scope ids or a day outside the data (before any event).
        """
        request, scope = self._triage_request(day, scope_level, scope_ids)
        run_id, context = self._begin("triage", request, None, scope, None, by, **overrides)
        yield RunStarted(run_id=run_id, kind="triage")
        yield from self.stream_run(run_id, request, context, cancel)

    def stream_run(
        self,
        run_id: str,
        payload: Any,
        context: Context,
        cancel: threading.Event | None = None,
    ) -> Iterator[StreamEvent]:
        """Run (or resume) a recorded run, yielding its events; ``run_finished`` is last."""
        modes: list[StreamMode] = ["updates", "custom", "messages"]
        try:
            for mode, chunk in self.graph.stream(
                cast(Any, payload),
                self._config(run_id, context),
                context=context,
                stream_mode=modes,
                durability="sync",
            ):
                if mode == "updates":
                    self._after_step(run_id, chunk)
                if cancel is not None and cancel.is_set():
                    self.store.save_run(run_id=run_id, status="cancelled")
                    self.store.release_thread(run_id)
                    yield RunFinished(run_id=run_id, status="cancelled")
                    return
                yield from _events(run_id, mode, chunk)
        except GraphRecursionError:
            error = "the run hit its step limit before finishing"
        except Exception as exc:
            logger.debug("run %s failed", run_id, exc_info=True)
            error = run_failure(run_id, exc, context.model).summary
        else:
            view = self._record(run_id)
            if view.plan is not None:
                yield PlanReady(run_id=run_id, summary=view.plan.summary)
            if view.status == "waiting_approval":
                yield ApprovalRequested(
                    run_id=run_id, actions=view.pending, expires_at=view.approval_expires_at
                )
            yield RunFinished(run_id=run_id, status=view.status)
            return
        view = self._record(run_id, error=error)
        yield RunFailed(run_id=run_id, error=error)
        yield RunFinished(run_id=run_id, status=view.status)


def _events(run_id: str, mode: str, chunk: Any) -> Iterator[StreamEvent]:
    """Translate one graph stream chunk into run events."""
    if mode == "updates":
        for node in chunk:
            if node != "__interrupt__":
                yield step(run_id, node)
    elif mode == "custom":
        event = from_custom(run_id, chunk)
        if event is not None:
            yield event
    elif mode == "messages":
        message = chunk[0]
        # model tokens only: tool results and whole messages of the offline planner are not
        text = message.content if isinstance(message, AIMessageChunk) else None
        if isinstance(text, str) and text:
            yield Token(run_id=run_id, text=text)
