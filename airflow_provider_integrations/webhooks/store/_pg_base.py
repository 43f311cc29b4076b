"""What the PostgreSQL callback store and event log share: the lifecycle and the error translation.

Both sit on the package's asyncpg layer: the process-wide pool of the :class:`PgConfig` and its one shared
LISTEN connection. Their tables are created at open, under an advisory lock; their group-commit batchers
are drained at close; every :class:`PgError` becomes a :class:`StoreUnavailableError` in one place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Final, TypeVar

from airflow_provider_integrations.postgres import PgConfig, PgError, PgPool, acquire_pool, release_pool
from airflow_provider_integrations.postgres.tx import transaction
from airflow_provider_integrations.webhooks.crypto import PayloadCodec
from airflow_provider_integrations.webhooks.errors import StoreUnavailableError
from airflow_provider_integrations.webhooks.store._batch import Batcher
from airflow_provider_integrations.webhooks.store._notify import notify_feed
from airflow_provider_integrations.webhooks.store.base import StoreBase
from airflow_provider_integrations.webhooks.store.waiting import WaitFeed

__all__ = ["PgStoreBase", "channel_name"]

_MAX_CHANNEL_BYTES: Final = 63  # NAMEDATALEN - 1: pg_notify refuses longer channel names
# A batch sends one NOTIFY listing its accepted callback ids (or the sources that moved), whose payload
# must stay under 8000 bytes: 50 names of at most 128 characters (and a separator) fit.
_MAX_BATCH: Final = 50
I = TypeVar("I")  # noqa: E741 - item
R = TypeVar("R")


def channel_name(schema: str, table: str) -> str:
    name = f"{schema}.{table}"
    if len(name.encode()) <= _MAX_CHANNEL_BYTES:
        return name
    return "webhooks_" + hashlib.sha256(name.encode()).hexdigest()[:32]


class PgStoreBase(StoreBase):
    """:param config: the database (its pool and LISTEN connection are shared process-wide).
    :param channel: the NOTIFY channel. :param tables: what the tables are, for errors.
    :param statements: the SQL by name; ``ddl`` creates the tables."""

    #: Names the backend in its errors, and the variable its "not open" error suggests.
    _label: ClassVar[str]
    _variable: ClassVar[str]

    def __init__(
        self,
        config: PgConfig,
        *,
        schema: str,
        channel: str,
        tables: str,
        statements: dict[str, str],
        codec: PayloadCodec | None,
    ) -> None:
        super().__init__(codec)
        self.config = config
        self.schema = schema
        self.channel = channel
        self._tables = tables
        self._sql = statements
        self._pool: PgPool | None = None
        self._batchers: list[Batcher[Any, Any]] = []

    def _batched(self, run: Callable[[list[I]], Awaitable[Sequence[R]]]) -> Batcher[I, R]:
        """A batcher of ``run`` that :meth:`close` drains."""
        batcher: Batcher[I, R] = Batcher(run, max_batch=_MAX_BATCH)
        self._batchers.append(batcher)
        return batcher

    @property
    def pool(self) -> PgPool:
        if self._pool is None:
            raise StoreUnavailableError(f"{self._label} is not open (use 'async with {self._variable}:')")
        return self._pool

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except PgError as exc:
            raise StoreUnavailableError(f"{self._label}: {what}: {exc}") from exc

    async def open(self) -> None:
        if self._pool is not None:
            return
        self._pool = acquire_pool(self.config)
        try:
            with self._errors(f"creating {self._tables}"):
                async with transaction(self._pool) as conn:
                    # CREATE ... IF NOT EXISTS races with itself across processes; serialise it.
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.channel)
                    await conn.execute(self._sql["ddl"])
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for batcher in self._batchers:
            await batcher.drain()
        pool, self._pool = self._pool, None
        if pool is not None:
            await release_pool(pool)

    async def ping(self) -> None:
        with self._errors("ping"):
            await self.pool.fetchval("SELECT 1")

    def _feed(self) -> WaitFeed:
        return notify_feed(self.config, self.channel)
