from __future__ import annotations

import asyncio
import dataclasses
import logging

import asyncpg
import pytest

from airflow_provider_integrations.postgres import Listener, Notification, PgConfig, PgError, listener_for
from airflow_provider_integrations.postgres.listen import close_loop_listeners
from tests.postgres.conftest import Outage, backends, unique


@pytest.fixture
async def listener(pg_config: PgConfig) -> Listener:
    listener = listener_for(pg_config)
    yield listener  # type: ignore[misc]
    await close_loop_listeners()


async def next_note(sub: object, timeout: float = 5) -> Notification:
    return await asyncio.wait_for(anext(sub), timeout)  # type: ignore[call-overload]


async def test_many_subscribers_share_one_connection(
    listener: Listener, pg_config: PgConfig, admin: asyncpg.Connection
) -> None:
    assert listener_for(dataclasses.replace(pg_config)) is listener
    a, b = unique("ch_a"), unique("Ch B")  # mixed case and a space: quoted identifiers
    subs_a = [await listener.subscribe(a) for _ in range(3)]
    subs_b = [await listener.subscribe(b) for _ in range(2)]
    assert await backends(admin, listener.application_name) == 1
    await admin.execute("SELECT pg_notify($1, 'one'), pg_notify($2, 'two')", a, b)
    for sub in subs_a:
        note = await next_note(sub)
        assert (note.channel, note.payload) == (a, "one")
        assert note.pid == admin.get_server_pid()
    for sub in subs_b:
        assert (await next_note(sub)).payload == "two"
    assert listener.channels == {a, b}

    for sub in subs_a:
        await sub.close()
    assert listener.channels == {b}  # UNLISTENed once the last subscriber of a left
    await admin.execute("SELECT pg_notify($1, 'unheard'), pg_notify($2, 'three')", a, b)
    assert (await next_note(subs_b[0])).payload == "three"
    for sub in subs_b:
        await sub.close()
    assert not listener.connected
    for _ in range(50):  # the backend goes away with its connection
        if await backends(admin, listener.application_name) == 0:
            break
        await asyncio.sleep(0.05)
    assert await backends(admin, listener.application_name) == 0


async def test_survives_a_terminated_connection(listener: Listener, admin: asyncpg.Connection) -> None:
    channel = unique("jobs")
    reconnected: asyncio.Queue[frozenset[str]] = asyncio.Queue()

    async def catch_up(channels: frozenset[str]) -> None:
        await reconnected.put(channels)

    listener.add_reconnect_hook(catch_up)
    async with await listener.subscribe(channel) as sub, await listener.subscribe(channel) as other:
        await admin.execute("SELECT pg_notify($1, 'before')", channel)
        assert (await next_note(sub)).payload == "before"
        assert (await next_note(other)).payload == "before"
        pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", listener.application_name
        )
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)

        assert await asyncio.wait_for(reconnected.get(), 10) == {channel}
        assert listener.reconnects == 1 and listener.connected
        await admin.execute("SELECT pg_notify($1, 'after')", channel)
        assert (await next_note(sub)).payload == "after"
        assert (await next_note(other)).payload == "after"
        assert await backends(admin, listener.application_name) == 1
        new_pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", listener.application_name
        )
        assert new_pid != pid


async def test_reconnect_backs_off_until_the_server_is_back(
    pg_config: PgConfig, admin: asyncpg.Connection, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    listener = Listener(dataclasses.replace(pg_config, port=outage.port, connect_timeout=1), max_backoff=0.2)
    calls: list[frozenset[str]] = []

    async def broken_hook(channels: frozenset[str]) -> None:
        calls.append(channels)
        raise RuntimeError("a failing hook must not stop the listener")

    listener.add_reconnect_hook(broken_hook)
    channel = unique("ch")
    sub = await listener.subscribe(channel)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_integrations.postgres.listen"):
        await outage.down()
        await asyncio.sleep(0.8)
        assert not listener.connected and listener.reconnects == 0
        assert caplog.text.count("next try in") >= 3  # refused, backed off, tried again
        await admin.execute("SELECT pg_notify($1, 'lost')", channel)  # nobody listens: gone
        await outage.up()
        for _ in range(100):
            if calls:
                break
            await asyncio.sleep(0.05)
    assert calls == [{channel}] and listener.reconnects == 1
    assert "reconnect hook" in caplog.text
    await admin.execute("SELECT pg_notify($1, 'back')", channel)
    assert (await next_note(sub)).payload == "back"
    await listener.close()
    with pytest.raises(StopAsyncIteration):
        await anext(sub)


async def test_a_slow_subscriber_loses_the_oldest(listener: Listener, admin: asyncpg.Connection) -> None:
    channel = unique("burst")
    sub = await listener.subscribe(channel, maxsize=2)
    for i in range(5):
        await admin.execute("SELECT pg_notify($1, $2)", channel, str(i))
    await asyncio.sleep(0.2)
    assert [(await next_note(sub)).payload for _ in range(2)] == ["3", "4"]
    assert sub.dropped == 3
    await sub.close()


async def test_close_ends_every_subscription(pg_config: PgConfig, admin: asyncpg.Connection) -> None:
    listener = listener_for(pg_config)
    sub = await listener.subscribe(unique("ch"))
    waiting = asyncio.create_task(anext(sub))
    await asyncio.sleep(0.05)
    await listener.close()
    with pytest.raises(StopAsyncIteration):
        await waiting
    assert [n async for n in sub] == []
    with pytest.raises(PgError, match="closed"):
        await listener.subscribe("again")
    assert listener_for(pg_config) is not listener  # a closed listener leaves the registry


async def test_unreachable_server_fails_the_subscription(pg_config: PgConfig) -> None:
    listener = Listener(dataclasses.replace(pg_config, port=1, connect_timeout=2))
    with pytest.raises(PgError) as info:
        await listener.subscribe("nowhere")
    assert info.value.retriable and listener.channels == frozenset()
    await listener.close()
