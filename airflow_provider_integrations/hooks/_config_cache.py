"""Parsed connection configs cached per process: one lookup per connection, not one per request or poll."""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ConfigCache(Generic[T]):
    """``conn_id -> parsed config`` with a TTL (``[integrations] connection_cache_ttl``, default 300 s).

    ``lookups`` counts real connection lookups, which tests and benchmarks assert on.

    :meth:`aget` is single-flight per event loop: a triggerer starts thousands of triggers of one
    connection before the first lookup returns, and they all wait for that one lookup instead of each
    asking the supervisor. A failed lookup is not cached, so the next caller tries again.
    """

    def __init__(self, ttl: Callable[[], float]) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()
        self._inflight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[T]]] = (
            weakref.WeakKeyDictionary()
        )
        self.lookups: dict[str, int] = {}

    def _fresh(self, conn_id: str) -> T | None:
        entry = self._entries.get(conn_id)  # a single dict read is atomic: no lock on the hot path
        if entry is not None and time.monotonic() < entry[0]:
            return entry[1]
        return None

    def _store(self, conn_id: str, value: T) -> T:
        with self._lock:
            self._entries[conn_id] = (time.monotonic() + self._ttl(), value)
            self.lookups[conn_id] = self.lookups.get(conn_id, 0) + 1
        return value

    def get(self, conn_id: str, load: Callable[[], T]) -> T:
        cached = self._fresh(conn_id)
        return cached if cached is not None else self._store(conn_id, load())

    async def aget(self, conn_id: str, load: Callable[[], Awaitable[T]]) -> T:
        entry = self._entries.get(conn_id)  # inlined _fresh: called once per request
        if entry is not None and time.monotonic() < entry[0]:
            return entry[1]
        loop = asyncio.get_running_loop()
        inflight = self._inflight.get(loop)
        if inflight is None:
            inflight = self._inflight[loop] = {}
        task = inflight.get(conn_id)
        if task is None:
            task = inflight[conn_id] = loop.create_task(self._aload(conn_id, load))
            task.add_done_callback(lambda t: _settle(inflight, conn_id, t))
        # shield: a caller cancelled while waiting must not cancel the lookup the others wait for.
        return await asyncio.shield(task)

    async def _aload(self, conn_id: str, load: Callable[[], Awaitable[T]]) -> T:
        return self._store(conn_id, await load())

    def invalidate(self, conn_id: str | None = None) -> None:
        """Forget one connection (after rotating its credentials) or all of them."""
        with self._lock:
            if conn_id is None:
                self._entries.clear()
            else:
                self._entries.pop(conn_id, None)


def _settle(inflight: dict[str, asyncio.Task[T]], conn_id: str, task: asyncio.Task[T]) -> None:
    if inflight.get(conn_id) is task:
        del inflight[conn_id]
    if not task.cancelled():
        task.exception()  # retrieved: when every waiter was cancelled, asyncio must not warn about it
