"""Stream sources, windows and checkpoints, free of Airflow.

Every source is an async iterator of :class:`Event` with a resumable ``position``; it reconnects
with backoff after a drop and resumes after the last event it read, and holds at most
``StreamOptions.max_buffered`` events ahead of its consumer (TCP pushes back on a faster producer).

==========================  ===============================  =====================================
source                      position                         resumes with
==========================  ===============================  =====================================
:class:`SseSource`          the event ``id``                 ``Last-Event-ID``
:class:`NdjsonSource`       a JSON field, or the offset      ``?after=<pos>`` / ``?offset=<n>``
:class:`WebSocketSource`    a JSON field, or the count       a hello message ``{"after": <pos>}``
:class:`PgNotifySource`     ``None`` or a JSON field         (NOTIFY cannot be replayed)
:class:`PgTableTail`        the row id, or ``"<ts>|<id>"``   ``WHERE id > $1`` (woken by NOTIFY)
==========================  ===============================  =====================================

HTTP sources take the frozen config of an ``integration_http`` connection and lease its shared
client, so auth, TLS, headers, rate limit and circuit breaker apply; PostgreSQL sources take a
``PgConfig`` and share its pool and LISTEN connection.

The consumer loop (at-least-once; an idempotent sink makes it effectively-once)::

    from airflow_provider_integrations.streaming import (
        Checkpoint, SqliteCheckpointStore, SseSource, WindowSpec, windows,
    )

    checkpoint = Checkpoint(SqliteCheckpointStore("/var/lib/af/checkpoints.db"), "orders", "warehouse")
    source = SseSource(http_config, "/orders/events")
    async with source.open(await checkpoint.load()):
        async for window in windows(source, WindowSpec(max_events=500, max_seconds=2.0)):
            await upsert(window.events)               # keyed by the event's id
            await checkpoint.commit(window.last_position)

``await source.ready()`` waits until the first connection is up (before publishing NOTIFYs, say).
Per event instead: ``async for event in source: ...; await checkpoint.commit(event.position)``;
batches without windows: ``await source.read_batch(max_events, timeout)`` (``[]`` on timeout,
``None`` at the end). ``event.json()`` parses the data once; JSON position and key fields are read
lazily, so a consumer that checkpoints per window pays for two parses per window, not one per event.

Errors: retriable transport errors are retried inside the source; fatal ones (``AuthenticationError``,
``NotFoundError``, :class:`StreamProtocolError`, a non-retriable ``PgError``) and
:class:`StreamGaveUpError` (``StreamOptions.max_failures`` failed attempts in a row) end the
iteration with that error. See :mod:`.errors` for the tree.
"""

from __future__ import annotations

from airflow_provider_integrations.streaming.checkpoints import (
    Checkpoint,
    CheckpointStore,
    PgCheckpointStore,
    SqliteCheckpointStore,
)
from airflow_provider_integrations.streaming.errors import (
    CheckpointError,
    StreamConfigError,
    StreamError,
    StreamGaveUpError,
    StreamProtocolError,
)
from airflow_provider_integrations.streaming.events import Event, Position, Source, StreamOptions
from airflow_provider_integrations.streaming.ndjson import NdjsonSource
from airflow_provider_integrations.streaming.pg_notify import PgNotifySource
from airflow_provider_integrations.streaming.pg_tail import PgTableTail
from airflow_provider_integrations.streaming.sse import SseParser, SseSource
from airflow_provider_integrations.streaming.websocket import WebSocketSource
from airflow_provider_integrations.streaming.windows import Window, WindowSpec, windows

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointStore",
    "Event",
    "NdjsonSource",
    "PgCheckpointStore",
    "PgNotifySource",
    "PgTableTail",
    "Position",
    "Source",
    "SqliteCheckpointStore",
    "SseParser",
    "SseSource",
    "StreamConfigError",
    "StreamError",
    "StreamGaveUpError",
    "StreamOptions",
    "StreamProtocolError",
    "WebSocketSource",
    "Window",
    "WindowSpec",
    "windows",
]
