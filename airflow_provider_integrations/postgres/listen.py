"""LISTEN/NOTIFY over one connection per :class:`PgConfig` and event loop, shared by every subscriber.

PostgreSQL delivers a notification to every session listening on its channel, so N sensors watching one
channel need one session, not N. The connection opens with the first subscription and closes with the
last. When it drops, the listener reconnects with backoff, LISTENs again and calls its reconnect hooks
with the channels, so callers can query for whatever was notified while nobody was listening
(NOTIFY is not queued for absent listeners).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_integrations.postgres.config import PgConfig
from airflow_provider_integrations.postgres.connect import open_connection
from airflow_provider_integrations.postgres.errors import PgError, translate

log = logging.getLogger(__name__)
ReconnectHook = Callable[[frozenset[str]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Notification:
    channel: str
    payload: str
    pid: int  # the notifying backend


class Subscription:
    """An async iterator of one channel's notifications; ends when closed.

    At most ``maxsize`` notifications wait here: a consumer that falls further behind loses the oldest,
    counted in ``dropped`` (then re-read the source of truth, as after a reconnect).
    """

    def __init__(self, listener: Listener, channel: str, maxsize: int) -> None:
        self.channel = channel
        self.maxsize = maxsize
        self.dropped = 0
        self._listener = listener
        # A deque and one waiter rather than an asyncio.Queue: delivery is the hot path (a busy channel
        # delivers hundreds of thousands per second) and a Queue costs a future dance per item.
        self._items: collections.deque[Notification] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def _deliver(self, note: Notification) -> None:
        if len(self._items) >= self.maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append(note)
        self._wake()

    def _finish(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def drain_nowait(self) -> list[Notification]:
        """Take every notification already here without waiting (batch consumers)."""
        items = list(self._items)
        self._items.clear()
        return items

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Notification:
        items = self._items
        while not items:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return items.popleft()

    async def close(self) -> None:
        """Stop receiving; the channel is UNLISTENed when its last subscriber leaves."""
        if not self._closed:
            self._finish()
            await self._listener._unsubscribe(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Listener:
    """The shared LISTEN connection of one config on one loop; get it with :func:`listener_for`."""

    def __init__(self, config: PgConfig, *, queue_size: int = 1000, max_backoff: float = 10.0) -> None:
        self.config = config
        self.queue_size = queue_size
        self.max_backoff = max_backoff
        self.reconnects = 0
        self._subs: dict[str, list[Subscription]] = {}
        self._hooks: list[ReconnectHook] = []
        self._conn: Any = None
        self._lock = asyncio.Lock()  # connect, LISTEN and UNLISTEN one at a time
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def application_name(self) -> str:
        """How the connection shows in ``pg_stat_activity``."""
        return f"{self.config.application_name}:listen"

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(self._subs)

    def add_reconnect_hook(self, hook: ReconnectHook) -> None:
        """``await hook(channels)`` after every reconnect, once the channels are listened to again."""
        self._hooks.append(hook)

    def remove_reconnect_hook(self, hook: ReconnectHook) -> None:
        with contextlib.suppress(ValueError):
            self._hooks.remove(hook)

    async def subscribe(self, channel: str, *, maxsize: int | None = None) -> Subscription:
        """Start receiving ``channel``'s notifications (connecting now if no one listens yet)."""
        sub = Subscription(self, channel, maxsize or self.queue_size)
        async with self._lock:
            if self._closed:
                raise PgError(f"listener of {self.config.label!r} is closed")
            first = channel not in self._subs
            self._subs.setdefault(channel, []).append(sub)
            try:
                if self._conn is None and self._reconnecting is None:
                    await self._connect()  # LISTENs every channel, this one included
                elif first and self.connected:
                    await self._conn.add_listener(channel, self._on_notify)
                # Otherwise a reconnect is under way and will LISTEN it.
            except Exception as exc:
                self._forget(sub)
                raise translate(exc) from exc
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        async with self._lock:
            self._forget(sub)
            if not self._subs:
                await self._disconnect()
            elif sub.channel not in self._subs and self.connected:
                with contextlib.suppress(Exception):  # a dead connection forgets the channel anyway
                    await self._conn.remove_listener(sub.channel, self._on_notify)

    def _forget(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.channel, [])
        if sub in subs:
            subs.remove(sub)
        if not subs:
            self._subs.pop(sub.channel, None)

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        note = Notification(channel, payload, pid)
        for sub in self._subs.get(channel, ()):
            sub._deliver(note)

    def _on_terminated(self, conn: Any) -> None:
        if conn is not self._conn or self._closed:
            return  # closed on purpose
        log.warning("LISTEN connection of %r lost; reconnecting", self.config.label)
        self._conn = None
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _connect(self) -> None:
        conn = await open_connection(self.config, application_name=self.application_name)
        try:
            for channel in self._subs:
                await conn.add_listener(channel, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn

    async def _reconnect(self) -> None:
        delay = 0.0  # the first attempt at once: a terminated backend leaves a healthy server behind
        while True:
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            try:
                async with self._lock:
                    if self._closed or not self._subs:
                        self._reconnecting = None
                        return
                    await self._connect()
                    self._reconnecting = None
                    channels = self.channels
                break
            except Exception as exc:
                delay = min(self.max_backoff, max(0.1, delay * 2))
                log.warning(
                    "reconnecting LISTEN of %r failed (%s); next try in %.1f s", self.config.label, exc, delay
                )
        self.reconnects += 1
        for hook in list(self._hooks):
            try:
                await hook(channels)
            except Exception:
                log.exception("reconnect hook %r of listener %r failed", hook, self.config.label)

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception:
                conn.terminate()

    async def close(self) -> None:
        """End every subscription, stop reconnecting and close the connection."""
        self._closed = True
        task, self._reconnecting = self._reconnecting, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._lock:
            for subs in self._subs.values():
                for sub in subs:
                    sub._finish()
            self._subs.clear()
            await self._disconnect()
        for listeners in _listeners.values():
            if listeners.get(self.config) is self:
                del listeners[self.config]


_listeners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PgConfig, Listener]] = (
    weakref.WeakKeyDictionary()
)


def listener_for(config: PgConfig) -> Listener:
    """The shared listener of ``config`` on the running loop (created on first use; no I/O)."""
    listeners = _listeners.setdefault(asyncio.get_running_loop(), {})
    listener = listeners.get(config)
    if listener is None:
        listener = listeners[config] = Listener(config)
    return listener


async def close_loop_listeners() -> None:
    """Close every listener of the running loop (shutdown path)."""
    listeners = list(_listeners.get(asyncio.get_running_loop(), {}).values())
    await asyncio.gather(*(listener.close() for listener in listeners), return_exceptions=True)
