"""Async PostgreSQL hook on asyncpg, reading the standard ``postgres`` connection type.

The connection type stays owned by apache-airflow-providers-postgres: this hook registers no type of its
own, so one connection serves ``PostgresHook``, the common-sql operators and this hook alike. The price:
the UI's **Test** button and ``airflow connections test`` resolve the ``postgres`` type to
``PostgresHook`` and run its ``SELECT 1``; the layered diagnosis of
:meth:`AsyncPostgresHook.test_connection` is called from code or a task (example
``108_02_02_database_hooks``, task ``async_hook_usage``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, conf

from airflow_provider_integrations.bridge import run_sync
from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks._config_cache import ConfigCache
from airflow_provider_integrations.postgres.config import SSL_MODES, PgConfig
from airflow_provider_integrations.postgres.diagnose import diagnose
from airflow_provider_integrations.postgres.pool import PgPool, lease_pool

if TYPE_CHECKING:
    from airflow.sdk import Connection

#: Extras this hook reads beyond libpq's. libpq rejects unknown options, so a connection that
#: ``PostgresHook`` also uses must leave them out and pass them as ``pool_options=`` instead.
POOL_OPTIONS: dict[str, type] = {
    "pool_min_size": int,
    "pool_max_size": int,
    "acquire_timeout": float,
    "statement_timeout": float,
}
# sslmode: libpq's allow/prefer fall back to plain text silently and verify-ca skips the host name
# check, so only disable/require/verify-full are accepted; a missing sslmode means disable (libpq: prefer).
_UNSUPPORTED_TLS_KEYS = ("sslcert", "sslkey", "sslpassword", "sslcrl")


def _ttl() -> float:
    return conf.getfloat("integrations", "connection_cache_ttl", fallback=300.0)


CONFIGS: ConfigCache[PgConfig] = ConfigCache(_ttl)


def config_from_connection(conn: Connection, pool_options: Mapping[str, Any] | None = None) -> PgConfig:
    """Validate a ``postgres`` connection (plus hook-level ``pool_options``) and return its frozen config.

    Raises :class:`ConnectionConfigError` naming the field or ``$.<extra>``, never the password.
    """
    conn_id = conn.conn_id
    fail = functools.partial(ConnectionConfigError, conn_id=conn_id, conn_type="postgres")
    extra = _extras(conn.extra, fail)
    extra.update(pool_options or {})
    host = (conn.host or "").strip()
    if not host:
        raise fail("host", "the server's host name or IP address", value=conn.host)
    user = (conn.login or "").strip()
    if not user:
        raise fail("login", "the role to log in as", value=conn.login)
    for key in _UNSUPPORTED_TLS_KEYS:
        if extra.get(key):
            raise fail(f"$.{key}", "", problem="client certificates are not supported by AsyncPostgresHook")
    unknown = sorted(k for k in extra if k.startswith("pool_") and k not in POOL_OPTIONS)
    if unknown:
        raise fail(f"$.{unknown[0]}", "", problem=f"unknown pool option; known: {', '.join(POOL_OPTIONS)}")
    opts = {key: _number(extra, key, kind, fail) for key, kind in POOL_OPTIONS.items()}
    min_size, max_size = opts["pool_min_size"] or 1, opts["pool_max_size"] or 10
    if min_size > max_size:
        raise fail("$.pool_min_size", f"an integer <= $.pool_max_size ({max_size})", value=min_size)
    ssl_mode = str(extra.get("sslmode") or "disable").strip().lower()
    if ssl_mode not in SSL_MODES:
        raise fail("$.sslmode", f"one of {', '.join(SSL_MODES)}", value=extra.get("sslmode"))
    ca_pem = _ca_pem(extra.get("sslrootcert"), fail)
    if (ca_pem is None) == (ssl_mode == "verify-full"):
        raise fail(
            "$.sslrootcert",
            "",
            problem="set it (CA as PEM text or file path) exactly when sslmode is verify-full",
        )
    port = _number({"port": conn.port}, "port", int, fail, path="port")
    if port is not None and port > 65535:
        raise fail("port", "an integer between 1 and 65535", value=conn.port)
    try:
        return PgConfig(
            host=host,
            port=port or 5432,
            user=user,
            password=conn.password or None,
            database=(conn.schema or "").strip() or user,  # libpq's default: the database named like the role
            min_size=int(min_size),
            max_size=int(max_size),
            acquire_timeout=opts["acquire_timeout"] or 10.0,
            statement_timeout=opts["statement_timeout"],
            ssl_mode=ssl_mode,  # checked against SSL_MODES above
            ssl_ca_pem=ca_pem,
            connect_timeout=_number(extra, "connect_timeout", float, fail) or 10.0,
            name=conn_id or "",
        )
    except ConnectionConfigError as exc:
        raise exc.with_conn_id(conn_id) from None


def _extras(
    raw: str | Mapping[str, Any] | None, fail: Callable[..., ConnectionConfigError]
) -> dict[str, Any]:
    if not raw:
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        doc = json.loads(raw)
    except ValueError:
        raise fail("extra", "", problem="not valid JSON") from None
    if not isinstance(doc, dict):
        raise fail("extra", "a JSON object", value=doc)
    return doc


def _number(
    values: Mapping[str, Any],
    key: str,
    kind: type,
    fail: Callable[..., ConnectionConfigError],
    *,
    path: str | None = None,
) -> Any:
    """``values[key]`` as a positive ``kind``, ``None`` when absent; URI-form extras arrive as strings."""
    raw = values.get(key)
    if raw is None or raw == "":
        return None
    try:
        number = kind(raw.strip()) if isinstance(raw, str) else raw
    except ValueError:
        number = None
    valid = isinstance(number, (int, float)) and not isinstance(number, bool) and number > 0
    if not valid or (kind is int and number != int(number)):
        expected = "an integer >= 1" if kind is int else "a number of seconds > 0"
        raise fail(path or f"$.{key}", expected, value=raw)
    return kind(number)


def _ca_pem(value: Any, fail: Callable[..., ConnectionConfigError]) -> str | None:
    """``sslrootcert`` holds either the PEM text (secrets backends) or a path (libpq's meaning)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise fail("$.sslrootcert", "PEM text or the path of a PEM file", value=value)
    if "-----BEGIN" in value:
        return value
    try:
        text = Path(value).expanduser().read_text()
    except OSError as exc:
        raise fail(
            "$.sslrootcert", "", value=value, problem=f"cannot read the CA file: {exc.strerror}"
        ) from None
    if "-----BEGIN" not in text:
        raise fail("$.sslrootcert", "", value=value, problem="the file holds no PEM certificate")
    return text


class AsyncPostgresHook(BaseHook):
    """Run queries through the process-wide asyncpg pool of a ``postgres`` connection.

    Async code (triggers, async tasks) uses ``async with hook.pool() as pool`` or the ``a``-prefixed
    methods; synchronous code uses the plain methods, which run the same coroutines on the bridge loop,
    so the pool survives between calls of one task.

    :param postgres_conn_id: id of a connection of the standard ``postgres`` type.
    :param pool_options: ``pool_min_size``, ``pool_max_size``, ``acquire_timeout`` and
        ``statement_timeout`` (seconds) overriding the connection's extras; use them for connections
        that ``PostgresHook`` also reads, because libpq rejects extras it does not know.
    """

    conn_name_attr = "postgres_conn_id"
    default_conn_name = "postgres_default"
    conn_type = "postgres"
    hook_name = "PostgreSQL (asyncpg)"

    def __init__(
        self,
        postgres_conn_id: str = default_conn_name,
        *,
        pool_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id
        self.pool_options = dict(pool_options or {})
        # Hooks with different pool options must not share a cached config.
        self._cache_key = postgres_conn_id + (
            "?" + json.dumps(self.pool_options, sort_keys=True) if self.pool_options else ""
        )

    def get_config(self) -> PgConfig:
        return CONFIGS.get(self._cache_key, lambda: self._build(self.get_connection(self.postgres_conn_id)))

    async def aget_config(self) -> PgConfig:
        return await CONFIGS.aget(self._cache_key, self._aload)

    async def _aload(self) -> PgConfig:
        return self._build(await self.aget_connection(self.postgres_conn_id))

    def _build(self, conn: Connection) -> PgConfig:
        return config_from_connection(conn, self.pool_options)

    def get_conn(self) -> PgConfig:
        return self.get_config()

    @asynccontextmanager
    async def pool(self) -> AsyncIterator[PgPool]:
        """Lease the shared pool of this connection on the running loop."""
        async with lease_pool(await self.aget_config()) as pool:
            yield pool

    async def afetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async with self.pool() as pool:
            return [dict(row) for row in await pool.fetch(sql, *args)]

    def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows as dicts (asyncpg's ``Record`` does not outlive the bridge loop's view of it well)."""
        return run_sync(self.afetch(sql, *args))

    async def afetchval(self, sql: str, *args: Any) -> Any:
        async with self.pool() as pool:
            return await pool.fetchval(sql, *args)

    def fetchval(self, sql: str, *args: Any) -> Any:
        return run_sync(self.afetchval(sql, *args))

    async def aexecute(self, sql: str, *args: Any) -> str:
        async with self.pool() as pool:
            status: str = await pool.execute(sql, *args)
            return status

    def execute(self, sql: str, *args: Any) -> str:
        """Run one statement; returns the command tag (``INSERT 0 3``)."""
        return run_sync(self.aexecute(sql, *args))

    def test_connection(self) -> tuple[bool, str]:
        """Layered diagnosis (DNS, TCP, auth, database, server version, SSL) as one line."""
        try:
            # Not cached: a test must see the connection as it is now.
            config = self._build(self.get_connection(self.postgres_conn_id))
        except ConnectionConfigError as exc:
            return False, f"Invalid connection settings: {exc}"
        result = run_sync(diagnose(config))
        self.log.info("Connection test of %r: %s", self.postgres_conn_id, result.message)
        return result.ok, result.message
