"""AsyncPostgresHook: connection validation, config cache, pooled queries, layered connection test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.postgres import CONFIGS, AsyncPostgresHook
from airflow_provider_integrations.postgres.pool import open_pools
from airflow_provider_integrations.sandbox.certs import TlsMaterial
from tests.integration.postgres.conftest import PgConnFactory, sql


def test_config_from_the_standard_fields_and_extras(pg_connection: PgConnFactory) -> None:
    conn_id = pg_connection(
        "pg_cfg",
        password="not-logged",
        extra={"pool_max_size": "4", "acquire_timeout": 2.5, "statement_timeout": "30", "connect_timeout": 3},
    )
    config = AsyncPostgresHook(conn_id).get_config()
    assert (config.host, config.port, config.user, config.database) == ("127.0.0.1", 5432, "postgres", "test")
    assert (config.min_size, config.max_size, config.acquire_timeout) == (1, 4, 2.5)
    assert (config.statement_timeout, config.connect_timeout, config.ssl_mode) == (30.0, 3.0, "disable")
    assert config.name == conn_id and "not-logged" not in repr(config) and "not-logged" not in config.dsn


def test_database_defaults_to_the_role_like_libpq(pg_connection: PgConnFactory) -> None:
    assert AsyncPostgresHook(pg_connection("pg_nodb", schema=None)).get_config().database == "postgres"


@pytest.mark.parametrize(
    ("fields", "path", "fragment"),
    [
        ({"host": ""}, "host", "host name or IP address"),
        ({"login": None}, "login", "role to log in as"),
        ({"extra": {"pool_max_size": "many"}}, "$.pool_max_size", "an integer >= 1"),
        ({"extra": {"pool_max_size": 0}}, "$.pool_max_size", "an integer >= 1"),
        ({"extra": {"pool_max_size": 2.5}}, "$.pool_max_size", "an integer >= 1"),
        ({"extra": {"pool_min_size": 5, "pool_max_size": 2}}, "$.pool_min_size", "<= $.pool_max_size (2)"),
        ({"extra": {"pool_max_sise": 5}}, "$.pool_max_sise", "unknown pool option"),
        ({"extra": {"acquire_timeout": -1}}, "$.acquire_timeout", "a number of seconds > 0"),
        ({"extra": {"statement_timeout": True}}, "$.statement_timeout", "a number of seconds > 0"),
        ({"extra": {"connect_timeout": "soon"}}, "$.connect_timeout", "a number of seconds > 0"),
        ({"extra": {"sslmode": "prefer"}}, "$.sslmode", "one of disable, require, verify-full"),
        ({"extra": {"sslmode": "verify-full"}}, "$.sslrootcert", "exactly when sslmode is verify-full"),
        ({"extra": {"sslrootcert": "/no/such/ca.pem"}}, "$.sslrootcert", "cannot read the CA file"),
        ({"extra": {"sslcert": "/etc/client.pem"}}, "$.sslcert", "client certificates are not supported"),
    ],
)
def test_invalid_connection_names_the_field(
    pg_connection: PgConnFactory, fields: dict[str, Any], path: str, fragment: str
) -> None:
    conn_id = pg_connection("pg_bad", password="hunter2-secret", **fields)
    with pytest.raises(ConnectionConfigError) as info:
        AsyncPostgresHook(conn_id).get_config()
    assert info.value.path == path and fragment in str(info.value), str(info.value)
    assert "'pg_bad'" in str(info.value) and "postgres connection" in str(info.value)
    assert "hunter2-secret" not in str(info.value)


def test_sslrootcert_is_pem_text_or_a_path(
    pg_connection: PgConnFactory, tls_material: TlsMaterial, tmp_path: Path
) -> None:
    pem = tls_material.ca_cert_pem
    inline = pg_connection("pg_ca_text", extra={"sslmode": "verify-full", "sslrootcert": pem})
    assert AsyncPostgresHook(inline).get_config().ssl_ca_pem == pem
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(pem)
    by_path = pg_connection("pg_ca_path", extra={"sslmode": "verify-full", "sslrootcert": str(ca_file)})
    assert AsyncPostgresHook(by_path).get_config().ssl_ca_pem == pem


def test_config_is_cached_per_connection_and_pool_options(pg: str) -> None:
    CONFIGS.invalidate()
    before = CONFIGS.lookups.get(pg, 0)
    hook = AsyncPostgresHook(pg)
    assert hook.get_config() is hook.get_config() is AsyncPostgresHook(pg).get_config()
    assert CONFIGS.lookups[pg] == before + 1
    small = AsyncPostgresHook(pg, pool_options={"pool_max_size": 2}).get_config()
    assert small.max_size == 2 and hook.get_config().max_size == 10


def test_sync_conveniences_run_on_the_pool(pg: str, table: str) -> None:
    hook = AsyncPostgresHook(pg)
    assert hook.execute(f"INSERT INTO {table} (id, name) VALUES ($1, $2), ($3, $4)", 1, "a", 2, "b") == (
        "INSERT 0 2"
    )
    assert hook.fetchval(f"SELECT count(*) FROM {table}") == 2
    assert hook.fetch(f"SELECT id, name FROM {table} ORDER BY id") == [
        {"id": 1, "name": "a"},
        {"id": 2, "name": "b"},
    ]


async def test_async_pool_is_shared_and_closed_with_the_last_lease(pg: str) -> None:
    hook = AsyncPostgresHook(pg)
    async with hook.pool() as first, AsyncPostgresHook(pg).pool() as second:
        assert first is second
        assert await first.fetchval("SELECT 1") == 1
        assert first.stats()["size"] >= 1
    assert open_pools() == []


def test_connection_ok_lists_every_layer(pg: str) -> None:
    ok, message = AsyncPostgresHook(pg).test_connection()
    assert ok, message
    assert re.fullmatch(
        r"Connection OK: DNS [\d.]+ ms \(127\.0\.0\.1\) \| TCP [\d.]+ ms \(127\.0\.0\.1:5432\)"
        r" \| auth [\d.]+ ms \(postgres accepted\) \| database \(test exists\)"
        r" \| version \(PostgreSQL 1\d\.\d+\) \| SSL \(off\)",
        message,
    ), message
    # The test connection is closed, not pooled.
    assert sql("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '%(connection test)'") == [
        (0,)
    ]


@pytest.mark.parametrize(
    ("fields", "expected", "passed"),
    [
        (
            {"host": "no-such-host.invalid"},
            r"^DNS lookup failed for 'no-such-host\.invalid': .+: check the Host field$",
            [],
        ),
        (
            {"port": 1},
            r"^TCP connect to 127\.0\.0\.1:1 failed: Connection refused: is PostgreSQL running"
            r".*check the Port field",
            ["DNS"],
        ),
        (
            {"login": "no_such_role_it"},
            r"^authentication of role 'no_such_role_it' failed: "
            r"role \"no_such_role_it\" does not exist \(28000\): check the Login field",
            ["DNS", "TCP"],
        ),
        (
            {"schema": "no_such_db_it"},
            r"^database 'no_such_db_it' rejected: database \"no_such_db_it\" does not exist \(3D000\): "
            r"check the Database field",
            ["DNS", "TCP", "(postgres accepted)"],
        ),
        (
            {"extra": {"sslmode": "require"}},
            r"^SSL \(require\) failed: .+: the server does not accept SSL: set sslmode to disable",
            ["DNS", "TCP"],
        ),
    ],
    ids=["dns", "refused-port", "unknown-role", "unknown-database", "ssl-not-offered"],
)
def test_connection_stops_at_the_first_failing_layer(
    pg_connection: PgConnFactory, fields: dict[str, Any], expected: str, passed: list[str]
) -> None:
    conn_id = pg_connection("pg_broken", password="hunter2-secret", **fields)
    ok, message = AsyncPostgresHook(conn_id).test_connection()
    assert not ok
    assert re.search(expected, message), message
    shown = re.search(r"\[passed: (.*)\]$", message)
    assert [layer for layer in passed if layer not in (shown.group(1) if shown else "")] == [], message
    assert "hunter2-secret" not in message


def test_connection_reports_invalid_settings(pg_connection: PgConnFactory) -> None:
    ok, message = AsyncPostgresHook(pg_connection("pg_badcfg", extra={"sslmode": "allow"})).test_connection()
    assert not ok and message.startswith("Invalid connection settings: ") and "$.sslmode" in message
