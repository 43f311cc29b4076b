"""The callback store contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from airflow_provider_integrations.webhooks import (
    CallbackConflictError,
    CallbackExpiredError,
    CallbackNotFoundError,
    CallbackStore,
    DeliveryOutcome,
    new_callback_id,
)
from tests.webhooks.conftest import PG, expired_registration, registration

pytestmark = pytest.mark.parametrize("store_location", ["sqlite", "postgres"], indirect=True)

A, D, U, E = (
    DeliveryOutcome.ACCEPTED,
    DeliveryOutcome.DUPLICATE,
    DeliveryOutcome.UNKNOWN,
    DeliveryOutcome.EXPIRED,
)


async def test_register_get_and_idempotent_register(store: CallbackStore) -> None:
    reg = registration(map_index=2, try_number=3, schema={"type": "object"})
    await store.register(reg)
    await store.register(reg)  # the same record again: fine
    assert await store.get(reg.callback_id) == reg
    assert await store.get(new_callback_id()) is None
    with pytest.raises(CallbackConflictError):
        await store.register(dataclasses.replace(reg, try_number=4))


async def test_deliver_outcomes_and_first_delivery_wins(store: CallbackStore) -> None:
    reg = registration()
    await store.register(reg)
    assert await store.deliver(reg.callback_id, "msg_1", b'{"n": 1}') is A
    assert await store.deliver(reg.callback_id, "msg_1", b'{"n": 1}') is D  # replay
    assert await store.deliver(reg.callback_id, "msg_2", b'{"n": 2}') is D  # a later distinct message
    delivery = await store.delivery(reg.callback_id)
    assert delivery is not None
    assert (delivery.webhook_id, delivery.payload) == ("msg_1", {"n": 1})
    assert abs((delivery.received_at - datetime.now(timezone.utc)).total_seconds()) < 60
    assert await store.deliver(new_callback_id(), "msg_3", b"{}") is U
    expired = expired_registration()
    await store.register(expired)
    assert await store.deliver(expired.callback_id, "msg_4", b"{}") is E
    assert await store.delivery(expired.callback_id) is None


async def test_delivery_exactly_at_expiry_is_refused(store: CallbackStore) -> None:
    reg = registration(ttl=60)
    await store.register(reg)
    assert await store.deliver(reg.callback_id, "m", b"{}", now=reg.expires_at) is E
    assert (
        await store.deliver(reg.callback_id, "m", b"{}", now=reg.expires_at - timedelta(milliseconds=1)) is A
    )
    # Once delivered, even a replay after expiry is a duplicate, not an error.
    assert await store.deliver(reg.callback_id, "m", b"{}", now=reg.expires_at + timedelta(hours=1)) is D


async def test_concurrent_distinct_deliveries_exactly_one_accepted(store: CallbackStore) -> None:
    reg = registration()
    await store.register(reg)
    outcomes = await asyncio.gather(
        *(store.deliver(reg.callback_id, f"msg_{i}", json.dumps({"i": i}).encode()) for i in range(40))
    )
    assert outcomes.count(A) == 1 and outcomes.count(D) == 39
    winner = outcomes.index(A)
    delivery = await store.wait(reg.callback_id, 1)
    assert delivery is not None and delivery.payload == {"i": winner}


async def test_callback_before_the_waiter_is_returned_at_once(store: CallbackStore) -> None:
    reg = registration()
    await store.register(reg)
    await store.deliver(reg.callback_id, "early", b'{"ok": true}')
    started = time.perf_counter()
    delivery = await store.wait(reg.callback_id, 30)
    assert delivery is not None and delivery.payload == {"ok": True}
    assert time.perf_counter() - started < 1


async def test_waiter_wakes_on_delivery_and_many_waiters_get_the_first_payload(store: CallbackStore) -> None:
    reg = registration()
    await store.register(reg)
    waiters = [asyncio.create_task(store.wait(reg.callback_id, 30)) for _ in range(5)]
    await asyncio.sleep(0)  # let them start; correctness does not depend on it (see the race test)
    assert await store.deliver(reg.callback_id, "m1", b'{"v": 1}') is A
    assert await store.deliver(reg.callback_id, "m2", b'{"v": 2}') is D
    results = await asyncio.wait_for(asyncio.gather(*waiters), 10)
    assert {(d.webhook_id, d.payload["v"]) for d in results if d is not None} == {("m1", 1)}
    assert all(d is not None for d in results)


async def test_delivery_racing_the_start_of_the_wait_is_never_lost(store: CallbackStore) -> None:
    regs = [registration() for _ in range(30)]
    for reg in regs:
        await store.register(reg)

    async def deliver_after(reg_id: str, turns: int) -> None:
        for _ in range(turns):
            await asyncio.sleep(0)
        await store.deliver(reg_id, "m", b"{}")

    # Deliveries land before, during and after each waiter's subscribe-then-read sequence.
    results = await asyncio.wait_for(
        asyncio.gather(
            *(store.wait(r.callback_id, 20) for r in regs),
            *(deliver_after(r.callback_id, i % 6) for i, r in enumerate(regs)),
        ),
        10,  # well below the waiters' own 20 s: a missed wake-up fails here, not at a timeout re-read
    )
    assert all(d is not None and d.webhook_id == "m" for d in results[: len(regs)])


async def test_delivery_landing_between_the_first_read_and_the_wait_wakes_the_waiter(
    store: CallbackStore,
) -> None:
    reg = registration()
    await store.register(reg)
    read = store._state
    reads = 0

    async def read_then_deliver(callback_id: str):  # type: ignore[no-untyped-def]
        nonlocal reads
        state = await read(callback_id)
        reads += 1
        if reads == 1:
            assert state is not None and state.delivery is None
            # Committed after the read saw nothing: only the feed (notification or poll) can tell.
            assert await store.deliver(callback_id, "between", b"{}") is A
        return state

    store._state = read_then_deliver  # type: ignore[method-assign]
    delivery = await asyncio.wait_for(store.wait(reg.callback_id, 60), 5)
    assert delivery is not None and delivery.webhook_id == "between" and reads == 2


async def test_wait_timeout_unknown_and_expiry(store: CallbackStore) -> None:
    reg = registration()
    await store.register(reg)
    started = time.perf_counter()
    assert await store.wait(reg.callback_id, 0.2) is None
    assert 0.2 <= time.perf_counter() - started < 5
    assert await store.wait(reg.callback_id, 0) is None
    with pytest.raises(CallbackNotFoundError):
        await store.wait(new_callback_id(), 1)
    expired = expired_registration()
    await store.register(expired)
    with pytest.raises(CallbackExpiredError, match="without a delivery"):
        await store.wait(expired.callback_id, 5)
    soon = registration(ttl=0.3)
    await store.register(soon)
    started = time.perf_counter()
    with pytest.raises(CallbackExpiredError):
        await store.wait(soon.callback_id, None)  # no timeout: the expiry ends it
    assert time.perf_counter() - started < 5


async def test_cleanup_keeps_live_and_recently_delivered_callbacks(store: CallbackStore) -> None:
    now = datetime.now(timezone.utc)
    live, stale, delivered = registration(), expired_registration(), registration(ttl=60)
    for reg in (live, stale, delivered):
        await store.register(reg)
    await store.deliver(delivered.callback_id, "m", b"{}")
    later = delivered.expires_at + timedelta(minutes=1)  # delivered has expired, but was delivered
    assert await store.cleanup_expired(now) == 1  # only the undelivered, expired one
    assert await store.get(stale.callback_id) is None
    assert await store.cleanup_expired(later) == 0
    assert await store.delivery(delivered.callback_id) is not None
    assert await store.cleanup_expired(later, keep_delivered=timedelta(0)) == 1
    assert await store.get(delivered.callback_id) is None and await store.get(live.callback_id) is not None
    with pytest.raises(CallbackNotFoundError):
        await store.wait(delivered.callback_id, 1)


async def test_payload_is_encrypted_at_rest(store: CallbackStore, store_location: tuple[str, str]) -> None:
    reg = registration()
    await store.register(reg)
    await store.deliver(reg.callback_id, "m", b'{"card": "4111-1111"}')
    kind, where = store_location
    if kind == "sqlite":
        with sqlite3.connect(where) as conn:
            raw = conn.execute("SELECT payload FROM webhook_callbacks").fetchone()[0]
        conn.close()
    else:
        conn = await asyncpg.connect(**PG)
        raw = await conn.fetchval(f'SELECT payload FROM "{where}".webhook_callbacks')
        await conn.close()
    assert b"4111" not in raw and raw[:1] == b"\x01"
    delivery = await store.delivery(reg.callback_id)
    assert delivery is not None and delivery.payload == {"card": "4111-1111"}


async def test_ping_and_reopen(store: CallbackStore) -> None:
    await store.ping()
    await store.open()  # opening an open store is a no-op
    reg = registration()
    await store.register(reg)
    assert await store.get(reg.callback_id) == reg
