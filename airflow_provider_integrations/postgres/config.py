"""Frozen settings of one PostgreSQL endpoint and its pool.

A config is immutable and hashable, so it doubles as the key under which the process shares one pool
and one LISTEN connection per event loop. Secrets (the password; the CA is not secret but long) are
kept out of ``repr`` with ``repr=False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_integrations.exceptions import MISSING, ConnectionConfigError

SslMode = Literal["disable", "require", "verify-full"]
SSL_MODES: tuple[SslMode, ...] = ("disable", "require", "verify-full")
#: Shown as ``application_name`` in ``pg_stat_activity`` when the config has no ``name``.
DEFAULT_APPLICATION_NAME = "airflow-provider-integrations"


@dataclass(frozen=True, slots=True)
class PgConfig:
    """Where to connect and how the pool behaves. Timeouts are in seconds.

    :param acquire_timeout: how long a caller waits for a free pooled connection before
        :class:`~airflow_provider_integrations.postgres.errors.PgPoolExhaustedError`.
    :param statement_timeout: server-side limit per statement (``None``: the server's default).
    :param ssl_mode: ``disable``; ``require`` (encrypted, certificate not checked); ``verify-full``
        (certificate chain checked against ``ssl_ca_pem`` and the host name matched).
    :param name: identifies the pool in errors, statistics and ``pg_stat_activity``; never a secret.
    """

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str | None = field(default=None, repr=False)
    database: str = "postgres"
    min_size: int = 1
    max_size: int = 10
    acquire_timeout: float = 10.0
    statement_timeout: float | None = None
    ssl_mode: SslMode = "disable"
    ssl_ca_pem: str | None = field(default=None, repr=False)
    connect_timeout: float = 10.0
    name: str = ""

    def __post_init__(self) -> None:
        if not self.host:
            _invalid("$.host", "a host name or address", self.host)
        if not 0 < self.port < 65536:
            _invalid("$.port", "a port between 1 and 65535", self.port)
        if self.min_size < 0:
            _invalid("$.min_size", "an integer >= 0", self.min_size)
        if self.max_size < 1 or self.max_size < self.min_size:
            _invalid("$.max_size", f"an integer >= 1 and >= min_size ({self.min_size})", self.max_size)
        for path, value in (
            ("acquire_timeout", self.acquire_timeout),
            ("connect_timeout", self.connect_timeout),
        ):
            if not value > 0:
                _invalid(f"$.{path}", "a number of seconds > 0", value)
        if self.statement_timeout is not None and not self.statement_timeout > 0:
            _invalid("$.statement_timeout", "a number of seconds > 0, or null", self.statement_timeout)
        if self.ssl_mode not in SSL_MODES:
            _invalid("$.ssl_mode", " or ".join(SSL_MODES), self.ssl_mode)
        if self.ssl_mode == "verify-full" and not self.ssl_ca_pem:
            _invalid(
                "$.ssl_ca_pem",
                "a PEM CA bundle",
                MISSING,
                problem="ssl_mode 'verify-full' needs the CA certificate (PEM) that signed the server's",
            )

    @property
    def label(self) -> str:
        """How errors and statistics name this pool."""
        return self.name or f"{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def application_name(self) -> str:
        return self.name or DEFAULT_APPLICATION_NAME

    @property
    def dsn(self) -> str:
        """A libpq URI of this endpoint *without* the password, for logs and messages."""
        from urllib.parse import quote

        host = f"[{self.host}]" if ":" in self.host else self.host
        return (
            f"postgresql://{quote(self.user, safe='')}@{host}:{self.port}/{quote(self.database, safe='')}"
            f"?sslmode={self.ssl_mode}"
        )


def _invalid(path: str, expected: str, value: Any, *, problem: str | None = None) -> None:
    raise ConnectionConfigError(path, expected, value=value, conn_type="postgres", problem=problem)
