from __future__ import annotations

import asyncio
import dataclasses
import time

import asyncpg
import pytest

from airflow_provider_integrations.postgres import (
    PgConfig,
    PgError,
    PgPool,
    PgPoolExhaustedError,
    PgRetriableError,
    acquire_pool,
    close_loop_pools,
    lease_pool,
    release_pool,
)
from airflow_provider_integrations.postgres.pool import open_pools
from tests.postgres.conftest import Outage, backends


async def test_one_pool_per_config_and_loop(pg_config: PgConfig) -> None:
    first, second = acquire_pool(pg_config), acquire_pool(dataclasses.replace(pg_config))
    assert first is second
    other = acquire_pool(dataclasses.replace(pg_config, max_size=2))
    assert other is not first
    assert await first.fetchval("SELECT 1") == 1
    await release_pool(first)
    assert first.stats()["closed"] is False  # still leased once
    await release_pool(second)
    await release_pool(other)
    assert first.stats()["closed"] is True
    assert open_pools() == []
    async with lease_pool(pg_config) as fresh:
        assert fresh is not first


async def test_building_and_leasing_do_no_io(pg_config: PgConfig, admin: asyncpg.Connection) -> None:
    async with lease_pool(pg_config) as pool:
        assert await backends(admin, pg_config.name) == 0
        assert pool.stats()["size"] == 0
        await pool.execute("SELECT 1")
        assert await backends(admin, pg_config.name) == 1  # min_size


async def test_exhaustion_fails_within_the_acquire_timeout(pg_config: PgConfig) -> None:
    config = dataclasses.replace(pg_config, max_size=2, acquire_timeout=0.3)
    async with lease_pool(config) as pool, pool.connection(), pool.connection():
        started = time.perf_counter()
        with pytest.raises(PgPoolExhaustedError) as info:
            async with pool.connection():
                pass
        elapsed = time.perf_counter() - started
        assert 0.3 <= elapsed < 0.6
        message = str(info.value)
        assert repr(config.name) in message
        assert "all 2 connections" in message and "0.3 s" in message
        assert info.value.max_size == 2 and info.value.pool == config.name
        stats = pool.stats()
        assert stats["exhausted"] == 1 and stats["in_use"] == 2 and stats["size"] == 2
    # The blocked caller gets a connection as soon as one is returned.
    async with lease_pool(config) as pool, pool.connection():
        waiter = asyncio.create_task(pool.fetchval("SELECT 2"))
        async with pool.connection():
            await asyncio.sleep(0.05)
            assert pool.stats()["waiting"] == 1
        assert await waiter == 2


async def test_stats_report_acquires_and_latency(pool: PgPool) -> None:
    await asyncio.gather(*(pool.fetchval("SELECT pg_sleep(0.05)") for _ in range(8)))
    stats = pool.stats()
    assert stats["acquires"] == 8
    assert stats["size"] == 4 and stats["idle"] == 4 and stats["in_use"] == 0 and stats["waiting"] == 0
    # Eight callers on four connections: the second four waited for a query of 50 ms.
    assert stats["acquire_ms_max"] >= 40
    assert 0 < stats["acquire_ms_avg"] < stats["acquire_ms_max"]
    assert stats["name"] == pool.config.name and stats["exhausted"] == 0


async def test_backend_terminated_mid_use_is_replaced(pool: PgPool, admin: asyncpg.Connection) -> None:
    async with pool.connection() as conn:
        doomed = conn.get_server_pid()
    with pytest.raises(PgRetriableError) as info:
        async with pool.connection() as conn:
            assert conn.get_server_pid() == doomed
            query = asyncio.create_task(conn.fetchval("SELECT pg_sleep(5)"))
            await asyncio.sleep(0.1)
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", doomed)
            await query
    assert info.value.sqlstate is not None and info.value.sqlstate[:2] in ("08", "57")
    assert await pool.fetchval("SELECT 1") == 1
    async with pool.connection() as conn:
        assert conn.get_server_pid() != doomed


async def test_query_on_a_connection_whose_backend_went_away_is_retriable(
    pool: PgPool, admin: asyncpg.Connection
) -> None:
    """asyncpg raises a client-side InterfaceError once it has taken the dead connection back; with the
    backend terminated that means "connect again", so callers may retry, and the pool replaces it."""
    with pytest.raises(PgRetriableError, match=r"connection lost: InterfaceError"):
        async with pool.connection() as conn:
            doomed = conn.get_server_pid()
            closed = asyncio.Event()
            conn.add_termination_listener(lambda _conn: closed.set())
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", doomed)
            # The client notices when the server closes the socket.
            await asyncio.wait_for(closed.wait(), 10)
            await conn.fetchval("SELECT 1")
    assert await pool.fetchval("SELECT pg_backend_pid()") != doomed


async def test_idle_backend_terminated_is_replaced(pool: PgPool, admin: asyncpg.Connection) -> None:
    pid = await pool.fetchval("SELECT pg_backend_pid()")
    await admin.execute("SELECT pg_terminate_backend($1)", pid)
    await asyncio.sleep(0.1)
    assert await pool.fetchval("SELECT pg_backend_pid()") != pid


async def test_statement_timeout_is_set_on_every_connection(pg_config: PgConfig) -> None:
    config = dataclasses.replace(pg_config, statement_timeout=0.2)
    async with lease_pool(config) as pool:
        assert await pool.fetchval("SHOW statement_timeout") == "200ms"
        with pytest.raises(PgError) as info:
            await pool.execute("SELECT pg_sleep(2)")
    assert info.value.sqlstate == "57014" and not info.value.retriable


async def test_errors_inside_a_borrowed_connection_are_translated(pool: PgPool) -> None:
    with pytest.raises(PgError) as info:
        async with pool.connection() as conn:
            await conn.execute("SELEC 1")
    assert info.value.sqlstate == "42601"
    with pytest.raises(ZeroDivisionError):  # not ours: unchanged
        async with pool.connection():
            _ = 1 / 0
    assert pool.stats()["in_use"] == 0


async def test_unreachable_server_is_a_retriable_error(pg_config: PgConfig) -> None:
    config = dataclasses.replace(pg_config, port=1, connect_timeout=2)
    async with lease_pool(config) as pool:
        with pytest.raises(PgRetriableError) as info:
            await pool.fetchval("SELECT 1")
    assert f"connect to {config.dsn}" in str(info.value)


async def test_missing_database_is_not_retriable(pg_config: PgConfig) -> None:
    config = dataclasses.replace(pg_config, database="no_such_database_here")
    async with lease_pool(config) as pool:
        with pytest.raises(PgError) as info:
            await pool.fetchval("SELECT 1")
    assert info.value.sqlstate == "3D000" and not info.value.retriable


async def test_close_loop_pools_closes_leased_pools(pg_config: PgConfig, admin: asyncpg.Connection) -> None:
    pool = acquire_pool(pg_config)
    await pool.fetchval("SELECT 1")
    await close_loop_pools()
    assert pool.stats()["closed"] is True and open_pools() == []
    assert await backends(admin, pg_config.name) == 0
    with pytest.raises(PgError, match="is closed"):
        await pool.fetchval("SELECT 1")


async def test_pool_recovers_when_the_server_comes_back(pg_config: PgConfig, outage: Outage) -> None:
    config = dataclasses.replace(pg_config, port=outage.port, connect_timeout=1)
    async with lease_pool(config) as pool:
        assert await pool.fetchval("SELECT 1") == 1
        await outage.down()
        for _ in range(2):  # the broken connection, then a refused reconnect
            with pytest.raises(PgRetriableError):
                await pool.fetchval("SELECT 1")
        await outage.up()
        assert await pool.fetchval("SELECT 1") == 1
