"""The PostgreSQL event log: many receivers and triggerers share one database.

Appends are group-committed: concurrent appends share one transaction, which locks the counter rows of
its sources (in name order, so two batches cannot deadlock), numbers the new events, and sends one NOTIFY
with the sources that moved. The lock is what keeps commit order equal to sequence order across
receivers, and the NOTIFY leaves only at commit, so a woken follower always finds the rows. Followers of
a process hang off one subscription of the process's shared LISTEN connection.
"""

from __future__ import annotations

from datetime import datetime

from airflow_provider_integrations.postgres import PgConfig
from airflow_provider_integrations.postgres.ident import qualified
from airflow_provider_integrations.postgres.tx import transaction
from airflow_provider_integrations.webhooks.crypto import PayloadCodec
from airflow_provider_integrations.webhooks.events import (
    DEFAULT_BATCH,
    AppendOutcome,
    AppendResult,
    Event,
    EventLog,
)
from airflow_provider_integrations.webhooks.store._pg_base import PgStoreBase, channel_name

__all__ = ["PostgresEventLog"]

# source, webhook id, stored blob, event type, received at
_Pending = tuple[str, str, bytes, str, datetime]


class PostgresEventLog(PgStoreBase, EventLog):
    """:param config: the database (its pool and LISTEN connection are shared process-wide).
    :param schema: an existing schema to keep the tables in."""

    _label = "postgres event log"
    _variable = "log"

    def __init__(
        self, config: PgConfig, *, schema: str = "public", codec: PayloadCodec | None = None
    ) -> None:
        super().__init__(
            config,
            schema=schema,
            channel=channel_name(schema, "webhook_events"),
            tables=f"the event tables in {schema}",
            statements=_statements(
                qualified("webhook_event_sources", schema),
                qualified("webhook_events", schema),
                qualified("webhook_event_consumers", schema),
            ),
            codec=codec,
        )
        self._batcher = self._batched(self._append_batch)

    def __repr__(self) -> str:
        return f"<PostgresEventLog {self.config.dsn} {self.schema}>"

    async def _append(
        self, source: str, webhook_id: str, event_type: str, blob: bytes, at: datetime
    ) -> AppendResult:
        return await self._batcher.submit((source, webhook_id, blob, event_type, at))

    async def _append_batch(self, batch: list[_Pending]) -> list[AppendResult]:
        sql = self._sql
        with self._errors(f"appending {len(batch)} events"):
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
        with self._errors(f"reading {source} after {after}"):
            rows = await self.pool.fetch(self._sql["read"], source, after, limit)
        return [self._event(source, seq, wid, kind, blob, at) for seq, wid, kind, blob, at in rows]

    async def last_seq(self, source: str) -> int:
        with self._errors(f"reading the counter of {source}"):
            value = await self.pool.fetchval(self._sql["last_seq"], source)
        return 0 if value is None else int(value)

    async def _start_consumer(self, consumer: str, source: str, *, latest: bool) -> tuple[str, int]:
        with self._errors(f"starting consumer {consumer}"):
            row = await self.pool.fetchrow(self._sql["start"], consumer, source, latest)
        return row[0], row[1]

    async def commit(self, consumer: str, seq: int) -> None:
        with self._errors(f"committing consumer {consumer}"):
            await self.pool.execute(self._sql["commit"], consumer, seq)

    async def _delete_before(self, cutoff: datetime) -> int:
        with self._errors("deleting expired events"):
            status = await self.pool.execute(self._sql["cleanup"], cutoff)
        return int(status.rsplit(" ", 1)[1])


def _statements(sources: str, events: str, consumers: str) -> dict[str, str]:
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
