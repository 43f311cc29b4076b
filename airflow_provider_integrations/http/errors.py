"""Typed HTTP errors, built in one place.

::

    IntegrationError
    ├── ConnectionConfigError            (exceptions.py: invalid connection settings)
    └── HttpError                        (method, url without secrets, status, retry_after, excerpt)
        ├── RetriableError               worth another attempt
        │   ├── TransportError           DNS, refused, reset, TLS EOF... (``sent`` tells if the request left)
        │   │   └── RequestTimeout       connect, read or total timeout
        │   ├── RateLimitedError         429
        │   ├── ServerError              5xx (and any status the retry policy lists)
        │   └── CircuitOpenError         the breaker refuses calls until ``retry_after``
        └── FatalError                   retrying cannot help
            ├── AuthenticationError      401, 403, token endpoint refusals
            ├── NotFoundError            404, 410
            ├── ClientRequestError       other 4xx
            ├── TlsVerificationError     certificate rejected
            ├── ResponseContractError    malformed JSON, schema drift
            └── PaginationError          a paginator saw the same token twice

`classify_status` maps a response to an error, :func:`translate` maps aiohttp and OS
exceptions; nothing else in the package inspects status codes or exception types.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from airflow_provider_integrations.exceptions import IntegrationError

EXCERPT_LIMIT = 1000
_SECRET_QUERY_HINTS = ("key", "token", "secret", "password", "signature", "sig", "auth", "code")


def redact_url(url: URL | str) -> str:
    """Drop credentials and the values of secret-looking query parameters."""
    u = URL(url) if isinstance(url, str) else url
    if u.user or u.password:
        u = u.with_user(None)
    if u.query_string:
        query = [
            (k, "***" if any(h in k.lower() for h in _SECRET_QUERY_HINTS) else v) for k, v in u.query.items()
        ]
        u = u.with_query(query)
    return str(u)


class HttpError(IntegrationError):
    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        excerpt: str = "",
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.status = status
        self.retry_after = retry_after
        self.excerpt = excerpt

    retriable = False

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.url else ""
        return f"{self.args[0]}{where}"


class RetriableError(HttpError):
    retriable = True


class TransportError(RetriableError):
    def __init__(self, message: str, *, sent: bool = True, **kw: Any) -> None:
        super().__init__(message, **kw)
        # False when the failure happened before the request reached the server (DNS, connect):
        # then even a non-idempotent request may be repeated safely.
        self.sent = sent


class RequestTimeout(TransportError):
    pass


class RateLimitedError(RetriableError):
    pass


class ServerError(RetriableError):
    pass


class CircuitOpenError(RetriableError):
    pass


class FatalError(HttpError):
    pass


class AuthenticationError(FatalError):
    pass


class NotFoundError(FatalError):
    pass


class ClientRequestError(FatalError):
    pass


class TlsVerificationError(FatalError):
    pass


class ResponseContractError(FatalError):
    pass


class PaginationError(FatalError):
    pass


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    import time

    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def excerpt_of(body: bytes) -> str:
    text = body[:EXCERPT_LIMIT].decode("utf-8", "replace")
    return text + ("…" if len(body) > EXCERPT_LIMIT else "")


def classify_status(
    status: int,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    retry_on: frozenset[int],
) -> HttpError | None:
    """Map a response to the error it stands for, or ``None`` for success (1xx-3xx)."""
    if status < 400:
        return None
    kw: dict[str, Any] = {"method": method, "url": url, "status": status, "excerpt": excerpt_of(body)}
    retry_after = parse_retry_after(headers.get("Retry-After"))
    reason = f"HTTP {status}"
    if status in (401, 403):
        label = "Unauthorized" if status == 401 else "Forbidden"
        return AuthenticationError(f"{reason} {label}", **kw)
    if status in (404, 410):
        return NotFoundError(f"{reason} Not Found", **kw)
    if status in retry_on:
        cls: type[HttpError] = RateLimitedError if status == 429 else ServerError
        return cls(
            f"{reason} {'Too Many Requests' if status == 429 else 'from server'}",
            retry_after=retry_after,
            **kw,
        )
    if status >= 500:
        return FatalError(f"{reason} from server (not in the retry-on statuses)", **kw)
    return ClientRequestError(f"{reason} client error", **kw)


def translate(exc: Exception, method: str, url: URL | str) -> HttpError:
    """The single place where aiohttp and OS exceptions become :class:`HttpError` (call from ``except``)."""
    if isinstance(exc, HttpError):
        return exc
    kw: dict[str, Any] = {"method": method, "url": redact_url(url)}
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = getattr(exc.certificate_error, "verify_message", None) or str(exc.certificate_error)
        return TlsVerificationError(f"TLS certificate verify failed: {reason}", **kw)
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return TransportError(f"TLS handshake failed: {exc.os_error}", sent=False, **kw)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return TransportError(f"DNS lookup failed for {exc.host}: {exc.os_error}", sent=False, **kw)
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or exc.os_error
        return TransportError(f"connection to {exc.host}:{exc.port} failed: {reason}", sent=False, **kw)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return RequestTimeout("connect timeout", sent=False, **kw)
    if isinstance(exc, (aiohttp.SocketTimeoutError, aiohttp.ServerTimeoutError)):
        return RequestTimeout("read timeout", **kw)
    if isinstance(exc, TimeoutError):
        return RequestTimeout("total timeout", **kw)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return TransportError(f"response body broken: {exc}", **kw)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        return TransportError(f"connection lost: {exc}", **kw)
    if isinstance(exc, ssl.SSLError):
        return TransportError(f"TLS error: {exc.reason or exc}", **kw)
    if isinstance(exc, aiohttp.InvalidURL):
        return ClientRequestError(f"invalid URL: {exc}", **kw)
    if isinstance(exc, aiohttp.ClientError):
        return TransportError(f"{type(exc).__name__}: {exc}", **kw)
    raise exc
