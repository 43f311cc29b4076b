"""Process-wide registry: one asyncpg pool per :class:`PgConfig` and event loop, shared by every hook,
operator and trigger that leases it.

A pool lives while at least one lease is open, so a triggerer running many sensors of one connection
keeps one pool instead of a connection per poll. Loops marked persistent (the sync bridge's) keep their
pools until :func:`close_loop_pools` runs at interpreter exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from airflow_provider_integrations.postgres.config import PgConfig
from airflow_provider_integrations.postgres.connect import connect_error, connect_kwargs
from airflow_provider_integrations.postgres.errors import (
    PgError,
    PgPoolExhaustedError,
    PgRetriableError,
    translate,
)

# A pool whose holders never return their connections must not hang shutdown.
CLOSE_TIMEOUT = 10.0
# Client-side asyncpg errors; on a closed connection they mean its backend went away.
_CLIENT_SIDE = (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)


class PgPool:
    """An asyncpg pool with a bounded acquire, typed errors and statistics.

    The asyncpg pool is opened on first use, so building or leasing a ``PgPool`` does no I/O.
    """

    def __init__(self, config: PgConfig) -> None:
        self.config = config
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._closed = False
        self._leases = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # set when registered
        self._waiting = 0
        self._acquires = 0
        self._wait_total = 0.0
        self._wait_max = 0.0
        self._exhausted = 0

    def __repr__(self) -> str:
        return f"<PgPool {self.config.label!r} {self.config.dsn}>"

    async def _ready(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._closed:
                raise PgError(f"connection pool {self.config.label!r} is closed")
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        min_size=self.config.min_size,
                        max_size=self.config.max_size,
                        **connect_kwargs(self.config),
                    )
                except Exception as exc:
                    raise await connect_error(self.config, exc) from exc
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """Borrow a connection for the block; asyncpg errors raised inside become :class:`PgError`.

        Waits at most ``acquire_timeout`` for a free connection, then raises
        :class:`PgPoolExhaustedError`. A connection whose backend died is discarded on release and the
        pool opens a fresh one for the next caller.
        """
        pool = await self._ready()
        started = time.perf_counter()
        self._waiting += 1
        try:
            conn = await pool.acquire(timeout=self.config.acquire_timeout)
        except TimeoutError:
            raise self._timeout_error(pool) from None
        except Exception as exc:
            raise await connect_error(self.config, exc) from exc
        finally:
            self._waiting -= 1
        waited = time.perf_counter() - started
        self._acquires += 1
        self._wait_total += waited
        self._wait_max = max(self._wait_max, waited)
        try:
            yield conn
        except Exception as exc:
            if isinstance(exc, _CLIENT_SIDE) and _lost(conn):
                # asyncpg's own word for "the backend went away under this connection" (terminated,
                # failover): the pool replaces it, so this is worth another attempt, not a fatal error.
                raise PgRetriableError(f"connection lost: {type(exc).__name__}: {exc}") from exc
            raise translate(exc) from exc
        finally:
            # Resetting a connection whose backend is gone fails; asyncpg has terminated it and the
            # pool opens a new one. The block's own outcome (result or error) is what counts.
            with contextlib.suppress(asyncpg.InterfaceError, asyncpg.PostgresError, OSError, TimeoutError):
                await pool.release(conn)

    def _timeout_error(self, pool: asyncpg.Pool) -> PgError:
        if pool.get_size() - pool.get_idle_size() >= self.config.max_size:
            self._exhausted += 1
            return PgPoolExhaustedError(
                self.config.label, self.config.max_size, self.config.acquire_timeout, self._waiting
            )
        # Not every connection was busy: opening a new one is what took too long.
        return PgRetriableError(
            f"connection pool {self.config.label!r}: no connection to {self.config.dsn} could be opened "
            f"within the acquire timeout of {self.config.acquire_timeout:g} s"
        )

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Any]:
        async with self.connection() as conn:
            rows: list[Any] = await conn.fetch(query, *args, timeout=timeout)
            return rows

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        async with self.connection() as conn:
            return await conn.fetchrow(query, *args, timeout=timeout)

    async def fetchval(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        async with self.connection() as conn:
            return await conn.fetchval(query, *args, timeout=timeout)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Run a statement; returns its command tag (``INSERT 0 3``)."""
        async with self.connection() as conn:
            status: str = await conn.execute(query, *args, timeout=timeout)
            return status

    def stats(self) -> dict[str, Any]:
        """A snapshot: connections open/idle/in use, callers waiting, and acquire latency."""
        pool = self._pool
        size = pool.get_size() if pool is not None else 0
        idle = pool.get_idle_size() if pool is not None else 0
        return {
            "name": self.config.label,
            "min_size": self.config.min_size,
            "max_size": self.config.max_size,
            "size": size,
            "idle": idle,
            "in_use": size - idle,
            "waiting": self._waiting,
            "acquires": self._acquires,
            "acquire_ms_avg": round(self._wait_total / self._acquires * 1000, 3) if self._acquires else 0.0,
            "acquire_ms_max": round(self._wait_max * 1000, 3),
            "exhausted": self._exhausted,
            "closed": self._closed,
        }

    async def close(self) -> None:
        """Close every connection, waiting up to :data:`CLOSE_TIMEOUT` for borrowed ones to return."""
        self._closed = True
        async with self._opening:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except (TimeoutError, asyncpg.InterfaceError):
            pool.terminate()


def _lost(conn: Any) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        return True  # asyncpg already took the connection back from us: its backend is gone


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PgConfig, PgPool]] = (
    weakref.WeakKeyDictionary()
)
_persistent: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def mark_persistent(loop: asyncio.AbstractEventLoop) -> None:
    """Keep this loop's pools open after their last lease (the bridge loop reuses them across calls)."""
    _persistent.add(loop)


def acquire_pool(config: PgConfig) -> PgPool:
    """Take a lease on the shared pool of ``config`` on the running loop (pair with :func:`release_pool`)."""
    loop = asyncio.get_running_loop()
    pools = _pools.get(loop)
    if pools is None:
        pools = _pools[loop] = {}
    pool = pools.get(config)
    if pool is None:
        pool = pools[config] = PgPool(config)
        pool._loop = loop
    pool._leases += 1
    return pool


async def release_pool(pool: PgPool) -> None:
    """Return a lease; the last one out closes the pool, except on persistent (bridge) loops."""
    pool._leases -= 1
    loop = pool._loop
    if pool._leases > 0 or loop is None or loop in _persistent:
        return
    pools = _pools.get(loop, {})
    if pools.get(pool.config) is pool:
        del pools[pool.config]
    await pool.close()


class lease_pool:
    """Borrow the shared pool of ``config`` on the running loop for the duration of the block."""

    __slots__ = ("_config", "_pool")

    def __init__(self, config: PgConfig) -> None:
        self._config = config

    async def __aenter__(self) -> PgPool:
        self._pool = acquire_pool(self._config)
        return self._pool

    async def __aexit__(self, *exc: object) -> None:
        await release_pool(self._pool)


def open_pools(loop: asyncio.AbstractEventLoop | None = None) -> list[PgPool]:
    """The pools registered on ``loop`` (default: the running loop), for health reporting."""
    return list(_pools.get(loop or asyncio.get_running_loop(), {}).values())


async def close_loop_pools() -> None:
    """Close every pool of the running loop, leased or not (shutdown path)."""
    pools = _pools.pop(asyncio.get_running_loop(), {})
    await asyncio.gather(*(p.close() for p in pools.values()), return_exceptions=True)
