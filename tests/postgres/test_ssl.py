"""SSL modes against the local server, whichever way its ``ssl`` setting is (it is not reconfigured)."""

from __future__ import annotations

import dataclasses

import asyncpg
import pytest

from airflow_provider_integrations.postgres import PgConfig, PgError, lease_pool
from airflow_provider_integrations.postgres.connect import server_accepts_ssl
from airflow_provider_integrations.sandbox.certs import TlsMaterial


async def test_disable_connects_without_ssl(pg_config: PgConfig) -> None:
    async with lease_pool(dataclasses.replace(pg_config, ssl_mode="disable")) as pool:
        assert await pool.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is False


async def test_require(pg_config: PgConfig, admin: asyncpg.Connection) -> None:
    server_ssl = await admin.fetchval("SHOW ssl") == "on"
    assert await server_accepts_ssl("127.0.0.1", 5432, 5) is server_ssl
    async with lease_pool(dataclasses.replace(pg_config, ssl_mode="require")) as pool:
        if server_ssl:
            assert await pool.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
        else:
            with pytest.raises(PgError) as info:
                await pool.fetchval("SELECT 1")
            message = str(info.value)
            assert "does not accept SSL" in message and "ssl_mode='require'" in message
            assert not info.value.retriable


async def test_verify_full_with_a_foreign_ca_fails(
    pg_config: PgConfig, admin: asyncpg.Connection, tls_material: TlsMaterial
) -> None:
    """The sandbox CA did not sign the server's certificate (if the server has one at all)."""
    server_ssl = await admin.fetchval("SHOW ssl") == "on"
    config = dataclasses.replace(pg_config, ssl_mode="verify-full", ssl_ca_pem=tls_material.ca_cert_pem)
    async with lease_pool(config) as pool:
        with pytest.raises(PgError) as info:
            await pool.fetchval("SELECT 1")
    expected = "TLS certificate verify failed" if server_ssl else "does not accept SSL"
    assert expected in str(info.value)


async def test_probe_of_a_closed_port_is_unknown() -> None:
    assert await server_accepts_ssl("127.0.0.1", 1, 2) is None
