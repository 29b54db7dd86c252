"""Deliver approved actions from the outbox to the user's system, until it acknowledges.

Two transports: a webhook (``LASTMILE_DISPATCH_URL=https://...``: one ``POST`` of JSON per
action, with an ``Idempotency-Key`` header the receiver uses to drop a repeat; any 2xx is the
acknowledgement) and a local sink (a JSON Lines file: the default, beside the state file, for
the CLI and tests). A failed delivery stays in the outbox and is retried with exponential
backoff by the next :func:`deliver_due` (the web server runs it in the background; the CLI
after each approval and with ``lastmile actions deliver``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy import Engine

from agent.storage.approvals import DispatchedAction, claim, due_keys, settle

logger = logging.getLogger(__name__)

LEASE_S = 120.0
"""How long a deliverer holds an action: longer than a webhook call can take (its timeout is
:data:`WEBHOOK_TIMEOUT_S`), so a second deliverer never sends it while the first still may."""
WEBHOOK_TIMEOUT_S = 15.0
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 3600.0
"""Retry delays double from 30 s and stop growing at an hour: a receiver down for a night is
tried about once an hour, and a blip costs half a minute."""


class DeliveryError(RuntimeError):
    """The receiver did not acknowledge the action (it is retried later)."""


class Transport(Protocol):
    """Where approved actions go."""

    name: str

    def send(self, payload: dict[str, Any], key: str) -> None:
        """Deliver one action; raise :class:`DeliveryError` unless acknowledged."""


@dataclass
class WebhookTransport:
    """``POST`` each action as JSON to a URL, with an ``Idempotency-Key`` header."""

    url: str
    token: str | None = None
    timeout_s: float = WEBHOOK_TIMEOUT_S
    name: str = "webhook"

    def send(self, payload: dict[str, Any], key: str) -> None:
        """POST the action; a 2xx answer acknowledges it."""
        headers = {"Idempotency-Key": key, "User-Agent": "lastmile-agent"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = httpx.post(self.url, json=payload, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        if not response.is_success:
            raise DeliveryError(f"the webhook answered HTTP {response.status_code}")


_file_lock = threading.Lock()


@dataclass
class FileSink:
    """Append each action as one JSON line to a local file, once per idempotency key."""

    path: Path
    name: str = "file"

    def send(self, payload: dict[str, Any], key: str) -> None:
        """Append the action unless its key is in the file already."""
        try:
            with _file_lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self.path.exists() and key in self.keys():
                    return
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"idempotency_key": key, **payload}) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
        except OSError as exc:
            raise DeliveryError(f"cannot write {self.path}: {exc.strerror}") from None

    def keys(self) -> set[str]:
        """Return the idempotency keys the file holds."""
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return {json.loads(line)["idempotency_key"] for line in lines if line.strip()}


def transport_for(url: str | None, token: str | None, state_dir: Path) -> Transport:
    """Return the transport a ``dispatch_url`` setting names (default: a file sink)."""
    if url is None:
        return FileSink(state_dir / "dispatched_actions.jsonl")
    if url.startswith(("http://", "https://")):
        return WebhookTransport(url, token)
    return FileSink(Path(url.removeprefix("file://")))


def backoff(attempts: int) -> timedelta:
    """Return the wait before retry number ``attempts`` (1: the first retry)."""
    return timedelta(seconds=min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(attempts - 1, 0)))


@dataclass
class DeliveryReport:
    """What one pass over the outbox did."""

    delivered: list[str]
    failed: dict[str, str]


def deliver_due(
    engine: Engine, transport: Transport, now: datetime | None = None
) -> DeliveryReport:
    """Send every action due for delivery once; record acknowledgements and failures.

    Each action is leased just before its own send (a batch lease would run out while
    earlier sends wait on a slow receiver), and only the lease holder records the outcome.
    """
    report = DeliveryReport([], {})
    for key in due_keys(engine, _stamp(now or datetime.now(UTC))):
        start = now or datetime.now(UTC)
        token = uuid.uuid4().hex
        lease = _stamp(start + timedelta(seconds=LEASE_S))
        action = claim(engine, key, _stamp(start), lease, token)
        if action is None:
            continue  # another deliverer took it
        idem = action.idempotency_key or f"lastmile:{action.run_id}:{action.idx}"
        try:
            transport.send(_payload(action), idem)
        except Exception as exc:  # anything but an acknowledgement is retried later
            problem = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}"
            retry = _stamp(start + backoff(action.attempts + 1))
            settle(engine, action, token, delivered_at=None, error=problem, next_attempt_at=retry)
            report.failed[idem] = problem
            logger.warning("delivery of %s to the %s failed: %s", idem, transport.name, problem)
            continue
        settle(engine, action, token, delivered_at=_stamp(datetime.now(UTC)))
        report.delivered.append(idem)
    return report


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def _payload(action: DispatchedAction) -> dict[str, Any]:
    data = action.model_dump(
        mode="json",
        exclude={"delivery_status", "attempts", "next_attempt_at", "last_error", "delivered_at"},
    )
    return data
