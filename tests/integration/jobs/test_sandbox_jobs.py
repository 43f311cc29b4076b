"""The sandbox's jobs API itself: timetable, idempotent submit, results pages, cancel, counters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests.integration.jobs.shared import job_stats


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, **headers: str
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.request(method, url, json=body, headers=headers) as response:
        return response.status, await response.json(), response


async def test_job_runs_its_timetable_and_serves_result_pages(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, tag: str
) -> None:
    body = {"queued": 0.1, "duration": 0.2, "results": 5, "retry_after": 1, "tag": tag}
    status, job, _ = await call(http, "POST", f"{sandbox.url}/jobs", body)
    assert (status, job["state"], job["url"]) == (201, "queued", f"/jobs/{job['id']}")
    url = f"{sandbox.url}{job['url']}"
    status, doc, response = await call(http, "GET", url)
    assert (doc["state"], doc["polls"], response.headers["Retry-After"]) == ("queued", 1, "1")
    status, _, _ = await call(http, "GET", f"{url}/results")
    assert status == 409, "no results before the job succeeded"
    await asyncio.sleep(0.35)
    status, doc, response = await call(http, "GET", url)
    assert (doc["state"], "Retry-After" in response.headers) == ("succeeded", False)
    _, first, _ = await call(http, "GET", f"{url}/results?limit=3")
    _, second, _ = await call(http, "GET", f"{url}/results?limit=3&cursor={first['next_cursor']}")
    assert [i["n"] for i in first["items"] + second["items"]] == [0, 1, 2, 3, 4]
    assert second["next_cursor"] is None


async def test_idempotency_key_replays_the_same_job(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, tag: str
) -> None:
    body = {"duration": 5, "tag": tag}
    status, first, _ = await call(http, "POST", f"{sandbox.url}/jobs", body, **{"Idempotency-Key": tag})
    status2, again, response = await call(
        http, "POST", f"{sandbox.url}/jobs", body, **{"Idempotency-Key": tag}
    )
    assert (status, status2, again["id"]) == (201, 200, first["id"])
    assert response.headers["Idempotent-Replayed"] == "true"
    status, error, _ = await call(
        http, "POST", f"{sandbox.url}/jobs", {**body, "duration": 6}, **{"Idempotency-Key": tag}
    )
    assert (status, error["error"]) == (422, "idempotency_key_reused")
    stats = job_stats(sandbox.url, tag)
    assert (stats["submit_requests"], stats["submissions"]) == (3, 1)


async def test_cancel_hold_finish_and_faults(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, tag: str
) -> None:
    _, held, _ = await call(http, "POST", f"{sandbox.url}/jobs", {"hold": True, "tag": tag})
    _, other, _ = await call(
        http, "POST", f"{sandbox.url}/jobs", {"hold": True, "faults": [[1, 503, 2]], "tag": tag}
    )
    status, doc, _ = await call(http, "POST", f"{sandbox.url}/jobs/{held['id']}/cancel")
    assert (status, doc["state"]) == (202, "cancelled")
    status, doc, _ = await call(http, "POST", f"{sandbox.url}/jobs/{held['id']}/cancel")
    assert (status, doc["error"]) == (409, "already_ended")
    status, _, response = await call(http, "GET", f"{sandbox.url}/jobs/{other['id']}")
    assert (status, response.headers["Retry-After"]) == (503, "2")
    _, doc, _ = await call(http, "GET", f"{sandbox.url}/jobs/{other['id']}")
    assert doc["state"] == "running"
    _, doc, _ = await call(http, "POST", f"{sandbox.url}/jobs/{other['id']}/finish", {"outcome": "failed"})
    assert doc["state"] == "failed"
    stats = job_stats(sandbox.url, tag)
    assert stats["cancels"] == 2
    assert {j["id"]: (j["state"], j["cancels"]) for j in stats["jobs"]} == {
        held["id"]: ("cancelled", 2),
        other["id"]: ("failed", 0),
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"outcome": "maybe"}, '"outcome" must be one of'),
        ({"duration": -1}, '"duration" must be a number >= 0'),
        ({"results": 1.5}, '"results" must be an integer'),
        ({"faults": [[0, 503, None]]}, '"faults[0]"'),
    ],
)
async def test_bad_submissions_are_400s_naming_the_field(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, body: dict[str, Any], fragment: str
) -> None:
    status, error, _ = await call(http, "POST", f"{sandbox.url}/jobs", body)
    assert status == 400 and fragment in error["error_description"], error
