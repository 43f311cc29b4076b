"""What every source shares: a reader task that connects, resumes after drops with backoff, and fills
a bounded buffer; and the consumer side (``async for``, :meth:`StreamSource.read_batch`).

A subclass implements one connection in :meth:`StreamSource._stream`: connect so that the first event
follows ``position``, then yield lists of events until the connection ends. Returning means "dropped,
reconnect"; setting ``self._finished`` first means "the server said the stream is over". Raising a
retriable error (``.retriable`` true: HTTP transport, 5xx, 429, lost PostgreSQL connections) reconnects
after a backoff; anything else ends the stream with that error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from airflow_provider_integrations.connections.http_config import RetryPolicy
from airflow_provider_integrations.http.retry import backoff_delay
from airflow_provider_integrations.streaming._buffer import BatchBuffer
from airflow_provider_integrations.streaming.errors import StreamConfigError, StreamError, StreamGaveUpError
from airflow_provider_integrations.streaming.events import (
    DEFAULT_BACKOFF,
    Event,
    Position,
    StreamOptions,
    check_position,
)

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger("airflow_provider_integrations.streaming")
_EMPTY: list[Event] = []


class StreamSource(ABC):
    """Base class of the sources; see the module docstring for the subclass contract."""

    def __init__(self, name: str, options: StreamOptions | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise StreamConfigError("name", "a non-empty string naming the stream", name)
        self.name = name
        self.options = options or StreamOptions()
        #: Connections opened after the first (drops, timeouts, server restarts).
        self.reconnects = 0
        #: Bytes or frames that carried no event (SSE comments, blank NDJSON lines, pings).
        self.heartbeats = 0
        self._start_position: Position | None = None
        self._resume_from: Position | None = None  # the start, or the last position read before a drop
        self._last_read: Event | None = None  # the last event read (its position is resolved lazily)
        self._finished = False
        self._retry_hint: float | None = None  # the server's reconnect delay (SSE ``retry:``)
        self._buffer: BatchBuffer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._batch: list[Event] = _EMPTY
        self._index = 0
        self._delivered: Event | None = None  # the event before the current batch

    # -- lifecycle -----------------------------------------------------------------------------------

    def open(self, from_position: Position | None = None) -> Self:
        """Read the events after ``from_position`` (``None``: the source's start) once started."""
        if self._reader is not None:
            raise StreamError("open() on a running source; close() it first", stream=self.name)
        self._start_position = check_position(from_position, "from_position")
        return self

    async def start(self) -> None:
        if self._reader is not None:
            return
        self._buffer = BatchBuffer(self.options.max_buffered)
        self._ready = asyncio.Event()
        self._resume_from, self._delivered, self._last_read = self._start_position, None, None
        self._batch, self._index, self._finished = _EMPTY, 0, False
        self._reader = asyncio.get_running_loop().create_task(self._run(), name=f"stream-reader:{self.name}")

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if self._buffer is not None:
            self._buffer.finish()

    async def ready(self) -> None:
        """Wait until the first connection is up (a NOTIFY subscription listens, a tail has queried).

        Also returns if the source failed first: reading then raises why. Useful before publishing
        to a channel whose notifications nobody would otherwise receive.
        """
        if self._ready is None:
            raise StreamError("ready() before start(): use 'async with source.open(...)'", stream=self.name)
        await self._ready.wait()

    def _mark_ready(self) -> None:
        if self._ready is not None:
            self._ready.set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- consumer side -------------------------------------------------------------------------------

    @property
    def position(self) -> Position | None:
        if self._index:
            return self._batch[self._index - 1].position
        if self._delivered is not None:
            return self._delivered.position
        return self._start_position

    @property
    def buffered(self) -> int:
        """Events read but not yet handed to the consumer."""
        pending = len(self._batch) - self._index
        return pending + (self._buffer.buffered if self._buffer is not None else 0)

    @property
    def high_water(self) -> int:
        return self._buffer.high_water if self._buffer is not None else 0

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        index = self._index
        batch = self._batch
        if index < len(batch):
            self._index = index + 1
            return batch[index]
        got = await self._next(None)
        if got is None:
            raise StopAsyncIteration
        self._index = 1
        return got[0]

    async def read_batch(
        self, max_events: int | None = None, timeout: float | None = None
    ) -> list[Event] | None:
        if max_events is not None and max_events < 1:
            raise StreamConfigError("max_events", "an integer >= 1, or None", max_events, stream=self.name)
        index, batch = self._index, self._batch
        if index >= len(batch):
            got = await self._next(timeout)
            if not got:
                return got
            index, batch = 0, got
        end = len(batch) if max_events is None else min(len(batch), index + max_events)
        self._index = end
        return batch if index == 0 and end == len(batch) else batch[index:end]

    async def _next(self, timeout: float | None) -> list[Event] | None:
        """The next non-empty batch from the reader, or ``[]``/``None`` (timeout/end)."""
        if self._buffer is None:
            raise StreamError("read before start(): use 'async with source.open(...)'", stream=self.name)
        if self._index:
            self._delivered = self._batch[self._index - 1]
        self._batch, self._index = _EMPTY, 0
        got = self._buffer.get_nowait()
        if got is None:
            got = await self._buffer.get(timeout)
        if got:
            self._batch = got
        return got

    # -- reader side ---------------------------------------------------------------------------------

    @abstractmethod
    def _stream(self, position: Position | None) -> AsyncGenerator[list[Event], None]:
        """One connection: yield batches of the events after ``position`` until it ends."""

    def _backoff_policy(self) -> RetryPolicy:
        return self.options.backoff or DEFAULT_BACKOFF

    def _describe(self, position: Position | None) -> str:
        return f"after {position!r}" if position is not None else "from the start"

    async def _run(self) -> None:
        assert self._buffer is not None
        buffer, failures, connections = self._buffer, 0, 0
        try:
            while True:
                connections += 1
                if connections > 1:
                    self.reconnects += 1
                delivered = False
                error: BaseException | None = None
                try:
                    async with contextlib.aclosing(self._stream(self._resume_from)) as batches:
                        async for batch in batches:
                            if batch:
                                delivered = True
                                if buffer.full():
                                    await buffer.put(batch)
                                else:
                                    buffer.put_nowait(batch)
                                self._last_read = batch[-1]
                except Exception as exc:
                    if not getattr(exc, "retriable", False):
                        if isinstance(exc, StreamError) and not exc.stream:
                            exc.stream = self.name
                        raise
                    error = exc
                if self._finished:
                    break
                if self._last_read is not None:
                    # Only now: a position read from JSON costs a parse, once per drop rather than per event.
                    self._resume_from, self._last_read = self._last_read.position, None
                failures = 0 if delivered else failures + 1
                limit = self.options.max_failures
                if limit is not None and failures >= limit:
                    raise StreamGaveUpError(
                        f"gave up after {failures} failed connection attempts in a row"
                        + (f": {error}" if error is not None else ": the server closed every connection"),
                        attempts=failures,
                        stream=self.name,
                        position=self._resume_from,
                    ) from error
                delay = self._reconnect_delay(failures, error)
                log.log(
                    logging.INFO if failures == 0 else logging.WARNING,
                    "stream %r: %s; reconnecting %s in %.2f s",
                    self.name,
                    error or "connection closed by the server",
                    self._describe(self._resume_from),
                    delay,
                )
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            buffer.finish()
            raise
        except BaseException as exc:
            buffer.finish(exc)  # the consumer raises it once it has the events read before it
            if not isinstance(exc, Exception):
                raise
        else:
            buffer.finish()
        finally:
            self._mark_ready()

    def _reconnect_delay(self, failures: int, error: BaseException | None) -> float:
        """No wait after a connection that delivered events (a drop, a server closing streams
        periodically); backoff after failed attempts. The server's word (SSE ``retry:``, a 503's
        Retry-After) beats both."""
        delay = backoff_delay(self._backoff_policy(), failures) if failures else 0.0
        hint: Any = getattr(error, "retry_after", None)
        if hint is None:
            hint = self._retry_hint
        return max(delay, hint) if isinstance(hint, int | float) else delay
