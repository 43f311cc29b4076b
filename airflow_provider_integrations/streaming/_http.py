"""Streaming sources over the shared client of an ``integration_http`` connection.

Each connection attempt is one :meth:`HttpClient.open` (or :meth:`HttpClient.websocket`): the
connection's auth (refreshed once on 401), circuit breaker, rate limiter, TLS, headers and error
classification apply; reconnecting and resuming after a drop is the source's own loop.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping

import aiohttp

from airflow_provider_integrations.connections.http_config import HttpClientConfig, RetryPolicy
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.http.client import HttpClient
from airflow_provider_integrations.http.sessions import lease_client
from airflow_provider_integrations.streaming.base import StreamSource
from airflow_provider_integrations.streaming.errors import StreamConfigError
from airflow_provider_integrations.streaming.events import Position, StreamOptions

Params = Mapping[str, str | int | float]


class HttpStreamSource(StreamSource):
    """A source reading ``path`` of an HTTP connection; the client is leased while the reader runs."""

    def __init__(
        self,
        config: HttpClientConfig,
        path: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
        options: StreamOptions | None = None,
    ) -> None:
        if not isinstance(config, HttpClientConfig):
            raise StreamConfigError("config", "an HttpClientConfig (parse the connection first)", config)
        if not isinstance(path, str):
            raise StreamConfigError("path", "a string path relative to the connection's base URL", path)
        origin = config.name or errors.redact_url(config.base_url.rstrip("/"))
        super().__init__(name or f"{origin}/{path.lstrip('/')}", options)
        self.config = config
        self.path = path
        self.params: dict[str, str | int | float] = dict(params or {})
        self.headers: dict[str, str] = dict(headers or {})
        self._client: HttpClient | None = None
        t = config.timeouts
        # No total: a stream lives as long as it delivers. A silent socket is dead after read_timeout.
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=t.connect, sock_read=self.options.read_timeout
        )

    def _backoff_policy(self) -> RetryPolicy:
        return self.options.backoff or self.config.retry

    async def _run(self) -> None:
        async with lease_client(self.config) as client:
            self._client = client
            try:
                await super()._run()
            finally:
                self._client = None

    async def _open_response(
        self, params: Params, headers: Mapping[str, str]
    ) -> aiohttp.ClientResponse | None:
        """The open streaming response, or ``None`` when the server answers 204 (the stream is over)."""
        client = self._client
        assert client is not None
        resp = await client.open(
            "GET",
            self.path,
            params={**self.params, **params},
            headers={**self.headers, **headers},
            timeout=self._timeout,
            read_bufsize=self.options.chunk_size,
        )
        if resp.status == 204:
            resp.release()
            return None
        return resp

    def _chunk_reader(self, resp: aiohttp.ClientResponse) -> Callable[[], Awaitable[bytes]]:
        """Reads of at most ``chunk_size`` bytes (``b""`` at the end): one read's events stay bounded."""
        return functools.partial(resp.content.read, self.options.chunk_size)

    def _describe(self, position: Position | None) -> str:
        return f"{super()._describe(position)} ({errors.redact_url(self.config.base_url)})"
