"""The store protocol, and :class:`Checkpoint`, a store bound to one (stream, consumer)."""

from __future__ import annotations

import json
from typing import Protocol, runtime_checkable

from airflow_provider_integrations.streaming.errors import CheckpointError, StreamConfigError
from airflow_provider_integrations.streaming.events import Position, check_position


@runtime_checkable
class CheckpointStore(Protocol):
    """Positions keyed by ``(stream, consumer)``; ``commit`` is durable when it returns."""

    async def load(self, stream: str, consumer: str) -> Position | None: ...

    async def commit(self, stream: str, consumer: str, position: Position) -> None: ...

    async def close(self) -> None: ...


def check_key(stream: object, consumer: object) -> None:
    for field, value in (("stream", stream), ("consumer", consumer)):
        if not isinstance(value, str) or not value:
            raise StreamConfigError(field, "a non-empty string", value)


def encode(position: object) -> str:
    """Positions are stored as JSON, so an integer comes back an integer and a string a string."""
    checked = check_position(position)
    if checked is None:
        raise StreamConfigError("position", "an integer or a string (there is nothing to commit)", position)
    return json.dumps(checked)


def decode(text: str, stream: str, consumer: str) -> Position:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise CheckpointError(
            f"stored checkpoint of consumer {consumer!r} is not a position: {text[:80]!r}", stream=stream
        )
    return value


class Checkpoint:
    """The checkpoint of one consumer of one stream::

    checkpoint = Checkpoint(store, "orders", "orders-to-warehouse")
    position = await checkpoint.load()
    ...
    await checkpoint.commit(window.last_position)   # after the window is stored
    """

    __slots__ = ("consumer", "store", "stream")

    def __init__(self, store: CheckpointStore, stream: str, consumer: str) -> None:
        check_key(stream, consumer)
        self.store = store
        self.stream = stream
        self.consumer = consumer

    async def load(self) -> Position | None:
        return await self.store.load(self.stream, self.consumer)

    async def commit(self, position: Position | None) -> None:
        """Record ``position`` as processed; ``None`` (an empty window) commits nothing."""
        if position is not None:
            await self.store.commit(self.stream, self.consumer, position)

    def __repr__(self) -> str:
        return f"Checkpoint({self.stream!r}, {self.consumer!r}, {type(self.store).__name__})"
