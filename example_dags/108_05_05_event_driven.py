"""
# Event-driven integration: a stream's events start DAG runs

Instead of polling on a schedule, let the partner's event stream decide when work happens.

## Event subscription

An `AssetWatcher` subscribes an `Asset` to a `StreamEventTrigger`; the triggerer keeps the stream open
and turns each matching event into an **asset event**, which starts a run of every DAG scheduled on the
asset (event to DAG trigger). The trigger takes the same stream spec as `StreamBatchOperator`.

## Filtering

- `event_types`: event types or `fnmatch` patterns (`order.*`);
- `condition`: a condition on the event's JSON data, as data (`{"jmespath": "key", "in": [...]}`,
  `gte`, `matches`, `all`/`any`/`not`...), validated when the DAG is parsed;
- `per="window"` with a `window` sends one asset event per window of matching events, for busy streams.

## One consumer, ordering

Watchers of the same stream (same spec, consumer and checkpoint store), whatever their filters, share
**one** connection through Airflow 3.3 shared streams. That one reader consumes the stream in order,
so the events of each key arrive in order. The scheduler may fold several asset events into one DAG
run: `triggering_asset_events` then holds them all; sort by `position` (as `collect_events` does).

## Idempotent handling

The stream position is checkpointed only after Airflow confirmed that the asset events derived from it
are stored (shared-stream **ack mode**). A triggerer killed in between delivers those events again:
at-least-once. So handle each event idempotently, keyed by its `position` (the stream's event id):
`apply_events` records what it handled in a table with that key, and handling the same events twice
changes nothing.

## Running it

Under a scheduler and a triggerer the DAG runs once per event. `dag.test()` runs the consumer side
without a triggerer: when a run has no triggering events, `collect_events` subscribes with the
watcher's own trigger for a few events (a consumer name of its own, so the watcher's checkpoint is
untouched).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_integrations.triggers.stream_events import StreamEventTrigger

SAMPLE = 12  # events collected when a run was not started by the stream

# [START howto_stream_event_trigger]
ORDER_EVENTS = {
    "kind": "sse",
    "conn_id": "sandbox_api",
    "path": "/streams/sse",
    "params": {"total": 300, "keys": 4},
    "key_field": "key",
}
created_orders = StreamEventTrigger(
    ORDER_EVENTS,
    event_types=["created"],
    condition={"jmespath": "key", "in": ["k0", "k1"]},
)
orders = Asset(
    "sandbox_created_orders", watchers=[AssetWatcher(name="created_orders", trigger=created_orders)]
)
# [END howto_stream_event_trigger]


async def _subscribe(consumer: str, count: int) -> list[dict[str, Any]]:
    """The watcher's trigger, run in this task for ``count`` events under its own consumer name."""
    _, kwargs = created_orders.serialize()
    trigger = StreamEventTrigger(**{**kwargs, "consumer": consumer})
    found: list[dict[str, Any]] = []
    async with contextlib.aclosing(trigger.run()) as events:
        async for event in events:
            found.append(event.payload)
            if len(found) == count:
                break
    return found


with DAG(
    dag_id="108_05_05_event_driven",
    schedule=[orders],
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    doc_md=__doc__,
    tags=["example", "streaming", "event-driven"],
    default_args={"retries": 0},
    max_active_runs=1,
) as dag:

    @task
    def collect_events(
        triggering_asset_events: Any = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        payloads = [
            event.extra["payload"]
            for events in (triggering_asset_events or {}).values()
            for event in events
            if "payload" in (event.extra or {})
        ]
        if not payloads:
            print("not started by the stream: subscribing for a sample of events")
            payloads = asyncio.run(_subscribe(f"108_05_05-{run_id}", SAMPLE))
        return sorted(payloads, key=lambda p: int(p["position"]))

    @task
    def check_filter_and_order(payloads: list[dict[str, Any]]) -> None:
        assert payloads, "no events"
        for p in payloads:
            assert p["type"] == "created" and p["key"] in ("k0", "k1"), p
            assert p["data"]["seq"] == int(p["position"]), p
        for key in ("k0", "k1"):
            positions = [int(p["position"]) for p in payloads if p["key"] == key]
            assert positions == sorted(set(positions)), f"{key} out of order: {positions}"

    # [START howto_idempotent_handling]
    @task
    def apply_events(payloads: list[dict[str, Any]], run_id: str | None = None) -> dict[str, int]:
        """Handle each event once, keyed by its position: a redelivered event is a no-op."""
        path = os.path.join(os.environ.get("AIRFLOW_HOME", "."), "example_108_05_05.db")
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("CREATE TABLE IF NOT EXISTS handled (run_id TEXT, position TEXT, key TEXT,"
                       " PRIMARY KEY (run_id, position))")  # fmt: skip
            rows = [(run_id, str(p["position"]), p["key"]) for p in payloads]
            first = db.executemany("INSERT OR IGNORE INTO handled VALUES (?, ?, ?)", rows).rowcount
            again = db.executemany("INSERT OR IGNORE INTO handled VALUES (?, ?, ?)", rows).rowcount
            (stored,) = db.execute("SELECT count(*) FROM handled WHERE run_id = ?", (run_id,)).fetchone()
        assert (first, again, stored) == (len(rows), 0, len(rows)), (first, again, stored)
        return {"handled": first, "redelivered_ignored": len(rows)}

    # [END howto_idempotent_handling]

    collected = collect_events()
    check_filter_and_order(collected) >> apply_events(collected)  # type: ignore[arg-type]
