"""The sandbox's batch endpoint: per-item outcomes fixed by the id, counters, replays and throttling."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from airflow_provider_integrations.sandbox.batch import Faults
from airflow_provider_integrations.sandbox.process import SandboxProcess

Stats = Callable[..., dict[str, Any]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def post(
    http: aiohttp.ClientSession, url: str, ids: list[Any], headers: dict[str, str] | None = None, **query: Any
) -> tuple[int, dict[str, str], Any]:
    body = {"items": [{"id": i, "payload": f"p{i}"} for i in ids]}
    params = {k: str(v) for k, v in query.items()}
    async with http.post(f"{url}/batch", json=body, params=params, headers=headers) as response:
        return response.status, dict(response.headers), await response.json()


def test_outcomes_are_a_function_of_the_id_and_seed() -> None:
    faults = Faults(permanent=0.1, transient=0.2, transient_failures=2, seed="")
    first = [faults.status(str(i), 1) for i in range(2000)]
    assert first == [faults.status(str(i), 1) for i in range(2000)]
    assert 150 <= first.count("rejected") <= 250 and 300 <= first.count("retry") <= 500
    transient = [str(i) for i, s in enumerate(first) if s == "retry"]
    assert all(faults.status(i, 2) == "retry" and faults.status(i, 3) == "ok" for i in transient)
    other_seed = Faults(permanent=0.1, transient=0.2, transient_failures=2, seed="x")
    assert [other_seed.status(str(i), 1) for i in range(2000)] != first


async def test_partial_failure_answer_and_counters(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str, batch_stats: Stats
) -> None:
    faults = Faults(permanent=0.2, transient=0.3, transient_failures=1, seed="")
    ids = list(range(50))
    status, _, doc = await post(http, sandbox.url, ids, key=key, permanent=0.2, transient=0.3)
    assert status == 207
    by_id = {r["id"]: r for r in doc["results"]}
    assert sorted(by_id) == ids, "one result per item, ids echoed with their JSON type"
    for i in ids:
        assert (
            by_id[i]["status"]
            == {"ok": "ok", "retry": "retry", "rejected": "rejected"}[faults.status(str(i), 1)]
        )
    retry = [i for i in ids if by_id[i]["status"] == "retry"]
    assert retry and all(by_id[i]["error"] for i in retry)

    status, _, doc = await post(http, sandbox.url, retry, key=key, permanent=0.2, transient=0.3)
    assert status == 200 and {r["status"] for r in doc["results"]} == {"ok"}
    assert {r["attempt"] for r in doc["results"]} == {2}

    # Sending a finished item again is what a correct client never does: counted as a duplicate.
    rejected = next(i for i in ids if by_id[i]["status"] == "rejected")
    await post(http, sandbox.url, [rejected], key=key, permanent=0.2, transient=0.3)
    stats = batch_stats(key, detail=True)
    assert stats["requests"] == 3 and stats["distinct_items"] == 50
    assert stats["items_received"] == 50 + len(retry) + 1
    assert stats["ok_distinct"] + stats["rejected_distinct"] == 50 and stats["duplicates"] == 1
    assert stats["received"][str(rejected)] == 2


async def test_idempotency_key_replays_without_applying(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str, batch_stats: Stats
) -> None:
    headers = {"Idempotency-Key": f"{key}-0-0"}
    first = await post(http, sandbox.url, [1, 2, 3], headers, key=key, transient=1.0)
    again = await post(http, sandbox.url, [1, 2, 3], headers, key=key, transient=1.0)
    assert first[0] == again[0] == 207 and first[2] == again[2], "the stored answer, byte for byte"
    stats = batch_stats(key, detail=True)
    assert (stats["requests"], stats["replays"], stats["items_received"]) == (2, 1, 3)
    assert stats["sends"] == {f"{key}-0-0": 2}


async def test_throttle_every_nth_request(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str, batch_stats: Stats
) -> None:
    answers = [await post(http, sandbox.url, [n], key=key, throttle_every=2, retry_after=3) for n in range(4)]
    assert [status for status, _, _ in answers] == [200, 429, 200, 429]
    assert answers[1][1]["Retry-After"] == "3"
    stats = batch_stats(key)
    assert (stats["throttled"], stats["items_received"]) == (2, 2), "throttled items are not applied"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"rows": []}, '{"items": [{"id": ...}'),
        ({"items": [{"id": 1}, {"name": "x"}]}, "items[1].id"),
        ({"items": [{"id": True}]}, "items[0].id"),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str, body: Any, fragment: str
) -> None:
    async with http.post(f"{sandbox.url}/batch", params={"key": key}, json=body) as response:
        assert response.status == 400
        assert fragment in (await response.json())["error_description"]


async def test_stats_can_be_forgotten(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str, batch_stats: Stats
) -> None:
    await post(http, sandbox.url, [1], key=key)
    async with http.delete(f"{sandbox.url}/batch/stats", params={"key": key}) as response:
        assert (await response.json()) == {"forgotten": True}
    assert batch_stats(key)["requests"] == 0
