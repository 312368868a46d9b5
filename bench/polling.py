"""Bounded polling: wait for a condition instead of sleeping a guessed time.

One helper for the benchmark and the tests (the tests import it from here; bench never imports
from tests). Both forms poll `check` until it returns something truthy and return that, or raise
NotWithin (an AssertionError, so a test reports it as a failed expectation) after `timeout`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class NotWithin(AssertionError):
    """The condition was not met before the deadline."""


def _fail(what: str, timeout: float) -> NotWithin:
    return NotWithin(f"{what} not met within {timeout:g}s")


async def eventually(
    check: Callable[[], object],
    timeout: float = 10.0,
    every: float = 0.02,
    what: str = "condition",
):
    """Poll a sync or async `check` from a coroutine."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise _fail(what, timeout)
        await asyncio.sleep(every)


def wait_until(
    check: Callable[[], object], timeout: float, what: str = "condition", every: float = 0.05
):
    """Poll a sync `check`, blocking (for code that runs outside an event loop)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise _fail(what, timeout)
        time.sleep(every)
