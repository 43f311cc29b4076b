"""The PostgreSQL event log: many receivers and triggerers share one database.

Appends are group-committed: concurrent appends share one transaction, which locks the counter rows of
its sources (in name order, so two batches cannot deadlock), numbers the new events, and sends one NOTIFY
with the sources that moved. The lock is what keeps commit order equal to sequence order across
receivers, and the NOTIFY leaves only at commit, so a woken follower always finds the rows. Followers of
a process hang off one subscription of the process's shared LISTEN connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Final

from airflow_provider_integrations.postgres import PgConfig, PgError, PgPool, acquire_pool, release_pool
from airflow_provider_integrations.postgres.ident import qualified
from airflow_provider_integrations.postgres.tx import transaction
from airflow_provider_integrations.webhooks.crypto import PayloadCodec
from airflow_provider_integrations.webhooks.errors import StoreUnavailableError
from airflow_provider_integrations.webhooks.events import (
    DEFAULT_BATCH,
    DEFAULT_RETENTION,
    AppendOutcome,
    AppendResult,
    Event,
    EventLog,
    StartAt,
    checked_cursor,
    utcnow,
)
from airflow_provider_integrations.webhooks.store._batch import Batcher
from airflow_provider_integrations.webhooks.store._notify import notify_feed
from airflow_provider_integrations.webhooks.store.postgres import channel_name
from airflow_provider_integrations.webhooks.store.waiting import WaitFeed

__all__ = ["PostgresEventLog"]

# One NOTIFY per batch lists the sources that moved; 50 sources of at most 128 characters stay far
# below the 8000-byte payload limit.
_MAX_BATCH: Final = 50
# source, webhook id, stored blob, event type, received at
_Pending = tuple[str, str, bytes, str, datetime]


@contextmanager
def _log_errors(what: str) -> Iterator[None]:
    try:
        yield
    except PgError as exc:
        raise StoreUnavailableError(f"postgres event log: {what}: {exc}") from exc


class PostgresEventLog(EventLog):
    """:param config: the database (its pool and LISTEN connection are shared process-wide).
    :param schema: an existing schema to keep the tables in."""

    def __init__(
        self, config: PgConfig, *, schema: str = "public", codec: PayloadCodec | None = None
    ) -> None:
        super().__init__(codec)
        self.config = config
        self.schema = schema
        self.channel = channel_name(schema, "webhook_events")
        self._pool: PgPool | None = None
        self._sql = _statements(
            qualified("webhook_event_sources", schema),
            qualified("webhook_events", schema),
            qualified("webhook_event_consumers", schema),
        )
        self._batcher: Batcher[_Pending, AppendResult] = Batcher(self._append_batch, max_batch=_MAX_BATCH)

    def __repr__(self) -> str:
        return f"<PostgresEventLog {self.config.dsn} {self.schema}>"

    @property
    def pool(self) -> PgPool:
        if self._pool is None:
            raise StoreUnavailableError("postgres event log is not open (use 'async with log:')")
        return self._pool

    async def open(self) -> None:
        if self._pool is not None:
            return
        self._pool = acquire_pool(self.config)
        try:
            with _log_errors(f"creating the event tables in {self.schema}"):
                async with transaction(self._pool) as conn:
                    # CREATE ... IF NOT EXISTS races with itself across processes; serialise it.
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.channel)
                    await conn.execute(self._sql["ddl"])
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        await self._batcher.drain()
        pool, self._pool = self._pool, None
        if pool is not None:
            await release_pool(pool)

    async def ping(self) -> None:
        with _log_errors("ping"):
            await self.pool.fetchval("SELECT 1")

    async def append(
        self, source: str, webhook_id: str, event_type: str, body: bytes, *, now: datetime | None = None
    ) -> AppendResult:
        blob = self._encode(source, webhook_id, body)
        return await self._batcher.submit((source, webhook_id, blob, event_type, now or utcnow()))

    async def _append_batch(self, batch: list[_Pending]) -> list[AppendResult]:
        sql = self._sql
        with _log_errors(f"appending {len(batch)} events"):
            async with transaction(self.pool) as conn:
                sources = sorted({item[0] for item in batch})
                await conn.execute(sql["ensure_sources"], sources)
                before = {row[0]: row[1] for row in await conn.fetch(sql["lock_sources"], sources)}
                last = dict(before)
                results = []
                for source, webhook_id, blob, event_type, at in batch:
                    seq = last[source] + 1
                    if await conn.fetchval(sql["insert"], source, seq, webhook_id, event_type, blob, at):
                        last[source] = seq
                        results.append(AppendResult(AppendOutcome.ACCEPTED, seq))
                    else:  # a replay, possibly of an earlier item of this very batch
                        original = await conn.fetchval(sql["seq_of"], source, webhook_id)
                        results.append(AppendResult(AppendOutcome.DUPLICATE, original))
                moved = [s for s in sources if last[s] != before[s]]
                if moved:
                    await conn.execute(sql["advance"], moved, [last[s] for s in moved])
                    await conn.execute("SELECT pg_notify($1, $2)", self.channel, " ".join(moved))
        return results

    async def read(self, source: str, after: int, *, limit: int = DEFAULT_BATCH) -> list[Event]:
        with _log_errors(f"reading {source} after {after}"):
            rows = await self.pool.fetch(self._sql["read"], source, after, limit)
        return [self._event(source, seq, wid, kind, blob, at) for seq, wid, kind, blob, at in rows]

    async def last_seq(self, source: str) -> int:
        with _log_errors(f"reading the counter of {source}"):
            value = await self.pool.fetchval(self._sql["last_seq"], source)
        return 0 if value is None else int(value)

    async def start_consumer(self, consumer: str, source: str, start_at: StartAt) -> int:
        with _log_errors(f"starting consumer {consumer}"):
            row = await self.pool.fetchrow(self._sql["start"], consumer, source, start_at == "latest")
        return checked_cursor(consumer, source, row[0], row[1])

    async def commit(self, consumer: str, seq: int) -> None:
        with _log_errors(f"committing consumer {consumer}"):
            await self.pool.execute(self._sql["commit"], consumer, seq)

    async def cleanup_expired(
        self, now: datetime | None = None, *, retention: timedelta = DEFAULT_RETENTION
    ) -> int:
        with _log_errors("deleting expired events"):
            status = await self.pool.execute(self._sql["cleanup"], (now or utcnow()) - retention)
        return int(status.rsplit(" ", 1)[1])

    def _feed(self) -> WaitFeed:
        return notify_feed(self.config, self.channel)


def _statements(sources: str, events: str, consumers: str) -> dict[str, Any]:
    return {
        "ddl": f"""
            CREATE TABLE IF NOT EXISTS {sources} (
                source text PRIMARY KEY,
                last_seq bigint NOT NULL
            );
            CREATE TABLE IF NOT EXISTS {events} (
                source text NOT NULL,
                seq bigint NOT NULL,
                webhook_id text NOT NULL,
                event_type text NOT NULL,
                payload bytea NOT NULL,
                received_at timestamptz NOT NULL,
                PRIMARY KEY (source, seq),
                UNIQUE (source, webhook_id)
            );
            CREATE INDEX IF NOT EXISTS webhook_events_received ON {events} (received_at);
            CREATE TABLE IF NOT EXISTS {consumers} (
                consumer text PRIMARY KEY,
                source text NOT NULL,
                seq bigint NOT NULL,
                updated_at timestamptz NOT NULL
            )""",
        "ensure_sources": f"INSERT INTO {sources} (source, last_seq) SELECT unnest($1::text[]), 0 "
        "ON CONFLICT (source) DO NOTHING",
        "lock_sources": f"SELECT source, last_seq FROM {sources} WHERE source = ANY($1::text[]) "
        "ORDER BY source FOR UPDATE",
        "insert": f"INSERT INTO {events} (source, seq, webhook_id, event_type, payload, received_at) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source, webhook_id) DO NOTHING RETURNING true",
        "seq_of": f"SELECT seq FROM {events} WHERE source = $1 AND webhook_id = $2",
        "advance": f"UPDATE {sources} AS s SET last_seq = m.last_seq "
        "FROM unnest($1::text[], $2::bigint[]) AS m(source, last_seq) WHERE s.source = m.source",
        "read": f"SELECT seq, webhook_id, event_type, payload, received_at FROM {events} "
        "WHERE source = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        "last_seq": f"SELECT last_seq FROM {sources} WHERE source = $1",
        # The CTE's insert is invisible to the outer SELECT's snapshot: exactly one row either way.
        "start": f"""
            WITH created AS (
                INSERT INTO {consumers} (consumer, source, seq, updated_at)
                SELECT $1, $2, CASE WHEN $3 THEN coalesce(
                    (SELECT last_seq FROM {sources} WHERE source = $2), 0) ELSE 0 END, now()
                ON CONFLICT (consumer) DO NOTHING
                RETURNING source, seq
            )
            SELECT source, seq FROM created
            UNION ALL SELECT source, seq FROM {consumers} WHERE consumer = $1""",
        "commit": f"UPDATE {consumers} SET seq = greatest(seq, $2), updated_at = now() WHERE consumer = $1",
        "cleanup": f"DELETE FROM {events} WHERE received_at < $1",
    }
