"""Transactions that retry on serialization failures and deadlocks, and savepoints inside them.

A retry must re-run the *whole* transaction (its reads decided its writes), so the unit of retry is a
function of the connection, not a ``with`` block: :func:`run_in_transaction` calls it again on a fresh
transaction after a jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

from airflow_provider_integrations.postgres.errors import (
    RETRY_SQLSTATES,
    PgError,
    PgRetriableError,
    translate,
)
from airflow_provider_integrations.postgres.pool import PgPool

T = TypeVar("T")
Isolation = Literal["read_committed", "repeatable_read", "serializable"]
log = logging.getLogger(__name__)


@asynccontextmanager
async def transaction(
    pool: PgPool, *, isolation: Isolation = "read_committed", readonly: bool = False
) -> AsyncIterator[Any]:
    """One transaction on a pooled connection: committed if the block succeeds, else rolled back.

    Does not retry; use :func:`run_in_transaction` when conflicts are expected.
    """
    async with pool.connection() as conn, conn.transaction(isolation=isolation, readonly=readonly):
        yield conn


async def run_in_transaction(
    pool: PgPool,
    fn: Callable[[Any], Awaitable[T]],
    *,
    isolation: Isolation = "read_committed",
    max_attempts: int = 5,
    base_delay: float = 0.05,
    max_delay: float = 2.0,
) -> T:
    """Run ``await fn(conn)`` in a transaction, re-running it after a serialization failure (40001) or
    a deadlock (40P01); other errors, and the last conflict, are raised.

    ``fn`` may run several times, so it must not have side effects outside the database.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")
    attempt = 1
    while True:
        try:
            async with transaction(pool, isolation=isolation) as conn:
                return await fn(conn)
        except PgRetriableError as exc:
            if exc.sqlstate not in RETRY_SQLSTATES or attempt >= max_attempts:
                raise
            # Jitter spreads the re-runs of the transactions that collided, so they do not collide again.
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
            log.warning(
                "transaction on pool %r failed (%s), attempt %d of %d; retrying in %.3f s",
                pool.config.label,
                exc,
                attempt,
                max_attempts,
                delay,
            )
            await asyncio.sleep(delay)
            attempt += 1


@asynccontextmanager
async def savepoint(conn: Any) -> AsyncIterator[None]:
    """A nested transaction: an error inside rolls back to the savepoint, and the outer transaction
    goes on if the caller handles the (translated) error."""
    if not conn.is_in_transaction():
        raise PgError("savepoint() needs a connection inside a transaction")
    try:
        async with conn.transaction():
            yield
    except Exception as exc:
        raise translate(exc) from exc
