"""Process-wide registry: one :class:`HttpClient` (one ``ClientSession``) per connection config and event
loop, shared by every hook and trigger that leases it; one breaker and rate limiter per connection.

A client lives while at least one lease is open, so a triggerer holding 10,000 waiting triggers of one
connection keeps one session and one connection pool. Loops marked persistent (the sync bridge's) keep
their clients until :func:`close_loop_clients` runs at interpreter exit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from dataclasses import dataclass

import aiohttp

from airflow_provider_integrations.connections.http_config import HttpClientConfig
from airflow_provider_integrations.http.breaker import CircuitBreaker
from airflow_provider_integrations.http.client import HttpClient
from airflow_provider_integrations.http.ratelimit import TokenBucket
from airflow_provider_integrations.http.tls import ssl_context
from airflow_provider_integrations.http.tracing import trace_config

DEBUG = logging.DEBUG
_http_log = logging.getLogger("airflow_provider_integrations.http.client")


@dataclass(slots=True)
class _Entry:
    client: HttpClient
    leases: int = 0


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[HttpClientConfig, _Entry]] = (
    weakref.WeakKeyDictionary()
)
_persistent: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_breakers: dict[tuple[str, str, object], CircuitBreaker] = {}
_limiters: dict[HttpClientConfig, TokenBucket] = {}
_lock = threading.Lock()
sessions_created = 0


def breaker_for(config: HttpClientConfig) -> CircuitBreaker:
    """The connection's breaker, shared by all loops of the process: its state is observable in one place."""
    key = (config.name, config.base_url, config.breaker)
    with _lock:
        if key not in _breakers:
            b = config.breaker
            _breakers[key] = CircuitBreaker(
                config.name or config.base_url, b.failure_threshold, b.reset_timeout
            )
        return _breakers[key]


def limiter_for(config: HttpClientConfig) -> TokenBucket:
    with _lock:
        if config not in _limiters:
            _limiters[config] = TokenBucket(config.rate_limit.per_second, config.rate_limit.burst)
        return _limiters[config]


def breaker_states() -> dict[str, dict[str, object]]:
    with _lock:
        breakers = list(_breakers.values())
    return {b.name: b.snapshot() for b in breakers}


def _new_client(config: HttpClientConfig) -> HttpClient:
    global sessions_created
    connector = aiohttp.TCPConnector(
        limit=config.pool_size,
        ssl=ssl_context(config.tls) if config.base_url.startswith("https") else True,
        ttl_dns_cache=300,
        enable_cleanup_closed=False,
    )
    session = aiohttp.ClientSession(
        connector=connector,
        headers=dict(config.headers),
        trace_configs=[trace_config()] if config.detailed_timings or _http_log.isEnabledFor(DEBUG) else None,
        raise_for_status=False,
        timeout=aiohttp.ClientTimeout(total=None),
    )
    sessions_created += 1
    return HttpClient(config, session, breaker=breaker_for(config), limiter=limiter_for(config))


def mark_persistent(loop: asyncio.AbstractEventLoop) -> None:
    _persistent.add(loop)


class lease_client:
    """Borrow the shared client of ``config`` on the running loop; the last lease out closes it.

    A class rather than ``@asynccontextmanager``: it sits on every request's path.
    """

    __slots__ = ("_config", "_entries", "_entry", "_loop")

    def __init__(self, config: HttpClientConfig) -> None:
        self._config = config

    async def __aenter__(self) -> HttpClient:
        loop = self._loop = asyncio.get_running_loop()
        entries = self._entries = _clients.get(loop) or _clients.setdefault(loop, {})
        entry = entries.get(self._config)
        if entry is None:
            entry = entries[self._config] = _Entry(_new_client(self._config))
        entry.leases += 1
        self._entry = entry
        return entry.client

    async def __aexit__(self, *exc: object) -> None:
        entry = self._entry
        entry.leases -= 1
        if entry.leases == 0 and self._loop not in _persistent and self._entries.get(self._config) is entry:
            del self._entries[self._config]
            await entry.client.close()


def open_clients(loop: asyncio.AbstractEventLoop | None = None) -> int:
    """How many clients (sessions) are open on ``loop`` (default: the running loop)."""
    return len(_clients.get(loop or asyncio.get_running_loop(), {}))


async def close_loop_clients() -> None:
    """Close every client of the running loop, leased or not (shutdown path)."""
    entries = _clients.pop(asyncio.get_running_loop(), {})
    await asyncio.gather(*(e.client.close() for e in entries.values()), return_exceptions=True)
