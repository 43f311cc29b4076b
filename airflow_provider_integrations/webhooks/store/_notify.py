"""Wake-ups from LISTEN/NOTIFY: one subscription per database, channel and event loop, for all waiters.

The subscription rides on the package's shared LISTEN connection (``postgres.listen``). Whenever a
notification may have been missed (the connection was re-established, or the subscription's queue
overflowed) every waiter is woken to re-read the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Final

from airflow_provider_integrations.postgres import PgConfig, Subscription, listener_for
from airflow_provider_integrations.webhooks.store.waiting import Waiters

QUEUE_SIZE: Final = 10_000


class NotifyFeed:
    def __init__(self, config: PgConfig, channel: str) -> None:
        self.config = config
        self.channel = channel
        self._waiters = Waiters()
        self._lock = asyncio.Lock()
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @contextlib.asynccontextmanager
    async def watch(self, callback_id: str) -> AsyncIterator[asyncio.Event]:
        try:
            with self._waiters.watch(callback_id) as event:
                await self._ensure_subscribed()
                yield event
        finally:
            if not self._waiters:
                await self._release()

    async def _ensure_subscribed(self) -> None:
        async with self._lock:
            if self._sub is not None:
                return
            listener = listener_for(self.config)
            listener.add_reconnect_hook(self._on_reconnect)
            try:
                self._sub = await listener.subscribe(self.channel, maxsize=QUEUE_SIZE)
            except BaseException:
                listener.remove_reconnect_hook(self._on_reconnect)
                raise
            self._task = asyncio.get_running_loop().create_task(
                self._consume(self._sub), name=f"webhook-notify-{self.channel}"
            )

    async def _release(self) -> None:
        async with self._lock:
            if self._waiters or self._sub is None:
                return
            sub, task = self._sub, self._task
            self._sub = self._task = None
            listener_for(self.config).remove_reconnect_hook(self._on_reconnect)
            await sub.close()
            if task is not None:
                await task

    async def _consume(self, sub: Subscription) -> None:
        dropped = 0
        try:
            async for note in sub:
                if sub.dropped != dropped:
                    dropped = sub.dropped
                    self._waiters.wake_all()
                else:
                    for callback_id in note.payload.split():  # one notification per committed batch
                        self._waiters.wake(callback_id)
        finally:
            # The subscription ended (the listener was closed): the next waiter must subscribe afresh,
            # and nobody would wake the current ones any more.
            if self._sub is sub:
                self._sub = self._task = None
            self._waiters.wake_all()

    async def _on_reconnect(self, channels: frozenset[str]) -> None:
        self._waiters.wake_all()


_feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[PgConfig, str], NotifyFeed]] = (
    weakref.WeakKeyDictionary()
)


def notify_feed(config: PgConfig, channel: str) -> NotifyFeed:
    """The feed of ``channel`` on ``config``'s database for the running loop (created on first use)."""
    feeds = _feeds.setdefault(asyncio.get_running_loop(), {})
    feed = feeds.get((config, channel))
    if feed is None:
        feed = feeds[(config, channel)] = NotifyFeed(config, channel)
    return feed
