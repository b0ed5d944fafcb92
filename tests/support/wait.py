"""Waiting for a condition without fixed sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def eventually(predicate: Callable[[], Any], timeout: float = 5.0,
                     interval: float = 0.02) -> Any:
    """Wait until ``predicate()`` is truthy (awaiting it if needed); return its value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        await asyncio.sleep(interval)
