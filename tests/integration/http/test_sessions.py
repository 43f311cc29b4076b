"""One session per connection and loop, shared and closed cleanly; one connection lookup per process."""

from __future__ import annotations

import asyncio
import gc
import uuid
import warnings
from collections.abc import Callable

import aiohttp
import pytest

from airflow_provider_integrations.connections.http_config import HttpClientConfig
from airflow_provider_integrations.hooks.http import CONFIGS, IntegrationHttpHook
from airflow_provider_integrations.http import sessions
from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests.conftest import ConnFactory

Make = Callable[..., HttpClientConfig]


async def test_leases_share_one_session_and_the_last_closes_it(make_config: Make) -> None:
    config = make_config(name="shared")
    async with sessions.lease_client(config) as a, sessions.lease_client(config) as b:
        assert a is b and sessions.open_clients() == 1
        session = a.session
    assert session.closed and sessions.open_clients() == 0


async def test_different_configs_get_different_sessions(make_config: Make) -> None:
    async with (
        sessions.lease_client(make_config(name="x")) as a,
        sessions.lease_client(make_config(name="y")) as b,
    ):
        assert a.session is not b.session


async def test_concurrent_calls_reuse_pooled_connections(
    http_connection: ConnFactory, sandbox: SandboxProcess
) -> None:
    conn_id = http_connection("pool_check", sandbox.url)
    key = uuid.uuid4().hex
    hooks = [IntegrationHttpHook(conn_id) for _ in range(5)]
    async with hooks[0].client():
        await asyncio.gather(
            *(hooks[i % 5].arequest("GET", "/echo", params={"key": key, "i": i}) for i in range(500))
        )
    async with aiohttp.ClientSession() as s, s.get(f"{sandbox.url}/stats", params={"key": key}) as r:
        stats = (await r.json())["key"]
    assert stats["requests"] == 500
    assert stats["connections"] <= 100, "connections are pooled (pool_size 100), not one per request"
    assert CONFIGS.lookups[conn_id] == 1, "one connection lookup per connection id per process"


def test_sync_calls_reuse_the_bridge_session(http_connection: ConnFactory, sandbox: SandboxProcess) -> None:
    hook = IntegrationHttpHook(http_connection("bridge_check", sandbox.url))
    hook.request("GET", "/health")
    created = sessions.sessions_created
    for _ in range(5):
        assert hook.request("GET", "/health").status == 200
    assert sessions.sessions_created == created


async def test_sync_api_inside_a_running_loop_points_to_the_async_twin(
    http_connection: ConnFactory, sandbox: SandboxProcess
) -> None:
    hook = IntegrationHttpHook(http_connection("loop_check", sandbox.url))
    with pytest.raises(RuntimeError, match="await its async twin"):
        hook.request("GET", "/health")


def test_no_unclosed_session_warnings(make_config: Make) -> None:
    async def main() -> None:
        for _ in range(3):
            async with sessions.lease_client(make_config(name="warn")) as api:
                await api.request("GET", "/health")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
