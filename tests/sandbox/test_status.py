"""Status endpoints: timetabled jobs, injected poll faults, the poll-after counter and the light app."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from airflow_provider_integrations.sandbox import SandboxProcess
from airflow_provider_integrations.sandbox.status import create_poll_app


async def create(http: aiohttp.ClientSession, sandbox: SandboxProcess, body: Any) -> aiohttp.ClientResponse:
    async with http.post(f"{sandbox.url}/status-jobs", json=body) as response:
        await response.read()
        return response


async def poll(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any], str | None]:
    async with http.get(url) as response:
        return response.status, await response.json(), response.headers.get("Retry-After")


async def test_job_walks_its_timetable(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    body = {"states": [["queued", 0.2], ["running", 0.3], ["done", None]], "result": {"rows": 3}}
    async with http.post(f"{sandbox.url}/status-jobs", json=body) as response:
        assert response.status == 201
        job = await response.json()
    url = f"{sandbox.url}{job['url']}"
    _, first, _ = await poll(http, url)
    assert (first["status"], first["terminal"], first["result"], first["polls"]) == ("queued", False, None, 1)
    await asyncio.sleep(0.3)
    assert (await poll(http, url))[1]["status"] == "running"
    await asyncio.sleep(0.3)
    _, last, _ = await poll(http, url)
    assert (last["status"], last["terminal"], last["result"]) == ("done", True, {"rows": 3})
    async with http.get(f"{url}/stats") as response:
        assert (await response.json())["polls"] == 3, "reading the stats is not a poll"


async def test_last_state_is_terminal_even_with_a_duration(
    http: aiohttp.ClientSession, sandbox: SandboxProcess
) -> None:
    async with http.post(f"{sandbox.url}/status-jobs", json={"states": [["failed", 5]]}) as response:
        job = await response.json()
    _, doc, _ = await poll(http, f"{sandbox.url}{job['url']}")
    assert (doc["status"], doc["terminal"]) == ("failed", True)


async def test_faults_answer_the_nth_poll_and_retry_after_marks_pending(
    http: aiohttp.ClientSession, sandbox: SandboxProcess
) -> None:
    body = {
        "states": [["running", 60], ["done", None]],
        "faults": [[2, 503, None], [3, 429, 2]],
        "retry_after": 1,
    }
    async with http.post(f"{sandbox.url}/status-jobs", json=body) as response:
        url = f"{sandbox.url}{(await response.json())['url']}"
    answers = [await poll(http, url) for _ in range(4)]
    assert [(status, retry) for status, _, retry in answers] == [
        (200, "1"),
        (503, None),
        (429, "2"),
        (200, "1"),
    ]
    assert answers[1][1]["error"] == "injected_failure"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"states": []},
        {"states": [["a", None], ["b", 1]]},
        {"states": [["a", -1]]},
        {"states": [["a", None]], "faults": [[0, 503, None]]},
        {"states": [["a", None]], "faults": [[1, 200, None]]},
        {"states": [["a", None]], "retry_after": "soon"},
        ["not", "an", "object"],
    ],
)
async def test_bad_job_definitions_are_400(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, body: Any
) -> None:
    assert (await create(http, sandbox, body)).status == 400


async def test_unknown_job_is_404(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    async with http.get(f"{sandbox.url}/status-jobs/nope") as response:
        assert response.status == 404


async def test_poll_after_is_done_on_the_nth_poll(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, key: str
) -> None:
    url = f"{sandbox.url}/poll-after?key={key}&polls=3&pending_status=404"
    answers = [await poll(http, url) for _ in range(4)]
    assert [(status, doc["status"], doc["poll"]) for status, doc, _ in answers] == [
        (404, "pending", 1),
        (404, "pending", 2),
        (200, "done", 3),
        (200, "done", 4),
    ]
    _, failed, _ = await poll(http, f"{sandbox.url}/poll-after?key={key}-f&final=failed")
    assert failed["status"] == "failed"
    async with http.get(f"{sandbox.url}/poll-after") as response:
        assert response.status == 400, "a key is required"


async def test_light_poll_app_counts_connections() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(create_poll_app())) as client:
        for i in range(3):
            async with client.get("/poll-after", params={"key": "k", "polls": "2"}) as response:
                assert (await response.json())["status"] == ("pending" if i == 0 else "done")
        async with client.delete("/_connections") as response:
            counts = await response.json()
        assert counts == {"connections": 1, "requests": 3, "keys": 1}, "one keep-alive connection"
        async with client.get("/_connections") as response:
            assert (await response.json())["keys"] == 0, "DELETE resets"
