"""Airflow hook for ``integration_http`` connections: Connection -> frozen config -> shared client."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, conf

from airflow_provider_integrations.bridge import run_sync
from airflow_provider_integrations.connections.http_config import HttpClientConfig
from airflow_provider_integrations.connections.http_parse import parse_http_connection
from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks._config_cache import ConfigCache
from airflow_provider_integrations.http.client import Response
from airflow_provider_integrations.http.diagnose import diagnose
from airflow_provider_integrations.http.download import DownloadResult, download
from airflow_provider_integrations.http.pagination import Paginator, paginator_from_spec
from airflow_provider_integrations.http.sessions import acquire, lease_client, release

if TYPE_CHECKING:
    from airflow.sdk import Connection


def _ttl() -> float:
    return conf.getfloat("integrations", "connection_cache_ttl", fallback=300.0)


CONFIGS: ConfigCache[HttpClientConfig] = ConfigCache(_ttl)


def config_from_connection(conn: Connection) -> HttpClientConfig:
    """Validate an Airflow connection of type ``integration_http`` and return its frozen client config."""
    config = parse_http_connection(
        conn_id=conn.conn_id,
        host=conn.host,
        port=conn.port,
        schema=conn.schema,
        login=conn.login,
        password=conn.password,
        extra=conn.extra,
    )
    return config


class IntegrationHttpHook(BaseHook):
    """Call an HTTP API described by an ``integration_http`` connection.

    Async code uses ``async with hook.client() as api`` or the ``a``-prefixed methods; synchronous code
    (operators) uses the plain methods, which run the same coroutines on the process's bridge loop.

    :param integration_http_conn_id: the connection id.
    """

    conn_name_attr = "integration_http_conn_id"
    default_conn_name = "integration_http_default"
    conn_type = "integration_http"
    hook_name = "HTTP API (Integrations)"

    def __init__(self, integration_http_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = integration_http_conn_id

    def get_config(self) -> HttpClientConfig:
        return CONFIGS.get(self.conn_id, self._load)

    def _load(self) -> HttpClientConfig:
        config = config_from_connection(self.get_connection(self.conn_id))
        if config.auth.secret:
            from airflow.sdk.log import mask_secret

            # The SDK masks the password field; this also covers a secret that reached us another way.
            mask_secret(config.auth.secret)
        return config

    async def aget_config(self) -> HttpClientConfig:
        return await CONFIGS.aget(self.conn_id, self._aload)

    async def _aload(self) -> HttpClientConfig:
        config = config_from_connection(await self.aget_connection(self.conn_id))
        if config.auth.secret:
            from airflow.sdk.log import amask_secret

            # Async twin: a sync supervisor call from a running loop can deadlock in worker async code.
            await amask_secret(config.auth.secret)
        return config

    def get_conn(self) -> HttpClientConfig:
        return self.get_config()

    def client(self) -> lease_client:
        """``async with hook.client() as api``: lease the process-wide client of this connection."""
        return lease_client(self.aget_config)

    async def arequest(self, method: str, endpoint: str = "", **kwargs: Any) -> Response:
        # acquire/release instead of ``async with self.client()``: this is the per-request hot path.
        entry = acquire(await self.aget_config())
        try:
            return await entry.client.request(method, endpoint, **kwargs)
        finally:
            await release(entry)

    def request(self, method: str, endpoint: str = "", **kwargs: Any) -> Response:
        return run_sync(self.arequest(method, endpoint, **kwargs))

    async def apaginate(
        self, pagination: Paginator | Mapping[str, Any], endpoint: str = "", **kwargs: Any
    ) -> list[Response]:
        paginator = pagination if isinstance(pagination, Paginator) else paginator_from_spec(pagination)
        async with self.client() as api:
            return [page async for page in api.paginate(paginator, endpoint, **kwargs)]

    def paginate(
        self, pagination: Paginator | Mapping[str, Any], endpoint: str = "", **kwargs: Any
    ) -> list[Response]:
        return run_sync(self.apaginate(pagination, endpoint, **kwargs))

    async def adownload(self, endpoint: str, path: str | os.PathLike[str], **kwargs: Any) -> DownloadResult:
        """Stream ``endpoint`` to the file ``path``: resumable, verified, renamed into place when complete.

        Keyword arguments (``params``, ``headers``, ``checksum``, ``expected_size``, ``chunk_size``,
        ``timeout``) are those of :func:`airflow_provider_integrations.http.download.download`.
        """
        async with self.client() as api:
            return await download(api, endpoint, path, **kwargs)

    def download(self, endpoint: str, path: str | os.PathLike[str], **kwargs: Any) -> DownloadResult:
        return run_sync(self.adownload(endpoint, path, **kwargs))

    def test_connection(self) -> tuple[bool, str]:
        """Layered diagnosis (DNS, TCP, TLS, HTTP health path, auth) as one line for the UI and CLI."""
        try:
            # Not cached: the UI tests each edit under a fresh transient connection id.
            config = config_from_connection(self.get_connection(self.conn_id))
        except ConnectionConfigError as exc:
            return False, f"Invalid connection settings: {exc}"
        result = run_sync(diagnose(config))
        # The CLI prints only failures; with -v this line shows the layers of a success too.
        self.log.info("Connection test of %r: %s", self.conn_id, result.message)
        return result.ok, result.message
