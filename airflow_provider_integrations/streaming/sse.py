"""Server-Sent Events (the WHATWG ``text/event-stream`` format) as a resumable source.

Resume: the ``Last-Event-ID`` header carries the id of the last event read. The ``retry:`` field sets
the reconnect delay; comments (``: ping``) are heartbeats. A 204 answer ends the stream, as the
specification says; any other end of the connection is a drop and is followed by a reconnect.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import AsyncGenerator, Mapping

import aiohttp

from airflow_provider_integrations.connections.http_config import HttpClientConfig
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.streaming._http import HttpStreamSource, Params
from airflow_provider_integrations.streaming.errors import StreamProtocolError
from airflow_provider_integrations.streaming.events import Event, JsonFields, Position, StreamOptions

# id (without NUL, which makes the specification ignore it), event, one data line, in this order.
_CANONICAL = re.compile(r"(?:id: ?([^\n\0]*)\n)?(?:event: ?([^\n]*)\n)?data: ?([^\n]*)").fullmatch


class SseParser:
    """Incremental parser: feed it chunks as they arrive, get the events they complete.

    Pure (no I/O). Chunks are decoded and split in C, whole blocks at a time: per event, Python only
    looks at its few field lines. Line ends may be LF, CRLF or CR, also split across chunks.
    """

    __slots__ = ("_cr", "_decoder", "_fields", "_max", "_tail", "heartbeats", "last_id", "retry_ms")

    def __init__(
        self, last_id: str | None = None, *, key_field: str | None = None, max_event_bytes: int = 16 * 2**20
    ) -> None:
        #: The id of the last event (ids persist across events that carry none, per the specification).
        self.last_id = last_id
        #: The last ``retry:`` value in milliseconds, if the server sent one.
        self.retry_ms: int | None = None
        self.heartbeats = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._tail = ""
        self._cr = False
        self._max = max_event_bytes
        self._fields = JsonFields(None, key_field) if key_field else None

    def feed(self, chunk: bytes, received_at: float) -> list[Event]:
        text = self._decoder.decode(chunk)
        if not text:
            return []  # the first bytes of a UTF-8 character: nothing changes until the rest comes
        if self._cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF whose CR ended the previous chunk (already a line end)
        if "\r" in text:
            self._cr = text.endswith("\r")
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        else:
            self._cr = False
        if self._tail:
            text = self._tail + text
        blocks = text.split("\n\n")
        self._tail = tail = blocks.pop()
        if len(tail) > self._max:
            raise StreamProtocolError(
                f"an event exceeds max_line_bytes ({self._max}) without ending in a blank line",
                position=self.last_id,
            )
        events: list[Event] = []
        append = events.append
        fields = self._fields
        key = fields.lazy_key if fields is not None else None
        last_id, canonical = self.last_id, _CANONICAL
        for block in blocks:
            match = canonical(block)
            if match is not None:
                # The usual shape (id, event, one data line) in one C call: as fast as a raw loop.
                event_id, etype, data = match.groups()
                if event_id is not None:
                    last_id = event_id
                append(Event(last_id, etype or "message", data, received_at, key, fields))
                continue
            data, etype = None, "message"
            for line in block.split("\n"):
                name, colon, value = line.partition(":")
                if not name:
                    if colon:  # a comment
                        self.heartbeats += 1
                    continue
                if value.startswith(" "):
                    value = value[1:]
                if name == "data":
                    data = value if data is None else f"{data}\n{value}"
                elif name == "id":
                    if "\0" not in value:
                        last_id = value
                elif name == "event":
                    etype = value or "message"
                elif name == "retry" and value.isascii() and value.isdigit():
                    self.retry_ms = int(value)
                # Other field names are ignored, as the specification requires.
            if data is not None:
                append(Event(last_id, etype, data, received_at, key, fields))
        self.last_id = last_id
        return events


class SseSource(HttpStreamSource):
    """Events of an SSE endpoint; ``position`` is the event id (``Last-Event-ID`` on reconnect).

    :param config: the ``integration_http`` connection (auth, TLS, headers, retry policy apply).
    :param path: the stream's path under the connection's base URL.
    :param key_field: a field of the JSON ``data`` to use as the event key (read lazily).
    """

    def __init__(
        self,
        config: HttpClientConfig,
        path: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        key_field: str | None = None,
        name: str | None = None,
        options: StreamOptions | None = None,
    ) -> None:
        super().__init__(config, path, params=params, headers=headers, name=name, options=options)
        self.key_field = key_field

    async def _stream(self, position: Position | None) -> AsyncGenerator[list[Event], None]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if position is not None:
            headers["Last-Event-ID"] = str(position)
        resp = await self._open_response({}, headers)
        if resp is None:
            self._finished = True
            return
        self._mark_ready()
        try:
            ctype = resp.headers.get("Content-Type", "")
            if not ctype.startswith("text/event-stream"):
                raise StreamProtocolError(
                    f"expected Content-Type text/event-stream, got {ctype or 'none'!r}", stream=self.name
                )
            parser = SseParser(
                None if position is None else str(position),
                key_field=self.key_field,
                max_event_bytes=self.options.max_line_bytes,
            )
            read, clock, heartbeats = self._chunk_reader(resp), time.time, self.heartbeats
            try:
                while chunk := await read():
                    events = parser.feed(chunk, clock())
                    self.heartbeats = heartbeats + parser.heartbeats
                    if parser.retry_ms is not None:
                        self._retry_hint = parser.retry_ms / 1000
                    if events:
                        yield events
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise errors.translate(exc, "GET", resp.url) from exc
            # A clean end: the specification says reconnect; an incomplete last event is dropped.
        finally:
            resp.close()
