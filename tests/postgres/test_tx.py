from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import pytest

from airflow_provider_integrations.postgres import (
    PgDataError,
    PgError,
    PgPool,
    PgRetriableError,
    run_in_transaction,
    savepoint,
    transaction,
)


@pytest.fixture
async def accounts(admin: asyncpg.Connection, schema: str) -> str:
    table = f'"{schema}".accounts'
    await admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, balance int NOT NULL)")
    await admin.execute(f"INSERT INTO {table} VALUES (1, 0), (2, 0)")
    return table


async def balances(admin: asyncpg.Connection, table: str) -> dict[int, int]:
    return dict(await admin.fetch(f"SELECT id, balance FROM {table}"))  # type: ignore[arg-type]


async def test_forced_deadlock_is_retried_and_both_succeed(
    pool: PgPool, admin: asyncpg.Connection, accounts: str, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = {"a": 0, "b": 0}
    both_hold_their_first_row = asyncio.Barrier(2)

    async def transfer(who: str, first: int, second: int) -> None:
        async def fn(conn: Any) -> None:
            attempts[who] += 1
            await conn.execute("SET LOCAL deadlock_timeout = '100ms'")  # detect it fast
            await conn.execute(f"UPDATE {accounts} SET balance = balance + 1 WHERE id = $1", first)
            if attempts[who] == 1:
                await both_hold_their_first_row.wait()
            await conn.execute(f"UPDATE {accounts} SET balance = balance + 1 WHERE id = $1", second)

        await run_in_transaction(pool, fn, base_delay=0.01)

    with caplog.at_level(logging.WARNING, logger="airflow_provider_integrations.postgres.tx"):
        await asyncio.wait_for(asyncio.gather(transfer("a", 1, 2), transfer("b", 2, 1)), 20)
    assert sorted(attempts.values()) == [1, 2]  # the victim of the deadlock ran again
    assert await balances(admin, accounts) == {1: 2, 2: 2}
    assert "40P01" in caplog.text and "retrying" in caplog.text


async def test_serialization_failure_is_retried(
    pool: PgPool, admin: asyncpg.Connection, accounts: str
) -> None:
    attempts = 0

    async def increment(conn: Any) -> int:
        nonlocal attempts
        attempts += 1
        balance: int = await conn.fetchval(f"SELECT balance FROM {accounts} WHERE id = 1")
        if attempts == 1:  # someone else commits a change to the row we read
            await admin.execute(f"UPDATE {accounts} SET balance = 100 WHERE id = 1")
        await conn.execute(f"UPDATE {accounts} SET balance = $1 WHERE id = 1", balance + 1)
        return balance + 1

    assert await run_in_transaction(pool, increment, isolation="repeatable_read", base_delay=0.01) == 101
    assert attempts == 2
    assert (await balances(admin, accounts))[1] == 101


async def test_last_conflict_is_raised_after_max_attempts(
    pool: PgPool, admin: asyncpg.Connection, accounts: str
) -> None:
    attempts = 0

    async def always_conflicts(conn: Any) -> None:
        nonlocal attempts
        attempts += 1
        await conn.fetchval(f"SELECT balance FROM {accounts} WHERE id = 1")
        await admin.execute(f"UPDATE {accounts} SET balance = balance + 10 WHERE id = 1")
        await conn.execute(f"UPDATE {accounts} SET balance = 0 WHERE id = 1")

    with pytest.raises(PgRetriableError) as info:
        await run_in_transaction(
            pool, always_conflicts, isolation="serializable", max_attempts=3, base_delay=0.001
        )
    assert info.value.sqlstate == "40001" and attempts == 3
    assert (await balances(admin, accounts))[1] == 30  # only the other session's commits


async def test_other_errors_are_not_retried_and_roll_back(
    pool: PgPool, admin: asyncpg.Connection, accounts: str
) -> None:
    attempts = 0

    async def fails(conn: Any) -> None:
        nonlocal attempts
        attempts += 1
        await conn.execute(f"UPDATE {accounts} SET balance = 5 WHERE id = 1")
        await conn.execute(f"UPDATE {accounts} SET balance = NULL WHERE id = 2")

    with pytest.raises(PgDataError):
        await run_in_transaction(pool, fails)
    assert attempts == 1
    assert await balances(admin, accounts) == {1: 0, 2: 0}
    with pytest.raises(RuntimeError):
        async with transaction(pool) as conn:
            await conn.execute(f"UPDATE {accounts} SET balance = 7 WHERE id = 1")
            raise RuntimeError("caller's own failure")
    assert await balances(admin, accounts) == {1: 0, 2: 0}


async def test_savepoint_rolls_back_only_its_block(
    pool: PgPool, admin: asyncpg.Connection, accounts: str
) -> None:
    async def fn(conn: Any) -> None:
        await conn.execute(f"UPDATE {accounts} SET balance = 1 WHERE id = 1")
        with pytest.raises(PgDataError) as info:
            async with savepoint(conn):
                await conn.execute(f"UPDATE {accounts} SET balance = 2 WHERE id = 2")
                await conn.execute(f"INSERT INTO {accounts} VALUES (1, 0)")
        assert info.value.sqlstate == "23505"
        await conn.execute(f"UPDATE {accounts} SET balance = balance + 1 WHERE id = 1")

    await run_in_transaction(pool, fn)
    assert await balances(admin, accounts) == {1: 2, 2: 0}
    with pytest.raises(PgError, match="inside a transaction"):
        async with pool.connection() as conn, savepoint(conn):
            pass


async def test_read_only_transaction(pool: PgPool, accounts: str) -> None:
    with pytest.raises(PgError) as info:
        async with transaction(pool, readonly=True) as conn:
            await conn.execute(f"UPDATE {accounts} SET balance = 1")
    assert info.value.sqlstate == "25006"


async def test_max_attempts_must_be_positive(pool: PgPool) -> None:
    async def fn(conn: Any) -> None:
        pass

    with pytest.raises(ValueError, match="max_attempts"):
        await run_in_transaction(pool, fn, max_attempts=0)
