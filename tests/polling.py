"""Bounded polling for tests: wait for a condition instead of sleeping a guessed time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(check: Callable[[], object], timeout: float = 10.0, every: float = 0.02):
    """Poll a sync or async `check` until it returns something truthy; fail after `timeout` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)
