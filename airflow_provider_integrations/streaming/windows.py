"""Batch a stream into windows: by count, by bytes, by time, or whichever limit comes first.

``max_events`` and ``max_bytes`` close a window when it is full; ``max_seconds`` closes it that long
after its first event, full or not (a tumbling time window, or the flush timeout of a count/byte
window). Windows never overlap and are never empty; the end of the stream flushes the last one.
Time is processing time: a window opens when its first event is handed over.

The loop that keeps at-least-once delivery (commit only what the sink has stored)::

    async with source.open(await checkpoint.load()):
        async for window in windows(source, WindowSpec(max_events=500, max_seconds=1.0)):
            await sink(window.events)                 # idempotent: keyed by the event's id
            await checkpoint.commit(window.last_position)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from airflow_provider_integrations.streaming.errors import StreamConfigError
from airflow_provider_integrations.streaming.events import Event, Position, Source

CloseReason = Literal["count", "bytes", "time", "end"]


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Limits of a window; at least one is required. Plain values, so a trigger can serialize it."""

    max_events: int | None = None
    max_bytes: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_events", "max_bytes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise StreamConfigError(name, "an integer >= 1, or None", value)
        if self.max_seconds is not None and (
            isinstance(self.max_seconds, bool)
            or not isinstance(self.max_seconds, int | float)
            or not self.max_seconds > 0
        ):
            raise StreamConfigError("max_seconds", "a number of seconds > 0, or None", self.max_seconds)
        if self.max_events is None and self.max_bytes is None and self.max_seconds is None:
            raise StreamConfigError(
                "WindowSpec", "at least one of max_events, max_bytes, max_seconds", "all None"
            )


@dataclass(slots=True)
class Window:
    """Events closed together. ``opened_at``/``closed_at`` are wall-clock seconds (``time.time()``)."""

    events: list[Event]
    opened_at: float
    closed_at: float
    reason: CloseReason

    @property
    def size(self) -> int:
        """Bytes of the events' data."""
        return sum(event.size for event in self.events)

    @property
    def first_position(self) -> Position | None:
        return self.events[0].position

    @property
    def last_position(self) -> Position | None:
        """What to checkpoint once the window is stored."""
        return self.events[-1].position

    def __len__(self) -> int:
        return len(self.events)


async def windows(source: Source, spec: WindowSpec) -> AsyncIterator[Window]:
    """Yield the windows of ``source`` (already started) until it ends; errors of the source propagate.

    A window holds at most ``max_events`` events and at most ``max_bytes`` bytes, except that a single
    event larger than ``max_bytes`` gets a window of its own.
    """
    max_events, max_bytes, max_seconds = spec.max_events, spec.max_bytes, spec.max_seconds
    clock = asyncio.get_running_loop().time
    pending: list[Event] = []  # events read past the previous window's limit
    ended = False
    while not ended:
        if pending:
            batch: list[Event] | None = pending
            pending = []
        else:
            batch = await source.read_batch(max_events)
            if batch is None:
                return
        opened, opened_at = clock(), time.time()
        deadline = opened + max_seconds if max_seconds is not None else None
        events: list[Event] = []
        size = 0
        reason: CloseReason | None = None
        while reason is None:
            assert batch is not None
            if max_events is not None and len(events) + len(batch) >= max_events:
                take = max_events - len(events)
                batch, pending = batch[:take], batch[take:] + pending
                reason = "count"
            if max_bytes is not None:
                batch, rest, size, full = _fit(batch, size, max_bytes, bool(events))
                if full:
                    pending = rest + pending
                    reason = "bytes"
            events.extend(batch)
            if reason is not None:
                break
            remaining = None if deadline is None else deadline - clock()
            if remaining is not None and remaining <= 0:
                reason = "time"
                break
            wanted = None if max_events is None else max_events - len(events)
            batch = await source.read_batch(wanted, remaining)
            if batch is None:
                reason, ended = "end", True
            elif not batch:
                reason = "time"
        if events:
            yield Window(events, opened_at, time.time(), reason)


def _fit(
    batch: list[Event], size: int, limit: int, nonempty: bool
) -> tuple[list[Event], list[Event], int, bool]:
    """Split ``batch`` where the window reaches ``limit`` bytes: (taken, rest, new size, full)."""
    for i, event in enumerate(batch):
        n = event.size
        if size + n > limit and (nonempty or i):
            return batch[:i], batch[i:], size, True
        size += n
        if size >= limit:
            return batch[: i + 1], batch[i + 1 :], size, True
    return batch, [], size, False
