"""The SQLite event log: the callback store's file (or any other), one machine.

SQLite has one writer at a time, so the source counter and the event row commit together and in
sequence order without further locking. Appends go through a writer thread that group-commits what is
queued (each append in its own savepoint); reads use a second connection. Followers are woken by one
shared poller per log that reads the counters of the followed sources once per interval.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Final

from airflow_provider_integrations.webhooks.crypto import PayloadCodec
from airflow_provider_integrations.webhooks.events import (
    DEFAULT_BATCH,
    AppendOutcome,
    AppendResult,
    Event,
    EventLog,
)
from airflow_provider_integrations.webhooks.store._sqlite_base import (
    DEFAULT_POLL_INTERVAL,
    SqliteStoreBase,
    from_timestamp,
    select_in,
)
from airflow_provider_integrations.webhooks.store.base import utcnow

__all__ = ["SqliteEventLog"]

_DDL: Final = (
    """
CREATE TABLE IF NOT EXISTS webhook_event_sources (
    source TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
) WITHOUT ROWID""",
    """
CREATE TABLE IF NOT EXISTS webhook_events (
    source TEXT NOT NULL,
    seq INTEGER NOT NULL,
    webhook_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload BLOB NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (source, seq),
    UNIQUE (source, webhook_id)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS webhook_events_received ON webhook_events (received_at)",
    """
CREATE TABLE IF NOT EXISTS webhook_event_consumers (
    consumer TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    seq INTEGER NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID""",
)


class SqliteEventLog(SqliteStoreBase, EventLog):
    """:param path: the database file (created, with its directory, if missing).
    :param poll_interval: seconds between the shared poller's reads of the followed sources' counters."""

    def __init__(
        self,
        path: str | Path,
        *,
        codec: PayloadCodec | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        super().__init__(path, ddl=_DDL, threads="webhook-events", codec=codec, poll_interval=poll_interval)
        self._seen: dict[str, int] = {}

    async def _append(
        self, source: str, webhook_id: str, event_type: str, blob: bytes, at: datetime
    ) -> AppendResult:
        ts = at.timestamp()

        def insert(conn: sqlite3.Connection) -> AppendResult:
            found = conn.execute(
                "SELECT seq FROM webhook_events WHERE source = ? AND webhook_id = ?", (source, webhook_id)
            ).fetchone()
            if found is not None:
                return AppendResult(AppendOutcome.DUPLICATE, found[0])
            (seq,) = conn.execute(
                "INSERT INTO webhook_event_sources (source, last_seq) VALUES (?, 1) "
                "ON CONFLICT (source) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
                (source,),
            ).fetchone()
            conn.execute(
                "INSERT INTO webhook_events (source, seq, webhook_id, event_type, payload, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (source, seq, webhook_id, event_type, blob, ts),
            )
            return AppendResult(AppendOutcome.ACCEPTED, seq)

        return await self._writer.run(insert)

    async def read(self, source: str, after: int, *, limit: int = DEFAULT_BATCH) -> list[Event]:
        rows = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT seq, webhook_id, event_type, payload, received_at FROM webhook_events "
                "WHERE source = ? AND seq > ? ORDER BY seq LIMIT ?",
                (source, after, limit),
            ).fetchall()
        )
        return [
            self._event(source, seq, wid, kind, blob, from_timestamp(at)) for seq, wid, kind, blob, at in rows
        ]

    async def last_seq(self, source: str) -> int:
        row = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT last_seq FROM webhook_event_sources WHERE source = ?", (source,)
            ).fetchone()
        )
        return 0 if row is None else int(row[0])

    async def _start_consumer(self, consumer: str, source: str, *, latest: bool) -> tuple[str, int]:
        at = utcnow().timestamp()

        def start(conn: sqlite3.Connection) -> tuple[str, int]:
            conn.execute(
                "INSERT INTO webhook_event_consumers (consumer, source, seq, updated_at) "
                "SELECT ?, ?, CASE WHEN ? THEN coalesce((SELECT last_seq FROM webhook_event_sources "
                "WHERE source = ?), 0) ELSE 0 END, ? ON CONFLICT (consumer) DO NOTHING",
                (consumer, source, latest, source, at),
            )
            row: tuple[str, int] = conn.execute(
                "SELECT source, seq FROM webhook_event_consumers WHERE consumer = ?", (consumer,)
            ).fetchone()
            return row

        return await self._writer.run(start)

    async def commit(self, consumer: str, seq: int) -> None:
        at = utcnow().timestamp()
        await self._writer.run(
            lambda conn: (
                conn.execute(
                    "UPDATE webhook_event_consumers SET seq = max(seq, ?), updated_at = ? WHERE consumer = ?",
                    (seq, at, consumer),
                )
                and None
            )
        )

    async def _delete_before(self, cutoff: datetime) -> int:
        ts = cutoff.timestamp()
        count: int = await self._writer.run(
            lambda conn: conn.execute("DELETE FROM webhook_events WHERE received_at < ?", (ts,)).rowcount
        )
        return count

    async def _ready(self, keys: list[str]) -> set[str]:
        """The followed sources whose counter moved since the last poll (unknown ones count as moved)."""

        def query(conn: sqlite3.Connection) -> dict[str, int]:
            return dict(
                select_in(
                    conn, "SELECT source, last_seq FROM webhook_event_sources WHERE source IN ({marks})", keys
                )
            )

        counters = await self._reader.run(query)
        changed = {s for s in keys if s not in self._seen or counters.get(s, 0) != self._seen[s]}
        self._seen = {s: counters.get(s, 0) for s in keys}
        return changed
