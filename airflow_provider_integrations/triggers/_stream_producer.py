"""The reading side of ``StreamEventTrigger``: the stream after a position, and the ack-mode producer.

:class:`StreamEventProducer` reads the stream once for a group of watchers (Airflow 3.3 shared streams)
and commits the group's checkpoint only as Airflow confirms the derived asset events stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

from airflow_provider_integrations.hooks.stream_checkpoints import open_checkpoint
from airflow_provider_integrations.hooks.stream_windows import StreamWindows
from airflow_provider_integrations.hooks.streams import build_source, window_from_spec
from airflow_provider_integrations.streaming import Checkpoint, Position

if TYPE_CHECKING:
    from airflow_provider_integrations.triggers.stream_events import StreamEventTrigger

__all__ = ["MAX_IN_FLIGHT", "StreamEventProducer", "read_stream"]

log = logging.getLogger(__name__)

# Events handed to the triggerer and not yet resolved. Below the triggerer's subscriber queue bound
# (``shared_stream_subscriber_queue_size``, 1024), which fails a subscriber that falls behind: a burst
# is read as fast as Airflow stores the asset events, never all at once.
MAX_IN_FLIGHT: Final = 256
MAX_BACKOFF: Final = 60.0


async def read_stream(
    trigger: StreamEventTrigger, position: Position | None
) -> AsyncGenerator[tuple[Any, Any], None]:
    """``(raw, position)`` pairs of the trigger's stream after ``position``, until the stream ends."""
    if trigger.window is None:
        async with (await build_source(trigger.spec)).open(position) as source:
            async for event in source:
                yield event, event.position
        return
    async with StreamWindows(trigger.spec, window_from_spec(trigger.window), position) as reader:
        while True:
            _, window = await reader.next()
            if window is None:
                return
            yield window, window.last_position


class StreamEventProducer(SharedStreamProducer):
    """Reads the stream once for a group of watchers; commits the checkpoint as Airflow confirms events."""

    def __init__(self, trigger: StreamEventTrigger, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.trigger = trigger
        self.max_in_flight = max_in_flight
        self.committed: Position | None = None  # the checkpoint as last written (tests and logs)
        self._stack = contextlib.AsyncExitStack()
        self._checkpoint: Checkpoint | None = None
        self._in_flight = 0
        self._room = asyncio.Event()
        self._stalled = False

    async def open_stream(self) -> AsyncIterator[tuple[Any, Any]]:
        trigger, delay = self.trigger, 0.0
        # The store outlives the stream: advances can still arrive while the group winds down.
        self._checkpoint = await self._stack.enter_async_context(
            open_checkpoint(trigger.spec.stream_name, trigger.consumer_name, trigger.checkpoint_store)
        )
        position = self.committed = await self._checkpoint.load()
        while True:
            try:
                async with contextlib.aclosing(read_stream(trigger, position)) as stream:
                    async for raw, at in stream:
                        delay = 0.0
                        while self._in_flight >= self.max_in_flight:
                            self._room.clear()
                            await self._room.wait()
                        self._in_flight += 1
                        yield raw, at
                        position = at if at is not None else position
                # The server ended the stream: a watcher lives on, so look again later.
                delay = trigger.reopen_after
                log.info(
                    "stream %s ended; reopening after %r in %.0f s", trigger.spec.stream_name, position, delay
                )
            except Exception as exc:
                # Sources retry transient failures themselves; what reaches here (a refused login, a
                # source that gave up) must not end the watcher either: back off and reopen.
                delay = min(MAX_BACKOFF, max(1.0, delay * 2))
                log.warning(
                    "stream %s failed (%s); reopening in %.0f s", trigger.spec.stream_name, exc, delay
                )
            await asyncio.sleep(delay)

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        self._in_flight -= len(batch)
        self._room.set()
        if self._stalled or self._checkpoint is None:
            return
        upto: Position | None = None
        for item in batch:
            outcome = item.outcome
            if outcome.failed or not (outcome.acked or outcome.rejected):
                # Not confirmed stored: the checkpoint stays before it for good (it is cumulative), so
                # the next start of this group delivers it again.
                self._stalled = True
                log.warning(
                    "stream %s: event at %r was not confirmed stored (%s); the checkpoint stays at %r",
                    self.trigger.spec.stream_name, item.broker_payload, outcome,
                    upto if upto is not None else self.committed,
                )  # fmt: skip
                break
            if item.broker_payload is not None:
                upto = cast(Position, item.broker_payload)
        if upto is not None:
            await self._checkpoint.commit(upto)
            self.committed = upto

    async def aclose(self) -> None:
        await self._stack.aclose()
