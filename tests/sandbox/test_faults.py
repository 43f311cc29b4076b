"""Fault injection: flaky, rate limit, delays, stalled bodies, resets and malformed JSON."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time

import aiohttp
import pytest

from airflow_provider_integrations.sandbox import SandboxProcess


async def key_stats(http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str) -> dict:
    async with http.get(f"{sandbox.url}/stats", params={"key": key}) as response:
        return (await response.json())["key"]


async def test_flaky_fails_n_times_then_succeeds(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str
) -> None:
    params = {"key": key, "fail": "2", "status": "503", "retry_after": "3"}
    observed = []
    for _ in range(3):
        async with http.post(f"{sandbox.url}/flaky", params=params) as response:
            observed.append((response.status, response.headers.get("Retry-After"), await response.json()))
    assert [status for status, _, _ in observed] == [503, 503, 200]
    assert [retry for _, retry, _ in observed] == ["3", "3", None]
    assert observed[0][2]["error"] == "injected_failure"
    assert observed[2][2] == {"ok": True, "attempt": 3}
    assert (await key_stats(http, sandbox, key))["requests"] == 3


async def test_flaky_keys_are_independent(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str
) -> None:
    for suffix in ("a", "b"):
        async with http.get(
            f"{sandbox.url}/flaky", params={"key": f"{key}-{suffix}", "status": "429"}
        ) as response:
            assert response.status == 429, "each key gets its own failure budget"


async def test_flaky_retry_after_date(http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str) -> None:
    params = {"key": key, "retry_after_date": "20"}
    async with http.get(f"{sandbox.url}/flaky", params=params) as response:
        assert response.status == 503
        retry_at = email.utils.parsedate_to_datetime(response.headers["Retry-After"])
    assert 17 <= retry_at.timestamp() - time.time() <= 21


async def test_flaky_requires_key(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    async with http.get(f"{sandbox.url}/flaky") as response:
        assert response.status == 400


async def test_rate_limit_window(http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str) -> None:
    params = {"key": key, "limit": "3", "window": "1"}
    remaining = []
    for _ in range(3):
        async with http.get(f"{sandbox.url}/ratelimit", params=params) as response:
            assert response.status == 200
            assert response.headers["RateLimit-Limit"] == response.headers["X-RateLimit-Limit"] == "3"
            assert response.headers["RateLimit-Reset"] == response.headers["X-RateLimit-Reset"] == "1"
            remaining.append(response.headers["RateLimit-Remaining"])
            assert remaining[-1] == response.headers["X-RateLimit-Remaining"]
    assert remaining == ["2", "1", "0"]
    async with http.get(f"{sandbox.url}/ratelimit", params=params) as response:
        assert response.status == 429
        retry_after = int(response.headers["Retry-After"])
        assert (await response.json())["error"] == "rate_limited"
    assert retry_after == 1
    await asyncio.sleep(retry_after)
    async with http.get(f"{sandbox.url}/ratelimit", params=params) as response:
        assert response.status == 200, "a new window starts after Retry-After"
    assert (await key_stats(http, sandbox, key))["ratelimit"] == {"accepted": 4, "rejected": 1}


async def test_delay(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    started = time.monotonic()
    async with http.get(f"{sandbox.url}/delay", params={"seconds": "0.3"}) as response:
        assert await response.json() == {"slept": 0.3}
    assert time.monotonic() - started >= 0.3
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(
            f"{sandbox.url}/delay", params={"seconds": "2"}, timeout=aiohttp.ClientTimeout(total=0.2)
        ) as response:
            await response.read()


async def test_slow_body_sends_headers_then_stalls(
    http: aiohttp.ClientSession, sandbox: SandboxProcess
) -> None:
    timeout = aiohttp.ClientTimeout(sock_read=0.3)
    started = time.monotonic()
    async with http.get(f"{sandbox.url}/slow-body", params={"seconds": "2"}, timeout=timeout) as response:
        assert response.status == 200
        first = await response.content.readany()
        assert first.startswith(b'{"slept"')
        assert time.monotonic() - started < 1.0, "headers and first bytes arrive before the stall"
        with pytest.raises(asyncio.TimeoutError):
            await response.read()


async def test_slow_body_completes_when_patient(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    async with http.get(f"{sandbox.url}/slow-body", params={"seconds": "0.2"}) as response:
        body = json.loads(await response.read())
    assert body["slept"] == 0.2


async def test_reset_mid_body_then_recovers(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str
) -> None:
    params = {"key": key, "count": "2"}
    for _ in range(2):
        async with http.get(f"{sandbox.url}/reset", params=params) as response:
            assert response.status == 200
            assert int(response.headers["Content-Length"]) > 512
            # The body is cut short by a TCP RST: aiohttp reports a payload error
            # (ConnectionResetError underneath), not a clean short body.
            with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)):
                await response.read()
    async with http.get(f"{sandbox.url}/reset", params=params) as response:
        assert response.status == 200
        assert await response.json() == {"ok": True, "attempt": 3}


async def test_malformed_json(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    async with http.get(f"{sandbox.url}/malformed") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        with pytest.raises(json.JSONDecodeError):
            await response.json()
