"""Decisions per action, approval expiry, roles and dispatch: the service's approval half.

Each decision is stored as it comes (:func:`agent.storage.approvals.record_decision`: the
first wins, a second is told who decided and when). When no pending action is left, or on
"decide the rest", the run is resumed once (:meth:`RunStore.claim` moves it from
``waiting_approval`` to ``resuming``: one caller wins) with the decisions read back from the
table, so what is dispatched is exactly what was recorded. Approved actions go to the outbox
and are delivered by :mod:`agent.dispatch`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from agent.dispatch import DeliveryReport, deliver_due, transport_for
from agent.errors import RunInputError
from agent.nodes.approval import validate_decisions
from agent.roles import allowed_scopes, may_decide
from agent.schemas import ActionPlan, Decision
from agent.storage.approvals import (
    AlreadyDecidedError,
    DecisionRecord,
    decisions_of,
    enqueue,
    record_decision,
)
from agent.storage.runs import utc_now
from tools.analytics.scope import load_catalog
from tools.data.backend import Backend
from tools.data.views import LateRule

if TYPE_CHECKING:
    from pathlib import Path

    from agent.context import Context
    from agent.service import RunView
    from agent.settings import Settings
    from agent.storage.runs import RunStore

logger = logging.getLogger(__name__)

DecisionKind = Literal["approve", "reject", "edit"]


class DecisionError(RunInputError):
    """A decision that cannot be taken (a user-facing message; nothing was recorded)."""


class AlreadyDecided(DecisionError):
    """Someone decided the action first (the message says who and when)."""


class NotAllowed(DecisionError):
    """The user's approver scopes do not cover the action."""


class ApprovalExpired(DecisionError):
    """The approval window of the run has passed."""


class NotWaiting(DecisionError):
    """The run is not waiting for decisions (done, failed, running)."""


class Approvals:
    """The approval half of :class:`agent.service.AgentService` (a mixin)."""

    if TYPE_CHECKING:  # what the service provides
        settings: Settings
        store: RunStore
        state_db: Path

        def get(self, run_id: str) -> RunView: ...  # noqa: D102
        def context(self, **overrides: Any) -> Context: ...  # noqa: D102

        db: Path
        graph: Any

        def backend(self, late: LateRule | None = None) -> Backend: ...  # noqa: D102

        def _invoke(self, run_id: str, payload: Any, context: Context) -> RunView: ...

    def decide(
        self,
        run_id: str,
        index: int,
        decision: DecisionKind,
        by: str,
        parameters: dict[str, float] | None = None,
        note: str | None = None,
    ) -> RunView:
        """Record one decision; resume the run once no pending action is left.

        Raises:
            RunInputError: no such run, a run not waiting, an expired approval, an action that
                needs no decision, a user not allowed to decide it, a bad edit, or an action
                decided already (its message says by whom and when).
        """
        plan = self._waiting_plan(run_id)
        choice = Decision(index=index, decision=decision, by=by, parameters=parameters, note=note)
        self._record_one(run_id, plan, choice)
        return self._resume_if_decided(run_id, plan)

    def decide_rest(
        self, run_id: str, decision: DecisionKind, by: str, note: str | None = None
    ) -> RunView:
        """Give every still-undecided action ``decision`` (approve or reject), then resume.

        Actions someone else decided meanwhile keep their decision.
        """
        if decision == "edit":
            raise DecisionError("'decide the rest' takes approve or reject, not edit")
        plan = self._waiting_plan(run_id)
        for index in self._undecided(run_id, plan):
            try:
                self._record_one(
                    run_id, plan, Decision(index=index, decision=decision, by=by, note=note)
                )
            except AlreadyDecided:
                pass  # someone decided it meanwhile: theirs stands
        return self._resume_if_decided(run_id, plan)

    def approve(self, run_id: str, decisions: list[Decision]) -> RunView:
        """Record several decisions at once (the CLI), then resume if none is left pending.

        All are checked before any is recorded, so a bad one leaves nothing half-decided.
        """
        plan = self._waiting_plan(run_id)
        problems = validate_decisions(plan, decisions, partial=True)
        if problems:
            raise DecisionError("; ".join(problems))
        for d in decisions:
            self._record_one(run_id, plan, d)
        return self._resume_if_decided(run_id, plan)

    # -- internals -------------------------------------------------------------------------
    def _waiting_plan(self, run_id: str) -> ActionPlan:
        view = self.get(run_id)
        if view.status == "expired":
            raise ApprovalExpired(
                f"run {run_id}'s approval request expired at {view.approval_expires_at}: "
                "nothing was dispatched; run the triage again for a current plan"
            )
        if view.status != "waiting_approval" or view.plan is None:
            raise NotWaiting(f"run {run_id} is not waiting for approval (status: {view.status})")
        if not self._paused(run_id):
            # resuming without its checkpoint would start the graph afresh over the record
            raise DecisionError(
                f"run {run_id} waits for approval, but its checkpoint is not in this state "
                f"store ({self._store_name()}): approve it with the state settings it ran with "
                "(LASTMILE_POSTGRES_URL set or unset, the same --state-db)"
            )
        return view.plan

    def _record_one(self, run_id: str, plan: ActionPlan, d: Decision) -> None:
        if not 0 <= d.index < len(plan.actions):
            raise DecisionError(f"run {run_id} has no action {d.index}")
        action = plan.actions[d.index]
        if not action.needs_approval:
            raise DecisionError(f"action {d.index} needs no decision (policy approves it)")
        if not may_decide(self.settings.approvers, d.by, action.target, self._regions()):
            raise NotAllowed(
                f"{d.by} may not decide actions on {action.target} (allowed: "
                f"{allowed_scopes(self.settings.approvers, d.by)}); LASTMILE_APPROVERS sets this"
            )
        problems = validate_decisions(plan, [d], partial=True)
        if problems:
            raise DecisionError("; ".join(problems))
        try:
            record_decision(
                self.store.engine,
                DecisionRecord(
                    run_id=run_id,
                    idx=d.index,
                    action_id=action.action_id,
                    target=action.target,
                    decision=d.decision,
                    parameters=d.parameters,
                    note=d.note,
                    decided_by=d.by,
                    decided_at=(d.at or datetime.now(UTC)).isoformat(timespec="seconds"),
                ),
            )
        except AlreadyDecidedError as exc:
            raise AlreadyDecided(str(exc)) from None

    def _undecided(self, run_id: str, plan: ActionPlan) -> list[int]:
        done = {d.idx for d in decisions_of(self.store.engine, run_id)}
        return [i for i, a in enumerate(plan.actions) if a.needs_approval and i not in done]

    def _resume_if_decided(self, run_id: str, plan: ActionPlan) -> RunView:
        if self._undecided(run_id, plan) or not self.store.claim(
            run_id, "waiting_approval", "resuming", unexpired=True
        ):
            return self.get(run_id)  # actions still pending, or another caller resumes it
        return self._resume(run_id)

    def _resume(self, run_id: str) -> RunView:
        """Resume a claimed run with its stored decisions (also after a crash)."""
        stored = decisions_of(self.store.engine, run_id)
        payload = {
            "decisions": [
                Decision(
                    index=d.idx,
                    decision=d.decision,
                    parameters=d.parameters,
                    by=d.decided_by,
                    at=datetime.fromisoformat(d.decided_at),
                    note=d.note,
                ).model_dump(mode="json")
                for d in stored
            ]
        }
        return self._invoke(run_id, Command(resume=payload), self.context())

    def _expire(self, run_id: str, expires_at: str | None) -> bool:
        """Mark a waiting run expired when its window has passed; True if it is expired."""
        if expires_at is None or expires_at > utc_now():
            return False
        return self.store.claim(run_id, "waiting_approval", "expired") or True

    def expires_at(self) -> str:
        """Return when an approval request made now expires."""
        ttl = timedelta(hours=self.settings.approval_ttl_hours)
        return (datetime.now(UTC) + ttl).isoformat(timespec="seconds")

    def _enqueue(self, dispatched: list[Any]) -> None:
        for action in dispatched:
            enqueue(self.store.engine, action)

    def deliver(self) -> DeliveryReport:
        """Send every approved action due for delivery (see :mod:`agent.dispatch`)."""
        token = self.settings.dispatch_token
        transport = transport_for(
            self.settings.dispatch_url,
            token.get_secret_value() if token else None,
            self.state_db.parent,
        )
        return deliver_due(self.store.engine, transport)

    def decision_log(self, run_id: str | None = None) -> list[DecisionRecord]:
        """Return every recorded decision (of one run, or all), oldest first."""
        return decisions_of(self.store.engine, run_id)

    def _paused(self, run_id: str) -> bool:
        """Whether this store holds the run's checkpoint with a step still to run."""
        snapshot = self.graph.get_state(RunnableConfig(configurable={"thread_id": run_id}))
        return bool(snapshot.next)

    def _regions(self) -> dict[str, str]:
        """Return store id -> region id from the data's catalog (for approver scopes)."""
        stores = load_catalog(self.backend()).stores
        return dict(zip(stores["store_id"].astype(str), stores["region"].astype(str), strict=True))

    def _store_name(self) -> str:
        postgres = self.settings.postgres_url is not None
        return (
            "PostgreSQL, LASTMILE_POSTGRES_URL" if postgres else f"the SQLite file {self.state_db}"
        )
