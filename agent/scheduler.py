"""In-process cron schedule of ``serve``'s morning triage, in an IANA time zone.

Cron expressions are read by :mod:`cronsim`, which follows Debian cron's daylight-saving
rules: a time skipped by the spring-forward change fires right after the change, a time
repeated by the autumn change fires once. :func:`run_schedule` sleeps in short naps and
re-reads the wall clock after each (``asyncio.sleep`` is monotonic and does not see clock
jumps or a suspended machine), so a late wake fires once, for the latest missed slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from cronsim import CronSim

logger = logging.getLogger(__name__)


class Clock(Protocol):
    """Wall clock and sleep of :func:`run_schedule` (a fake one in tests)."""

    def now(self) -> datetime:
        """Return the current time, an aware datetime (UTC)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` seconds (>= 0)."""
        ...


class SystemClock:
    """The real clock: ``datetime.now(UTC)`` and ``asyncio.sleep``."""

    def now(self) -> datetime:
        """Return the current time, an aware datetime in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` seconds on the event loop's monotonic clock."""
        await asyncio.sleep(seconds)


def next_fire(expr: str, tz: str, after: datetime) -> datetime:
    """Return the first fire time strictly after `after`, aware, in zone `tz`.

    Args:
        expr: Five-field cron expression, e.g. ``"0 7 * * *"``, read in zone ``tz``.
        tz: IANA time zone name, e.g. ``"Europe/Paris"``.
        after: Aware datetime, in any zone.

    Returns:
        The next fire time, an aware datetime in ``tz``, later than ``after`` as an instant.

    Raises:
        ValueError: If ``after`` is naive or ``expr`` is not a cron expression.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"next_fire needs an aware datetime, got {after!r}")
    instant = after.astimezone(UTC)
    # compared in UTC: same-zone comparisons ignore `fold`, so a repeated hour would look earlier
    for fire in CronSim(expr, after.astimezone(ZoneInfo(tz))):
        if fire.astimezone(UTC) > instant:
            return fire
    raise ValueError(f"cron expression {expr!r} never fires")  # pragma: no cover


async def _nap(clock: Clock, seconds: float, stop: asyncio.Event) -> None:
    """Sleep ``seconds`` seconds on ``clock``, or less if ``stop`` gets set meanwhile."""
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, waiter):
            task.cancel()
        await asyncio.gather(sleeper, waiter, return_exceptions=True)


async def run_schedule(
    expr: str,
    tz: str,
    job: Callable[[date], Awaitable[None]],
    *,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    max_nap_s: float = 60.0,
) -> None:
    """Call `job(local_date_of_the_fire)` at each fire time until `stop` is set.

    The job is awaited before the next fire time is computed (no overlap); one that raises is
    logged and the schedule goes on (alerting is the job's business). Waking late (a clock
    jump, a suspended machine) fires once, for the latest missed slot, with a warning.

    Args:
        expr: Five-field cron expression, e.g. ``"0 7 * * *"``, read in zone ``tz``.
        tz: IANA time zone name, e.g. ``"Europe/Paris"``.
        job: Coroutine function given the local date (in ``tz``) of the slot it runs for.
        clock: Wall clock and sleep; :class:`SystemClock` when None.
        stop: Event ending the loop when set (checked between naps, and interrupting them);
            None runs until cancelled.
        max_nap_s: Longest single sleep, in seconds, between two reads of ``clock.now()``.
    """
    clock = clock or SystemClock()
    stop = stop or asyncio.Event()
    zone = ZoneInfo(tz)
    due = next_fire(expr, tz, clock.now()).astimezone(UTC)
    while not stop.is_set():
        now = clock.now()
        if now < due:
            await _nap(clock, min(max_nap_s, (due - now).total_seconds()), stop)
            continue
        slot, missed = due, 0
        while (later := next_fire(expr, tz, slot).astimezone(UTC)) <= now:
            slot, missed = later, missed + 1
        if missed:
            logger.warning(
                "schedule %r (%s): woke at %s, %d slot(s) missed since %s; firing once for %s",
                expr, tz, now.isoformat(), missed, due.astimezone(zone).isoformat(),
                slot.astimezone(zone).isoformat(),
            )  # fmt: skip
        local_date = slot.astimezone(zone).date()
        try:
            await job(local_date)
        except Exception:
            logger.exception("scheduled job of %s (schedule %r, %s) failed", local_date, expr, tz)
        due = next_fire(expr, tz, clock.now()).astimezone(UTC)
