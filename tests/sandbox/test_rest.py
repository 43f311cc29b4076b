"""Health, echo + idempotency replay, status codes, drift, large bodies and stats."""

from __future__ import annotations

import email.utils
import hashlib
import json
import time
from collections.abc import Iterator

import aiohttp
import pytest

from airflow_provider_integrations.sandbox import SandboxProcess


@pytest.fixture(scope="module")
def private_sandbox() -> Iterator[SandboxProcess]:
    """Its own process, so zeroing counters cannot disturb tests using the shared one."""
    with SandboxProcess() as process:
        yield process


async def get_stats(http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str | None = None) -> dict:
    params = {"key": key} if key else {}
    async with http.get(f"{sandbox.url}/stats", params=params) as response:
        assert response.status == 200
        return await response.json()


async def test_health(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    async with http.get(f"{sandbox.url}/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_echo_reflects_the_request(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    payload = {"a": 1, "nested": {"b": [1, 2]}}
    raw = json.dumps(payload).encode()
    async with http.put(
        f"{sandbox.url}/echo/sub/path?x=1&tag=a&tag=b",
        data=raw,
        headers={"Content-Type": "application/json", "X-Custom": "yes"},
    ) as response:
        assert response.status == 200
        body = await response.json()
    assert body["method"] == "PUT"
    assert body["path"] == "/echo/sub/path"
    assert body["query"] == {"x": "1", "tag": ["a", "b"]}
    assert body["headers"]["X-Custom"] == "yes"
    assert body["json"] == payload
    assert body["body_sha256"] == hashlib.sha256(raw).hexdigest()
    assert body["idempotency_key"] is None
    assert body["replayed"] is False


async def test_echo_non_json_body_gives_null_json(
    http: aiohttp.ClientSession, sandbox: SandboxProcess
) -> None:
    async with http.post(f"{sandbox.url}/echo", data=b"not json") as response:
        body = await response.json()
    assert body["json"] is None
    assert body["body_sha256"] == hashlib.sha256(b"not json").hexdigest()


async def test_echo_idempotency_replays_first_response(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str
) -> None:
    before = (await get_stats(http, sandbox))["idempotency_keys_seen"]
    headers = {"Idempotency-Key": key}
    async with http.post(f"{sandbox.url}/echo", json={"amount": 5}, headers=headers) as response:
        first = await response.json()
    async with http.post(f"{sandbox.url}/echo", json={"amount": 5}, headers=headers) as response:
        second = await response.json()
        assert response.headers["Idempotent-Replayed"] == "true"
    assert first["idempotency_key"] == key
    assert first["replayed"] is False
    assert second["replayed"] is True
    assert second["request_id"] == first["request_id"], "a replay must return the stored response"
    async with http.post(f"{sandbox.url}/echo", json={"amount": 6}, headers=headers) as response:
        assert response.status == 422
        assert (await response.json())["error"] == "idempotency_key_reused"
    assert (await get_stats(http, sandbox))["idempotency_keys_seen"] == before + 1


@pytest.mark.parametrize("code", [200, 201, 400, 404, 418, 500, 502])
async def test_status_returns_requested_code(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, code: int
) -> None:
    async with http.get(f"{sandbox.url}/status/{code}") as response:
        assert response.status == code
        assert await response.json() == {"status": code}
        assert "Retry-After" not in response.headers


async def test_status_204_has_no_body(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    async with http.delete(f"{sandbox.url}/status/204") as response:
        assert response.status == 204
        assert await response.read() == b""


async def test_status_rejects_invalid_code(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    for bad in ("99", "600", "abc"):
        async with http.get(f"{sandbox.url}/status/{bad}") as response:
            assert response.status == 400
            assert (await response.json())["error"] == "invalid_request"


async def test_status_retry_after_seconds(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    async with http.get(f"{sandbox.url}/status/429", params={"retry_after": "7"}) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "7"


async def test_status_retry_after_http_date(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    async with http.get(f"{sandbox.url}/status/503", params={"retry_after_date": "30"}) as response:
        assert response.status == 503
        retry_at = email.utils.parsedate_to_datetime(response.headers["Retry-After"])
    assert 27 <= retry_at.timestamp() - time.time() <= 31


async def test_drift_versions(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    async with http.get(f"{sandbox.url}/drift") as response:
        assert await response.json() == {"id": 1, "name": "x", "amount": 10.5}
    async with http.get(f"{sandbox.url}/drift", params={"version": "2"}) as response:
        assert await response.json() == {"id": "1", "title": "x", "amount_cents": 1050}
    async with http.get(f"{sandbox.url}/drift", params={"version": "3"}) as response:
        assert response.status == 400


@pytest.mark.parametrize("size", [5, 1000, 250_000])
async def test_large_body_size(http: aiohttp.ClientSession, sandbox: SandboxProcess, size: int) -> None:
    async with http.get(f"{sandbox.url}/large", params={"bytes": str(size)}) as response:
        raw = await response.read()
    assert len(raw) == max(size, len(b'{"data": ""}'))
    assert set(json.loads(raw)) == {"data"}


async def test_stats_counts_requests_and_connections_per_key(sandbox: SandboxProcess, key: str) -> None:
    url = f"{sandbox.url}/echo"
    async with aiohttp.ClientSession() as keep_alive:
        before = await get_stats(keep_alive, sandbox)
        for _ in range(3):
            async with keep_alive.get(url, params={"key": key}) as response:
                assert response.status == 200
        pooled = (await get_stats(keep_alive, sandbox, key))["key"]
    assert pooled["requests"] == 3
    assert pooled["connections"] == 1, "keep-alive requests share one TCP connection"

    fresh_key = f"{key}-fresh"
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as no_reuse:
        for _ in range(3):
            async with no_reuse.get(url, params={"key": fresh_key}) as response:
                assert response.status == 200
        after = await get_stats(no_reuse, sandbox)
        fresh = (await get_stats(no_reuse, sandbox, fresh_key))["key"]
    assert fresh == {
        "name": fresh_key,
        "requests": 3,
        "connections": 3,
        "ratelimit": {"accepted": 0, "rejected": 0},
    }
    # 1 pooled connection + 3 forced-close ones + the no_reuse stats call that opened a new one
    assert after["connections"] - before["connections"] >= 4
    assert after["total_requests"] - before["total_requests"] == 6, "/stats itself is not counted"


async def test_reset_stats_zeroes_counters(
    http: aiohttp.ClientSession, private_sandbox: SandboxProcess
) -> None:
    async with http.get(f"{private_sandbox.url}/echo", params={"key": "k"}) as response:
        assert response.status == 200
    assert (await get_stats(http, private_sandbox))["total_requests"] >= 2  # health probe + echo
    async with http.post(f"{private_sandbox.url}/control/reset-stats") as response:
        assert response.status == 200
    stats = await get_stats(http, private_sandbox, "k")
    assert stats["total_requests"] == 0
    assert stats["connections"] == 0, "the live keep-alive connection was opened before the reset"
    assert stats["key"]["requests"] == 0
