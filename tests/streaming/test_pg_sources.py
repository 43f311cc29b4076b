"""LISTEN/NOTIFY and table-tail sources against PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterable

import asyncpg
import pytest

from airflow_provider_integrations.postgres import PgConfig, listener_for
from airflow_provider_integrations.streaming import (
    Event,
    PgNotifySource,
    PgTableTail,
    StreamConfigError,
    StreamOptions,
    StreamProtocolError,
)
from tests.postgres.conftest import backends, unique
from tests.streaming.conftest import FAST

pytestmark = pytest.mark.usefixtures("pg_cleanup")


async def notify_json(admin: asyncpg.Connection, channel: str, first: int, last: int) -> None:
    """One statement, many notifications: delivered together when it commits."""
    await admin.execute(
        "SELECT pg_notify($1, json_build_object('seq', g, 'account', g % 3)::text)"
        " FROM generate_series($2::int, $3::int) g",
        channel,
        first,
        last,
    )


async def first(source: AsyncIterable[Event], count: int) -> list[Event]:
    got: list[Event] = []
    async for event in source:
        got.append(event)
        if len(got) == count:
            break
    return got


async def subscribed(source: PgNotifySource) -> None:
    """Wait until the source listens (NOTIFY reaches only sessions already listening)."""
    await source.ready()
    listener = listener_for(source.config)
    assert source.channel in listener.channels and listener.connected


async def test_notifications_arrive_in_order_with_lazy_positions(
    pg_config: PgConfig, admin: asyncpg.Connection
) -> None:
    channel = unique("orders")
    source = PgNotifySource(pg_config, channel, position_field="seq", key_field="account", options=FAST)
    async with source.open():
        await asyncio.wait_for(subscribed(source), 5)
        await notify_json(admin, channel, 1, 2000)
        events = await first(source, 2000)
    assert [e.position for e in events] == list(range(1, 2001))
    assert {e.type for e in events} == {channel}
    assert [e.key for e in events[:4]] == ["1", "2", "0", "1"]
    assert source.dropped == 0


async def test_sources_of_one_config_share_one_listen_connection(
    pg_config: PgConfig, admin: asyncpg.Connection
) -> None:
    a, b = unique("a"), unique("b")
    first, second = PgNotifySource(pg_config, a), PgNotifySource(pg_config, b)
    async with first.open(), second.open():
        await asyncio.wait_for(asyncio.gather(subscribed(first), subscribed(second)), 5)
        assert await backends(admin, listener_for(pg_config).application_name) == 1
        await admin.execute("SELECT pg_notify($1, 'to a'), pg_notify($2, 'to b')", a, b)
        assert (await anext(aiter(first))).data == "to a"
        assert (await anext(aiter(second))).data == "to b"


async def test_a_consumer_too_far_behind_loses_the_oldest_and_counts_them(
    pg_config: PgConfig, admin: asyncpg.Connection
) -> None:
    channel = unique("burst")
    source = PgNotifySource(pg_config, channel, position_field="seq", options=StreamOptions(max_buffered=50))
    async with source.open():
        await asyncio.wait_for(subscribed(source), 5)
        await notify_json(admin, channel, 1, 2000)
        seen = []
        async for event in source:  # nothing was read while the burst arrived
            seen.append(event.position)
            if event.position == 2000:  # the newest is never the one dropped
                break
    assert seen == sorted(seen) and len(seen) + source.dropped == 2000
    assert source.dropped > 0


async def test_the_shared_listener_reconnects_under_the_source(
    pg_config: PgConfig, admin: asyncpg.Connection
) -> None:
    channel = unique("jobs")
    source = PgNotifySource(pg_config, channel)
    listener = listener_for(pg_config)
    reconnected = asyncio.Event()

    async def hook(channels: frozenset[str]) -> None:
        reconnected.set()

    listener.add_reconnect_hook(hook)
    async with source.open():
        await asyncio.wait_for(subscribed(source), 5)
        await admin.execute("SELECT pg_notify($1, 'before')", channel)
        assert (await anext(aiter(source))).data == "before"
        pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", listener.application_name
        )
        await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await asyncio.wait_for(reconnected.wait(), 10)
        await admin.execute("SELECT pg_notify($1, 'after')", channel)
        assert (await asyncio.wait_for(anext(aiter(source)), 5)).data == "after"
    assert source.reconnects == 0, "the subscription outlives the LISTEN connection"


async def test_a_payload_without_the_position_field_is_a_protocol_error(
    pg_config: PgConfig, admin: asyncpg.Connection
) -> None:
    channel = unique("bad")
    source = PgNotifySource(pg_config, channel, position_field="seq")
    async with source.open():
        await asyncio.wait_for(subscribed(source), 5)
        await admin.execute("SELECT pg_notify($1, '{\"id\": 1}')", channel)
        event = await anext(aiter(source))
        with pytest.raises(StreamProtocolError, match="'seq'"):
            _ = event.position


# -- table tail ----------------------------------------------------------------------------------


@pytest.fixture
async def outbox(admin: asyncpg.Connection, schema: str) -> str:
    await admin.execute(
        f'CREATE TABLE "{schema}".outbox (id bigserial PRIMARY KEY, account text, kind text,'
        " payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
    )
    return "outbox"


async def insert(
    admin: asyncpg.Connection, schema: str, first: int, last: int, notify: str | None = None
) -> None:
    async with admin.transaction():
        await admin.execute(
            f'INSERT INTO "{schema}".outbox (account, kind, payload)'
            " SELECT 'a' || (g % 4), 'created', json_build_object('n', g)"
            " FROM generate_series($1::int, $2::int) g",
            first,
            last,
        )
        if notify:
            await admin.execute("SELECT pg_notify($1, '')", notify)


def tail(pg_config: PgConfig, schema: str, **kw: object) -> PgTableTail:
    kw.setdefault("options", FAST)
    return PgTableTail(pg_config, "outbox", schema=schema, key_column="account", type_column="kind", **kw)  # type: ignore[arg-type]


async def take(source: PgTableTail, count: int) -> list[int]:
    got = []
    async for event in source:
        got.append(json.loads(event.data)["n"])
        if len(got) == count:
            break
    return got


async def test_tail_reads_every_row_in_batches_and_resumes_after_a_position(
    pg_config: PgConfig, admin: asyncpg.Connection, schema: str, outbox: str
) -> None:
    await insert(admin, schema, 1, 2500)
    source = tail(pg_config, schema, batch_size=1000, poll_interval=0.05)
    async with source.open():
        events = await first(source, 2500)
    assert [json.loads(e.data)["n"] for e in events] == list(range(1, 2501))
    assert [e.position for e in events] == list(range(1, 2501))
    assert (events[5].key, events[5].type) == ("a2", "created")
    async with source.open(1200):
        assert await take(source, 3) == [1201, 1202, 1203]


async def test_tail_from_the_end_sees_only_new_rows(
    pg_config: PgConfig, admin: asyncpg.Connection, schema: str, outbox: str
) -> None:
    await insert(admin, schema, 1, 10)
    source = tail(pg_config, schema, start="end", poll_interval=0.05)
    async with source.open():
        await asyncio.wait_for(source.ready(), 5)
        assert source.position == 10  # the end it found, as if opened there
        await insert(admin, schema, 11, 12)
        assert await asyncio.wait_for(take(source, 2), 5) == [11, 12]


async def test_tail_is_woken_by_notify_long_before_its_poll_interval(
    pg_config: PgConfig, admin: asyncpg.Connection, schema: str, outbox: str
) -> None:
    channel = unique("outbox")
    source = tail(pg_config, schema, poll_interval=60, notify_channel=channel)
    async with source.open():
        await asyncio.wait_for(source.ready(), 5)
        assert channel in listener_for(pg_config).channels
        await insert(admin, schema, 1, 3, notify=channel)
        # A 60 s poll would time this out: only the notification can deliver the rows in time.
        assert await asyncio.wait_for(take(source, 3), 10) == [1, 2, 3]


async def test_timestamp_cursor_breaks_ties_by_id_and_resumes_inside_a_tie(
    pg_config: PgConfig, admin: asyncpg.Connection, schema: str, outbox: str
) -> None:
    await admin.execute(
        f"INSERT INTO \"{schema}\".outbox (payload, created_at) SELECT json_build_object('n', g),"
        " timestamptz '2026-01-01 00:00:00+00' + (g / 4) * interval '1 second' FROM generate_series(1, 10) g"
    )
    source = tail(pg_config, schema, timestamp_column="created_at", batch_size=3, poll_interval=0.05)
    async with source.open():
        events = await first(source, 10)
    assert [json.loads(e.data)["n"] for e in events] == list(range(1, 11))
    assert events[5].position == "2026-01-01T00:00:01+00:00|6"
    async with source.open(events[5].position):
        assert await take(source, 2) == [7, 8]  # 7 shares 6's timestamp


async def test_tail_survives_its_pool_connections_being_terminated(
    pg_config: PgConfig, admin: asyncpg.Connection, schema: str, outbox: str
) -> None:
    await insert(admin, schema, 1, 300)
    source = tail(
        pg_config,
        schema,
        batch_size=50,
        poll_interval=0.05,
        options=dataclasses.replace(FAST, max_buffered=50),
    )
    async with source.open():
        got = await take(source, 100)
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            pg_config.application_name,
        )
        got += await asyncio.wait_for(take(source, 200), 10)
    assert got == list(range(1, 301))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"start": "middle"}, "start"),
        ({"settle": 5}, "settle"),
        ({"id_column": ""}, "id_column"),
    ],
)
def test_tail_arguments_are_checked(pg_config: PgConfig, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(StreamConfigError) as caught:
        PgTableTail(pg_config, "outbox", **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


async def test_a_position_of_the_wrong_kind_is_refused(pg_config: PgConfig, schema: str, outbox: str) -> None:
    source = tail(pg_config, schema)
    async with source.open("not-an-id"):
        with pytest.raises(StreamConfigError, match="an integer id"):
            await anext(aiter(source))
