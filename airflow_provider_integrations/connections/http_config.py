"""Frozen configuration of one ``integration_http`` connection.

Parsed once from a connection (standard fields plus extras) by :func:`parse_http_connection` in
``connections.http_parse``; every object here is immutable and hashable, so a config doubles as the key
under which the process shares sessions, circuit breakers and rate limiters.

Secrets (password, tokens, the client private key) live only in these objects and never in their
``repr``: fields holding them are declared with ``repr=False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AuthScheme = Literal["none", "basic", "bearer", "api_key", "oauth2_client_credentials", "hmac"]
AUTH_SCHEMES: tuple[AuthScheme, ...] = (
    "none",
    "basic",
    "bearer",
    "api_key",
    "oauth2_client_credentials",
    "hmac",
)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds; ``None`` disables that limit."""

    connect: float | None = 10.0
    # Off by default: ``total`` bounds request/response calls; streams set a read timeout.
    read: float | None = None
    total: float | None = 60.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: bool = True
    retry_on_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    respect_retry_after: bool = True
    # Total seconds the client may spend waiting between attempts of one call.
    budget: float = 120.0
    idempotency_header: str = "Idempotency-Key"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Client-side token bucket; ``per_second=None`` means unlimited."""

    per_second: float | None = None
    burst: int = 1


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """``failure_threshold=0`` disables the breaker."""

    failure_threshold: int = 5
    reset_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class TlsConfig:
    verify: bool = True
    ca_bundle_pem: str | None = field(default=None, repr=False)
    client_cert_pem: str | None = field(default=None, repr=False)
    client_key_pem: str | None = field(default=None, repr=False)
    min_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"


@dataclass(frozen=True, slots=True)
class AuthConfig:
    scheme: AuthScheme = "none"
    # basic: username; oauth2: client id; hmac: key id.
    login: str | None = None
    # basic: password; bearer: token; api_key: key; oauth2: client secret; hmac: secret.
    secret: str | None = field(default=None, repr=False)
    api_key_name: str = "X-API-Key"
    api_key_in: Literal["header", "query"] = "header"
    oauth2_token_url: str | None = None
    oauth2_scopes: tuple[str, ...] = ()
    oauth2_audience: str | None = None
    oauth2_client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    hmac_algorithm: Literal["sha256", "sha512"] = "sha256"


@dataclass(frozen=True, slots=True)
class HttpClientConfig:
    base_url: str
    auth: AuthConfig = AuthConfig()
    headers: tuple[tuple[str, str], ...] = ()
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    rate_limit: RateLimit = RateLimit()
    breaker: BreakerConfig = BreakerConfig()
    tls: TlsConfig = TlsConfig()
    health_check_path: str = "/health"
    # A path that requires authentication; lets the connection test prove the credentials are accepted.
    auth_check_path: str | None = None
    # DNS and connect/TLS timings through aiohttp tracing cost every request a few µs; the connection test
    # and DEBUG logging turn them on. TTFB and total are always measured.
    detailed_timings: bool = False
    # Upper bound of pooled TCP connections per session.
    pool_size: int = 100
    # Identifies the connection in errors, logs and breaker state (never a secret).
    name: str = ""
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        # The config keys the per-loop session registry on every request: hash the nested tree once.
        object.__setattr__(self, "_hash", hash(tuple(getattr(self, f) for f in _FIELDS)))

    def __hash__(self) -> int:
        return self._hash


_FIELDS = tuple(f for f in HttpClientConfig.__dataclass_fields__ if f != "_hash")
