"""Layered diagnosis of a PostgreSQL endpoint: DNS, TCP, authentication, database, server version, SSL.

The first failing layer stops the walk and names a remedy; a success lists every layer in one line,
which is what ``AsyncPostgresHook.test_connection`` returns. It opens one plain asyncpg connection, not a
pool: a test must not leave pooled connections behind or reuse a cached one.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from dataclasses import dataclass, field

import asyncpg

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


@dataclass(slots=True)
class Check:
    name: str
    text: str


@dataclass(slots=True)
class Diagnosis:
    passed: list[Check] = field(default_factory=list)
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def message(self) -> str:
        line = " | ".join(check.text for check in self.passed)
        if self.failure is None:
            return f"Connection OK: {line}"
        return self.failure + (f" [passed: {line}]" if line else "")


class _Stop(Exception):
    pass


def _ms(t0: float) -> str:
    return f"{(time.perf_counter() - t0) * 1000:.1f} ms"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0 and not isinstance(exc, ssl.SSLError):
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


async def diagnose(config: PgConfig) -> Diagnosis:
    result = Diagnosis()
    try:
        address = await _dns(config, result)
        await _tcp(config, address, result)
        await _login(config, result)
    except _Stop:
        pass
    return result


async def _dns(config: PgConfig, result: Diagnosis) -> str:
    t0 = time.perf_counter()
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM),
            config.connect_timeout,
        )
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        result.failure = f"DNS lookup failed for {config.host!r}: {reason}: check the Host field"
        raise _Stop from None
    address = str(infos[0][4][0])
    result.passed.append(Check("DNS", f"DNS {_ms(t0)} ({address})"))
    return address


async def _tcp(config: PgConfig, address: str, result: Diagnosis) -> None:
    t0 = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(address, config.port), config.connect_timeout
        )
    except (OSError, TimeoutError) as exc:
        hint = (
            "is PostgreSQL running, and listening on this address (listen_addresses) and port? "
            "check the Port field"
            if isinstance(exc, ConnectionRefusedError)
            else "check the Host and Port fields and any firewall between here and the server"
        )
        result.failure = f"TCP connect to {address}:{config.port} failed: {_reason(exc)}: {hint}"
        raise _Stop from None
    writer.close()
    await writer.wait_closed()
    result.passed.append(Check("TCP", f"TCP {_ms(t0)}"))


async def _login(config: PgConfig, result: Diagnosis) -> None:
    t0 = time.perf_counter()
    try:
        conn = await asyncpg.connect(
            **connect_kwargs(config, application_name=f"{config.application_name} (connection test)")
        )
    except asyncpg.PostgresError as exc:
        layer, hint = _LOGIN_ERRORS.get(exc.sqlstate or "", ("auth", "see the server log for details"))
        if layer == "database":
            result.passed.append(Check("auth", f"auth {config.user} accepted"))
            result.failure = f"database {config.database!r} rejected: {exc} ({exc.sqlstate}): {hint}"
        else:
            result.failure = f"authentication of role {config.user!r} failed: {exc} ({exc.sqlstate}): {hint}"
        raise _Stop from None
    except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
        if config.ssl_mode != "disable" and (
            isinstance(exc, ssl.SSLError)
            or await server_accepts_ssl(config.host, config.port, config.connect_timeout) is False
        ):
            # Failed before authentication: the TLS negotiation is what failed.
            result.failure = f"SSL ({config.ssl_mode}) failed: {_reason(exc)}: {_ssl_hint(exc)}"
        else:
            result.failure = f"login as {config.user!r} failed: {_reason(exc)}: see the server log"
        raise _Stop from None
    try:
        result.passed.append(Check("auth", f"auth {config.user} accepted ({_ms(t0)})"))
        result.passed.append(Check("database", f"database {config.database} exists"))
        version = str(await conn.fetchval("SHOW server_version")).split()[0]
        result.passed.append(Check("version", f"PostgreSQL {version}"))
        row = await conn.fetchrow("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        on = bool(row and row["ssl"])
        result.passed.append(Check("SSL", f"SSL on ({row['version']})" if on and row else "SSL off"))
    finally:
        await conn.close()


def _ssl_hint(exc: BaseException) -> str:
    if not isinstance(exc, ssl.SSLError):
        return "the server does not accept SSL: set sslmode to disable, or enable ssl on the server"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "set sslrootcert to the CA that signed the server certificate, and check the Host field"
    return "check sslmode and sslrootcert"
