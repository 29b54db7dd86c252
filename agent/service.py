"""The application service every surface calls: start runs, resume them, read them.

The CLI, the web chat, the Slack bot and the scheduler stay thin: they build a request and
call this service, which owns the compiled graph, its checkpointer and result store (SQLite
file by default, Postgres when configured: :mod:`agent.persistence`), run records and
approvals.
"""

from __future__ import annotations

import logging
import os
import signal
import uuid
from datetime import date
from pathlib import Path
from typing import Any, Literal, cast

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphRecursionError
from pydantic import BaseModel, Field

from agent.context import Context
from agent.decisions import Approvals
from agent.errors import (
    DataUnusableError,
    NotFoundError,
    RunInputError,
    ThreadBusyError,
    run_failure,
)
from agent.graph import builder
from agent.incidents import Incidents
from agent.model_versions import ModelVersions
from agent.monitoring import Monitoring
from agent.nodes.common import now
from agent.nodes.compose import standing_notes
from agent.outcomes import Outcomes
from agent.persistence import Persistence
from agent.results import ToolResult, get_results
from agent.schemas import ActionPlan
from agent.settings import Settings, get_settings
from agent.state import typed_values
from agent.storage.approvals import decisions_of, outbox
from agent.storage.db import postgres_url
from agent.storage.runs import RunRecord, RunStore
from agent.streaming import Streaming
from agent.threads import thread_messages
from agent.upkeep import Upkeep
from agent.world_days import WorldDays
from tools.analytics.health import schema_findings
from tools.analytics.scope import load_catalog, resolve_scope
from tools.core.errors import ToolError
from tools.data.backend import Backend
from tools.data.views import LateRule

logger = logging.getLogger(__name__)

RunStatus = Literal[
    "running", "waiting_approval", "resuming", "expired", "cancelled", "done", "failed"
]

__all__ = ["AgentService", "RunInputError", "RunView"]


class RunView(BaseModel):
    """What a surface shows about a run."""

    run_id: str
    kind: str
    status: RunStatus
    plan: ActionPlan | None = None
    pending: list[dict[str, Any]] = Field(
        default_factory=list, description="Actions awaiting a decision."
    )
    decisions: list[dict[str, Any]] = Field(
        default_factory=list, description="Decisions so far: the managers' and policy's."
    )
    approval_expires_at: str | None = None
    thread_id: str | None = None
    dispatched: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    model: str | None = None
    prompts: dict[str, str] = Field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0


def _verified(values: dict[str, Any]) -> bool:
    """Whether the state's plan passed the verifier (or is the template's)."""
    return not values.get("plan_by_model") and not values.get("verify_problems")


class AgentService(
    Approvals, Streaming, Upkeep, Incidents, Monitoring, Outcomes, ModelVersions, WorldDays
):
    """Runs of the lastmile graph over one analytics database."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        db: str | Path | None = None,
        state_db: str | Path | None = None,
        offline: bool | None = None,
    ):
        self.settings = settings or get_settings()
        self.db = Path(db or self.settings.db)
        self.data = self.settings.data_source(self.db)
        self.state_db = Path(state_db or self.settings.state_db)
        self.offline = (not self.settings.uses_llm_endpoint) if offline is None else offline
        pg = self.settings.postgres_url
        if pg is None:  # the run store first: it says why a SQLite file cannot be written
            self.store = RunStore.open(path=self.state_db)
        # the checkpointer's connect probe says why a PostgreSQL server cannot be reached
        self._persistence = Persistence.open(self.settings, self.state_db)
        if pg is not None:
            self.store = RunStore.open(url=postgres_url(pg.get_secret_value()))
        self.checkpointer = self._persistence.checkpointer
        self.result_store = self._persistence.store
        self.graph = builder.compile(
            checkpointer=self.checkpointer, store=self._persistence.store, name="lastmile-agent"
        )
        try:
            _ = self.models  # an unusable MLflow URI is said now, not in the first run
            if self.settings.trace_retention_days:  # None or 0: kept forever
                self.purge(self.settings.trace_retention_days)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the checkpointer's, the result store's and the run store's connections."""
        self._persistence.close()
        self.store.close()

    # -- helpers ---------------------------------------------------------------------------
    def context(self, **overrides: Any) -> Context:
        """Build the per-run context for this service's database."""
        return Context.from_settings(
            self.settings,
            db=str(self.db),
            data=self.data,
            state_db=str(self.state_db),
            offline=self.offline,
            **{"models": self.models, **overrides},
        )

    def backend(self, late: LateRule | None = None) -> Backend:
        """Return the backend over the service's data (the settings' definition of late).

        Raises:
            FileNotFoundError: no data at the location.
            SparkUnavailableError: Spark cannot start here (the message says how to fix it).
        """
        settings = self.settings
        rule = late or LateRule(
            grace_min=settings.late_grace_min, failed_is_late=settings.late_failed_is_late
        )
        return self.data.open(rule)

    def _config(self, run_id: str, context: Context) -> RunnableConfig:
        return RunnableConfig(
            configurable={"thread_id": run_id}, recursion_limit=2 * context.max_tool_calls + 30
        )

    def _check_data(self) -> None:
        if not self.data.exists():
            raise RunInputError(self.data.missing())
        broken = schema_findings(self.backend())
        if broken:
            raise DataUnusableError("; ".join(f.message for f in broken))

    # -- starting runs ---------------------------------------------------------------------
    def triage(
        self,
        day: date | None = None,
        scope_level: Literal["all", "region", "store"] = "all",
        scope_ids: list[str] | None = None,
        **context: Any,
    ) -> RunView:
        """Run the morning triage over a scope and day; stop for approval if it proposes actions.

        Raises:
            RunInputError: unknown scope ids or a day outside the data.
        """
        request, scope = self._triage_request(day, scope_level, scope_ids)
        return self._start("triage", request, question=None, scope=scope, **context)

    def _triage_request(
        self, day: date | None, scope_level: str, scope_ids: list[str] | None
    ) -> tuple[dict[str, Any], str]:
        """Check a triage request against the data; return the graph input and its scope.

        Raises:
            RunInputError: no data, unknown scope ids or a day outside the data.
        """
        self._check_data()
        catalog = load_catalog(self.backend())
        try:
            resolve_scope(catalog, scope_level, list(scope_ids or []))  # type: ignore[arg-type]
        except ToolError as exc:
            raise RunInputError(str(exc)) from None
        if day is not None and not catalog.first_day <= day <= catalog.last_day:
            raise RunInputError(
                f"{day} is outside the data ({catalog.first_day}..{catalog.last_day})"
            )
        request = {
            "mode": "triage",
            "day": day.isoformat() if day else None,
            "scope_level": scope_level,
            "scope_ids": list(scope_ids or []),
        }
        scope = (
            scope_level if scope_level == "all" else f"{scope_level}:{','.join(scope_ids or [])}"
        )
        return request, scope

    def ask(self, question: str, thread_id: str | None = None, **context: Any) -> RunView:
        """Answer a manager's question; the model chooses the tools.

        Args:
            question: the question.
            thread_id: a conversation thread: the answer sees the thread's earlier turns
                (trimmed to :data:`THREAD_TOKEN_BUDGET`), so "and the day after?" follows on.
            context: overrides of the run's :class:`Context`.
        """
        self._check_data()
        if not question.strip():
            raise RunInputError("the question is empty")
        request = self._ask_request(question, thread_id)
        return self._start(
            "ask", request, question=question, scope=None, thread_id=thread_id, **context
        )

    def _ask_request(self, question: str, thread_id: str | None) -> dict[str, Any]:
        """Build the graph input of a question: the thread's earlier turns, then it."""
        history = thread_messages(self.store.thread_runs(thread_id)) if thread_id else []
        return {"mode": "ask", "question": question, "messages": [*history, ("human", question)]}

    def _start(
        self,
        kind: str,
        request: dict[str, Any],
        *,
        question: str | None,
        scope: str | None,
        thread_id: str | None = None,
        **overrides: Any,
    ) -> RunView:
        run_id, context = self._begin(kind, request, question, scope, thread_id, **overrides)
        return self._invoke(run_id, request, context)

    def _begin(
        self,
        kind: str,
        request: dict[str, Any],
        question: str | None,
        scope: str | None,
        thread_id: str | None,
        by: str | None = None,
        **overrides: Any,
    ) -> tuple[str, Context]:
        """Record a new run (and hold its thread); return its id and context.

        Raises:
            RunInputError: the thread is answering another question.
        """
        run_id = uuid.uuid4().hex[:12]
        # an action approved for an ongoing incident is not proposed again
        overrides.setdefault("in_effect", self._in_effect_context())
        # an action that has been over-promising is estimated from its track record
        overrides.setdefault("calibration", self.calibration())
        # a cause whose effect the monitor found moved is named in the plan's caveats
        overrides.setdefault("moved_effects", self.moved_effects())
        context = self.context(**overrides)
        self.store.save_run(
            run_id=run_id,
            kind=kind,
            question=question,
            day=request.get("day"),
            scope=scope,
            db=str(self.db),
            status="running",
            thread_id=thread_id,
            started_by=by,
        )
        if thread_id is not None:
            holder = self.store.claim_thread(thread_id, run_id, question or kind, by)
            if holder is not None:
                self.store.delete_run(run_id)
                raise ThreadBusyError(
                    f"thread {thread_id} is still answering another question (run {holder}): "
                    "wait for it to finish, or start a new thread"
                )
        return run_id, context

    # -- approvals -------------------------------------------------------------------------
    # -- reading ---------------------------------------------------------------------------
    def get(self, run_id: str) -> RunView:
        """Return the run's current view.

        Raises:
            RunInputError: no such run.
        """
        record = self.record(run_id)
        status = record.status
        if status == "waiting_approval" and self._expire(run_id, record.approval_expires_at):
            status = "expired"
        snapshot = self.graph.get_state(RunnableConfig(configurable={"thread_id": run_id}))
        stored = decisions_of(self.store.engine, run_id)
        decided = {d.idx for d in stored}
        pending = []
        if snapshot.interrupts and status == "waiting_approval":
            pending = [
                a
                for a in snapshot.interrupts[0].value.get("actions", [])
                if a["index"] not in decided
            ]
        # the graph's decisions once it resumed (policy's too), else the table's so far
        decisions = record.decisions or [
            {
                "index": d.idx,
                "decision": d.decision,
                "parameters": d.parameters,
                "by": d.decided_by,
                "at": d.decided_at,
                "note": d.note,
            }
            for d in stored
        ]
        plan = ActionPlan.model_validate(record.plan) if record.plan else None
        return RunView(
            run_id=run_id,
            kind=record.kind,
            status=status,  # type: ignore[arg-type]
            plan=plan,
            pending=pending,
            decisions=decisions,
            dispatched=[a.model_dump(mode="json") for a in outbox(self.store.engine, run_id)],
            error=record.error,
            model=record.model,
            prompts=record.prompts,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            approval_expires_at=record.approval_expires_at,
            thread_id=record.thread_id,
        )

    def resolve(self, run_id: str) -> str:
        """Return the run id that ``run_id`` names: itself, or the one run it is a prefix of.

        Raises:
            RunInputError: no run, or several, start with it.
        """
        ids = self.store.run_ids_starting(run_id)
        if run_id in ids or len(ids) == 1:
            return run_id if run_id in ids else ids[0]
        if ids:
            raise RunInputError(f"several runs start with {run_id!r}; give more of the run id")
        raise NotFoundError(f"no run {run_id!r}; `lastmile runs list` shows the recent ones")

    def record(self, run_id: str) -> RunRecord:
        """Return the full stored record (trace, evidence, plan).

        Raises:
            RunInputError: no such run.
        """
        record = self.store.get_run(run_id)
        if record is None:
            raise NotFoundError(f"no run {run_id!r}; `lastmile runs list` shows the recent ones")
        return record

    def results(self, run_id: str) -> list[ToolResult]:
        """Return the run's tool results (from the result store), in call order."""
        evidence = self._values(run_id).get("evidence", [])
        return get_results(self.result_store, run_id, evidence)

    def notes(self, run_id: str) -> list[str]:
        """Return the run's notes as its verifier saw them (with standing tool errors)."""
        values = self._values(run_id)
        return standing_notes(list(values.get("notes", [])), list(values.get("trace", [])))

    def _values(self, run_id: str) -> dict[str, Any]:
        snapshot = self.graph.get_state(RunnableConfig(configurable={"thread_id": run_id}))
        return typed_values(dict(snapshot.values or {}))

    # -- internals -------------------------------------------------------------------------
    def _invoke(self, run_id: str, payload: Any, context: Context) -> RunView:
        config = self._config(run_id, context)
        try:
            for update in self.graph.stream(
                cast(Any, payload),
                config,
                context=context,
                stream_mode="updates",
                durability="sync",
            ):
                self._after_step(run_id, update)
        except GraphRecursionError:
            return self._record(run_id, error="the run hit its step limit before finishing")
        except Exception as exc:
            logger.debug("run %s failed", run_id, exc_info=True)
            failure = run_failure(run_id, exc, context.model)
            self._record(run_id, error=failure.summary)
            raise failure from exc
        return self._record(run_id)

    def _after_step(self, run_id: str, nodes: Any) -> None:
        """Run after each finished node: a heartbeat, and the crash tests' kill switch.

        The heartbeat (the record's ``updated_at``) tells recovery this run is alive.
        """
        self.store.save_run(run_id=run_id)
        if self.settings.test_kill_at is not None and self.settings.test_kill_at in nodes:
            logger.warning("test_kill_at=%s: killing the process", self.settings.test_kill_at)
            os.kill(os.getpid(), signal.SIGKILL)

    def _record(self, run_id: str, *, error: str | None = None) -> RunView:
        """Persist the run's state as a run record and return its view."""
        snapshot = self.graph.get_state(RunnableConfig(configurable={"thread_id": run_id}))
        values = typed_values(snapshot.values or {})
        trace = [e.record() for e in values.get("trace", [])]
        if error:  # the step that failed left no state: its failure is the trace's last event
            trace.append(
                {
                    "at": now(),
                    "kind": "error",
                    "node": snapshot.next[0] if snapshot.next else None,
                    "error": error,
                }
            )
        plan: ActionPlan | None = values.get("plan")
        llm = [e for e in trace if e.get("kind") == "llm"]
        prompts = {e["prompt"]: e["prompt_sha256"] for e in llm if e.get("prompt")}
        if error:
            status: RunStatus = "failed"
        elif snapshot.interrupts:
            status = "waiting_approval"
        elif snapshot.next:
            status = "running"
        else:
            status = "done"
        extra: dict[str, Any] = {}
        if status == "waiting_approval":
            before = self.store.get_run(run_id)
            if before is None or before.approval_expires_at is None:
                extra["approval_expires_at"] = self.expires_at()
        # the outbox is written before the record says done: a crash between the two is
        # repaired by recover(), which records the run again (writes are idempotent)
        self._enqueue(list(values.get("dispatched", [])))
        self.store.save_run(
            run_id=run_id,
            status=status,
            **extra,
            day=values.get("day"),
            model=llm[-1]["model"] if llm else None,
            prompts=prompts,
            # a plan the verifier has not passed (a model's, mid-retry) is never shown
            plan=plan.model_dump(mode="json") if plan and _verified(values) else None,
            evidence=[e.model_dump(mode="json") for e in values.get("evidence", [])],
            trace=trace,
            decisions=[d.model_dump(mode="json") for d in values.get("decisions", [])],
            error=error,
            input_tokens=sum(int(e.get("input_tokens") or 0) for e in llm),
            output_tokens=sum(int(e.get("output_tokens") or 0) for e in llm),
        )
        if status in ("waiting_approval", "done"):
            try:
                self._track_incidents(run_id)
            except Exception:  # the run's answer stands; the incident log says it missed one
                logger.exception("incidents of run %s could not be recorded", run_id)
        if status not in ("running", "resuming"):
            self.store.release_thread(run_id)
        if values.get("dispatched"):
            self.deliver()
        return self.get(run_id)
