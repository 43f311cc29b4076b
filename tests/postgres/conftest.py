"""Fixtures for the PostgreSQL layer: the local server at 127.0.0.1:5432 (database ``test``).

Nothing is skipped: CI always has PostgreSQL. Every test gets its own schema (dropped afterwards) and
its own pool name, so tests running in parallel with other suites never see each other's tables or
connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from airflow_provider_integrations.postgres import PgConfig, PgPool, lease_pool
from airflow_provider_integrations.postgres.pool import close_loop_pools

SERVER = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_config() -> PgConfig:
    return PgConfig(database="test", max_size=4, acquire_timeout=5.0, name=unique("pgtest"))


@pytest.fixture
async def admin() -> AsyncIterator[asyncpg.Connection]:
    """A plain connection outside the code under test, for setup and for checking its effects."""
    conn = await asyncpg.connect(**SERVER)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def schema(admin: asyncpg.Connection) -> AsyncIterator[str]:
    name = unique("t")
    await admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        await admin.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
async def pool(pg_config: PgConfig, schema: str) -> AsyncIterator[PgPool]:
    """The shared pool of ``pg_config``; every pool of the test loop is closed afterwards."""
    async with lease_pool(pg_config) as leased:
        yield leased
    await close_loop_pools()


async def backends(admin: asyncpg.Connection, application_name: str) -> int:
    """How many server sessions show ``application_name`` in pg_stat_activity."""
    count: int = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", application_name
    )
    return count


class Outage:
    """A TCP proxy in front of the server that can go down and come back on the same port.

    ``pg_terminate_backend`` ends one session of a healthy server; this simulates the server (or the
    network) being unreachable for a while, so reconnect loops have to back off and retry.
    """

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _pipe(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(SERVER["host"], SERVER["port"])
        self._writers |= {client_w, server_w}

        async def copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        await asyncio.gather(copy(client_r, server_w), copy(server_r, client_w))
        self._writers -= {client_w, server_w}


@pytest.fixture
async def outage() -> AsyncIterator[Outage]:
    proxy = Outage()
    await proxy.up()
    try:
        yield proxy
    finally:
        await proxy.down()
