"""Fault matrix against the real sandbox: every injected fault ends as documented, with typed errors only."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from airflow_provider_integrations.connections.http_config import (
    BreakerConfig,
    HttpClientConfig,
    RetryPolicy,
    Timeouts,
)
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.http.sessions import lease_client
from airflow_provider_integrations.sandbox.process import SandboxProcess

Make = Callable[..., HttpClientConfig]


async def stats(sandbox: SandboxProcess, key: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"{sandbox.url}/stats", params={"key": key}) as r:
        return (await r.json())["key"]  # type: ignore[no-any-return]


def new_key() -> str:
    return uuid.uuid4().hex


async def test_5xx_burst_is_retried_then_succeeds(make_config: Make, sandbox: SandboxProcess) -> None:
    key = new_key()
    async with lease_client(make_config()) as api:
        response = await api.request("GET", "/flaky", params={"key": key, "fail": 2, "status": 503})
    assert response.status == 200 and response.attempts == 3
    assert (await stats(sandbox, key))["requests"] == 3


async def test_retries_exhausted_raise_server_error_with_status_and_url(
    make_config: Make, sandbox: SandboxProcess
) -> None:
    key = new_key()
    async with lease_client(make_config()) as api:
        with pytest.raises(errors.ServerError) as info:
            await api.request("GET", "/flaky", params={"key": key, "fail": 10, "status": 502})
    err = info.value
    assert err.status == 502 and err.method == "GET" and "/flaky" in err.url and "key=" in err.url
    assert "502" in str(err) and "/flaky" in str(err)
    assert (await stats(sandbox, key))["requests"] == 3


@pytest.mark.parametrize("form", ["retry_after", "retry_after_date"])
async def test_429_waits_for_retry_after(make_config: Make, form: str) -> None:
    key = new_key()
    async with lease_client(make_config()) as api:
        t0 = time.monotonic()
        response = await api.request("GET", "/flaky", params={"key": key, "fail": 1, "status": 429, form: 1})
        elapsed = time.monotonic() - t0
    assert response.status == 200 and response.attempts == 2
    # An HTTP-date has one-second resolution, so it may round down by up to a second.
    assert elapsed >= (0.9 if form == "retry_after" else 0.0)
    assert elapsed < 3


async def test_retry_after_beyond_budget_gives_up_at_once(make_config: Make) -> None:
    config = make_config(retry=RetryPolicy(max_attempts=5, base_delay=0.01, budget=1.0))
    async with lease_client(config) as api:
        t0 = time.monotonic()
        with pytest.raises(errors.RateLimitedError) as info:
            await api.request(
                "GET", "/flaky", params={"key": new_key(), "fail": 1, "status": 429, "retry_after": 30}
            )
    assert info.value.retry_after == 30 and time.monotonic() - t0 < 0.5


async def test_connection_reset_mid_body_is_retried(make_config: Make, sandbox: SandboxProcess) -> None:
    key = new_key()
    async with lease_client(make_config()) as api:
        response = await api.request("GET", "/reset", params={"key": key, "count": 1})
    assert response.status == 200 and response.attempts == 2


async def test_fatal_statuses_are_not_retried(make_config: Make, sandbox: SandboxProcess) -> None:
    key = new_key()
    async with lease_client(make_config()) as api:
        with pytest.raises(errors.NotFoundError):
            await api.request("GET", "/status/404", params={"key": key})
        with pytest.raises(errors.AuthenticationError) as info:
            await api.request("GET", "/status/403", params={"key": key})
    assert info.value.status == 403 and not info.value.retriable
    assert (await stats(sandbox, key))["requests"] == 2


async def test_malformed_json_is_a_contract_error(make_config: Make) -> None:
    async with lease_client(make_config()) as api:
        response = await api.request("GET", "/malformed")
    with pytest.raises(errors.ResponseContractError, match="not valid JSON") as info:
        response.json()
    assert info.value.excerpt


async def test_read_timeout_then_per_request_override(make_config: Make) -> None:
    config = make_config(
        timeouts=Timeouts(connect=2, read=0.2, total=5), retry=RetryPolicy(max_attempts=2, base_delay=0.01)
    )
    async with lease_client(config) as api:
        with pytest.raises(errors.RequestTimeout, match="timeout"):
            await api.request("GET", "/delay", params={"seconds": 1})
        response = await api.request(
            "GET", "/delay", params={"seconds": 0.5}, timeout=Timeouts(read=2, total=3)
        )
    assert response.json()["slept"] == 0.5


async def test_refused_port_is_an_unsent_transport_error(make_config: Make) -> None:
    config = make_config(base_url="http://127.0.0.1:1", retry=RetryPolicy(max_attempts=2, base_delay=0.01))
    async with lease_client(config) as api:
        with pytest.raises(errors.TransportError) as info:
            await api.request("POST", "/anything", json={"a": 1})
    assert info.value.sent is False and "127.0.0.1:1" in str(info.value)


async def test_post_is_retried_only_with_an_idempotency_key(
    make_config: Make, sandbox: SandboxProcess
) -> None:
    bare, keyed = new_key(), new_key()
    async with lease_client(make_config()) as api:
        with pytest.raises(errors.ServerError):
            await api.request("POST", "/flaky", params={"key": bare, "fail": 1}, json={"x": 1})
        response = await api.request(
            "POST", "/flaky", params={"key": keyed, "fail": 1}, json={"x": 1}, idempotency_key="order-42"
        )
    assert (await stats(sandbox, bare))["requests"] == 1
    assert response.status == 200 and (await stats(sandbox, keyed))["requests"] == 2


async def test_breaker_opens_after_threshold_and_half_opens_after_reset(
    make_config: Make, sandbox: SandboxProcess
) -> None:
    config = make_config(
        name=f"breaker-{new_key()}",
        retry=RetryPolicy(max_attempts=1),
        breaker=BreakerConfig(failure_threshold=3, reset_timeout=0.5),
    )
    key = new_key()
    async with lease_client(config) as api:
        for _ in range(3):
            with pytest.raises(errors.ServerError):
                await api.request("GET", "/status/503", params={"key": key})
        assert api.breaker.state == "open"
        with pytest.raises(errors.CircuitOpenError) as info:
            await api.request("GET", "/status/503", params={"key": key})
        assert 0 < info.value.retry_after <= 0.5  # type: ignore[operator]
        assert (await stats(sandbox, key))["requests"] == 3, "an open breaker must not reach the server"
        await_time = info.value.retry_after or 0
        import asyncio

        await asyncio.sleep(await_time + 0.05)
        assert api.breaker.state == "half_open"
        assert (await api.request("GET", "/health")).status == 200
        assert api.breaker.state == "closed"


async def test_every_failure_is_a_typed_http_error(make_config: Make) -> None:
    paths = [
        "/status/500",
        "/status/418",
        "/reset?count=5&key=" + new_key(),
        "/delay?seconds=3",
        "/status/401",
    ]
    config = make_config(timeouts=Timeouts(connect=1, read=0.3, total=2), retry=RetryPolicy(max_attempts=1))
    async with lease_client(config) as api:
        for path in paths:
            with pytest.raises(errors.HttpError):
                await api.request("GET", path)
