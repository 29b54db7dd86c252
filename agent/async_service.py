"""The application service for async surfaces (the web app, the Slack bot, the scheduler).

It wraps :class:`agent.service.AgentService`: the graph, its tools and the stores are
synchronous, so each call runs in a worker thread and a run's events cross back to the event
loop through a queue as they happen. Surfaces hold no domain logic: they call these methods
and lay out what comes back (:class:`agent.presenter.RunPage`, :mod:`agent.events`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from functools import partial
from typing import Any, TypeVar

from agent.charts import ChartSet, chart_sets
from agent.digest import DigestView, digest_view
from agent.errors import NotFoundError
from agent.events import ActionDispatched, DecisionRecorded, RunFinished
from agent.incidents import within_normal
from agent.presenter import RunPage, run_page
from agent.service import AgentService
from agent.storage import slack as slack_store
from agent.storage.approvals import DecisionRecord, pending_count
from agent.storage.incidents import Incident
from agent.storage.monitoring import Snapshot, snapshot
from agent.storage.runs import ThreadRecord
from agent.storage.slack import Digest
from tools.analytics.scope import load_catalog

logger = logging.getLogger(__name__)

T = TypeVar("T")
_END = object()


class AsyncAgentService:
    """Async facade over one :class:`AgentService` (one per process)."""

    def __init__(self, service: AgentService):
        self.service = service
        self._cancels: dict[str, threading.Event] = {}
        self._watchers: dict[str, set[asyncio.Queue[Any]]] = {}

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(partial(fn, *args, **kwargs))

    # -- threads ---------------------------------------------------------------------------
    async def threads(self, limit: int = 50) -> list[ThreadRecord]:
        """Most recently active threads first."""
        return await self._call(self.service.store.list_threads, limit)

    async def create_thread(self, title: str, by: str) -> ThreadRecord:
        """Start a conversation thread."""
        import uuid

        thread_id = uuid.uuid4().hex[:12]
        return await self._call(
            self.service.store.save_thread, thread_id, title.strip() or "New conversation", by
        )

    async def thread(self, thread_id: str) -> tuple[ThreadRecord, list[RunPage]]:
        """Return a thread and the pages of its runs, oldest first.

        Raises:
            NotFoundError: no such thread.
        """
        thread = await self._call(self.service.store.get_thread, thread_id)
        if thread is None:
            raise NotFoundError(f"no conversation {thread_id!r}")
        runs = await self._call(self.service.store.thread_runs, thread_id)
        return thread, [await self.page(r.run_id) for r in runs]

    # -- runs ------------------------------------------------------------------------------
    async def ask(self, thread_id: str, question: str, by: str) -> AsyncIterator[Any]:
        """Answer a question in a thread, yielding its events; ``run_finished`` carries the page.

        Errors that stop the run before it starts (an empty question, a busy thread, no data)
        are raised by the first ``__anext__``, before any event.
        """
        cancel = threading.Event()
        stream = partial(
            self.service.stream_ask, question, thread_id=thread_id, by=by, cancel=cancel
        )
        async for event in self._run_events(stream, cancel):
            yield event

    async def triage(
        self, day: date | None, scope_level: str, scope_ids: list[str], by: str
    ) -> AsyncIterator[Any]:
        """Run the morning triage over a scope, yielding its events (as :meth:`ask`)."""
        cancel = threading.Event()
        stream = partial(
            self.service.stream_triage, day, scope_level, scope_ids, by=by, cancel=cancel
        )
        async for event in self._run_events(stream, cancel):
            yield event

    async def _run_events(
        self, stream: Callable[[], Iterator[Any]], cancel: threading.Event
    ) -> AsyncIterator[Any]:
        """Bridge a run's events; keep it cancellable; put the page on ``run_finished``."""
        async for event in self._bridge(stream):
            if event.type == "run_started":
                self._cancels[event.run_id] = cancel
            if isinstance(event, RunFinished):
                self._cancels.pop(event.run_id, None)
                event = event.model_copy(
                    update={"page": (await self.page(event.run_id)).model_dump(mode="json")}
                )
            yield event

    async def _bridge(self, make: Callable[[], Iterator[Any]]) -> AsyncIterator[Any]:
        """Run a blocking generator in a worker thread; yield its items on the event loop."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def work() -> None:
            try:
                for item in make():
                    loop.call_soon_threadsafe(queue.put_nowait, item)
            except BaseException as exc:  # handed to the consumer, raised there
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        worker = loop.run_in_executor(None, work)
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # a client that goes away does not stop the run: it finishes and is recorded
            worker.add_done_callback(lambda f: f.exception())

    async def cancel(self, run_id: str) -> bool:
        """Ask a streaming run to stop after its current step; False if it is not running here."""
        event = self._cancels.get(run_id)
        if event is None:
            return False
        event.set()
        return True

    async def page(self, run_id: str) -> RunPage:
        """Return the run as the chat page shows it."""
        return await self._call(self._page, run_id)

    def _page(self, run_id: str) -> RunPage:
        view = self.service.get(run_id)
        record = self.service.record(run_id)
        charts: list[ChartSet] = []
        if view.plan is not None:
            try:
                charts = chart_sets(self.service.results(run_id), self.service.backend())
            except Exception:  # a chart must never hide the plan
                logger.exception("charts of run %s could not be drawn", run_id)
        return run_page(view, record, charts)

    def watch(self, run_id: str) -> AsyncIterator[Any]:
        """Subscribe now; yield the run's later events (decisions, dispatches, its end).

        Only events of this process: one server per state store (see the README).
        """
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._watchers.setdefault(run_id, set()).add(queue)

        async def events() -> AsyncIterator[Any]:
            try:
                while True:
                    event = await queue.get()
                    yield event
                    if isinstance(event, RunFinished):
                        return
            finally:
                self._watchers.get(run_id, set()).discard(queue)

        return events()

    async def _announce(self, run_id: str, page: RunPage, before: RunPage) -> None:
        """Tell the run's watchers what a decision changed: decisions, dispatches, the end."""
        if not self._watchers.get(run_id):
            return
        events: list[Any] = []
        sent: list[Any] = []  # after the decisions: they are what dispatched them
        old = {a.index: a for a in before.actions}
        for a in page.actions:
            was = old.get(a.index)
            if a.decision and (was is None or was.decision is None):
                events.append(
                    DecisionRecorded(
                        run_id=run_id,
                        index=a.index,
                        decision=a.decision.decision,
                        by=a.decision.by,
                        at=a.decision.at,
                    )
                )
            if a.dispatched is not None and _sent(a) and (was is None or not _sent(was)):
                sent.append(
                    ActionDispatched(
                        run_id=run_id,
                        index=a.index,
                        action_id=a.action_id,
                        delivery_status=a.dispatched.delivery_status,
                    )
                )
        events += sent
        if page.status != before.status and page.status not in ("waiting_approval", "resuming"):
            events.append(
                RunFinished(run_id=run_id, status=page.status, page=page.model_dump(mode="json"))
            )
        for queue in list(self._watchers.get(run_id, ())):
            for event in events:
                queue.put_nowait(event)

    # -- decisions -------------------------------------------------------------------------
    async def decide(
        self,
        run_id: str,
        index: int,
        decision: str,
        by: str,
        parameters: dict[str, float] | None = None,
        note: str | None = None,
    ) -> RunPage:
        """Record one decision (the run resumes once none is pending); return the page."""
        before = await self._before(run_id)
        await self._call(
            self.service.decide, run_id, index, decision, by, parameters=parameters, note=note
        )
        page = await self.page(run_id)
        if before is not None:
            await self._announce(run_id, page, before)
        return page

    async def _before(self, run_id: str) -> RunPage | None:
        """Return the page before a decision if someone watches the run (else None, unbuilt)."""
        return await self.page(run_id) if self._watchers.get(run_id) else None

    async def decide_rest(self, run_id: str, decision: str, by: str) -> RunPage:
        """Give every undecided action ``decision``; return the page."""
        before = await self._before(run_id)
        await self._call(self.service.decide_rest, run_id, decision, by)
        page = await self.page(run_id)
        if before is not None:
            await self._announce(run_id, page, before)
        return page

    async def decision_log(self, run_id: str | None = None) -> list[DecisionRecord]:
        """Return every recorded decision, oldest first."""
        return await self._call(self.service.decision_log, run_id)

    # -- incidents and digests -------------------------------------------------------------
    async def incidents(self, include_resolved: bool = False) -> list[Incident]:
        """Return incidents, most recently seen first (ongoing only by default)."""
        return await self._call(self.service.incidents, include_resolved)

    async def acknowledge_incident(self, incident_id: str, by: str) -> Incident:
        """Mark an ongoing incident as known and handled (IncidentError if it cannot be)."""
        return await self._call(self.service.acknowledge_incident, incident_id, by)

    async def snooze_incident(self, incident_id: str, by: str, days: int = 1) -> Incident:
        """Snooze an ongoing incident for ``days`` service dates (IncidentError if not)."""
        return await self._call(self.service.snooze_incident, incident_id, by, days)

    async def check_triage(self, day: date | None, scope_level: str, scope_ids: list[str]) -> None:
        """Check a triage request against the data (RunInputError: unknown scope, bad day)."""
        await self._call(self.service._triage_request, day, scope_level, scope_ids)

    async def latest_day(self) -> date:
        """Return the data's latest service date (what a triage without a day covers)."""
        return await self._call(lambda: load_catalog(self.service.backend()).last_day)

    async def store_count(self) -> int:
        """Return how many stores the data has."""
        return await self._call(lambda: len(load_catalog(self.service.backend()).stores))

    async def digest(self, run_id: str) -> DigestView:
        """Return the morning digest of a triage run."""
        page = await self.page(run_id)

        def build() -> DigestView:
            record = self.service.record(run_id)
            results = self.service.results(run_id)
            scans = [r for r in results if r.tool == "scan_anomalies"]
            day = date.fromisoformat(str(record.day)[:10])
            return digest_view(
                page,
                day,
                record.scope or "all",
                scans[-1].result if scans else None,
                self.service.incidents(),
                self.service.in_effect(day),
                normal=within_normal(results),
            )

        return await self._call(build)

    async def first_delivery(self, event_id: str) -> bool:
        """Record a Slack event id; False when it was handled already (a retry)."""
        return await self._call(slack_store.first_delivery, self.service.store.engine, event_id)

    async def slack_thread(self, channel: str, thread_ts: str, title: str, by: str) -> str:
        """Return the service thread of a Slack thread, starting one for a new Slack thread."""
        engine = self.service.store.engine
        known = await self._call(slack_store.thread_of, engine, channel, thread_ts)
        if known is not None:
            return known
        thread = await self.create_thread(title[:200], by)
        return await self._call(
            slack_store.link_thread, engine, channel, thread_ts, thread.thread_id
        )

    async def knows_slack_thread(self, channel: str, thread_ts: str) -> bool:
        """Whether a Slack thread is one the bot answers in."""
        engine = self.service.store.engine
        return await self._call(slack_store.thread_of, engine, channel, thread_ts) is not None

    async def record_slack_run(
        self, run_id: str, channel: str, thread_ts: str, progress_ts: str
    ) -> None:
        """Remember where a run answers in Slack."""
        engine = self.service.store.engine
        await self._call(
            slack_store.record_slack_run, engine, run_id, channel, thread_ts, progress_ts
        )

    async def mark_slack_posted(self, run_id: str) -> None:
        """Record that a run's answer reached Slack."""
        await self._call(slack_store.mark_posted, self.service.store.engine, run_id)

    async def unposted_slack_runs(self) -> list[slack_store.SlackRun]:
        """Return runs whose answer never reached Slack (their process died first)."""
        return await self._call(slack_store.unposted, self.service.store.engine)

    async def claim_digest(self, day: str, scope: str, by: str) -> tuple[bool, Digest]:
        """Claim the (day, scope) digest; False and where it is when another has it."""
        # a whole triage (many steps, each up to recovery_quiet_s) may run before the post
        stale = 10 * self.service.settings.recovery_quiet_s
        engine = self.service.store.engine
        return await self._call(slack_store.claim_digest, engine, day, scope, by, stale)

    async def finish_digest(self, day: str, scope: str, status: str, **where: Any) -> Digest:
        """Record how a claimed digest ended."""
        engine = self.service.store.engine
        return await self._call(slack_store.finish_digest, engine, day, scope, status, **where)

    # -- upkeep ----------------------------------------------------------------------------
    async def deliver(self) -> None:
        """Send approved actions due for delivery."""
        await self._call(self.service.deliver)

    async def recover_stale(self) -> list[str]:
        """Finish runs a crash left behind, once they have gone quiet (see ``recover``)."""
        quiet = self.service.settings.recovery_quiet_s
        return await self._call(self.service.recover, stale_after_s=quiet)

    async def counts(self) -> dict[str, int]:
        """Count runs waiting for decisions and actions waiting for delivery (/metrics)."""

        def count() -> dict[str, int]:
            return {
                "pending_approvals": self.service.store.count_runs(("waiting_approval",)),
                "outbox_pending": pending_count(self.service.store.engine),
            }

        return await self._call(count)

    async def monitor_snapshot(self) -> Snapshot:
        """Return the monitor's latest figures and open alerts (/metrics)."""
        return await self._call(snapshot, self.service.store.engine)


def _sent(action: Any) -> bool:
    """Whether an action of a page went to the outbox (not approved and held)."""
    return action.dispatched is not None and action.dispatched.delivery_status != "held"
