"""Run a coroutine to its end from a test, whatever event loop the test's thread holds."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Return ``asyncio.run(coroutine)``, run in a thread of its own.

    The session's Playwright browser (``tests/browser.py``) keeps an event loop in the main
    thread, where ``asyncio.run`` refuses to start another.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
