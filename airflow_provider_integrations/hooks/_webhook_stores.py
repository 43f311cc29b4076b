"""One open callback store (or event log) per store and event loop, shared by every lease.

A triggerer runs a thousand waiting callbacks on one loop: they must share one store, hence one SQLite
reader thread and poller, or one PostgreSQL pool and LISTEN connection, and one ``CREATE TABLE IF NOT
EXISTS`` at open instead of a thousand. The store opens with the first lease and closes with the last,
so a loop that ends (``dag.test()`` runs each trigger in its own ``asyncio.run``) leaves nothing open.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from airflow_provider_integrations.webhooks.store.base import StoreBase

__all__ = ["lease_store", "open_stores"]


S = TypeVar("S", bound=StoreBase)


class _Shared(Generic[S]):
    def __init__(self, store: S) -> None:
        self.store = store
        self.leases = 0
        self.opening: asyncio.Task[None] | None = None


_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Shared[Any]]] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def lease_store(key: Hashable, make: Callable[[], S]) -> AsyncIterator[S]:
    """The open store registered under ``key`` on the running loop; ``make`` builds it on first use.

    A failed open is raised to every caller waiting for it and forgotten, so the next lease tries again.
    """
    loop = asyncio.get_running_loop()
    stores = _shared.setdefault(loop, {})
    entry: _Shared[S] | None = stores.get(key)
    if entry is None:
        entry = stores[key] = _Shared(make())
        entry.opening = loop.create_task(entry.store.open(), name="webhook-store-open")
    entry.leases += 1
    try:
        assert entry.opening is not None
        try:
            # shield: a leaser cancelled while the store opens must not cancel the open others await.
            await asyncio.shield(entry.opening)
        except BaseException:
            if entry.opening.done() and stores.get(key) is entry:
                del stores[key]
            raise
        yield entry.store
    finally:
        entry.leases -= 1
        if entry.leases == 0:
            await _close(stores, key, entry)


async def _close(stores: dict[Hashable, _Shared[Any]], key: Hashable, entry: _Shared[Any]) -> None:
    # Unregistered before closing: a lease taken meanwhile gets a fresh store, never a closing one.
    if stores.get(key) is entry:
        del stores[key]
    opening = entry.opening
    if opening is not None:
        if not opening.done():
            opening.cancel()
        await asyncio.gather(opening, return_exceptions=True)  # its outcome was raised to the leasers
    await entry.store.close()


def open_stores() -> int:
    """How many stores are open on the running loop (tests and benchmarks assert on it)."""
    return len(_shared.get(asyncio.get_running_loop(), {}))
