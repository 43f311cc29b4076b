"""Waiting for a delivery: many waiters, one feed that wakes them.

A feed wakes the waiters of a callback id when something may have changed for it: a NOTIFY on the shared
LISTEN connection (PostgreSQL), or one batched query per poll interval for every waiting id (SQLite).
A woken waiter re-reads the store, so a lost or spurious wake-up costs a query, never a delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Protocol

from airflow_provider_integrations.webhooks.errors import CallbackExpiredError, CallbackNotFoundError

if TYPE_CHECKING:
    from airflow_provider_integrations.webhooks.store.base import CallbackState, Delivery

log = logging.getLogger(__name__)


class Waiters:
    """The wake-up events of the waiting callers, by callback id."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def watch(self, callback_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._events.setdefault(callback_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._events.get(callback_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._events[callback_id]

    def wake(self, callback_id: str) -> None:
        for event in self._events.get(callback_id, ()):
            event.set()

    def wake_all(self) -> None:
        for events in self._events.values():
            for event in events:
                event.set()

    def ids(self) -> list[str]:
        return list(self._events)

    def __len__(self) -> int:
        return len(self._events)


class WaitFeed(Protocol):
    def watch(self, callback_id: str) -> contextlib.AbstractAsyncContextManager[asyncio.Event]:
        """Register a waiter; on entry the feed is live, so any change after entry wakes it."""
        ...


class PollingFeed:
    """One task that asks the store which waiting ids have a delivery, every ``interval`` seconds.

    However many callers wait, the store sees one query per interval.
    """

    def __init__(self, ready: Callable[[list[str]], Awaitable[set[str]]], interval: float) -> None:
        self.interval = interval
        self._ready = ready
        self._waiters = Waiters()
        self._task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def watch(self, callback_id: str) -> AsyncIterator[asyncio.Event]:
        with self._waiters.watch(callback_id) as event:
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-store-poller")
            yield event

    async def _run(self) -> None:
        while self._waiters:
            await asyncio.sleep(self.interval)
            ids = self._waiters.ids()
            if not ids:
                break
            try:
                ready = await self._ready(ids)
            except Exception as exc:  # a busy or briefly unreadable file: try again next interval
                log.warning("polling the callback store failed: %s", exc)
                continue
            for callback_id in ready:
                self._waiters.wake(callback_id)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._waiters.wake_all()


async def wait_for_delivery(
    feed: WaitFeed,
    load: Callable[[str], Awaitable[CallbackState | None]],
    callback_id: str,
    timeout: float | None,
) -> Delivery | None:
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    async with feed.watch(callback_id) as event:
        # The feed is live before the first read: a delivery committed before it is seen by the read,
        # one committed after it wakes the event. That closes the "callback before the waiter" race.
        while True:
            state = await load(callback_id)
            if state is None:
                raise CallbackNotFoundError(f"callback {callback_id} is not registered (or was cleaned up)")
            if state.delivery is not None:
                return state.delivery
            until_expiry = (state.expires_at - datetime.now(timezone.utc)).total_seconds()
            if until_expiry <= 0:
                raise CallbackExpiredError(
                    f"callback {callback_id} expired at {state.expires_at.isoformat()} without a delivery"
                )
            remaining = until_expiry if deadline is None else min(until_expiry, deadline - loop.time())
            if deadline is not None and deadline - loop.time() <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), max(remaining, 0.001))
            event.clear()
