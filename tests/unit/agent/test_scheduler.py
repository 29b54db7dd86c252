"""Tests of agent.scheduler with a fake clock: no real sleeping, no timed assertions."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from agent.scheduler import Clock, SystemClock, next_fire, run_schedule
from tests.aio import run_async


class FakeClock:
    """A clock whose sleep(s) advances now by s, plus an optional one-off jump."""

    def __init__(self, start: datetime) -> None:
        self.current = start.astimezone(UTC)
        self.naps: list[float] = []
        self.jump = timedelta(0)  # added once, on the next sleep

    def now(self) -> datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.naps.append(seconds)
        self.current += timedelta(seconds=seconds) + self.jump
        self.jump = timedelta(0)


class BlockingClock(FakeClock):
    """A clock whose sleep never returns on its own."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


def _run(
    expr: str,
    tz: str,
    start: datetime,
    fires: int,
    *,
    clock: FakeClock | None = None,
    max_nap_s: float = 60.0,
    fail_on: frozenset[int] = frozenset(),
) -> list[tuple[date, datetime]]:
    """Run the schedule until `fires` calls; return (date given, local now) of each call."""
    clock = clock or FakeClock(start)
    calls: list[tuple[date, datetime]] = []

    async def main() -> None:
        stop = asyncio.Event()

        async def job(day: date) -> None:
            calls.append((day, clock.now().astimezone(ZoneInfo(tz))))
            if len(calls) >= fires:
                stop.set()
            if len(calls) in fail_on:
                raise RuntimeError("job failed")

        await run_schedule(expr, tz, job, clock=clock, stop=stop, max_nap_s=max_nap_s)

    run_async(main())
    return calls


def _local(tz: str, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz))


def _assert_daily(calls: list[tuple[date, datetime]], first: date, last: date, at: time) -> None:
    days = [day for day, _ in calls]
    expected = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    assert days == expected  # consecutive, none missing or repeated
    for day, local in calls:
        assert local.date() == day
        assert local.time() == at


def test_system_clock_is_a_clock() -> None:
    clock: Clock = SystemClock()
    assert clock.now().tzinfo is UTC


@pytest.mark.parametrize(
    ("tz", "first", "last"),
    [
        ("Europe/Paris", date(2026, 3, 25), date(2026, 4, 2)),  # spring forward 03-29
        ("Europe/Paris", date(2026, 10, 21), date(2026, 10, 29)),  # fall back 10-25
        ("America/New_York", date(2026, 3, 4), date(2026, 3, 12)),  # spring forward 03-08
        ("America/New_York", date(2026, 10, 28), date(2026, 11, 5)),  # fall back 11-01
    ],
)
def test_daily_7am_across_dst_changes(tz: str, first: date, last: date) -> None:
    start = _local(tz, first.year, first.month, first.day, 0, 0)
    calls = _run("0 7 * * *", tz, start, fires=(last - first).days + 1)
    _assert_daily(calls, first, last, time(7, 0))
    assert len({local.utcoffset() for _, local in calls}) == 2  # the change is in the window


def test_0230_on_the_spring_forward_day_fires_once_at_0300() -> None:
    tz = "Europe/Paris"
    calls = _run("30 2 * * *", tz, _local(tz, 2026, 3, 27, 12, 0), fires=4, max_nap_s=3600)
    assert [day for day, _ in calls] == [date(2026, 3, d) for d in (28, 29, 30, 31)]
    assert [local.time() for _, local in calls] == [
        time(2, 30),
        time(3, 0),  # 02:30 does not exist on 03-29
        time(2, 30),
        time(2, 30),
    ]


def test_0230_on_the_fall_back_day_fires_once() -> None:
    tz = "Europe/Paris"
    calls = _run("30 2 * * *", tz, _local(tz, 2026, 10, 23, 12, 0), fires=4, max_nap_s=3600)
    _assert_daily(calls, date(2026, 10, 24), date(2026, 10, 27), time(2, 30))
    fall_back = calls[1][1]
    assert fall_back.utcoffset() == timedelta(hours=2)  # the first of the two 02:30s


def test_next_fire_is_strictly_after() -> None:
    tz = "Europe/Paris"
    seven = _local(tz, 2026, 5, 4, 7, 0)
    assert next_fire("0 7 * * *", tz, seven) == _local(tz, 2026, 5, 5, 7, 0)
    assert next_fire("0 7 * * *", tz, seven - timedelta(seconds=1)) == seven
    assert next_fire("0 7 * * *", tz, seven.astimezone(UTC)).tzinfo == ZoneInfo(tz)
    # 02:10 of the repeated hour (after the first 02:30 already fired): not 02:30 again
    second_0210 = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)
    assert next_fire("30 2 * * *", tz, second_0210) == _local(tz, 2026, 10, 26, 2, 30)
    with pytest.raises(ValueError, match="aware"):
        next_fire("0 7 * * *", tz, datetime(2026, 5, 4))


def test_a_three_day_jump_fires_once_for_the_latest_slot(caplog: pytest.LogCaptureFixture) -> None:
    tz = "Europe/Paris"
    clock = FakeClock(_local(tz, 2026, 5, 1, 6, 0))
    clock.jump = timedelta(days=3)
    with caplog.at_level(logging.WARNING, logger="agent.scheduler"):
        calls = _run("0 7 * * *", tz, clock.now(), fires=2, clock=clock)
    assert [day for day, _ in calls] == [date(2026, 5, 3), date(2026, 5, 4)]
    assert calls[0][1] == _local(tz, 2026, 5, 4, 6, 1)  # on wake, late
    assert calls[1][1] == _local(tz, 2026, 5, 4, 7, 0)  # then the next day's, on time
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 slot(s) missed" in warnings[0].getMessage()


def test_a_failing_job_does_not_stop_later_fires(caplog: pytest.LogCaptureFixture) -> None:
    tz = "UTC"
    with caplog.at_level(logging.ERROR, logger="agent.scheduler"):
        calls = _run(
            "0 7 * * *",
            tz,
            _local(tz, 2026, 5, 1, 0, 0),
            fires=3,
            fail_on=frozenset({1, 2}),
            max_nap_s=3600,
        )
    _assert_daily(calls, date(2026, 5, 1), date(2026, 5, 3), time(7, 0))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in errors)


def test_stop_already_set_returns_without_firing() -> None:
    calls: list[date] = []

    async def job(day: date) -> None:
        calls.append(day)

    async def main() -> None:
        stop = asyncio.Event()
        stop.set()
        clock = FakeClock(datetime(2026, 5, 1, 6, 59, 59, tzinfo=UTC))
        await run_schedule("* * * * *", "UTC", job, clock=clock, stop=stop)

    run_async(main())
    assert calls == []


def test_stop_interrupts_a_nap() -> None:
    calls: list[date] = []

    async def job(day: date) -> None:
        calls.append(day)

    async def main() -> None:
        stop = asyncio.Event()
        clock = BlockingClock(datetime(2026, 5, 1, 6, 0, tzinfo=UTC))
        loop = asyncio.create_task(run_schedule("0 7 * * *", "UTC", job, clock=clock, stop=stop))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not loop.done()  # napping
        stop.set()
        await loop

    run_async(main())
    assert calls == []
