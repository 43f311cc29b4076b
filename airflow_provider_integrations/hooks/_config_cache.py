"""Parsed connection configs cached per process: one lookup per connection, not one per request or poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ConfigCache(Generic[T]):
    """``conn_id -> parsed config`` with a TTL (``[integrations] connection_cache_ttl``, default 300 s).

    ``lookups`` counts real connection lookups, which tests and benchmarks assert on.
    """

    def __init__(self, ttl: Callable[[], float]) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()
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
        return self._store(conn_id, await load())

    def invalidate(self, conn_id: str | None = None) -> None:
        """Forget one connection (after rotating its credentials) or all of them."""
        with self._lock:
            if conn_id is None:
                self._entries.clear()
            else:
                self._entries.pop(conn_id, None)
