"""``WebhookEventTrigger`` against SQLite and PostgreSQL: filtering, the cursor across restarts, and ack
mode driven by Airflow's own ``SharedStreamManager`` (the triggerer's code, in this process)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from airflow.triggers.base import BaseEventTrigger
from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome, SharedStreamManager

from airflow_provider_integrations.hooks.webhook_events import event_url, lease_event_log
from airflow_provider_integrations.hooks.webhooks import load_settings
from airflow_provider_integrations.postgres.listen import close_loop_listeners
from airflow_provider_integrations.postgres.pool import close_loop_pools
from airflow_provider_integrations.triggers import webhook_events
from airflow_provider_integrations.triggers.webhook_events import EventLogProducer, WebhookEventTrigger
from airflow_provider_integrations.webhooks import PayloadCodec, StoreUnavailableError, WebhookConfigError
from airflow_provider_integrations.webhooks.events import EventLog, event_log_for
from tests.conftest import ROOT
from tests.webhooks.conftest import PAYLOAD_KEY, make_store, store_url

both = pytest.mark.parametrize("store_location", ["sqlite", "postgres"], indirect=True)


@pytest.fixture(autouse=True)
def payload_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The triggers read ``[integrations] webhook_payload_keys``, as in a deployment."""
    monkeypatch.setenv("AIRFLOW__INTEGRATIONS__WEBHOOK_PAYLOAD_KEYS", PAYLOAD_KEY)
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


@pytest.fixture
async def log(store_location: tuple[str, str]) -> AsyncIterator[EventLog]:
    """The receiver's side of the log: another instance, as in another process."""
    async with event_log_for(make_store(*store_location, codec=PayloadCodec([PAYLOAD_KEY]))) as opened:
        yield opened
    await close_loop_listeners()
    await close_loop_pools()


def trigger(location: tuple[str, str], **kw: Any) -> WebhookEventTrigger:
    return WebhookEventTrigger(**{"source": "partner", "store": store_url(*location), **kw})


async def append(log: EventLog, webhook_id: str, kind: str, **data: Any) -> int:
    body = json.dumps({"type": kind, "data": data}).encode()
    return (await log.append("partner", webhook_id, kind, body)).seq


def test_kwargs_round_trip_and_are_deterministic() -> None:
    t = WebhookEventTrigger(
        "partner", event_types=["order.*", "invoice.paid", "order.*"], condition={"jmespath": "data.total"}
    )
    classpath, kwargs = t.serialize()
    assert classpath == "airflow_provider_integrations.triggers.webhook_events.WebhookEventTrigger"
    assert kwargs == {
        "source": "partner",
        "event_types": ["invoice.paid", "order.*"],
        "condition": {"jmespath": "data.total"},
        "start_at": "earliest",
        "consumer": None,
        "store": None,
    }
    assert WebhookEventTrigger(**kwargs).serialize() == (classpath, kwargs)
    reordered = WebhookEventTrigger("partner", ["invoice.paid", "order.*"], {"jmespath": "data.total"})
    assert reordered.consumer_key == t.consumer_key and reordered.shared_stream_key() == t.shared_stream_key()
    assert WebhookEventTrigger("partner", consumer="orders").consumer_key == "orders"
    assert WebhookEventTrigger("carrier").consumer_key != WebhookEventTrigger("partner").consumer_key


def test_event_url_needs_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WebhookConfigError, match="webhook_base_url"):
        event_url("partner")
    monkeypatch.setenv("AIRFLOW__INTEGRATIONS__WEBHOOK_BASE_URL", "https://airflow.example.com/hooks/")
    load_settings.cache_clear()
    assert event_url("partner") == "https://airflow.example.com/hooks/events/partner"


def test_consumer_key_is_stable_across_processes_where_airflows_hash_is_not() -> None:
    """A restarted triggerer must find the cursor again: Python's str hash is salted per process."""
    t = WebhookEventTrigger("partner", event_types=["order.*"])
    code = (
        "from airflow.triggers.base import BaseEventTrigger as B\n"
        "from airflow_provider_integrations.triggers.webhook_events import WebhookEventTrigger as W\n"
        "t = W('partner', event_types=['order.*']); print(t.consumer_key, B.hash(*t.serialize()))"
    )
    keys, hashes = set(), set()
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.split()
        keys.add(out[-2])
        hashes.add(out[-1])
    assert keys == {t.consumer_key}
    assert len(hashes) == 2, "BaseEventTrigger.hash differs between processes"
    assert BaseEventTrigger.hash(*t.serialize()) == BaseEventTrigger.hash(*t.serialize())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"source": "has space"}, "source"),
        ({"source": "p", "event_types": "order.created"}, "event_types"),
        ({"source": "p", "event_types": []}, "event_types"),
        ({"source": "p", "event_types": ["ok", ""]}, "event_types[1]"),
        ({"source": "p", "condition": {"jmespath": "x", "equal": 1}}, "condition.equal"),
        ({"source": "p", "start_at": "now"}, "start_at"),
        ({"source": "p", "consumer": "a b"}, "consumer"),
        ({"source": "p", "store": "mysql://db"}, "store"),
        ({"source": "p", "store": "postgresql://etl:hunter2@db/x"}, "store"),
    ],
)
def test_bad_arguments_fail_at_parse_time_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match="^" + field.replace("[", r"\[")) as info:
        WebhookEventTrigger(**kwargs)
    assert getattr(info.value, "field", None) == field or getattr(info.value, "path", None) == field
    assert "hunter2" not in str(info.value)


@both
async def test_run_filters_by_type_and_condition_in_order_and_resumes_after_a_restart(
    log: EventLog, store_location: tuple[str, str]
) -> None:
    await append(log, "e1", "order.created", total=50)  # below the condition
    await append(log, "e2", "invoice.paid", total=900)  # another type
    await append(log, "e3", "order.created", total=500)
    await append(log, "e1", "order.created", total=5000)  # a replay of e1: the log kept the first
    await append(log, "e4", "order.updated", total=200)
    kwargs = {"event_types": ["order.*"], "condition": {"jmespath": "data.total", "gte": 100}}

    first = trigger(store_location, **kwargs).run()
    event = await asyncio.wait_for(anext(first), 10)
    assert {k: event.payload[k] for k in ("seq", "event_id", "type")} == {
        "seq": 3,
        "event_id": "e3",
        "type": "order.created",
    }
    assert event.payload["payload"] == {"type": "order.created", "data": {"total": 500}}
    assert (await asyncio.wait_for(anext(first), 10)).payload["event_id"] == "e4"
    await first.aclose()  # stopped while holding e4: run() commits an event once it is resumed past it

    again = trigger(store_location, **kwargs).run()
    assert (await asyncio.wait_for(anext(again), 10)).payload["event_id"] == "e4"
    waiting = asyncio.ensure_future(anext(again))
    await append(log, "e5", "order.created", total=100)
    assert (await asyncio.wait_for(waiting, 10)).payload["event_id"] == "e5"
    await again.aclose()
    await close_loop_listeners()
    await close_loop_pools()


@both
async def test_start_at_latest_skips_what_came_before_the_consumer(
    log: EventLog, store_location: tuple[str, str]
) -> None:
    await append(log, "old", "order.created")
    t = trigger(store_location, start_at="latest")
    started = asyncio.Event()
    # The trigger leases the same log instance (one per store and loop): wrap it to learn when the
    # consumer exists, instead of guessing with a sleep.
    async with lease_event_log(t.store) as shared:
        real_start = shared.start_consumer

        async def start_consumer(*args: Any) -> int:
            position = await real_start(*args)
            started.set()
            return position

        shared.start_consumer = start_consumer  # type: ignore[method-assign]
        events = t.run()
        waiting = asyncio.ensure_future(anext(events))
        await asyncio.wait_for(started.wait(), 10)
        await append(log, "new", "order.created")
        assert (await asyncio.wait_for(waiting, 10)).payload["event_id"] == "new"
        await events.aclose()
    await close_loop_listeners()
    await close_loop_pools()


class Advances:
    """Counts the producer's advance() calls, so a test waits for one instead of sleeping."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.changed = asyncio.Condition()
        original = EventLogProducer.advance

        async def advance(producer: EventLogProducer, batch: Any) -> None:
            await original(producer, batch)
            async with self.changed:
                self.calls += 1
                self.changed.notify_all()

        monkeypatch.setattr(EventLogProducer, "advance", advance)

    async def wait(self, calls: int) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: self.calls >= calls), 10)


@both
async def test_ack_mode_commits_only_what_airflow_confirmed_stored(
    log: EventLog, store_location: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    advances = Advances(monkeypatch)
    t = trigger(store_location, event_types=["order.created"])
    key = t.shared_stream_key()
    for webhook_id, kind in (("a", "order.created"), ("b", "ping"), ("c", "order.created")):
        await append(log, webhook_id, kind)

    async def cursor() -> int:
        return await log.start_consumer(t.consumer_key, "partner", "earliest")

    manager = SharedStreamManager(ack_timeout=60)
    events = t.filter_shared_stream(manager.subscribe(trigger_id=1, trigger=t, key=key))
    first = await asyncio.wait_for(anext(events), 10)
    persist_a = manager.bind_pending_event(trigger_id=1, key=key)  # as the triggerer does
    assert first.payload["event_id"] == "a" and persist_a is not None
    second = await asyncio.wait_for(anext(events), 10)  # moves past a, skips the ping, holds c
    persist_c = manager.bind_pending_event(trigger_id=1, key=key)
    assert second.payload["event_id"] == "c" and persist_c is not None
    assert await cursor() == 0, "nothing is committed before Airflow stored it"

    manager.confirm_persisted([persist_a])
    await advances.wait(1)
    assert await cursor() == 2  # a, and the ping the filter dropped
    await events.aclose()
    await manager.unsubscribe(1, key)  # a restart: c was taken but never confirmed stored
    assert await cursor() == 2

    manager = SharedStreamManager(ack_timeout=60)
    events = t.filter_shared_stream(manager.subscribe(trigger_id=2, trigger=t, key=key))
    redelivered = await asyncio.wait_for(anext(events), 10)
    assert redelivered.payload["event_id"] == "c"
    persist_c = manager.bind_pending_event(trigger_id=2, key=key)
    assert persist_c is not None
    manager.confirm_persisted([persist_c])
    waiting = asyncio.ensure_future(anext(events))  # moving on resolves c
    await advances.wait(2)
    assert await cursor() == 3
    await append(log, "d", "order.created")
    assert (await asyncio.wait_for(waiting, 10)).payload["event_id"] == "d"
    await events.aclose()
    await manager.unsubscribe(2, key)
    await close_loop_listeners()
    await close_loop_pools()


def item(seq: int, acked: int = 1, failed: int = 0, rejected: int = 0) -> AdvanceItem:
    return AdvanceItem(seq, AdvanceOutcome(acked=acked, failed=failed, rejected=rejected))


@both
async def test_advance_never_commits_past_an_unconfirmed_event(
    log: EventLog, store_location: tuple[str, str]
) -> None:
    for i in range(6):
        await append(log, f"m{i}", "t")
    producer = EventLogProducer(trigger(store_location), max_in_flight=2)
    stream = producer.open_stream()
    taken = [await asyncio.wait_for(anext(stream), 10) for _ in range(2)]
    assert [seq for _, seq in taken] == [1, 2]
    third = asyncio.ensure_future(anext(stream))  # two are in flight: it waits for room
    await producer.advance([item(1), item(2, acked=0, rejected=1)])  # a reject is terminal: commit it
    assert (await asyncio.wait_for(third, 10))[1] == 3
    assert producer.committed == 2
    await producer.advance([item(3, acked=0)])  # nobody was subscribed: not stored anywhere
    await producer.advance([item(4)])
    assert producer.committed == 2, "never past an event nobody stored, even once later ones are"
    await stream.aclose()
    await producer.aclose()
    assert await log.start_consumer(producer.trigger.consumer_key, "partner", "earliest") == 2
    fresh = EventLogProducer(trigger(store_location))
    stream = fresh.open_stream()
    assert (await asyncio.wait_for(anext(stream), 10))[1] == 3  # redelivered from the cursor
    await stream.aclose()
    await fresh.aclose()
    await close_loop_listeners()
    await close_loop_pools()


async def test_a_lost_store_is_retried_not_fatal(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_events, "MAX_BACKOFF", 0.01)
    t = WebhookEventTrigger("partner", store=f"sqlite:///{tmp_path}/events.db")
    async with lease_event_log(t.store) as shared:
        calls = 0
        real_read = shared.read

        async def flaky(*args: Any, **kw: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise StoreUnavailableError("database restarting")
            return await real_read(*args, **kw)

        monkeypatch.setattr(shared, "read", flaky)
        await shared.append("partner", "x", "t", b'{"type": "t"}')
        producer = EventLogProducer(t)
        stream = producer.open_stream()
        assert (await asyncio.wait_for(anext(stream), 10))[0].webhook_id == "x"
        assert calls == 2
        await stream.aclose()
        await producer.aclose()


def test_an_unknown_store_url_names_the_field() -> None:
    with pytest.raises(WebhookConfigError) as info:
        WebhookEventTrigger("partner", store="ftp://x")
    assert info.value.field == "store"


def test_matches_uses_patterns_and_the_condition() -> None:
    from datetime import datetime, timezone

    from airflow_provider_integrations.webhooks.events import Event

    t = WebhookEventTrigger("p", event_types=["order.*"], condition={"jmespath": "data.vip", "equals": True})
    at = datetime.now(timezone.utc)

    def ev(kind: str, vip: bool) -> Event:
        return Event("p", 1, "w", kind, {"type": kind, "data": {"vip": vip}}, at)

    assert t.matches(ev("order.created", True))
    assert not t.matches(ev("order.created", False))
    assert not t.matches(ev("invoice.paid", True))
    assert WebhookEventTrigger("p").matches(ev("anything", False))
