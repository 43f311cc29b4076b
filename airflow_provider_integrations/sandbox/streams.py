"""Event streams with sequence numbers: SSE, NDJSON and WebSocket, with faults and resume.

``GET /streams/sse``, ``GET /streams/ndjson``, ``GET /streams/ws`` take the same query parameters:

- ``key``: names the stream in ``GET /streams/stats?key=`` (events sent, connections, drops, resumes);
- ``total``: events in the stream, numbered from 1 (0: endless);
- ``rate``: events per second (0: as fast as the client reads; TCP flow control paces the server);
- ``size``: bytes of each event's JSON payload (at least its fixed fields); ``keys``: distinct keys;
- ``drop_every``: abort the connection after this many events on it; with ``partial=1`` half of the
  next event is written first;
- ``stall_after``: after this many events on a connection, send nothing (and answer no WebSocket ping)
  for ``stall`` seconds, then abort;
- ``heartbeat``: seconds between heartbeats while idle (SSE comment, NDJSON blank line, WS ping);
- ``retry`` (SSE): a ``retry:`` field in ms first; ``multiline=1`` (SSE): data over two ``data:`` lines;
- ``ts=1``: the server's send time in each payload (latency measurements);
- ``batch``: events per write when ``rate=0``;
- ``auth``: require credentials of that scheme (``bearer``, ``oauth2``, ...; see ``sandbox.auth``).

Resume: the ``Last-Event-ID`` header (SSE), ``?after=N`` or ``?offset=N`` (NDJSON; the same, as seqs
start at 1), or the WebSocket's first message ``{"after": N}`` (the client must send one, ``{}`` for the
start). After the last event HTTP streams end the body, and a resume past the end gets 204 (the SSE way
to say "stop reconnecting"); the WebSocket closes with 1000.

``PUT /streams/scripts/{name}`` stores a body; the first ``GET`` of it streams it back in
``chunk``-byte pieces (``pause`` seconds apart, ``content_type`` as given), later ones get 204: raw
bytes for parser edge cases over a real connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from airflow_provider_integrations.sandbox import auth
from airflow_provider_integrations.sandbox.params import bad_request, float_param, int_param, json_error

TYPES = ("created", "updated", "deleted")
_BASE_SIZE = len('{"seq":,"type":"created","key":"k","pad":""}')


def payload(seq: int, size: int = 0, keys: int = 10, ts: float | None = None) -> str:
    """The JSON payload of event ``seq``: deterministic apart from ``ts`` (tests recompute checksums)."""
    key = seq % keys
    pad = "x" * max(0, size - _BASE_SIZE - len(str(seq)) - len(str(key)))
    stamp = "" if ts is None else f',"ts":{ts:.6f}'
    return f'{{"seq":{seq},"type":"{TYPES[seq % 3]}","key":"k{key}","pad":"{pad}"{stamp}}}'


@dataclass
class StreamStats:
    sent: int = 0
    connections: int = 0
    drops: int = 0
    stalls: int = 0
    refused: int = 0
    resumes: list[int | None] = field(default_factory=list)


@dataclass
class StreamsState:
    stats: defaultdict[str, StreamStats] = field(default_factory=lambda: defaultdict(StreamStats))
    scripts: dict[str, bytes] = field(default_factory=dict)


STREAMS_KEY = web.AppKey("streams_state", StreamsState)


@dataclass(frozen=True)
class Spec:
    total: int
    rate: float
    size: int
    keys: int
    drop_every: int
    partial: bool
    stall_after: int
    stall: float
    heartbeat: float
    ts: bool
    batch: int

    @classmethod
    def parse(cls, request: web.Request) -> Spec:
        return cls(
            total=int_param(request, "total", 0, minimum=0),
            rate=float_param(request, "rate", 0.0),
            size=int_param(request, "size", 0, minimum=0, maximum=1_000_000),
            keys=int_param(request, "keys", 10, minimum=1),
            drop_every=int_param(request, "drop_every", 0, minimum=0),
            partial=int_param(request, "partial", 0, minimum=0, maximum=1) == 1,
            stall_after=int_param(request, "stall_after", 0, minimum=0),
            stall=float_param(request, "stall", 30.0, maximum=600),
            heartbeat=float_param(request, "heartbeat", 0.0, maximum=600),
            ts=int_param(request, "ts", 0, minimum=0, maximum=1) == 1,
            batch=int_param(request, "batch", 256, minimum=1, maximum=100_000),
        )

    def body(self, seq: int) -> str:
        return payload(seq, self.size, self.keys, time.time() if self.ts else None)


class Channel:
    """How one connection carries events; the pump decides when and how many."""

    async def send(self, first: int, count: int) -> None:
        raise NotImplementedError

    async def send_partial(self, seq: int) -> None:
        raise NotImplementedError

    async def heartbeat(self) -> None:
        raise NotImplementedError


class HttpChannel(Channel):
    def __init__(self, response: web.StreamResponse, frame: Callable[[int], bytes], beat: bytes) -> None:
        self.response, self.frame, self.beat = response, frame, beat

    async def send(self, first: int, count: int) -> None:
        await self.response.write(b"".join([self.frame(s) for s in range(first, first + count)]))

    async def send_partial(self, seq: int) -> None:
        data = self.frame(seq)
        await self.response.write(data[: len(data) // 2])

    async def heartbeat(self) -> None:
        await self.response.write(self.beat)


async def _refused(request: web.Request) -> web.Response | None:
    """A 401 unless the request carries the credentials ``?auth=<scheme>`` asks for."""
    scheme = request.query.get("auth")
    if not scheme:
        return None
    checker = auth.CHECKERS.get(scheme)
    if checker is None:
        raise bad_request(f"auth must be one of {auth.SCHEMES}")
    try:
        await checker(request)
    except auth.AuthFailure as failure:
        _stats(request).refused += 1
        response = json_error(401, failure.error, failure.description)
        response.headers["WWW-Authenticate"] = auth.challenge(scheme, failure)
        return response
    return None


def _stats(request: web.Request) -> StreamStats:
    return request.app[STREAMS_KEY].stats[request.query.get("key", "")]


async def _pump(request: web.Request, spec: Spec, first: int, channel: Channel) -> str:
    """Send events ``first``.. until the total, a drop or a stall; returns which ("end", "drop", "stall")."""
    stats, loop = _stats(request), asyncio.get_running_loop()
    seq, on_conn, started, last_write = first, 0, loop.time(), loop.time()
    while spec.total == 0 or seq <= spec.total:
        if spec.drop_every and on_conn >= spec.drop_every:
            if spec.partial:
                await channel.send_partial(seq)
            stats.drops += 1
            return "drop"
        if spec.stall_after and on_conn >= spec.stall_after:
            stats.stalls += 1
            return "stall"
        n = spec.batch
        if spec.rate:
            due = int((loop.time() - started) * spec.rate) - on_conn
            if due <= 0:
                now = loop.time()
                if spec.heartbeat and now - last_write >= spec.heartbeat:
                    await channel.heartbeat()
                    last_write = now
                wait = (on_conn + 1) / spec.rate - (now - started)
                await asyncio.sleep(min(wait, spec.heartbeat) if spec.heartbeat else wait)
                continue
            n = min(n, due)
        for limit in (spec.drop_every, spec.stall_after):
            if limit:
                n = min(n, limit - on_conn)
        if spec.total:
            n = min(n, spec.total - seq + 1)
        await channel.send(seq, n)
        seq += n
        on_conn += n
        stats.sent += n
        last_write = loop.time()
    return "end"


async def _hold_then_abort(request: web.Request, seconds: float) -> None:
    transport = request.transport
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    # The client is expected to give up first; stop holding once it has.
    # aiohttp has nothing to await for "the peer closed" short of reading, which a stall must not do.
    while transport is not None and not transport.is_closing() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    _abort(request)


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def _resume_http(request: web.Request, header: str | None) -> int | None:
    raw = request.headers.get(header) if header else None
    if raw is None:
        raw = request.query.get("after") or request.query.get("offset")
    if raw is None or raw == "":
        return None
    try:
        after = int(raw)
    except ValueError:
        raise bad_request(f"resume position must be an integer sequence number, got {raw!r}") from None
    if after < 0:
        raise bad_request("resume position must be >= 0")
    return after


async def _http_stream(
    request: web.Request,
    spec: Spec,
    content_type: str,
    frame: Callable[[int], bytes],
    beat: bytes,
    first: bytes,
) -> web.StreamResponse:
    refused = await _refused(request)
    if refused is not None:
        return refused
    after = _resume_http(request, "Last-Event-ID" if content_type == "text/event-stream" else None)
    stats = _stats(request)
    stats.connections += 1
    stats.resumes.append(after)
    del stats.resumes[:-1000]
    start = (after or 0) + 1
    if spec.total and start > spec.total:
        return web.Response(status=204)
    response = web.StreamResponse(headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        if first:
            await response.write(first)
        outcome = await _pump(request, spec, start, HttpChannel(response, frame, beat))
    except (ConnectionError, RuntimeError):
        return response  # the client went away (or dropped us on purpose)
    if outcome == "drop":
        _abort(request)
    elif outcome == "stall":
        await _hold_then_abort(request, spec.stall)
    else:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.write_eof()
    return response


async def sse(request: web.Request) -> web.StreamResponse:
    spec = Spec.parse(request)
    multiline = int_param(request, "multiline", 0, minimum=0, maximum=1) == 1
    retry = int_param(request, "retry", -1, minimum=-1)

    def frame(seq: int) -> bytes:
        data = spec.body(seq)
        if multiline:
            head, _, rest = data.partition(",")
            data = f"{head},\ndata: {rest}"
        return f"id: {seq}\nevent: {TYPES[seq % 3]}\ndata: {data}\n\n".encode()

    first = f"retry: {retry}\n\n".encode() if retry >= 0 else b""
    return await _http_stream(request, spec, "text/event-stream", frame, b": heartbeat\n\n", first)


async def ndjson(request: web.Request) -> web.StreamResponse:
    spec = Spec.parse(request)

    def frame(seq: int) -> bytes:
        return f"{spec.body(seq)}\n".encode()

    return await _http_stream(request, spec, "application/x-ndjson", frame, b"\n", b"")


def _server_text_frame(data: bytes) -> bytes:
    """An unmasked text frame, to write half of one before a drop."""
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + data


class WsChannel(Channel):
    def __init__(self, socket: web.WebSocketResponse, spec: Spec, request: web.Request) -> None:
        self.socket, self.spec, self.transport = socket, spec, request.transport

    async def send(self, first: int, count: int) -> None:
        send, body = self.socket.send_str, self.spec.body
        for seq in range(first, first + count):
            await send(body(seq))

    async def send_partial(self, seq: int) -> None:
        if self.transport is not None:
            frame = _server_text_frame(self.spec.body(seq).encode())
            self.transport.write(frame[: len(frame) // 2])

    async def heartbeat(self) -> None:
        await self.socket.ping()


async def ws(request: web.Request) -> web.StreamResponse:
    spec = Spec.parse(request)
    stats = _stats(request)
    refused = await _refused(request)
    if refused is not None:
        return refused
    socket = web.WebSocketResponse(autoping=True)
    await socket.prepare(request)
    stats.connections += 1
    try:
        hello = await socket.receive(timeout=10)
        doc = json.loads(hello.data) if hello.type is WSMsgType.TEXT else None
    except (TimeoutError, ValueError):
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("after", 0) or 0, int):
        await socket.close(code=1008, message=b'first message must be {"after": <seq or null>}')
        return socket
    after = doc.get("after")
    stats.resumes.append(after)
    del stats.resumes[:-1000]
    start = (after or 0) + 1

    async def answer_pings() -> None:
        # receive() answers pings; the stream ignores anything else the client sends.
        async for _ in socket:
            pass

    reader = asyncio.create_task(answer_pings())
    try:
        outcome = await _pump(request, spec, start, WsChannel(socket, spec, request))
    except (ConnectionError, RuntimeError):
        outcome = "gone"
    if outcome == "end":
        await socket.close(code=1000, message=b"end of stream")
    elif outcome == "stall":
        reader.cancel()
        if request.transport is not None:
            request.transport.pause_reading()  # no more pongs: the client's heartbeat has to notice
        await _hold_then_abort(request, spec.stall)
    else:
        _abort(request)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
        await reader
    return socket


async def put_script(request: web.Request) -> web.Response:
    request.app[STREAMS_KEY].scripts[request.match_info["name"]] = await request.read()
    return web.json_response({"stored": request.match_info["name"]})


async def get_script(request: web.Request) -> web.StreamResponse:
    body = request.app[STREAMS_KEY].scripts.pop(request.match_info["name"], None)
    if body is None:
        return web.Response(status=204)
    chunk = int_param(request, "chunk", 1, minimum=1)
    pause = float_param(request, "pause", 0.005, maximum=5)
    ctype = request.query.get("content_type", "text/event-stream")
    response = web.StreamResponse(headers={"Content-Type": ctype})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for i in range(0, len(body), chunk):
        await response.write(body[i : i + chunk])
        await asyncio.sleep(pause)
    await response.write_eof()
    return response


async def stats(request: web.Request) -> web.Response:
    s = _stats(request)
    return web.json_response(
        {
            "sent": s.sent,
            "connections": s.connections,
            "drops": s.drops,
            "stalls": s.stalls,
            "refused": s.refused,
            "resumes": s.resumes,
        }
    )


def register(app: web.Application) -> None:
    app[STREAMS_KEY] = StreamsState()
    app.router.add_get("/streams/sse", sse)
    app.router.add_get("/streams/ndjson", ndjson)
    app.router.add_get("/streams/ws", ws)
    app.router.add_put("/streams/scripts/{name}", put_script)
    app.router.add_get("/streams/scripts/{name}", get_script)
    app.router.add_get("/streams/stats", stats)
