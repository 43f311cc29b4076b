"""The event every source yields, the options every source takes, and the :class:`Source` protocol."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

from airflow_provider_integrations.connections.http_config import RetryPolicy
from airflow_provider_integrations.streaming.errors import StreamConfigError, StreamProtocolError

#: Where a stream can be resumed from: an SSE event id, a sequence number, an offset, a table cursor.
#: Opaque to consumers, JSON-serializable, and what checkpoints store.
Position = int | str


class Lazy:
    """The type of :data:`LAZY`."""

    def __repr__(self) -> str:
        return "<lazy>"


#: Stands for a position or key not read from the data yet (see :class:`JsonFields`).
LAZY: Final = Lazy()


class JsonFields:
    """Reads an event's position and key from its JSON data, on first access only.

    Parsing JSON costs about 1.8 µs per 200-byte event, ten times building the event: a consumer that
    checkpoints once per window reads two positions per window, not one per event.
    """

    __slots__ = ("key_field", "position_field")

    def __init__(self, position_field: str | None, key_field: str | None = None) -> None:
        self.position_field = position_field
        self.key_field = key_field

    @property
    def lazy_position(self) -> Lazy | None:
        """What a source passes as the position of an event built with these fields."""
        return LAZY if self.position_field is not None else None

    @property
    def lazy_key(self) -> Lazy | None:
        return LAZY if self.key_field is not None else None

    def resolve(self, event: Event) -> None:
        doc = event.json()
        if not isinstance(doc, dict):
            raise StreamProtocolError(f"event data is not a JSON object: {_excerpt(event.data)}")
        if self.position_field is not None:
            value = doc.get(self.position_field)
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise StreamProtocolError(
                    f"event has no integer or string {self.position_field!r} field: {_excerpt(event.data)}"
                )
            event._pos = value
        if self.key_field is not None:
            key = doc.get(self.key_field)
            event._key = None if key is None else str(key)


class Event:
    """One event of a stream.

    ``data`` is what the server sent (``str`` for text protocols, ``bytes`` for NDJSON lines and binary
    frames; the payload column for a table tail); ``type`` its event type (SSE ``event:``, the channel of
    a notification); ``key`` what it is about (events come in stream order, so in order per key too);
    ``received_at`` the wall-clock time the chunk carrying it arrived. ``position`` is where to resume
    *after* this event.

    A plain slotted class: building events is the per-event hot path.
    """

    __slots__ = ("_doc", "_fields", "_key", "_pos", "data", "received_at", "type")

    def __init__(
        self,
        position: Position | Lazy | None,
        type: str,
        data: Any,
        received_at: float,
        key: str | Lazy | None = None,
        fields: JsonFields | None = None,
    ) -> None:
        # Sources reading position or key from the data pass LAZY for them, with the fields to read.
        self._pos: Any = position
        self._key: Any = key
        self._fields = fields
        self.type = type
        self.data = data
        self.received_at = received_at

    @property
    def position(self) -> Position | None:
        if self._pos is LAZY:
            assert self._fields is not None
            self._fields.resolve(self)
        pos: Position | None = self._pos
        return pos

    @property
    def key(self) -> str | None:
        if self._key is LAZY:
            assert self._fields is not None
            self._fields.resolve(self)
        key: str | None = self._key
        return key

    def json(self) -> Any:
        """``data`` parsed as JSON (parsed once; position and key fields reuse it)."""
        try:
            return self._doc
        except AttributeError:
            pass  # not parsed yet: not setting it in __init__ saves every event a store
        try:
            self._doc: Any = json.loads(self.data)
        except (ValueError, TypeError) as exc:
            raise StreamProtocolError(f"event data is not JSON ({exc}): {_excerpt(self.data)}") from None
        return self._doc

    @property
    def size(self) -> int:
        """Bytes of ``data`` as received (UTF-8 for text)."""
        data = self.data
        if isinstance(data, bytes):
            return len(data)
        if isinstance(data, str):
            return len(data) if data.isascii() else len(data.encode())
        return len(str(data).encode())

    def __repr__(self) -> str:
        shown = _excerpt(self.data)
        return f"Event(position={self.position!r}, type={self.type!r}, key={self.key!r}, data={shown})"


def _excerpt(data: Any, limit: int = 120) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_position(value: object, field_name: str = "position") -> Position | None:
    """Validate a position handed in by a caller (a checkpoint, a trigger's kwargs)."""
    if value is None or (isinstance(value, int | str) and not isinstance(value, bool)):
        return value
    raise StreamConfigError(field_name, "an integer, a string or None", value)


#: Reconnect backoff of sources whose connection has no retry policy of its own (PostgreSQL).
DEFAULT_BACKOFF: Final = RetryPolicy(base_delay=0.2, max_delay=10.0)


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """How a source buffers and reconnects; the connection's own settings (auth, TLS) come with it.

    :param max_buffered: events read ahead of the consumer; the reader stops reading (and TCP pushes
        back on the server) once this many wait. One read (``chunk_size`` bytes) may add its events.
    :param read_timeout: seconds without a byte (heartbeats count) after which a connection is
        considered dead and reopened; ``None`` waits forever.
    :param backoff: reconnect delays (``base_delay``, ``max_delay``, ``jitter``); ``None`` uses the HTTP
        connection's retry policy, or :data:`DEFAULT_BACKOFF`.
    :param max_failures: consecutive failed connection attempts before :class:`StreamGaveUpError`;
        ``None`` retries forever. A connection that delivered an event resets the count.
    :param chunk_size: most bytes taken per read (HTTP sources); with ``max_buffered`` it bounds memory.
    :param max_line_bytes: longest SSE line or NDJSON record accepted before :class:`StreamProtocolError`.
    """

    max_buffered: int = 10_000
    read_timeout: float | None = 60.0
    backoff: RetryPolicy | None = None
    max_failures: int | None = 10
    chunk_size: int = 2**18
    max_line_bytes: int = 16 * 2**20

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_buffered, bool)
            or not isinstance(self.max_buffered, int)
            or self.max_buffered < 1
        ):
            raise StreamConfigError("max_buffered", "an integer >= 1", self.max_buffered)
        if self.read_timeout is not None and not (
            isinstance(self.read_timeout, int | float) and self.read_timeout > 0
        ):
            raise StreamConfigError("read_timeout", "a number of seconds > 0, or None", self.read_timeout)
        if self.max_failures is not None and (
            isinstance(self.max_failures, bool)
            or not isinstance(self.max_failures, int)
            or self.max_failures < 1
        ):
            raise StreamConfigError("max_failures", "an integer >= 1, or None", self.max_failures)
        for name in ("chunk_size", "max_line_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
                raise StreamConfigError(name, "an integer >= 1024", value)


@runtime_checkable
class Source(Protocol):
    """What windows, checkpoints and the Airflow layer rely on; every source in this package has it.

    ``open(from_position)`` (re)starts reading *after* that position and returns the source, to be used
    as ``async with``; leaving the block closes it.
    """

    name: str

    @property
    def position(self) -> Position | None:
        """Position of the last event handed to the consumer (or the start position)."""
        ...

    def open(self, from_position: Position | None = None) -> Source: ...

    async def start(self) -> None: ...

    async def ready(self) -> None:
        """Wait until the first connection is up (or the source failed)."""
        ...

    async def close(self) -> None: ...

    async def read_batch(
        self, max_events: int | None = None, timeout: float | None = None
    ) -> list[Event] | None:
        """Up to ``max_events`` events already read, waiting at most ``timeout`` seconds for the first:
        ``[]`` on timeout, ``None`` at the end of the stream."""
        ...

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def __aenter__(self) -> Source: ...

    async def __aexit__(self, *exc: object) -> None: ...
