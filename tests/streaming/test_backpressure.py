"""A producer far faster than its consumer: the source's buffer stays bounded and TCP holds the server
back, so memory does not grow with the length of the stream."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import psutil
import pytest

from airflow_provider_integrations.connections.http_config import HttpClientConfig
from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests.streaming.conftest import FAST, stream_stats
from tests.streaming.test_http_sources import make_source

EVENT_BYTES = 1000
MAX_BUFFERED = 500
CONSUMED = 12_000


@pytest.mark.parametrize("kind", ["sse", "ndjson_offset", "websocket"])
async def test_a_slow_consumer_holds_back_a_fast_producer(
    kind: str, http_config: HttpClientConfig, sandbox: SandboxProcess, key: str
) -> None:
    options = dataclasses.replace(FAST, max_buffered=MAX_BUFFERED, chunk_size=2**16)
    # rate=0: the server writes as fast as the socket takes it, endlessly.
    source = make_source(kind, http_config, {"key": key, "size": EVENT_BYTES}, options)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    backlog: list[int] = []
    consumed = 0
    started = time.monotonic()
    async with source.open():
        async for _ in source:
            consumed += 1
            if consumed % 50 == 0:
                await asyncio.sleep(0.002)  # the slow consumer: at most 25,000 events/s
            if consumed in (4_000, CONSUMED):
                sent = (await asyncio.to_thread(stream_stats, sandbox, key))["sent"]
                backlog.append(sent - consumed)
            if consumed == CONSUMED:
                break
        high_water = source.high_water
    elapsed = time.monotonic() - started
    rss_growth = process.memory_info().rss - rss_before

    # Unbounded, the server (200,000+ events/s here) would have sent 10x what was consumed by now.
    assert consumed / elapsed < 25_000
    # What the reader may hold: the bound plus one read (a 64 KiB chunk is at most 66 events of 1 KB).
    assert high_water <= MAX_BUFFERED + 2**16 // EVENT_BYTES + 1
    # The rest of what the server sent waits in socket buffers: bounded, and not growing with time.
    assert all(b < 16_000 for b in backlog), backlog
    assert backlog[1] <= backlog[0] + 2_000, backlog
    assert rss_growth < 40 * 2**20, f"RSS grew {rss_growth / 2**20:.0f} MB"
