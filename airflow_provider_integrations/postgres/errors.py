"""Typed PostgreSQL errors, built in one place.

::

    IntegrationError
    └── PgError                     any database failure; ``sqlstate`` when the server sent one
        ├── PgRetriableError        worth another attempt: serialization failure (40001), deadlock (40P01),
        │                           lost or refused connections (08xxx, 57P01-57P03, 53300, OS errors)
        ├── PgPoolExhaustedError    no pooled connection freed within the acquire timeout
        └── PgDataError             bad data (classes 22 and 23); ``row_number``/``column`` for a bulk load

:func:`translate` maps asyncpg, TLS and OS exceptions; nothing else in the package inspects their types.
Classification goes by SQLSTATE and exception type, never by message text.
"""

from __future__ import annotations

import ssl

import asyncpg

from airflow_provider_integrations.exceptions import IntegrationError

#: Transaction conflicts that a re-run of the whole transaction resolves.
RETRY_SQLSTATES = frozenset({"40001", "40P01"})
# Backend gone (admin/crash/"cannot connect now") or the server is full: a new connection may work.
_CONNECTION_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_DATA_CLASSES = frozenset({"22", "23"})


class PgError(IntegrationError):
    retriable = False

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate

    def __str__(self) -> str:
        state = f" [SQLSTATE {self.sqlstate}]" if self.sqlstate else ""
        return f"{self.args[0]}{state}"


class PgRetriableError(PgError):
    retriable = True


class PgPoolExhaustedError(PgError):
    def __init__(self, pool: str, max_size: int, acquire_timeout: float, waiting: int) -> None:
        super().__init__(
            f"connection pool {pool!r} exhausted: all {max_size} connections stayed in use for the "
            f"acquire timeout of {acquire_timeout:g} s ({waiting} callers waiting); raise max_size, "
            "lower concurrency, or release connections sooner"
        )
        self.pool = pool
        self.max_size = max_size
        self.acquire_timeout = acquire_timeout
        self.waiting = waiting

    def __reduce__(self) -> tuple[object, ...]:
        # The default rebuilds from ``args`` (the message), which does not fit this signature.
        return (type(self), (self.pool, self.max_size, self.acquire_timeout, self.waiting))


class PgDataError(PgError):
    """A value the target rejects. In a bulk load, ``row_number`` is 1-based in the caller's input."""

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        row_number: int | None = None,
        column: str | None = None,
    ) -> None:
        where = ", ".join(
            part
            for part in (
                f"row {row_number}" if row_number is not None else "",
                f"column {column!r}" if column is not None else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message, sqlstate=sqlstate)
        self.reason = message
        self.row_number = row_number
        self.column = column


def describe(exc: asyncpg.PostgresError) -> str:
    """The server's message plus its detail and hint (which carry the offending key or value)."""
    # Client-side asyncpg errors (a closed connection) carry no server message.
    message = exc.message or (exc.args[0] if exc.args else None) or type(exc).__name__
    parts = [str(message)]
    if exc.detail:
        parts.append(str(exc.detail))
    if exc.hint:
        parts.append(f"Hint: {exc.hint}")
    return " ".join(parts)


def translate(exc: Exception, *, context: str = "") -> PgError:
    """The single mapping of asyncpg, TLS and OS exceptions to :class:`PgError` (call from ``except``).

    ``context`` (say, what was being connected to) prefixes the message. Anything else (a bug, a
    caller's own exception) is re-raised unchanged.
    """
    if isinstance(exc, PgError):
        return exc
    prefix = f"{context}: " if context else ""
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        message = prefix + describe(exc)
        if state in RETRY_SQLSTATES or state in _CONNECTION_SQLSTATES or state.startswith("08"):
            return PgRetriableError(message, sqlstate=state)
        if state[:2] in _DATA_CLASSES:
            return PgDataError(message, sqlstate=state, column=exc.column_name)
        return PgError(message, sqlstate=state or None)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PgError(f"{prefix}TLS certificate verify failed: {exc.verify_message}")
    if isinstance(exc, ssl.SSLError):
        return PgError(f"{prefix}TLS handshake failed: {exc.reason or exc}")
    if isinstance(exc, TimeoutError):
        return PgRetriableError(f"{prefix}timed out waiting for the server")
    if isinstance(exc, OSError):
        return PgRetriableError(f"{prefix}connection failed: {exc.strerror or exc}")
    if isinstance(exc, asyncpg.InterfaceError):
        return PgError(f"{prefix}{type(exc).__name__}: {exc}")
    raise exc
