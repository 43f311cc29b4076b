"""NDJSON / JSON Lines over a chunked HTTP response, as a resumable source.

Two ways to resume, chosen by ``position_field``:

- offset (``position_field=None``): the position is the number of records read since the stream's
  origin; a reconnect asks for ``?offset=N``. Nothing is parsed.
- cursor (``position_field="seq"``): the position is that field of the JSON record, read lazily (only
  for the events whose position is asked for); a reconnect asks for ``?after=<position>``.

Blank lines are heartbeats. A 204 answer ends the stream; a complete response body is followed by a
reconnect (a tailing endpoint answers 204 once there is nothing more to send).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping

import aiohttp

from airflow_provider_integrations.connections.http_config import HttpClientConfig
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.streaming._http import HttpStreamSource, Params
from airflow_provider_integrations.streaming.errors import StreamConfigError, StreamProtocolError
from airflow_provider_integrations.streaming.events import LAZY, Event, JsonFields, Position, StreamOptions


class NdjsonSource(HttpStreamSource):
    """Records of an NDJSON endpoint; ``data`` is each line's bytes (``event.json()`` parses it).

    :param position_field: the JSON field holding the resume cursor; ``None`` resumes by offset.
    :param resume_param: the query parameter carrying the position on reconnect (default ``after``
        for a cursor, ``offset`` for an offset).
    :param key_field: a JSON field to use as the event key (read lazily).
    :param event_type: the ``type`` of every event (NDJSON has no framing for one).
    """

    def __init__(
        self,
        config: HttpClientConfig,
        path: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        position_field: str | None = None,
        resume_param: str | None = None,
        key_field: str | None = None,
        event_type: str = "message",
        name: str | None = None,
        options: StreamOptions | None = None,
    ) -> None:
        super().__init__(config, path, params=params, headers=headers, name=name, options=options)
        for field, value in (("position_field", position_field), ("key_field", key_field)):
            if value is not None and (not isinstance(value, str) or not value):
                raise StreamConfigError(field, "a JSON field name, or None", value, stream=self.name)
        if resume_param is not None and (not isinstance(resume_param, str) or not resume_param):
            raise StreamConfigError(
                "resume_param", "a query parameter name, or None", resume_param, stream=self.name
            )
        self.position_field = position_field
        self.key_field = key_field
        self.resume_param = resume_param or ("after" if position_field else "offset")
        self.event_type = event_type
        self._fields = JsonFields(position_field, key_field) if position_field or key_field else None

    async def _stream(self, position: Position | None) -> AsyncGenerator[list[Event], None]:
        offset_mode = self.position_field is None
        if (
            offset_mode
            and position is not None
            and (isinstance(position, bool) or not isinstance(position, int))
        ):
            raise StreamConfigError("from_position", "an integer record offset", position, stream=self.name)
        offset = int(position or 0) if offset_mode else 0
        params = {} if position is None else {self.resume_param: position}
        resp = await self._open_response(params, {"Accept": "application/x-ndjson, application/jsonl"})
        if resp is None:
            self._finished = True
            return
        self._mark_ready()
        try:
            etype, fields, limit = self.event_type, self._fields, self.options.max_line_bytes
            read, clock = self._chunk_reader(resp), time.time
            tail = b""
            try:
                while chunk := await read():
                    buf = tail + chunk if tail else chunk
                    lines = buf.split(b"\n")
                    tail = lines.pop()
                    if len(tail) > limit:
                        raise StreamProtocolError(
                            f"a record exceeds max_line_bytes ({limit})", position=position
                        )
                    events = self._events(lines, offset, etype, clock(), fields, b"\r" in buf)
                    if events:
                        if offset_mode:
                            offset += len(events)
                        yield events
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise errors.translate(exc, "GET", resp.url) from exc
            # The body ended cleanly: an unterminated last line is a complete record.
            last = (
                self._events([tail.strip()], offset, etype, time.time(), fields, False)
                if tail.strip()
                else []
            )
            if last:
                yield last
        finally:
            resp.close()

    def _events(
        self, lines: list[bytes], offset: int, etype: str, now: float, fields: JsonFields | None, cr: bool
    ) -> list[Event]:
        if cr:
            lines = [line.rstrip(b"\r") for line in lines]
        if not all(lines):  # blank lines are heartbeats (all() stops at the first empty one, in C)
            count = len(lines)
            lines = [line for line in lines if line]
            self.heartbeats += count - len(lines)
        key = fields.lazy_key if fields is not None else None
        if self.position_field is None:
            return [Event(offset + i, etype, line, now, key, fields) for i, line in enumerate(lines, 1)]
        return [Event(LAZY, etype, line, now, key, fields) for line in lines]
