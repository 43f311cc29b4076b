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
from collections.abc import Awaitable, Callable
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


@dataclass(slots=True, eq=False)
class _Entry:
    client: HttpClient
    loop: asyncio.AbstractEventLoop
    leases: int = 0


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[HttpClientConfig, _Entry]] = (
    weakref.WeakKeyDictionary()
)
_persistent: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_breakers: dict[tuple[str, str], CircuitBreaker] = {}
_limiters: dict[HttpClientConfig, TokenBucket] = {}
_lock = threading.Lock()
sessions_created = 0


def breaker_for(config: HttpClientConfig) -> CircuitBreaker:
    """The connection's breaker, shared by all loops of the process: its state is observable in one place.

    A disabled breaker (threshold 0, e.g. the connection test's probe) is private and never registered,
    so it cannot hide the real breaker of the same connection from :func:`breaker_states`.
    """
    b = config.breaker
    name = config.name or config.base_url
    if b.failure_threshold == 0:
        return CircuitBreaker(name, 0, b.reset_timeout)
    key = (name, config.base_url)
    with _lock:
        breaker = _breakers.get(key)
        if breaker is None or (breaker.failure_threshold, breaker.reset_timeout) != (
            b.failure_threshold,
            b.reset_timeout,
        ):
            # New, or the connection's breaker settings were edited: start from a closed breaker.
            breaker = _breakers[key] = CircuitBreaker(name, b.failure_threshold, b.reset_timeout)
        return breaker


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


def acquire(config: HttpClientConfig) -> _Entry:
    """Take a lease on the shared client of ``config`` on the running loop (pair with :func:`release`)."""
    loop = asyncio.get_running_loop()
    entries = _clients.get(loop)
    if entries is None:
        entries = _clients[loop] = {}
    entry = entries.get(config)
    if entry is None:
        entry = entries[config] = _Entry(_new_client(config), loop=loop)
    entry.leases += 1
    return entry


async def release(entry: _Entry) -> None:
    """Return a lease; the last one out closes the client, except on persistent (bridge) loops."""
    entry.leases -= 1
    if entry.leases == 0 and entry.loop not in _persistent:
        entries = _clients.get(entry.loop, {})
        if entries.get(entry.client.config) is entry:
            del entries[entry.client.config]
        await entry.client.close()


class lease_client:
    """Borrow the shared client of ``config`` on the running loop for the duration of the block.

    ``config`` may be a coroutine function resolving it (a hook's cached lookup). A class rather than
    an ``asynccontextmanager``: a waiting trigger holds its lease for its whole life, and the generator
    form keeps five more objects per trigger alive for the garbage collector to walk.
    """

    __slots__ = ("_config", "_entry")

    def __init__(self, config: HttpClientConfig | Callable[[], Awaitable[HttpClientConfig]]) -> None:
        self._config = config

    async def __aenter__(self) -> HttpClient:
        config = self._config
        if not isinstance(config, HttpClientConfig):
            # Keep the config, not the resolver: a bound method would keep its hook alive for the lease.
            config = self._config = await config()
        self._entry = acquire(config)
        return self._entry.client

    async def __aexit__(self, *exc: object) -> None:
        await release(self._entry)


def open_clients(loop: asyncio.AbstractEventLoop | None = None) -> int:
    """How many clients (sessions) are open on ``loop`` (default: the running loop)."""
    return len(_clients.get(loop or asyncio.get_running_loop(), {}))


async def close_loop_clients() -> None:
    """Close every client of the running loop, leased or not (shutdown path)."""
    entries = _clients.pop(asyncio.get_running_loop(), {})
    await asyncio.gather(*(e.client.close() for e in entries.values()), return_exceptions=True)
