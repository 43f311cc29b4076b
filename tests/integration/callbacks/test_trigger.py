"""``WebhookCallbackTrigger`` against the standalone receiver as a real process, with each store.

The receiver process and the trigger share the store (one SQLite file, or one PostgreSQL schema reached
through a ``postgres`` connection); the test signs and sends callbacks over loopback as a partner would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from airflow_provider_integrations.hooks._webhook_stores import open_stores
from airflow_provider_integrations.hooks.webhooks import WebhookHook
from airflow_provider_integrations.http.conditions import ConditionError
from airflow_provider_integrations.postgres.listen import close_loop_listeners
from airflow_provider_integrations.postgres.pool import close_loop_pools
from airflow_provider_integrations.sandbox.webhooks import FORGED_WEBHOOK_SECRET
from airflow_provider_integrations.triggers.webhooks import CallbackEvent, WebhookCallbackTrigger
from airflow_provider_integrations.webhooks import CallbackRegistration
from airflow_provider_integrations.webhooks.store._notify import notify_feed
from tests.integration.callbacks.conftest import SettingsFactory, store_setting

# ``served``: the standalone receiver as a process, over a SQLite file and over a PostgreSQL schema.
from tests.webhooks.conftest import PAYLOAD_KEY, ReceiverProcess, registration, served, signed  # noqa: F401

Served = tuple[str, str, ReceiverProcess]
FAILED = {"jmespath": "status", "equals": "failed"}


@pytest.fixture
def configured(
    served: Served,  # noqa: F811 - the imported fixture
    webhook_settings: SettingsFactory,
    pg_connection: str,
) -> Iterator[Served]:
    """The trigger's settings point at the store the receiver process serves."""
    kind, where, proc = served
    webhook_settings(
        webhook_store=store_setting(kind, where), webhook_payload_keys=PAYLOAD_KEY, webhook_base_url=proc.url
    )
    yield served


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session
    await close_loop_listeners()
    await close_loop_pools()


async def register(**kw: Any) -> CallbackRegistration:
    reg = registration(**kw)
    async with WebhookHook().store() as store:
        await store.register(reg)
    return reg


async def post(
    http: aiohttp.ClientSession, proc: ReceiverProcess, callback_id: str, body: dict[str, Any], **kw: Any
) -> int:
    data, headers = signed(body, **kw)
    async with http.post(f"{proc.url}/callbacks/{callback_id}", data=data, headers=headers) as response:
        return response.status


async def waiters(expected: int) -> None:
    """Until ``expected`` callers wait on the shared store's feed (NOTIFY subscription or poller)."""
    async with WebhookHook().store() as store:
        feed: Any = store._feed()
        deadline = time.monotonic() + 30
        while (feed.waiting if hasattr(feed, "waiting") else len(feed._waiters)) != expected:
            assert time.monotonic() < deadline, f"{expected} waiters expected"
            await asyncio.sleep(0.01)


def trigger(callback_id: str, timeout: float = 30.0, **kw: Any) -> WebhookCallbackTrigger:
    return WebhookCallbackTrigger(callback_id=callback_id, timeout_at=time.time() + timeout, **kw)


async def events(t: WebhookCallbackTrigger) -> list[CallbackEvent]:
    """Every event ``run()`` yields, run to its end (a trigger must yield exactly one)."""
    return [event.payload async for event in t.run()]


# -- no I/O -------------------------------------------------------------------------------------------


def test_serialize_round_trips_and_holds_no_secret() -> None:
    original = trigger("a" * 43, failure_condition=FAILED, failure_reason="error.message")
    classpath, kwargs = original.serialize()
    assert classpath == "airflow_provider_integrations.triggers.webhooks.WebhookCallbackTrigger"
    assert set(kwargs) == {"callback_id", "timeout_at", "failure_condition", "failure_reason"}
    assert WebhookCallbackTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_a_malformed_failure_condition_names_the_field() -> None:
    with pytest.raises(ConditionError, match=r"^failure_condition\.equls"):
        trigger("a" * 43, failure_condition={"jmespath": "status", "equls": "failed"})


# -- against the receiver -------------------------------------------------------------------------------


async def test_resumes_with_the_payload_of_a_callback_that_arrives_while_waiting(
    configured: Served, http: aiohttp.ClientSession
) -> None:
    reg = await register(secret_name="partner")
    waiting = asyncio.ensure_future(events(trigger(reg.callback_id)))
    await waiters(1)  # SQLite: on the poller; PostgreSQL: on the LISTEN subscription
    assert await post(http, configured[2], reg.callback_id, {"status": "succeeded", "rows": 3}) == 202
    (event,) = await asyncio.wait_for(waiting, 10)
    assert event["status"] == "success" and event["payload"] == {"status": "succeeded", "rows": 3}
    assert event["webhook_id"] and event["received_at"] and event["reason"] == ""


async def test_a_callback_that_came_before_the_wait_is_delivered(
    configured: Served, http: aiohttp.ClientSession
) -> None:
    reg = await register(secret_name="partner")
    assert await post(http, configured[2], reg.callback_id, {"status": "succeeded"}) == 202
    started = time.monotonic()
    (event,) = await events(trigger(reg.callback_id))
    assert event["status"] == "success" and time.monotonic() - started < 2


async def test_a_duplicate_delivery_resumes_once_with_the_first_payload(
    configured: Served, http: aiohttp.ClientSession
) -> None:
    reg = await register(secret_name="partner")
    body = {"status": "succeeded", "n": 1}
    data, headers = signed(body, webhook_id="msg_replayed")
    statuses = []
    for _ in range(2):
        async with http.post(
            f"{configured[2].url}/callbacks/{reg.callback_id}", data=data, headers=headers
        ) as r:
            statuses.append(r.status)
    assert await post(http, configured[2], reg.callback_id, {"status": "succeeded", "n": 2}) == 200
    assert statuses == [202, 200]
    runs = await asyncio.gather(events(trigger(reg.callback_id)), events(trigger(reg.callback_id)))
    assert [[e["payload"] for e in run] for run in runs] == [[body], [body]], (
        "one event per run, first payload"
    )


async def test_a_failure_payload_ends_with_the_partners_reason(
    configured: Served, http: aiohttp.ClientSession
) -> None:
    reg = await register(secret_name="partner")
    payload = {"status": "failed", "error": {"message": "quota exceeded"}}
    assert await post(http, configured[2], reg.callback_id, payload) == 202
    (event,) = await events(
        trigger(reg.callback_id, failure_condition=FAILED, failure_reason="error.message")
    )
    assert (event["status"], event["reason"], event["payload"]) == ("failure", "quota exceeded", payload)
    # Without a reason in the payload, the condition is named.
    (event,) = await events(trigger(reg.callback_id, failure_condition=FAILED, failure_reason="missing"))
    assert event["status"] == "failure" and "status" in event["reason"], event


async def test_a_forged_callback_does_not_resume_and_the_wait_times_out(
    configured: Served, http: aiohttp.ClientSession
) -> None:
    reg = await register(secret_name="partner", ttl=600)
    assert (
        await post(
            http, configured[2], reg.callback_id, {"status": "succeeded"}, secret=FORGED_WEBHOOK_SECRET
        )
        == 401
    )
    started = time.monotonic()
    (event,) = await events(trigger(reg.callback_id, timeout=0.5))
    assert event["status"] == "timeout" and 0.4 < time.monotonic() - started < 5, event
    assert event["payload"] is None


async def test_an_expired_callback_ends_as_a_timeout(configured: Served) -> None:
    reg = await register(secret_name="partner", ttl=0.5)
    (event,) = await events(trigger(reg.callback_id, timeout=30))
    assert event["status"] == "timeout", event


async def test_an_unknown_callback_is_an_error_not_a_wait(configured: Served) -> None:
    (event,) = await events(trigger("u" * 43, timeout=30))
    assert (event["status"], event["error_type"]) == ("error", "CallbackNotFoundError"), event


async def test_many_waiting_triggers_share_one_store_and_one_subscription(
    configured: Served, http: aiohttp.ClientSession
) -> None:
    kind, _, proc = configured
    regs = await asyncio.gather(*(register(secret_name="partner") for _ in range(200)))
    waiting = [asyncio.ensure_future(events(trigger(r.callback_id))) for r in regs]
    await waiters(200)  # all on one feed: for PostgreSQL one subscription of the shared LISTEN connection
    assert open_stores() == 1
    if kind == "postgres":
        async with WebhookHook().store() as store:
            assert notify_feed(store.config, store.channel).waiting == 200  # type: ignore[attr-defined]
    statuses = await asyncio.gather(*(post(http, proc, r.callback_id, {"i": i}) for i, r in enumerate(regs)))
    assert set(statuses) == {202}
    done = await asyncio.wait_for(asyncio.gather(*waiting), 30)
    assert [run[0]["payload"] for run in done] == [{"i": i} for i in range(200)]
    assert open_stores() == 0
