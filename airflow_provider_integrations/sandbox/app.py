"""Compose the sandbox application from its route modules.

Each feature module exposes ``register(app)``; adding jobs, webhooks or streams
later means adding a module to ``ROUTE_MODULES``, not editing the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from airflow_provider_integrations.sandbox import (
    auth,
    batch,
    faults,
    files,
    jobs,
    oauth,
    pagination,
    partner,
    records,
    rest,
    stats,
    status,
    streams,
    webhooks,
)
from airflow_provider_integrations.sandbox.state import DEFAULT_TOKEN_TTL, STATE_KEY, SandboxState, TokenStore

# stats first: its middleware must see every request, including ones other
# modules reject.
ROUTE_MODULES: tuple[Callable[[web.Application], None], ...] = (
    stats.register,
    rest.register,
    auth.register,
    oauth.register,
    pagination.register,
    faults.register,
    status.register,
    files.register,
    records.register,
    jobs.register,
    batch.register,
    webhooks.register,
    partner.register,
    streams.register,
)


@dataclass(frozen=True)
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 0
    token_ttl: int = DEFAULT_TOKEN_TTL
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if self.client_ca is not None and self.tls_cert is None:
            raise ValueError("client_ca (mTLS) requires tls_cert and tls_key")
        if self.token_ttl < 0:
            raise ValueError("token_ttl must be >= 0")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


def create_app(config: SandboxConfig | None = None) -> web.Application:
    config = config or SandboxConfig()
    # Uploads to /echo and HMAC endpoints may be large in benchmarks.
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = SandboxState(token_store=TokenStore(ttl=config.token_ttl))
    for register in ROUTE_MODULES:
        register(app)
    return app
