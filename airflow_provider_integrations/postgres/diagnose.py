"""Layered diagnosis of a PostgreSQL endpoint: DNS, TCP, authentication, database, server version, SSL.

The first failing layer stops the walk and names a remedy; a success lists every layer in one line,
which is what ``AsyncPostgresHook.test_connection`` returns. It opens one plain asyncpg connection, not a
pool: a test must not leave pooled connections behind or reuse a cached one.
"""

from __future__ import annotations

import ssl
import time

import asyncpg

from airflow_provider_integrations.diagnosis import Diagnosis, Failed, connect_tcp, reason, resolve
from airflow_provider_integrations.postgres.config import PgConfig
from airflow_provider_integrations.postgres.connect import connect_kwargs, server_accepts_ssl

# SQLSTATE -> (layer, remedy) for the errors a login can end with.
_LOGIN_ERRORS: dict[str, tuple[str, str]] = {
    "28P01": ("auth", "wrong password: check the Password field"),
    "28000": ("auth", "check the Login field, and that pg_hba.conf admits this role from this host"),
    "3D000": ("database", "check the Database field (the connection's schema); psql -l lists them"),
    "53300": ("auth", "the server has no free connection slots: lower pool sizes or raise max_connections"),
    "57P03": ("auth", "the server is starting up or shutting down: retry in a moment"),
    "42501": ("database", "the role may not connect to this database: GRANT CONNECT ON DATABASE"),
}


async def diagnose(config: PgConfig) -> Diagnosis:
    result = Diagnosis()
    try:
        address = await resolve(config.host, config.port, config.connect_timeout, result)
        await connect_tcp(address, config.port, config.connect_timeout, result, _tcp_hint)
        await _login(config, result)
    except Failed:
        pass
    return result


def _tcp_hint(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return (
            "is PostgreSQL running, and listening on this address (listen_addresses) and port? "
            "check the Port field"
        )
    return "check the Host and Port fields and any firewall between here and the server"


async def _login(config: PgConfig, result: Diagnosis) -> None:
    t0 = time.perf_counter()
    try:
        conn = await asyncpg.connect(
            **connect_kwargs(config, application_name=f"{config.application_name} (connection test)")
        )
    except asyncpg.PostgresError as exc:
        layer, hint = _LOGIN_ERRORS.get(exc.sqlstate or "", ("auth", "see the server log for details"))
        if layer == "database":
            result.passed("auth", t0, f"{config.user} accepted")
            message = f"database {config.database!r} rejected: {exc} ({exc.sqlstate}): {hint}"
            raise result.fail("database", None, message) from None
        message = f"authentication of role {config.user!r} failed: {exc} ({exc.sqlstate}): {hint}"
        raise result.fail("auth", t0, message) from None
    except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
        if config.ssl_mode != "disable" and (
            isinstance(exc, ssl.SSLError)
            or await server_accepts_ssl(config.host, config.port, config.connect_timeout) is False
        ):
            # Failed before authentication: the TLS negotiation is what failed.
            message = f"SSL ({config.ssl_mode}) failed: {reason(exc)}: {_ssl_hint(exc)}"
            raise result.fail("SSL", t0, message) from None
        raise result.fail(
            "auth", t0, f"login as {config.user!r} failed: {reason(exc)}: see the server log"
        ) from None
    try:
        result.passed("auth", t0, f"{config.user} accepted")
        result.passed("database", None, f"{config.database} exists")
        version = str(await conn.fetchval("SHOW server_version")).split()[0]
        result.passed("version", None, f"PostgreSQL {version}")
        row = await conn.fetchrow("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        result.passed("SSL", None, f"on, {row['version']}" if row and row["ssl"] else "off")
    finally:
        await conn.close()


def _ssl_hint(exc: BaseException) -> str:
    if not isinstance(exc, ssl.SSLError):
        return "the server does not accept SSL: set sslmode to disable, or enable ssl on the server"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "set sslrootcert to the CA that signed the server certificate, and check the Host field"
    return "check sslmode and sslrootcert"
