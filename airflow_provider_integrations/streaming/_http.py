"""Opening a streaming response on the shared client of an ``integration_http`` connection.

The client's request path reads whole bodies, so streams open their response here from the same
parts: the connection's auth strategy (refreshed once on 401), circuit breaker, rate limiter, TLS and
headers (all on the leased session), and the one status/exception classification of ``http.errors``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping

import aiohttp

from airflow_provider_integrations.connections.http_config import HttpClientConfig, RetryPolicy
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.http.auth import OutgoingRequest
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

    async def _prepare(self, params: Params, headers: Mapping[str, str]) -> OutgoingRequest:
        """The request of one connection attempt: breaker, rate limit, then auth (signed per attempt)."""
        client = self._client
        assert client is not None
        client.breaker.before_call()
        if client.limiter.rate is not None or client.limiter.blocked:
            await client.limiter.acquire()
        url = client.url_for(self.path)
        query = {**self.params, **params}
        if query:
            url = url.update_query(query)
        out = OutgoingRequest("GET", url, {**self.headers, **headers})
        await client.auth.apply(out)
        return out

    async def _open_response(
        self, params: Params, headers: Mapping[str, str]
    ) -> aiohttp.ClientResponse | None:
        """The open streaming response, or ``None`` when the server answers 204 (the stream is over)."""
        client = self._client
        assert client is not None
        refreshed = False
        while True:
            out = await self._prepare(params, headers)
            try:
                resp = await client.session.get(
                    out.url, headers=out.headers, timeout=self._timeout, read_bufsize=self.options.chunk_size
                )
            except Exception as exc:
                error = errors.translate(exc, "GET", out.url)
                if error.retriable:
                    client.breaker.record_failure()
                raise error from exc
            status = resp.status
            client.limiter.observe(resp.headers)
            if 200 <= status < 300:
                client.breaker.record_success()
                if status == 204:
                    resp.release()
                    return None
                return resp
            try:
                body = await resp.content.read(errors.EXCERPT_LIMIT + 1)
            except aiohttp.ClientError:
                body = b""
            finally:
                resp.close()
            if status == 401 and not refreshed and client.auth.refresh_on_401(out):
                refreshed = True
                continue
            raise self._status_error(client, out, status, resp.headers, body)

    def _chunk_reader(self, resp: aiohttp.ClientResponse) -> Callable[[], Awaitable[bytes]]:
        """Reads of at most ``chunk_size`` bytes (``b""`` at the end): one read's events stay bounded."""
        return functools.partial(resp.content.read, self.options.chunk_size)

    def _status_error(
        self,
        client: HttpClient,
        out: OutgoingRequest,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> errors.HttpError:
        url = errors.redact_url(out.url)
        error = errors.classify_status(
            status,
            method="GET",
            url=url,
            headers=headers,
            body=body,
            retry_on=client.config.retry.retry_on_statuses,
        ) or errors.ClientRequestError(
            f"HTTP {status}: not a stream (redirects are followed)", method="GET", url=url
        )
        if status >= 500 or (error.retriable and status != 429):
            client.breaker.record_failure()
        return error

    def _describe(self, position: Position | None) -> str:
        return f"{super()._describe(position)} ({errors.redact_url(self.config.base_url)})"
