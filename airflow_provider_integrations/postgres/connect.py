"""How a :class:`PgConfig` becomes asyncpg connection arguments, and why a connect attempt failed.

Pools and the LISTEN connection both connect through here, so SSL modes, the statement timeout and the
``application_name`` seen in ``pg_stat_activity`` are set in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import struct
from typing import Any

import asyncpg

from airflow_provider_integrations.postgres.config import PgConfig, SslMode
from airflow_provider_integrations.postgres.errors import PgError, translate

# SSLRequest: length 8, then the magic code 1234.5679 (PostgreSQL protocol, "Message Formats").
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


@functools.lru_cache(maxsize=32)
def ssl_argument(mode: SslMode, ca_pem: str | None) -> ssl.SSLContext | bool:
    """What asyncpg's ``ssl=`` needs for ``mode`` (cached: building a context parses the CA bundle)."""
    if mode == "disable":
        return False
    if mode == "require":
        # libpq's meaning: encrypted, but the certificate is not checked.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cadata=ca_pem)


def connect_kwargs(config: PgConfig, *, application_name: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``asyncpg.connect`` / ``asyncpg.create_pool``."""
    settings = {"application_name": application_name or config.application_name}
    if config.statement_timeout is not None:
        # Server-side, so it also bounds statements run by COPY and by callers' raw connections.
        settings["statement_timeout"] = str(max(1, round(config.statement_timeout * 1000)))
    return {
        "host": config.host,
        "port": config.port,
        "user": config.user,
        "password": config.password,
        "database": config.database,
        "ssl": ssl_argument(config.ssl_mode, config.ssl_ca_pem),
        "timeout": config.connect_timeout,
        "server_settings": settings,
    }


async def open_connection(config: PgConfig, *, application_name: str | None = None) -> asyncpg.Connection:
    """One unpooled connection (the LISTEN connection); failures are raised as :class:`PgError`."""
    try:
        return await asyncpg.connect(**connect_kwargs(config, application_name=application_name))
    except Exception as exc:
        raise await connect_error(config, exc) from exc


async def connect_error(config: PgConfig, exc: Exception) -> PgError:
    """Translate a failed connect, telling a server without SSL apart from an unreachable one.

    asyncpg reports a refused SSL upgrade as a bare ``ConnectionError``; rather than read its message,
    ask the server directly whether it speaks SSL.
    """
    where = f"connect to {config.dsn} (pool {config.label!r})"
    if (
        config.ssl_mode != "disable"
        and isinstance(exc, OSError)
        and not isinstance(exc, ssl.SSLError)
        and await server_accepts_ssl(config.host, config.port, config.connect_timeout) is False
    ):
        return PgError(
            f"{where}: the server does not accept SSL connections (its ssl setting is off) but "
            f"ssl_mode={config.ssl_mode!r} requires SSL; use ssl_mode='disable' or enable ssl on the server"
        )
    return translate(exc, context=where)


async def server_accepts_ssl(host: str, port: int, timeout: float) -> bool | None:
    """Whether the server answers an SSLRequest with "S"; ``None`` if it cannot be asked."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(_SSL_REQUEST)
        answer = await asyncio.wait_for(reader.readexactly(1), timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return answer == b"S"
