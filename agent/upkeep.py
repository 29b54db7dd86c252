"""Upkeep of the run store: finishing runs a crash interrupted, purging old ones."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig

from agent.results import delete_results

if TYPE_CHECKING:
    from agent.context import Context
    from agent.service import RunView
    from agent.storage.runs import RunStore
    from tools.core.models import ModelRegistry

logger = logging.getLogger(__name__)


class Upkeep:
    """Recovery and retention for :class:`agent.service.AgentService` (a mixin)."""

    if TYPE_CHECKING:  # what the service provides
        store: RunStore
        graph: Any
        checkpointer: Any
        result_store: Any
        models: ModelRegistry

        def context(self, **overrides: Any) -> Context: ...  # noqa: D102
        def _invoke(self, run_id: str, payload: Any, context: Context) -> RunView: ...
        def _resume(self, run_id: str) -> RunView: ...
        def _record(self, run_id: str, *, error: str | None = None) -> RunView: ...

    def purge(self, older_than_days: int) -> int:
        """Delete run records and their checkpoints older than ``older_than_days`` days.

        Runs waiting for a decision and dispatched actions are kept (see
        :meth:`RunStore.purge_runs`). Returns the number of runs deleted.
        """
        runs = self.store.purge_runs(older_than_days)
        for run_id in runs:  # a run's checkpoints and results are kept under its own id
            self.checkpointer.delete_thread(run_id)
            delete_results(self.result_store, run_id)
        if runs:
            logger.info("purged %d runs older than %d days", len(runs), older_than_days)
        models = self.models.prune(datetime.now(UTC) - timedelta(days=older_than_days))
        if models:
            logger.info("purged %d fitted models older than %d days", models, older_than_days)
        return len(runs)

    def recover(
        self, run_ids: list[str] | None = None, stale_after_s: float | None = None
    ) -> list[str]:
        """Finish what a crash interrupted: runs recorded as running or resuming.

        A run paused for approval whose resume had been claimed is resumed with its stored
        decisions; a run stopped between two steps continues from its last checkpoint; a
        finished one is recorded (and its approved actions written to the outbox). Only
        ``run_ids`` when given. With ``stale_after_s``, only runs without a heartbeat (a
        finished step) for that long, each taken by one process (a conditional update): the
        server's automatic recovery never runs a run that another process is running.
        Without it (``lastmile runs recover``), every such run: run it when no other process
        runs any. Returns the ids of the runs it touched.
        """
        touched = []
        cutoff = None
        if stale_after_s is not None:
            cutoff = (datetime.now(UTC) - timedelta(seconds=stale_after_s)).isoformat()
        for row in self.store.list_runs(limit=1000, statuses=("running", "resuming")):
            run_id = str(row["run_id"])
            if run_ids is not None and run_id not in run_ids:
                continue
            if cutoff is not None and not (
                str(row["updated_at"]) < cutoff and self.store.take(run_id, row["updated_at"])
            ):
                continue
            snapshot = self.graph.get_state(RunnableConfig(configurable={"thread_id": run_id}))
            try:
                if snapshot.interrupts and row["status"] == "resuming":
                    self._resume(run_id)
                elif snapshot.next and not snapshot.interrupts:
                    self._invoke(run_id, None, self.context())
                else:
                    self._record(run_id)
            except Exception:  # one broken run must not stop the others' recovery
                logger.exception("could not recover run %s", run_id)
                continue
            touched.append(run_id)
        return touched
