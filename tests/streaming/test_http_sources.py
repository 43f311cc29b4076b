"""SSE, NDJSON and WebSocket sources against the sandbox as a real process."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_integrations.connections.http_config import AuthConfig, HttpClientConfig, TlsConfig
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.sandbox.certs import TlsMaterial
from airflow_provider_integrations.sandbox.process import SandboxProcess
from airflow_provider_integrations.streaming import (
    NdjsonSource,
    SseSource,
    StreamGaveUpError,
    StreamOptions,
    StreamProtocolError,
    WebSocketSource,
)
from airflow_provider_integrations.streaming._http import HttpStreamSource
from tests.streaming.conftest import FAST, put_script, stream_stats

KINDS = ("sse", "ndjson_offset", "ndjson_cursor", "websocket")


@pytest.fixture(scope="module", autouse=True)
def sandbox_stays_healthy(sandbox: SandboxProcess) -> Iterator[None]:
    yield
    # Drops, stalls and refusals are all deliberate; a traceback would be a sandbox bug.
    assert "Traceback" not in sandbox.stderr_text(), sandbox.stderr_text()


def make_source(
    kind: str, config: HttpClientConfig, params: dict[str, Any], options: StreamOptions = FAST, **kw: Any
) -> HttpStreamSource:
    if kind == "sse":
        return SseSource(config, "/streams/sse", params=params, options=options, **kw)
    if kind == "ndjson_offset":
        return NdjsonSource(config, "/streams/ndjson", params=params, options=options, **kw)
    if kind == "ndjson_cursor":
        return NdjsonSource(
            config, "/streams/ndjson", params=params, position_field="seq", options=options, **kw
        )
    return WebSocketSource(config, "/streams/ws", params=params, hello={}, options=options, **kw)


async def collect(source: HttpStreamSource, start: Any = None, limit: int | None = None) -> list[int]:
    seqs: list[int] = []
    async with source.open(start):
        async for event in source:
            seqs.append(event.json()["seq"])
            if limit is not None and len(seqs) >= limit:
                break
    return seqs


@pytest.mark.parametrize("kind", KINDS)
async def test_drops_every_n_events_lose_and_repeat_nothing(
    kind: str, http_config: HttpClientConfig, sandbox: SandboxProcess, key: str
) -> None:
    params = {"key": key, "total": 1000, "drop_every": 97, "partial": 1, "size": 120}
    source = make_source(kind, http_config, params)
    seqs = await collect(source)
    # Resumed exactly after the last complete event: in order, none missing, none twice (not even before
    # dedup), and the half-written event at each drop was discarded.
    assert seqs == list(range(1, 1001))
    stats = stream_stats(sandbox, key)
    assert stats["drops"] == 10 and source.reconnects >= 10
    assert stats["resumes"][:11] == [None, *range(97, 1000, 97)]
    assert str(source.position) == "1000"


@pytest.mark.parametrize("kind", KINDS)
async def test_open_from_a_position_resumes_after_it(
    kind: str, http_config: HttpClientConfig, sandbox: SandboxProcess, key: str
) -> None:
    start = "40" if kind == "sse" else 40
    seqs = await collect(make_source(kind, http_config, {"key": key, "total": 60}), start)
    assert seqs == list(range(41, 61))
    assert stream_stats(sandbox, key)["resumes"][0] == 40


@pytest.mark.parametrize("kind", ["sse", "ndjson_offset", "websocket"])
async def test_a_stalled_server_is_detected_and_the_stream_resumes(
    kind: str, http_config: HttpClientConfig, sandbox: SandboxProcess, key: str
) -> None:
    params = {"key": key, "total": 30, "stall_after": 10, "stall": 20}
    options = dataclasses.replace(FAST, read_timeout=0.4)
    # The WebSocket's liveness check is its ping: a stalled server answers none.
    extra = {"heartbeat": 0.2} if kind == "websocket" else {}
    started = time.monotonic()
    seqs = await collect(make_source(kind, http_config, params, options, **extra))
    assert seqs == list(range(1, 31))
    assert stream_stats(sandbox, key)["stalls"] == 2
    assert time.monotonic() - started < 10, "the client gave up on a stalled connection, not the server"


async def test_sse_heartbeats_keep_an_idle_connection_alive(
    http_config: HttpClientConfig, sandbox: SandboxProcess, key: str
) -> None:
    # An event every 0.5 s, a comment every 0.05 s, a read timeout of 0.3 s: only heartbeats save it.
    params = {"key": key, "total": 3, "rate": 2, "heartbeat": 0.05}
    source = make_source("sse", http_config, params, dataclasses.replace(FAST, read_timeout=0.3))
    assert await collect(source) == [1, 2, 3]
    assert source.heartbeats >= 5
    # No reconnect for lack of data: one streaming connection, then the 204 that ends the stream.
    assert source.reconnects == 1 and stream_stats(sandbox, key)["connections"] == 2


async def test_sse_retry_field_sets_the_delay_before_reconnecting(
    http_config: HttpClientConfig, sandbox: SandboxProcess, key: str
) -> None:
    params = {"key": key, "total": 30, "drop_every": 10, "retry": 300}
    started = time.monotonic()
    assert await collect(make_source("sse", http_config, params)) == list(range(1, 31))
    # Three reconnects (two drops, then the 204 that ends the stream), each after the server's 300 ms.
    assert time.monotonic() - started >= 0.9
    assert stream_stats(sandbox, key)["connections"] == 4


async def test_sse_multi_line_data_and_event_types(http_config: HttpClientConfig, key: str) -> None:
    source = SseSource(
        http_config, "/streams/sse", params={"key": key, "total": 6, "multiline": 1}, options=FAST
    )
    async with source.open():
        events = [event async for event in source]
    assert [e.json()["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert all("\n" in e.data for e in events)
    assert [e.type for e in events] == ["updated", "deleted", "created"] * 2


async def test_sse_over_the_wire_in_three_byte_chunks(
    http_config: HttpClientConfig, sandbox: SandboxProcess
) -> None:
    name = f"sse-script-{time.monotonic_ns()}"
    body = (
        "retry: 10\r\n: hi\r\n\r\nid: a1\r\nevent: ünïcode\r\ndata: x\r\ndata: y\r\n\r\ndata: tail".encode()
    )
    put_script(sandbox, name, body)
    source = SseSource(
        http_config, f"/streams/scripts/{name}", params={"chunk": 3, "pause": 0.001}, options=FAST
    )
    async with source.open():
        events = [event async for event in source]
    # The unterminated last event is dropped at the end of the body; the replay is followed by a 204.
    assert [(e.position, e.type, e.data) for e in events] == [("a1", "ünïcode", "x\ny")]
    assert source.heartbeats == 1 and source.reconnects == 1


async def test_ndjson_blank_lines_crlf_and_an_unterminated_last_record(
    http_config: HttpClientConfig, sandbox: SandboxProcess
) -> None:
    name = f"ndjson-script-{time.monotonic_ns()}"
    put_script(sandbox, name, b'{"seq": 1}\r\n\n\n{"seq": 2}\n\r\n{"seq": 3, "s": "\xc3\xa9"}')
    source = NdjsonSource(
        http_config,
        f"/streams/scripts/{name}",
        params={"chunk": 4, "pause": 0.001, "content_type": "application/x-ndjson"},
        position_field="seq",
        options=FAST,
    )
    async with source.open():
        events = [event async for event in source]
    assert [e.position for e in events] == [1, 2, 3]
    assert events[2].json()["s"] == "é"
    assert source.heartbeats == 3


async def test_sse_rejects_a_response_that_is_not_an_event_stream(http_config: HttpClientConfig) -> None:
    source = SseSource(http_config, "/health", options=FAST)
    with pytest.raises(StreamProtocolError, match="text/event-stream"):
        await collect(source)


@pytest.mark.parametrize("kind", KINDS)
async def test_auth_of_the_connection_applies_and_a_refusal_is_fatal(
    kind: str, make_config: Callable[..., HttpClientConfig], sandbox: SandboxProcess, key: str
) -> None:
    params = {"key": key, "total": 5, "auth": "bearer"}
    good = make_config(auth=AuthConfig(scheme="bearer", secret="sandbox-token"))
    assert await collect(make_source(kind, good, params)) == [1, 2, 3, 4, 5]
    bad = make_config(auth=AuthConfig(scheme="bearer", secret="wrong-token"))
    with pytest.raises(errors.AuthenticationError) as caught:
        await collect(make_source(kind, bad, params))
    assert "wrong-token" not in str(caught.value) and caught.value.status == 401
    assert stream_stats(sandbox, key)["refused"] == 1, "a fatal error is not retried"


@pytest.mark.parametrize("kind", ["ndjson_cursor", "websocket"])
async def test_oauth2_token_is_refreshed_when_revoked_between_reconnects(
    kind: str, make_config: Callable[..., HttpClientConfig], sandbox: SandboxProcess, key: str
) -> None:
    config = make_config(
        auth=AuthConfig(
            scheme="oauth2_client_credentials",
            login="sandbox-client",
            secret="sandbox-secret",
            oauth2_token_url="/oauth/token",
        )
    )
    source = make_source(kind, config, {"key": key, "total": 40, "drop_every": 10, "auth": "oauth2"})
    seqs: list[int] = []
    async with source.open():
        async for event in source:
            seqs.append(event.json()["seq"])
            if len(seqs) == 5:
                revoke = urllib.request.Request(f"{sandbox.url}/control/revoke-tokens", method="POST")
                await asyncio.to_thread(urllib.request.urlopen, revoke, None, 5)
    assert seqs == list(range(1, 41))
    assert stream_stats(sandbox, key)["refused"] == 1  # one 401, then a fresh token


async def test_retriable_statuses_are_retried_with_backoff(http_config: HttpClientConfig, key: str) -> None:
    source = NdjsonSource(http_config, "/flaky", params={"key": key, "fail": 2, "status": 503}, options=FAST)
    async with source.open():
        first = await anext(aiter(source))
    assert first.json() == {"ok": True, "attempt": 3}
    assert source.reconnects >= 2


async def test_not_found_is_fatal(http_config: HttpClientConfig) -> None:
    source = NdjsonSource(http_config, "/no/such/stream", options=FAST)
    with pytest.raises(errors.NotFoundError):
        await collect(source)
    assert source.reconnects == 0


async def test_gives_up_after_max_failures_in_a_row(make_config: Callable[..., HttpClientConfig]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    config = make_config(base_url=f"http://127.0.0.1:{port}")
    options = dataclasses.replace(FAST, max_failures=3)
    for kind in ("sse", "websocket"):
        source = make_source(kind, config, {}, options)
        with pytest.raises(StreamGaveUpError) as caught:
            await collect(source)
        assert caught.value.attempts == 3 and source.reconnects == 2
        assert isinstance(caught.value.__cause__, errors.TransportError)


async def test_position_is_the_last_event_handed_over(http_config: HttpClientConfig, key: str) -> None:
    source = make_source("ndjson_cursor", http_config, {"key": key, "total": 500})
    async with source.open(100):
        assert source.position == 100
        batch = await source.read_batch(max_events=7)
        assert batch is not None and [e.position for e in batch] == list(range(101, 108))
        assert source.position == 107
        event = await anext(aiter(source))
        assert event.position == 108 and source.position == 108
        rest = 0
        while (batch := await source.read_batch(timeout=5)) is not None:
            assert batch, "the server sends without pause"
            rest += len(batch)
        assert rest == 392 and source.position == 500


@pytest.mark.parametrize("kind", ["sse", "websocket"])
async def test_tls_settings_of_the_connection_apply(
    kind: str,
    make_config: Callable[..., HttpClientConfig],
    sandbox_tls: SandboxProcess,
    tls_material: TlsMaterial,
) -> None:
    trusted = make_config(base_url=sandbox_tls.url, tls=TlsConfig(ca_bundle_pem=tls_material.ca_cert_pem))
    assert await collect(make_source(kind, trusted, {"total": 3})) == [1, 2, 3]
    untrusted = make_config(base_url=sandbox_tls.url)  # the system CAs do not know the sandbox's
    source = make_source(kind, untrusted, {"total": 3})
    with pytest.raises(errors.TlsVerificationError):
        await collect(source)
    assert source.reconnects == 0, "a certificate problem is not retried"
