"""Checkpoints in a PostgreSQL table, on the shared pool of a :class:`PgConfig` (many processes)."""

from __future__ import annotations

import asyncio

from airflow_provider_integrations.postgres.config import PgConfig
from airflow_provider_integrations.postgres.errors import PgError
from airflow_provider_integrations.postgres.ident import qualified
from airflow_provider_integrations.postgres.pool import PgPool, acquire_pool, release_pool
from airflow_provider_integrations.streaming.checkpoints.base import check_key, decode, encode
from airflow_provider_integrations.streaming.errors import CheckpointError, StreamConfigError
from airflow_provider_integrations.streaming.events import Position


class PgCheckpointStore:
    """Checkpoints in ``schema.table`` (created on first use if missing).

    Leases the config's pool on first use and returns it on :meth:`close`.
    """

    def __init__(
        self, config: PgConfig, *, table: str = "stream_checkpoints", schema: str | None = None
    ) -> None:
        if not isinstance(config, PgConfig):
            raise StreamConfigError("config", "a PgConfig", config)
        if not isinstance(table, str) or not table:
            raise StreamConfigError("table", "a non-empty table name", table)
        self.config = config
        self._table = qualified(table, schema)
        self._pool: PgPool | None = None
        self._ready = asyncio.Lock()
        self._created = False

    async def _pool_ready(self) -> PgPool:
        async with self._ready:
            if self._pool is None:
                self._pool = acquire_pool(self.config)
            if not self._created:
                try:
                    await self._pool.execute(
                        f"CREATE TABLE IF NOT EXISTS {self._table} ("
                        " stream text NOT NULL, consumer text NOT NULL, position text NOT NULL,"
                        " updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (stream, consumer))"
                    )
                except PgError as exc:
                    # Two processes creating the table at once: one loses the race on the catalog.
                    if exc.sqlstate not in ("23505", "42P07"):
                        raise
                self._created = True
            return self._pool

    async def load(self, stream: str, consumer: str) -> Position | None:
        check_key(stream, consumer)
        try:
            pool = await self._pool_ready()
            text = await pool.fetchval(
                f"SELECT position FROM {self._table} WHERE stream = $1 AND consumer = $2", stream, consumer
            )
        except PgError as exc:
            raise CheckpointError(
                f"cannot read checkpoints from {self._table}: {exc}", stream=stream
            ) from exc
        return None if text is None else decode(str(text), stream, consumer)

    async def commit(self, stream: str, consumer: str, position: Position) -> None:
        check_key(stream, consumer)
        text = encode(position)
        try:
            pool = await self._pool_ready()
            await pool.execute(
                f"INSERT INTO {self._table} (stream, consumer, position) VALUES ($1, $2, $3)"
                " ON CONFLICT (stream, consumer)"
                " DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
                stream,
                consumer,
                text,
            )
        except PgError as exc:
            raise CheckpointError(
                f"cannot commit checkpoint to {self._table}: {exc}", stream=stream, position=position
            ) from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await release_pool(pool)

    def __repr__(self) -> str:
        return f"PgCheckpointStore({self.config.label!r}, {self._table})"
