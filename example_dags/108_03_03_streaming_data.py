"""
# Streaming data: stream integration, window processing, batch from stream

A partner pushes events continuously: Server-Sent Events, NDJSON over a long HTTP response, WebSocket
messages (or PostgreSQL LISTEN/NOTIFY and an outbox table). `StreamBatchOperator` turns such a stream
into **batches**: it reads a window of events, hands it to a sink, and commits a checkpoint.

## Stream integration

A stream is described by a **spec**, plain data validated when the DAG is parsed (a typo is an import
error naming `source.<field>`), and turned into a source where it is read:

    {"kind": "sse", "conn_id": "sandbox_api", "path": "/streams/sse", "params": {...}}

`conn_id` is an `integration_http` connection, so auth, TLS, headers, rate limit and retry policy come
from it (credentials never go into the spec: a header named like one is refused). Every source resumes
after the last event it read when the server drops the connection: SSE sends `Last-Event-ID`, NDJSON
`?after=<seq>` (`position_field`) or `?offset=<n>`, WebSocket a hello message `{"after": <seq>}`.

## Window processing

`window` closes a batch by count (`max_events`), by size (`max_bytes`) or by time (`max_seconds`
after its first event: a tumbling window, or the flush timeout of a count or byte window), whichever
comes first. Windows never overlap and are never empty; the end of the stream flushes the last one.

- `sse_count_windows`: 100 events per window (2 s flush timeout), in the triggerer (`deferrable=True`);
- `ndjson_byte_windows`: at most 8 KiB per window, read on the worker (`deferrable=False`: the same code);
- `websocket_time_windows`: tumbling 0.5 s windows over a stream paced at 400 events/s.

## Batch from stream

Per window the task calls the **sink** (here a function per DAG; `PostgresSink` upserts into a table,
see `108_10_04_realtime_ingestion`) and only then commits the window's last position for
`(stream, consumer)` in the checkpoint store (`[integrations] stream_checkpoints`: a SQLite file under
`AIRFLOW_HOME` by default, or `postgres_conn://<conn_id>`). A crash before the commit replays the window:
at-least-once, so the sink must be idempotent. Mapping results of the sink are summed in the task's
summary (its XCom), which `verify` checks. `max_windows` lets one task process several windows; it also
stops at the end of the stream or after `idle_timeout` seconds without an event.

In the triggerer a window travels to the task **inline** while it is under `max_inline_bytes` (128 KiB);
a larger one is sent as positions and read again on the worker, so no large payload goes through the
metadata database. Each run here uses its own `consumer` (`{{ run_id }}`), so a re-run starts at the
beginning; in production a fixed consumer name resumes where the previous run stopped.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_integrations.operators.streams import StreamBatch, StreamBatchOperator

SSE_TOTAL, NDJSON_TOTAL, WS_TOTAL = 500, 600, 600
MAX_BYTES = 8 * 1024


# [START howto_stream_batch_sinks]
def count_types(batch: StreamBatch) -> dict[str, int]:
    """A window's events by type; the operator sums these counts over the windows."""
    counts = Counter(doc["type"] for doc in batch.json())
    print(
        f"window {batch.first_position}..{batch.last_position}: {len(batch)} events, closed by {batch.reason}"
    )
    return dict(counts)


def check_byte_window(batch: StreamBatch) -> dict[str, int]:
    return {"events": len(batch), "over_limit": int(batch.size > MAX_BYTES)}


def note_time_window(batch: StreamBatch) -> dict[str, int]:
    return {"events": len(batch), "closed_by_time": int(batch.reason == "time")}


# [END howto_stream_batch_sinks]


with DAG(
    dag_id="108_03_03_streaming_data",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    doc_md=__doc__,
    tags=["example", "streaming"],
    default_args={"retries": 0},
) as dag:
    # [START howto_stream_batch_operator]
    sse_count_windows = StreamBatchOperator(
        task_id="sse_count_windows",
        source={
            "kind": "sse",
            "conn_id": "sandbox_api",
            "path": "/streams/sse",
            "params": {"total": SSE_TOTAL, "drop_every": 180},  # the server drops us every 180 events
            "key_field": "key",
        },
        window={"max_events": 100, "max_seconds": 2.0},
        sink=count_types,
        consumer="108_03_03-sse-{{ run_id }}",
        max_windows=20,
        deferrable=True,
    )
    # [END howto_stream_batch_operator]

    ndjson_byte_windows = StreamBatchOperator(
        task_id="ndjson_byte_windows",
        source={
            "kind": "ndjson",
            "conn_id": "sandbox_api",
            "path": "/streams/ndjson",
            "params": {"total": NDJSON_TOTAL, "size": 200},
            "position_field": "seq",
        },
        window={"max_bytes": MAX_BYTES, "max_seconds": 2.0},
        sink=check_byte_window,
        consumer="108_03_03-ndjson-{{ run_id }}",
        max_windows=100,
        deferrable=False,
    )

    websocket_time_windows = StreamBatchOperator(
        task_id="websocket_time_windows",
        source={
            "kind": "websocket",
            "conn_id": "sandbox_api",
            "path": "/streams/ws",
            "params": {"total": WS_TOTAL, "rate": 400},
            "position_field": "seq",
        },
        window={"max_seconds": 0.5},
        sink=note_time_window,
        consumer="108_03_03-ws-{{ run_id }}",
        max_windows=20,
        deferrable=True,
    )

    @task
    def verify(sse: dict[str, Any], ndjson: dict[str, Any], ws: dict[str, Any]) -> None:
        # Every event once, despite the drops: the SSE source resumed with Last-Event-ID each time.
        assert sse["events"] == SSE_TOTAL and sse["stopped"] == "end", sse
        assert sse["windows"] == SSE_TOTAL // 100 and sse["last_position"] == str(SSE_TOTAL), sse
        assert sse["sink"] == {"created": 166, "updated": 167, "deleted": 167}, sse["sink"]
        # Byte windows: about 8 KiB each (a 200-byte event plus framing), never more.
        assert ndjson["events"] == NDJSON_TOTAL and ndjson["sink"]["over_limit"] == 0, ndjson
        assert ndjson["windows"] >= NDJSON_TOTAL * 200 // MAX_BYTES, ndjson
        # Tumbling time windows over a paced stream: several windows, all but the last closed by time.
        assert ws["events"] == WS_TOTAL and ws["windows"] >= 2, ws
        assert ws["sink"]["closed_by_time"] >= ws["windows"] - 1, ws
        print(f"sse: {sse}\nndjson: {ndjson}\nwebsocket: {ws}")

    verify(sse_count_windows.output, ndjson_byte_windows.output, websocket_time_windows.output)  # type: ignore[arg-type]
