"""The bounded hand-over between a source's reader task and its consumer.

Batches (one per socket read) rather than events go through it: an ``asyncio.Queue`` operation per
event would cost more than parsing the event. The bound is in events, so memory stays bounded whatever
the producer's speed: a full buffer stops the reader, which stops reading the socket, and TCP flow
control stops the server.
"""

from __future__ import annotations

import asyncio
from collections import deque

from airflow_provider_integrations.streaming.events import Event


class BatchBuffer:
    __slots__ = ("_batches", "_end", "_ended", "_getter", "_putter", "buffered", "high_water", "max_events")

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self.buffered = 0
        #: The most events ever waiting at once (tests and benchmarks assert the bound with it).
        self.high_water = 0
        self._batches: deque[list[Event]] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._putter: asyncio.Future[None] | None = None
        self._ended = False
        self._end: BaseException | None = None

    def full(self) -> bool:
        return self.buffered >= self.max_events and not self._ended

    async def put(self, batch: list[Event]) -> None:
        """Add ``batch``, first waiting while ``max_events`` or more events are buffered."""
        while self.full():
            self._putter = asyncio.get_running_loop().create_future()
            try:
                await self._putter
            finally:
                self._putter = None
        self.put_nowait(batch)

    def put_nowait(self, batch: list[Event]) -> None:
        """Add ``batch`` now; callers check :meth:`full` first (the bound is theirs to keep)."""
        self._batches.append(batch)
        self.buffered += len(batch)
        self.high_water = max(self.high_water, self.buffered)
        _wake(self._getter)

    def finish(self, error: BaseException | None = None) -> None:
        """No more batches: the consumer gets the buffered ones, then ``error`` (or the end)."""
        if not self._ended:
            self._ended, self._end = True, error
        _wake(self._getter)
        _wake(self._putter)

    def get_nowait(self) -> list[Event] | None:
        """The next batch if one is buffered (the common case, without a coroutine), else ``None``."""
        if not self._batches:
            return None
        batch = self._batches.popleft()
        self.buffered -= len(batch)
        _wake(self._putter)
        return batch

    async def get(self, timeout: float | None = None) -> list[Event] | None:
        """The next batch; ``[]`` after ``timeout`` seconds without one; ``None`` at the end.

        Raises the error the reader finished with, once every batch read before it was taken.
        """
        if not self._batches:
            if self._ended:
                self._raise_end()
                return None
            loop = asyncio.get_running_loop()
            self._getter = waiter = loop.create_future()
            timer = loop.call_later(timeout, _wake, waiter) if timeout is not None else None
            try:
                await waiter
            finally:
                self._getter = None
                if timer is not None:
                    timer.cancel()
            if not self._batches:
                if not self._ended:
                    return []
                self._raise_end()
                return None
        batch = self._batches.popleft()
        self.buffered -= len(batch)
        _wake(self._putter)
        return batch

    def _raise_end(self) -> None:
        error, self._end = self._end, None
        if error is not None:
            raise error


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
