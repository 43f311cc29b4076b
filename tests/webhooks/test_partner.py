"""The sandbox partner calls a running receiver back in every mode; the store shows what a waiting
task would get."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from airflow_provider_integrations.sandbox import SandboxProcess
from airflow_provider_integrations.sandbox.webhooks import FAILURE_REASON
from airflow_provider_integrations.webhooks import CallbackStore
from tests.webhooks.conftest import ReceiverProcess, registration

Served = tuple[str, str, ReceiverProcess]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def run_job(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, served: Served, store: CallbackStore, mode: str
) -> tuple[str, dict[str, Any]]:
    reg = registration()
    await store.register(reg)
    job = {"callback_url": reg.url(served[2].url), "mode": mode, "delay": 0.05, "result": {"rows": 7}}
    async with http.post(f"{sandbox.url}/partner/jobs", json=job) as response:
        assert response.status == 202
        job_id = (await response.json())["job_id"]
    async with http.get(f"{sandbox.url}/partner/jobs/{job_id}", params={"wait": "20"}) as response:
        view = await response.json()
    assert view["done"] and view["mode"] == mode
    return reg.callback_id, view


async def test_normal_callback_reaches_a_waiter(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, served: Served, served_store: CallbackStore
) -> None:
    callback_id, view = await run_job(http, sandbox, served, served_store, "normal")
    assert [a["status"] for a in view["attempts"]] == [202]
    delivery = await served_store.wait(callback_id, 10)
    assert delivery is not None and delivery.webhook_id == view["webhook_id"]
    assert delivery.payload == {"job_id": view["job_id"], "status": "succeeded", "result": {"rows": 7}}


async def test_twice_is_applied_once(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, served: Served, served_store: CallbackStore
) -> None:
    callback_id, view = await run_job(http, sandbox, served, served_store, "twice")
    assert [a["status"] for a in view["attempts"]] == [202, 200]
    delivery = await served_store.wait(callback_id, 10)
    assert delivery is not None and delivery.payload["status"] == "succeeded"


@pytest.mark.parametrize("mode", ["late", "forged"])
async def test_late_and_forged_are_refused(
    http: aiohttp.ClientSession,
    sandbox: SandboxProcess,
    served: Served,
    served_store: CallbackStore,
    mode: str,
) -> None:
    callback_id, view = await run_job(http, sandbox, served, served_store, mode)
    assert [a["status"] for a in view["attempts"]] == [401]
    assert await served_store.delivery(callback_id) is None
    reasons = [a["reason"] for a in served[2].audit_lines() if a["callback_id"] == callback_id]
    assert reasons == ["stale_timestamp" if mode == "late" else "no_valid_signature"]


async def test_failure_payload_carries_the_partner_reason(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, served: Served, served_store: CallbackStore
) -> None:
    callback_id, view = await run_job(http, sandbox, served, served_store, "failure")
    delivery = await served_store.wait(callback_id, 10)
    assert delivery is not None and delivery.payload == {
        "job_id": view["job_id"],
        "status": "failed",
        "reason": FAILURE_REASON,
    }


async def test_never_calls_back(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, served: Served, served_store: CallbackStore
) -> None:
    callback_id, view = await run_job(http, sandbox, served, served_store, "never")
    assert view["attempts"] == []
    started = time.perf_counter()
    assert await served_store.wait(callback_id, 0.3) is None  # the waiter times out
    assert time.perf_counter() - started >= 0.3


async def test_partner_validates_jobs(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    for job in (
        {"callback_url": "ftp://x"},
        {"callback_url": "http://x", "mode": "sometimes"},
        {"delay": -1},
    ):
        async with http.post(f"{sandbox.url}/partner/jobs", json=job) as response:
            assert response.status == 400
    async with http.get(f"{sandbox.url}/partner/jobs/nope") as response:
        assert response.status == 404
