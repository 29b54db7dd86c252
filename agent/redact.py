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
Redaction keeps accidents from leaking data; it does not stop a model that sets out to
smuggle a value through numbers (``ascii(driver_id[1])``): such a model is not one to send
data to at all.
"""

from __future__ import annotations

import re
from typing import Any

from agent.untrusted import fence, fenced_values
from tools.analytics.scope import load_catalog
from tools.data.backend import Backend
from tools.data.schema import CALENDAR_KINDS, CARRIERS, STATUSES
from tools.data.views import STORE_DAY_COLUMNS

REDACTED = "[redacted]"
SENSITIVE_KEYS = frozenset({"driver_id", "zone_id", "driver_note", "failure_reason", "name"})
"""Keys whose values never leave the machine (ids of people and places, free text)."""
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
_FENCE = re.compile(r"<data>.*?</data>", re.S)
MESSAGE_KEYS = frozenset({"error", "notes"})
"""Keys of messages code wrote around data (tool errors, run notes): quoted values in them
are redacted, the words kept."""
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")


class Redactor:
    """Redacts fenced data in request payloads; ``safe`` strings may pass in query rows."""

    def __init__(self, safe: set[str]):
        self.safe = frozenset(safe)

    @classmethod
    def for_backend(cls, backend: Backend) -> Redactor:
        """Build the redactor of a backend's data: its store, region and market ids are safe."""
        catalog = load_catalog(backend)
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
        if key in MESSAGE_KEYS:  # an error can quote a value it could not read
            key = "message"
        if isinstance(obj, dict):
            return {k: self.value(v, k, in_rows) for k, v in obj.items()}
        if isinstance(obj, list):
            rows = in_rows or key == "rows"
            inner = "message" if key == "message" else None
            return [self.value(v, inner, rows) for v in obj]
        if in_rows and isinstance(obj, str) and obj not in self.safe and not _DATE.match(obj):
            return REDACTED
        if key == "message" and isinstance(obj, str):
            return _QUOTED.sub(self._quoted, obj)
        return obj

    def _quoted(self, m: re.Match[str]) -> str:
        inner = m.group(1) if m.group(1) is not None else m.group(2)
        return m.group(0) if inner in self.safe else f"'{REDACTED}'"

    def text(self, content: str) -> str:
        """Return ``content`` with every fenced value in it redacted."""

        def one(match: re.Match[str]) -> str:
            values = fenced_values(match.group(0))
            return fence(self.value(values[0])) if values else match.group(0)

        return _FENCE.sub(one, content)

    def payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Redact an OpenAI request body: chat completions' messages, or Responses' input.

        Raises:
            ValueError: a body with neither (a request shape this redactor cannot see into
                must not leave unredacted).
        """
        if "messages" not in payload and "input" not in payload:
            raise ValueError("cannot redact a model request without messages or input")
        for message in [*payload.get("messages", []), *_items(payload.get("input"))]:
            content = message.get("content")
            if isinstance(content, str):
                message["content"] = self.text(content)
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        part["text"] = self.text(part["text"])
            if isinstance(message.get("output"), str):  # a Responses tool result
                message["output"] = self.text(message["output"])
        return payload


def _items(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        raise ValueError("cannot redact a model request whose input is a bare string")
    return [v for v in value or [] if isinstance(v, dict)]
