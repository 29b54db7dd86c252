"""Evidence records: what a tool computed, under which inputs, with its key numbers.

Every tool result registers one record. Plans may cite only evidence ids, and the plan
verifier checks that every number a plan states appears in the evidence it cites.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

Number = float | int


class Evidence(BaseModel):
    """One tool result, as the plan and its verifier see it."""

    id: str = Field(description="Citable id, e.g. 'scan_anomalies#2'.")
    tool: str
    inputs: dict[str, Any]
    numbers: dict[str, Number] = Field(description="Key numbers, by name, that a plan may quote.")
    summary: str = Field(description="One line saying what the evidence shows.")
    facts: dict[str, str] = Field(
        default_factory=dict,
        description="Names the verifier checks a plan's structure against (target, level, "
        "region, day, confidence, persistence): not quotable numbers.",
    )
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class EvidenceStore:
    """The evidence of one run, in the order it was produced (thread-safe)."""

    def __init__(self, records: list[Evidence] | None = None) -> None:
        self._items: dict[str, Evidence] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        for record in records or []:
            self._items[record.id] = record
            tool, _, n = record.id.rpartition("#")
            if n.isdigit():
                self._counts[tool] = max(self._counts.get(tool, 0), int(n))

    @classmethod
    def from_dicts(cls, records: list[dict[str, Any]]) -> EvidenceStore:
        """Continue a run's evidence (e.g. from a checkpoint): new ids follow the old ones."""
        return cls([Evidence.model_validate(r) for r in records])

    def register(
        self,
        tool: str,
        inputs: dict[str, Any],
        numbers: dict[str, Number],
        summary: str,
        facts: dict[str, str] | None = None,
    ) -> Evidence:
        """Record a tool result and return it with its new id."""
        clean = {k: _plain(v) for k, v in numbers.items()}
        with self._lock:
            n = self._counts.get(tool, 0) + 1
            self._counts[tool] = n
            evidence = Evidence(
                id=f"{tool}#{n}",
                tool=tool,
                inputs=inputs,
                numbers=clean,
                summary=summary,
                facts=facts or {},
            )
            self._items[evidence.id] = evidence
        return evidence

    def get(self, evidence_id: str) -> Evidence | None:
        """Return the record with this id, or None."""
        return self._items.get(evidence_id)

    def __contains__(self, evidence_id: object) -> bool:
        return evidence_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def all(self) -> list[Evidence]:
        """Every record, oldest first."""
        return list(self._items.values())


def _plain(value: Any) -> Number:
    """Numbers only (numpy scalars become Python numbers); rounding keeps citations readable."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    number = float(value)
    return round(number, 6)
