"""A stream consumer run as a child process by the kill-and-restart tests.

``python -m tests.streaming._consumer KIND URL KEY SCHEMA STORE TOTAL [PARAMS_JSON]`` reads the stream
from its checkpoint, in windows; per window it appends every delivery to ``receipts``, upserts the
events into ``dest`` (keyed by ``seq``), then commits the checkpoint. It exits 0 once the window
holding sequence ``TOTAL`` is committed. ``STORE`` is ``postgres`` or the path of a SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from airflow_provider_integrations.connections.http_config import HttpClientConfig, RetryPolicy
from airflow_provider_integrations.postgres import PgConfig, copy_records, lease_pool, upsert_records
from airflow_provider_integrations.streaming import (
    Checkpoint,
    CheckpointStore,
    NdjsonSource,
    PgCheckpointStore,
    PgTableTail,
    SqliteCheckpointStore,
    SseSource,
    StreamOptions,
    WebSocketSource,
    WindowSpec,
    windows,
)
from airflow_provider_integrations.streaming.base import StreamSource

PG = PgConfig(database="test", name="kill-test-consumer")
OPTIONS = StreamOptions(backoff=RetryPolicy(base_delay=0.01, max_delay=0.1))


def source_for(kind: str, url: str, params: dict[str, Any], schema: str) -> StreamSource:
    http = HttpClientConfig(base_url=url, name="sandbox", retry=RetryPolicy(base_delay=0.01, max_delay=0.1))
    if kind == "sse":
        return SseSource(http, "/streams/sse", params=params, options=OPTIONS)
    if kind == "ndjson":
        return NdjsonSource(http, "/streams/ndjson", params=params, position_field="seq", options=OPTIONS)
    if kind == "websocket":
        return WebSocketSource(http, "/streams/ws", params=params, hello={}, options=OPTIONS)
    return PgTableTail(PG, "outbox", schema=schema, poll_interval=0.05, batch_size=200, options=OPTIONS)


def text(data: str | bytes) -> str:
    return data.decode() if isinstance(data, bytes) else data


async def main(
    kind: str, url: str, key: str, schema: str, store_spec: str, total: int, params: dict[str, Any]
) -> None:
    store: CheckpointStore = (
        PgCheckpointStore(PG, schema=schema)
        if store_spec == "postgres"
        else SqliteCheckpointStore(store_spec)
    )
    checkpoint = Checkpoint(store, f"{kind}:{key}", "kill-test")
    source = source_for(kind, url, params, schema)
    try:
        async with lease_pool(PG) as pool, source.open(await checkpoint.load()):
            async for window in windows(source, WindowSpec(max_events=50, max_seconds=0.2)):
                rows = [(event.json()["seq"], text(event.data)) for event in window.events]
                await copy_records(pool, "receipts", ["seq"], [(seq,) for seq, _ in rows], schema=schema)
                await upsert_records(pool, "dest", ["seq", "body"], rows, ["seq"], schema=schema)
                await checkpoint.commit(window.last_position)  # only after the rows are stored
                if any(seq == total for seq, _ in rows):
                    break
    finally:
        await store.close()


if __name__ == "__main__":
    kind, url, key, schema, store_spec, total = sys.argv[1:7]
    extra = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
    asyncio.run(main(kind, url, key, schema, store_spec, int(total), extra))
