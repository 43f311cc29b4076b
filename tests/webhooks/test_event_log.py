"""The event log contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from airflow_provider_integrations.postgres.listen import close_loop_listeners
from airflow_provider_integrations.postgres.pool import close_loop_pools
from airflow_provider_integrations.webhooks import PayloadCodec, PayloadDecryptError, WebhookConfigError
from airflow_provider_integrations.webhooks.events import (
    AppendOutcome,
    Event,
    EventLog,
    event_log_for,
    event_log_from_url,
)
from airflow_provider_integrations.webhooks.store.events_postgres import PostgresEventLog
from airflow_provider_integrations.webhooks.store.events_sqlite import SqliteEventLog
from tests.webhooks.conftest import PAYLOAD_KEY, PG, make_store, pg_config, store_url

both = pytest.mark.parametrize("store_location", ["sqlite", "postgres"], indirect=True)

A, D = AppendOutcome.ACCEPTED, AppendOutcome.DUPLICATE
OTHER_KEY = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGw="


def make_log(kind: str, where: str, codec: PayloadCodec | None = None) -> EventLog:
    return event_log_for(make_store(kind, where, codec=codec or PayloadCodec([PAYLOAD_KEY])))


@pytest.fixture
async def log(store_location: tuple[str, str]) -> AsyncIterator[EventLog]:
    async with make_log(*store_location) as opened:
        yield opened
    await close_loop_listeners()
    await close_loop_pools()


def body(kind: str = "order.created", **data: object) -> bytes:
    return json.dumps({"type": kind, "data": data}).encode()


@both
async def test_append_numbers_each_source_from_one_and_dedups_by_webhook_id(log: EventLog) -> None:
    results = [await log.append("partner", f"msg_{i}", "order.created", body(n=i)) for i in range(3)]
    assert [(r.outcome, r.seq) for r in results] == [(A, 1), (A, 2), (A, 3)]
    replay = await log.append("partner", "msg_1", "order.created", body(n=99))
    assert (replay.outcome, replay.seq) == (D, 2)
    other = await log.append("carrier", "msg_1", "parcel.moved", body())  # same id, another source
    assert (other.outcome, other.seq) == (A, 1)
    assert await log.last_seq("partner") == 3 and await log.last_seq("nobody") == 0
    events = await log.read("partner", 0)
    assert [(e.seq, e.webhook_id, e.payload["data"]["n"]) for e in events] == [
        (1, "msg_0", 0),
        (2, "msg_1", 1),  # the replay changed nothing
        (3, "msg_2", 2),
    ]
    assert events[0].type == "order.created" and events[0].source == "partner"
    assert abs((events[0].received_at - datetime.now(timezone.utc)).total_seconds()) < 60
    assert [e.seq for e in await log.read("partner", 1, limit=1)] == [2]
    assert await log.read("partner", 3) == []


@both
async def test_concurrent_appends_are_gapless_and_each_id_is_stored_once(log: EventLog) -> None:
    ids = [f"msg_{i % 40}" for i in range(80)]  # every id twice, racing itself
    results = await asyncio.gather(*(log.append("partner", wid, "t", body(id=wid)) for wid in ids))
    accepted = sorted(r.seq for r in results if r.outcome is A)
    assert accepted == list(range(1, 41))
    by_id: dict[str, set[int]] = {}
    for wid, r in zip(ids, results, strict=True):
        by_id.setdefault(wid, set()).add(r.seq)
    assert all(len(seqs) == 1 for seqs in by_id.values()), "a duplicate answers the original seq"
    stored = await log.read("partner", 0, limit=1000)
    assert [e.seq for e in stored] == list(range(1, 41))
    assert sorted(e.webhook_id for e in stored) == sorted(set(ids))


@both
async def test_a_follower_sees_every_event_of_two_writers_in_order(store_location: tuple[str, str]) -> None:
    """Two log instances (two receivers) append concurrently; a follower of a third never skips one:
    commit order is sequence order."""
    kind, where = store_location
    async with make_log(kind, where) as reader, make_log(kind, where) as w1, make_log(kind, where) as w2:
        seen: list[int] = []

        async def follow() -> None:
            async with contextlib.aclosing(reader.follow("partner", 0, limit=7)) as batches:
                async for batch in batches:
                    seen.extend(e.seq for e in batch)
                    if len(seen) >= 120:
                        return

        follower = asyncio.create_task(follow())
        await asyncio.gather(
            *(
                w.append("partner", f"{name}_{i}", "t", body())
                for i in range(60)
                for name, w in (("a", w1), ("b", w2))
            )
        )
        await asyncio.wait_for(follower, 20)
        assert seen == list(range(1, 121))
    await close_loop_listeners()
    await close_loop_pools()


@both
async def test_follow_wakes_on_an_append_from_another_instance(store_location: tuple[str, str]) -> None:
    kind, where = store_location
    async with make_log(kind, where) as reader, make_log(kind, where) as writer:
        await writer.append("partner", "before", "t", body())
        async with contextlib.aclosing(reader.follow("partner", 0)) as batches:
            first = await asyncio.wait_for(anext(batches), 5)
            assert [e.webhook_id for e in first] == ["before"]
            pending = asyncio.ensure_future(anext(batches))
            await writer.append("partner", "after", "t", body())
            # Far below the 30 s idle re-read: only a NOTIFY or the poller can have woken it.
            second = await asyncio.wait_for(pending, 5)
            assert [(e.seq, e.webhook_id) for e in second] == [(2, "after")]
    await close_loop_listeners()
    await close_loop_pools()


@both
async def test_consumer_cursor_start_positions_and_monotonic_commit(log: EventLog) -> None:
    for i in range(3):
        await log.append("partner", f"m{i}", "t", body())
    assert await log.start_consumer("early", "partner", "earliest") == 0
    assert await log.start_consumer("late", "partner", "latest") == 3
    assert await log.start_consumer("fresh", "quiet", "latest") == 0  # a source with no events yet
    await log.commit("early", 2)
    await log.commit("early", 1)  # never backwards
    assert await log.start_consumer("early", "partner", "earliest") == 2  # the stored cursor wins
    assert await log.start_consumer("late", "partner", "earliest") == 3
    with pytest.raises(WebhookConfigError, match="consumer"):
        await log.start_consumer("early", "carrier", "earliest")


@both
async def test_cleanup_deletes_only_events_older_than_the_retention(log: EventLog) -> None:
    now = datetime.now(timezone.utc)
    await log.append("partner", "old", "t", body(), now=now - timedelta(days=8))
    await log.append("partner", "new", "t", body(), now=now - timedelta(days=6))
    assert await log.cleanup_expired(now) == 1
    assert [(e.seq, e.webhook_id) for e in await log.read("partner", 0)] == [(2, "new")]
    assert await log.cleanup_expired(now, retention=timedelta(days=1)) == 1
    # The counter survives: numbering never restarts, so cursors stay valid.
    assert (await log.append("partner", "next", "t", body())).seq == 3


@both
async def test_payload_is_encrypted_at_rest_and_bound_to_its_row(
    log: EventLog, store_location: tuple[str, str]
) -> None:
    await log.append("partner", "a", "t", body(card="4111-1111"))
    await log.append("partner", "b", "t", body(card="5500-0000"))
    kind, where = store_location
    if kind == "sqlite":
        with contextlib.closing(sqlite3.connect(where)) as conn:
            raw = [r[0] for r in conn.execute("SELECT payload FROM webhook_events ORDER BY seq")]
            with conn:
                conn.execute("UPDATE webhook_events SET payload = ? WHERE seq = 2", (raw[0],))
    else:
        conn = await asyncpg.connect(**PG)
        try:
            raw = [
                r[0] for r in await conn.fetch(f'SELECT payload FROM "{where}".webhook_events ORDER BY seq')
            ]
            await conn.execute(f'UPDATE "{where}".webhook_events SET payload = $1 WHERE seq = 2', raw[0])
        finally:
            await conn.close()
    assert all(b"4111" not in bytes(r) and b"order" not in bytes(r) for r in raw)
    first = await log.read("partner", 0, limit=1)
    assert first[0].payload["data"]["card"] == "4111-1111"
    with pytest.raises(PayloadDecryptError, match="failed authentication"):
        await log.read("partner", 1)  # row 2 now holds row 1's ciphertext
    async with make_log(*store_location, codec=PayloadCodec([OTHER_KEY])) as wrong_key:
        with pytest.raises(PayloadDecryptError, match="not among the configured"):
            await wrong_key.read("partner", 0, limit=1)
    await close_loop_listeners()
    await close_loop_pools()


@both
def test_event_log_from_url_picks_the_backend(store_location: tuple[str, str]) -> None:
    kind, where = store_location
    made = event_log_from_url(store_url(kind, where), codec=PayloadCodec([PAYLOAD_KEY]))
    assert isinstance(made, SqliteEventLog if kind == "sqlite" else PostgresEventLog)
    assert made.codec.encrypts
    payload = Event("s", 1, "w", "t", {"a": 1}, datetime(2025, 1, 1, tzinfo=timezone.utc)).as_payload()
    assert payload == {
        "source": "s",
        "seq": 1,
        "event_id": "w",
        "type": "t",
        "received_at": "2025-01-01T00:00:00+00:00",
        "payload": {"a": 1},
    }


@pytest.mark.parametrize("store_location", ["postgres"], indirect=True)
async def test_postgres_followers_share_the_listen_connection(store_location: tuple[str, str]) -> None:
    from airflow_provider_integrations.postgres.listen import listener_for

    _, where = store_location
    config = pg_config()
    logs = [PostgresEventLog(config, schema=where) for _ in range(3)]
    for opened in logs:
        await opened.open()
    try:
        followers = [contextlib.aclosing(opened.follow(f"s{i}", 0)) for i, opened in enumerate(logs)]
        async with contextlib.AsyncExitStack() as stack:
            iters = [await stack.enter_async_context(f) for f in followers]
            tasks = [asyncio.ensure_future(anext(it)) for it in iters]
            await logs[0].append("s2", "x", "t", body())
            done = await asyncio.wait_for(tasks[2], 5)
            assert [e.webhook_id for e in done] == ["x"]
            assert listener_for(config).channels == frozenset({logs[0].channel})
            for task in tasks[:2]:
                task.cancel()
            await asyncio.gather(*tasks[:2], return_exceptions=True)
    finally:
        for opened in logs:
            await opened.close()
        await close_loop_listeners()
        await close_loop_pools()
