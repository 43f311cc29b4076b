"""Small pieces every benchmark uses (imported as ``_common``: the scripts run from this folder, and
pytest puts it on ``sys.path`` for the guard tests)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any


async def run_concurrently(n: int, concurrency: int, call: Callable[[], Awaitable[Any]]) -> None:
    """``n`` calls, at most ``concurrency`` at a time, by workers that each take the next one."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def rss_bytes() -> int:
    """Resident set size of this process, read from /proc (cheap enough to sample every 50 ms)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
