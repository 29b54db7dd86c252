"""Redact what must not leave the machine before a request reaches an external model.

With ``LASTMILE_LLM_REDACT`` on (the default for an endpoint off this machine and its private
network, see :meth:`agent.settings.Settings.redacts`), every request the endpoint model sends
passes through :meth:`Redactor.payload`, the one place data leaves:

* fields that name people or places (``driver_id``, ``zone_id``) and free text
  (``driver_note``, ``failure_reason``, a store's or calendar entry's ``name``) become
  ``"[redacted]"`` wherever they appear in fenced data;
* query rows (``rows`` of ``run_sql`` and ``query_kpis``) keep numbers, dates and the values
  known to be safe (store, region and market ids, carriers, statuses, the KPI vocabulary);
  any other string becomes ``"[redacted]"``, so an alias (``SELECT driver_id AS d``) cannot
  smuggle an id out. The full rows stay in the run's local evidence.

Instructions, the question and the model's own words are not data and are sent as written.
"""

from __future__ import annotations

import re
from typing import Any

from agent.untrusted import fence, fenced_values
from tools.analytics.scope import load_catalog
from tools.data.backend import DuckDBBackend
from tools.data.schema import CALENDAR_KINDS, CARRIERS, STATUSES
from tools.data.views import STORE_DAY_COLUMNS

REDACTED = "[redacted]"
SENSITIVE_KEYS = frozenset({"driver_id", "zone_id", "driver_note", "failure_reason", "name"})
"""Keys whose values never leave the machine (ids of people and places, free text)."""
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
_FENCE = re.compile(r"<data>.*?</data>", re.S)


class Redactor:
    """Redacts fenced data in request payloads; ``safe`` strings may pass in query rows."""

    def __init__(self, safe: set[str]):
        self.safe = frozenset(safe)

    @classmethod
    def for_db(cls, db: str) -> Redactor:
        """Build the redactor of a database: its store, region and market ids are safe."""
        catalog = load_catalog(DuckDBBackend(db))
        stores = catalog.stores
        safe = {str(s) for s in stores.store_id} | {str(r) for r in catalog.regions}
        if "market" in stores:
            safe |= {str(m) for m in stores.market.dropna()}
        safe |= set(CARRIERS) | set(STATUSES) | set(CALENDAR_KINDS) | set(STORE_DAY_COLUMNS)
        return cls(safe)

    def value(self, obj: Any, key: str | None = None, in_rows: bool = False) -> Any:
        """Return ``obj`` with sensitive fields and unknown row strings redacted."""
        if key in SENSITIVE_KEYS and obj is not None:
            return REDACTED
        if isinstance(obj, dict):
            return {k: self.value(v, k, in_rows) for k, v in obj.items()}
        if isinstance(obj, list):
            rows = in_rows or key == "rows"
            return [self.value(v, None, rows) for v in obj]
        if in_rows and isinstance(obj, str) and obj not in self.safe and not _DATE.match(obj):
            return REDACTED
        return obj

    def text(self, content: str) -> str:
        """Return ``content`` with every fenced value in it redacted."""

        def one(match: re.Match[str]) -> str:
            values = fenced_values(match.group(0))
            return fence(self.value(values[0])) if values else match.group(0)

        return _FENCE.sub(one, content)

    def payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Redact an OpenAI chat-completions request body (its messages' contents)."""
        for message in payload.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                message["content"] = self.text(content)
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        part["text"] = self.text(part["text"])
        return payload
