"""Tool results, kept outside the checkpointed graph state, keyed by evidence id.

A run's checkpoints are rewritten at every step; a triage over a region carries dozens of
diagnoses and forecasts (hundreds of kilobytes), so holding them in the state would copy
them into every checkpoint. The state keeps the small evidence records (what a plan cites);
the full results live in a LangGraph store (:class:`langgraph.store.base.BaseStore`) under
the namespace ``("results", run_id)``, one item per evidence id: a SQLite table in the
state file by default, a PostgreSQL table when ``LASTMILE_POSTGRES_URL`` is set (see
:class:`agent.persistence.Persistence`). Writing an item again under the same id replaces it,
so a replayed step stays idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from langgraph.config import get_config
from langgraph.store.base import BaseStore, GetOp, Item
from pydantic import BaseModel, Field

from tools.core.evidence import Evidence

NAMESPACE = "results"


class ToolResult(BaseModel):
    """One successful tool call's output."""

    id: str = Field(description="Its evidence id, e.g. 'diagnose#1'.")
    tool: str
    result: dict[str, Any] = Field(description="The tool's output model, as JSON.")


def parse_results(items: Iterable[Any]) -> list[ToolResult]:
    """Read results back from a prompt's ``tool_results`` list (other entries skipped).

    A prompt may carry a note in that list ("3 results omitted"); it is not a result.
    """
    return [
        ToolResult.model_validate(i)
        for i in items
        if isinstance(i, dict) and {"id", "tool", "result"} <= set(i)
    ]


class NoResultStoreError(RuntimeError):
    """The graph was compiled without a store, so tool results have nowhere to live."""

    def __init__(self) -> None:
        super().__init__(
            "this graph keeps tool results in a LangGraph store: compile it with "
            "store=... (AgentService does; the LangGraph server provides one)"
        )


def run_id() -> str:
    """Return the running graph's thread id (a run's checkpoints live under its id).

    Raises:
        RuntimeError: the graph runs without a ``thread_id``: results would be shared.
    """
    thread = get_config().get("configurable", {}).get("thread_id")
    if not thread:
        raise RuntimeError("a run needs a thread_id: its checkpoints and results live under it")
    return str(thread)


def namespace(run: str) -> tuple[str, str]:
    """Return the store namespace of a run's results (a "." cannot be in a label)."""
    return (NAMESPACE, run.replace("%", "%25").replace(".", "%2E"))


def put_results(store: BaseStore | None, run: str, results: Iterable[ToolResult]) -> None:
    """Store results under the run, one item per evidence id (replacing any earlier one).

    Raises:
        NoResultStoreError: ``store`` is None.
    """
    if store is None:
        raise NoResultStoreError()
    for r in results:
        store.put(namespace(run), r.id, r.model_dump(mode="json", exclude={"id"}), index=False)


def get_results(
    store: BaseStore | None, run: str, evidence: Sequence[Evidence]
) -> list[ToolResult]:
    """Return the run's results for ``evidence``, in its order (call order).

    Evidence without a stored result (a record another tool registered) is skipped.

    Raises:
        NoResultStoreError: ``store`` is None.
    """
    if store is None:
        raise NoResultStoreError()
    if not evidence:
        return []
    items = cast(list[Item | None], store.batch([GetOp(namespace(run), e.id) for e in evidence]))
    return [
        ToolResult(id=item.key, tool=item.value["tool"], result=item.value["result"])
        for item in items
        if item is not None
    ]


def delete_results(store: BaseStore, run: str) -> int:
    """Delete every result of a run; return how many there were."""
    deleted = 0
    while items := store.search(namespace(run), limit=500):
        for item in items:
            store.delete(namespace(run), item.key)
        deleted += len(items)
    return deleted
