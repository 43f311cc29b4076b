"""WebSocket messages as a resumable source (aiohttp ``ws_connect`` on the connection's shared session).

Each text or binary message is one event. On every connect the source sends ``hello`` (a JSON object)
with ``resume_field`` set to the last position read, so the server continues after it. aiohttp's
heartbeat pings the server every ``heartbeat`` seconds and drops the connection when no pong comes
back in half that time; the source then reconnects and resumes. A close with code 1000 (normal
closure) ends the stream; any other close or a lost connection is a drop.

A full buffer stops reading the socket, pongs included: keep ``heartbeat`` above the longest pause
of the consumer, or expect a reconnect (which is safe: it resumes) after one.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Mapping
from types import MappingProxyType
from typing import Any

import aiohttp

from airflow_provider_integrations.connections.http_config import HttpClientConfig
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.streaming._http import HttpStreamSource, Params
from airflow_provider_integrations.streaming.errors import StreamConfigError, StreamProtocolError
from airflow_provider_integrations.streaming.events import LAZY, Event, JsonFields, Position, StreamOptions

_TEXT, _BINARY = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
_CLOSE = aiohttp.WSMsgType.CLOSE
_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})


class WebSocketSource(HttpStreamSource):
    """Messages of a WebSocket endpoint under an ``integration_http`` connection (http -> ws, https -> wss).

    :param position_field: the JSON field of each message holding its sequence (read lazily); ``None``
        counts messages instead (the position is the number received since the origin).
    :param hello: the JSON object sent on each connect, ``{}`` by default (``None``: send nothing, and
        so resume nothing: for servers that take no messages).
    :param resume_field: the field of ``hello`` that carries the last position read.
    :param heartbeat: seconds between pings; ``None`` disables them (then rely on ``read_timeout``).
    """

    def __init__(
        self,
        config: HttpClientConfig,
        path: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        position_field: str | None = "seq",
        key_field: str | None = None,
        hello: Mapping[str, Any] | None = _NO_FIELDS,
        resume_field: str = "after",
        heartbeat: float | None = 15.0,
        event_type: str = "message",
        name: str | None = None,
        options: StreamOptions | None = None,
    ) -> None:
        super().__init__(config, path, params=params, headers=headers, name=name, options=options)
        if heartbeat is not None and not (isinstance(heartbeat, int | float) and heartbeat > 0):
            raise StreamConfigError(
                "heartbeat", "a number of seconds > 0, or None", heartbeat, stream=self.name
            )
        if hello is not None and not isinstance(hello, Mapping):
            raise StreamConfigError("hello", "a JSON object (mapping), or None", hello, stream=self.name)
        self.position_field = position_field
        self.hello = dict(hello) if hello is not None else None
        self.resume_field = resume_field
        self.heartbeat = heartbeat
        self.event_type = event_type
        self._fields = JsonFields(position_field, key_field) if position_field or key_field else None

    async def _stream(self, position: Position | None) -> AsyncGenerator[list[Event], None]:
        client = self._client
        assert client is not None
        # With a heartbeat, a dead connection is the missing pong; a receive timeout would also cost every
        # message a timer.
        receive = None if self.heartbeat else self.options.read_timeout
        timeout = aiohttp.ClientWSTimeout(ws_receive=receive, ws_close=5.0)
        ws = await client.websocket(
            self.path,
            params=self.params,
            headers=self.headers,
            heartbeat=self.heartbeat,
            timeout=timeout,
            max_msg_size=self.options.max_line_bytes,
        )
        self._mark_ready()
        try:
            if self.hello is not None:
                hello = dict(self.hello)
                if position is not None:
                    hello[self.resume_field] = position
                await ws.send_str(json.dumps(hello))
            async for batch in self._messages(ws, position, errors.redact_url(client.url_for(self.path))):
                yield batch
        finally:
            await ws.close()

    async def _messages(
        self, ws: aiohttp.ClientWebSocketResponse, position: Position | None, url: str
    ) -> AsyncGenerator[list[Event], None]:
        counting = self.position_field is None
        offset = int(position or 0) if counting else 0
        etype, fields, clock, receive = self.event_type, self._fields, time.time, ws.receive
        lazy_pos = None if counting else LAZY
        key = fields.lazy_key if fields is not None else None
        while True:
            msg = await receive()
            kind = msg.type
            if kind is _TEXT or kind is _BINARY:
                offset += 1
                yield [Event(offset if counting else lazy_pos, etype, msg.data, clock(), key, fields)]
            elif kind is _CLOSE:
                # Only a close frame with 1000 says "done"; aiohttp reports a lost connection as CLOSED.
                if msg.data == aiohttp.WSCloseCode.OK:
                    self._finished = True
                    return
                raise errors.TransportError(
                    f"WebSocket closed by the server with code {msg.data}", method="GET", url=url
                )
            elif kind is aiohttp.WSMsgType.ERROR:
                exc = msg.data
                if isinstance(exc, aiohttp.ClientError | OSError | TimeoutError):
                    raise errors.translate(exc, "GET", url) from exc
                raise StreamProtocolError(f"WebSocket protocol error: {exc}")
            else:  # CLOSED, CLOSING: the connection is gone (lost, or no pong to our ping)
                raise errors.TransportError(
                    f"WebSocket connection lost (close code {ws.close_code})", method="GET", url=url
                )
