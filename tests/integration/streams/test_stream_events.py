"""StreamEventTrigger through Airflow's own SharedStreamManager (ack mode), in this process.

Two watchers with different filters share one stream: the sandbox sees one connection; each watcher
gets its events in stream order; the checkpoint moves only once Airflow confirmed the derived events
stored. The triggerer binds each yielded event and later confirms it; the test plays that part with
the manager's public calls (``bind_pending_event`` / ``confirm_persisted``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.shared_stream import SharedStreamManager

from airflow_provider_integrations.sandbox.process import SandboxProcess
from airflow_provider_integrations.triggers.stream_events import StreamEventTrigger
from tests.integration.streams.conftest import stream_stats

pytestmark = pytest.mark.usefixtures("stream_conns")


def sse(key: str, **params: Any) -> dict[str, Any]:
    return {"kind": "sse", "conn_id": "streams_sandbox", "path": "/streams/sse", "key_field": "key",
            "params": {"key": key, "keys": 3, **params}}  # fmt: skip


def committed(path: Path, consumer: str) -> str | None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        try:
            row = db.execute(
                "SELECT position FROM stream_checkpoints WHERE consumer = ?", (consumer,)
            ).fetchone()
        except sqlite3.OperationalError:
            return None  # the table does not exist yet
    return None if row is None else str(row[0])


async def wait_for(check: Any, what: str, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        # Polls state other components change (the checkpoint file, the watchers' lists): no event
        # reaches the test from the shared-stream manager or the store.
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


class Watcher:
    """One subscriber as the triggerer runs it: filter, bind each event, keep pulling."""

    def __init__(self, manager: SharedStreamManager, trigger_id: int, trigger: StreamEventTrigger) -> None:
        self.manager, self.trigger_id, self.trigger = manager, trigger_id, trigger
        self.key = trigger.shared_stream_key()
        self.events: list[tuple[dict[str, Any], int | None]] = []
        stream = manager.subscribe(trigger_id=trigger_id, trigger=trigger, key=self.key)
        self.task = asyncio.create_task(self._consume(stream))

    async def _consume(self, stream: AsyncIterator[Any]) -> None:
        async for event in self.trigger.filter_shared_stream(stream):
            seq = self.manager.bind_pending_event(trigger_id=self.trigger_id, key=self.key)
            self.events.append((event.payload, seq))

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.manager.unsubscribe(self.trigger_id, self.key)


async def test_two_watchers_share_one_connection_and_the_checkpoint_waits_for_persistence(
    sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    store = tmp_path / "checkpoints.db"
    common = {"source": sse(key, rate=200), "checkpoint_store": f"sqlite:///{store}"}
    created = StreamEventTrigger(**common, event_types=["created"])
    k1 = StreamEventTrigger(**common, condition={"jmespath": "key", "equals": "k1"})
    assert created.shared_stream_key() == k1.shared_stream_key()
    assert created.consumer_name == k1.consumer_name

    manager = SharedStreamManager(ack_timeout=60)
    first, second = Watcher(manager, 1, created), Watcher(manager, 2, k1)
    try:
        await wait_for(lambda: len(first.events) >= 10 and len(second.events) >= 10, "ten events each")
        # Seq n is "created" when n % 3 == 0 and has key k<n % 3>: the filters split the stream.
        assert [p["position"] for p, _ in first.events[:10]] == [str(n) for n in range(3, 31, 3)]
        assert [p["position"] for p, _ in second.events[:10]] == [str(n) for n in range(1, 29, 3)]
        assert {p["type"] for p, _ in first.events} == {"created"} and {
            p["key"] for p, _ in second.events
        } == {"k1"}
        assert first.events[0][0]["data"] == {"seq": 3, "type": "created", "key": "k0", "pad": ""}
        # Nothing confirmed stored yet: the checkpoint has not moved.
        assert committed(store, created.consumer_name) is None

        confirmed = [seq for _, seq in first.events[:10] + second.events[:10]]
        assert None not in confirmed
        manager.confirm_persisted(s for s in confirmed if s is not None)
        # Up to seq 30; seq 31 (key k1) was yielded but not confirmed, so the checkpoint stops there.
        await wait_for(lambda: committed(store, created.consumer_name) == '"30"', "the checkpoint at 30")
        # Later events keep flowing to the watchers, yet the checkpoint stays before the unconfirmed one.
        await wait_for(lambda: len(second.events) >= 13, "events past the unconfirmed seq 31")
        assert committed(store, created.consumer_name) == '"30"'
        stats = stream_stats(sandbox, key)
        assert stats["connections"] == 1, stats
    finally:
        await first.stop()
        await second.stop()


async def test_a_restarted_group_resumes_after_the_committed_checkpoint(
    sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    trigger = StreamEventTrigger(sse(key, total=12), checkpoint_store=f"sqlite:///{tmp_path / 'c.db'}")
    manager = SharedStreamManager(ack_timeout=60)
    watcher = Watcher(manager, 1, trigger)
    try:
        await wait_for(lambda: len(watcher.events) == 12, "all twelve events")
        manager.confirm_persisted(seq for _, seq in watcher.events[:5] if seq is not None)
        await wait_for(lambda: committed(tmp_path / "c.db", trigger.consumer_name) == '"5"', "checkpoint 5")
    finally:
        await watcher.stop()  # a triggerer going away: seqs 6..12 were never confirmed

    again = Watcher(SharedStreamManager(ack_timeout=60), 1, trigger)
    try:
        await wait_for(lambda: len(again.events) == 7, "the unconfirmed events again")
        assert [p["position"] for p, _ in again.events] == [str(n) for n in range(6, 13)]
    finally:
        await again.stop()


async def test_per_window_events_carry_the_matching_events_of_each_window(
    sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    trigger = StreamEventTrigger(
        sse(key, total=40), per="window", window={"max_events": 10}, event_types=["deleted"],
        checkpoint_store=f"sqlite:///{tmp_path / 'c.db'}",
    )  # fmt: skip
    watcher = Watcher(SharedStreamManager(ack_timeout=60), 1, trigger)
    try:
        await wait_for(lambda: len(watcher.events) == 4, "four windows")
    finally:
        await watcher.stop()
    payloads = [p for p, _ in watcher.events]
    assert [(p["first_position"], p["last_position"], p["window_count"]) for p in payloads] == [
        ("1", "10", 10), ("11", "20", 10), ("21", "30", 10), ("31", "40", 10),
    ]  # fmt: skip
    positions = [e["position"] for p in payloads for e in p["events"]]
    assert positions == [str(n) for n in range(1, 41) if n % 3 == 2]  # "deleted" events, in order
    assert all(p["count"] == len(p["events"]) and not p["truncated"] for p in payloads)


async def test_run_outside_a_shared_stream_commits_an_event_once_the_next_is_asked_for(
    sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    store = tmp_path / "c.db"
    trigger = StreamEventTrigger(
        sse(key, total=30), event_types=["updated"], checkpoint_store=f"sqlite:///{store}"
    )
    async with contextlib.aclosing(trigger.run()) as events:
        first = await anext(events)
        assert first.payload["position"] == "1" and committed(store, trigger.consumer_name) is None
        second = await anext(events)
        assert second.payload["position"] == "4"
        assert committed(store, trigger.consumer_name) == '"3"'  # events up to the first one handed over
