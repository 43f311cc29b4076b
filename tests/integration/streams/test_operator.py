"""StreamBatchOperator against the sandbox streams and PostgreSQL, in this process.

Deferrable runs are driven here: ``execute`` defers, the trigger (rebuilt from its JSON kwargs, as the
triggerer does) runs to its event, the event (through JSON) resumes the task, until the task returns.
The real-triggerer restart test is in ``test_triggerer.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_integrations.operators.streams import PostgresSink, StreamBatch, StreamBatchOperator
from airflow_provider_integrations.sandbox.process import SandboxProcess
from airflow_provider_integrations.triggers.streams import StreamWindowTrigger
from tests.integration.streams.conftest import PG_DSN, dest_checksum, source_checksum, sql, stream_stats

pytestmark = pytest.mark.usefixtures("stream_conns", "checkpoints")
CONTEXT: Any = {}


def first_event(trigger: StreamWindowTrigger) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with contextlib.aclosing(trigger.run()) as events:
            async for event in events:
                return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(run())


def drive(op: StreamBatchOperator) -> tuple[Any, int]:
    """Run ``op`` to the end the way Airflow would; returns its result and the number of deferrals."""
    deferrals = 0
    try:
        return op.execute(CONTEXT), deferrals
    except TaskDeferred as exc:
        deferred = exc
    while True:
        deferrals += 1
        classpath, kwargs = deferred.trigger.serialize()
        assert classpath == "airflow_provider_integrations.triggers.streams.StreamWindowTrigger"
        trigger = StreamWindowTrigger(**json.loads(json.dumps(kwargs)))
        assert trigger.serialize() == (classpath, kwargs)
        event = json.loads(json.dumps(first_event(trigger)))
        try:
            return getattr(op, deferred.method_name)(
                CONTEXT, event=event, **(deferred.kwargs or {})
            ), deferrals
        except TaskDeferred as exc:
            deferred = exc


class Recording:
    """A sink that notes every delivered seq (duplicates included) and then writes through ``inner``."""

    def __init__(self, inner: PostgresSink, fail_on_window: int | None = None) -> None:
        self.inner = inner
        self.seqs: list[int] = []
        self.windows = 0
        self.fail_on_window = fail_on_window

    async def write(self, batch: StreamBatch) -> Mapping[str, int]:
        self.windows += 1
        self.seqs.extend(doc["seq"] for doc in batch.json())
        result = await self.inner.write(batch)
        if self.windows == self.fail_on_window:
            raise RuntimeError("worker died after storing the window, before the commit")
        return result


def dest_sink(schema: str) -> PostgresSink:
    return PostgresSink(
        postgres_conn_id="streams_pg", table="dest", schema=schema, keys=["seq"],
        columns={"seq": "seq", "body": "$data", "type": "$type"},
    )  # fmt: skip


def operator(source: dict[str, Any], sink: Any, **kwargs: Any) -> StreamBatchOperator:
    """Deferrable unless told otherwise (Airflow's ``default_deferrable`` is False)."""
    kwargs.setdefault("deferrable", True)
    with DAG(
        f"streams_{uuid.uuid4().hex[:8]}", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc)
    ):
        return StreamBatchOperator(task_id="consume", source=source, sink=sink, **kwargs)


def http_source(kind: str, key: str, **params: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": kind,
        "conn_id": "streams_sandbox",
        "path": f"/streams/{kind if kind != 'websocket' else 'ws'}",
    }
    spec["params"] = {"key": key, **params}
    if kind == "ndjson":
        spec["position_field"] = "seq"
    if kind == "websocket":
        spec["hello"] = {}
    return spec


@pytest.mark.parametrize(("kind", "deferrable"), [("sse", False), ("ndjson", True), ("websocket", True)])
def test_drops_every_n_events_lose_and_duplicate_nothing(
    kind: str, deferrable: bool, sandbox: SandboxProcess, key: str, schema: str
) -> None:
    total = 1500
    sink = Recording(dest_sink(schema))
    op = operator(
        http_source(kind, key, total=total, drop_every=170, partial=1),
        sink, window={"max_events": 400, "max_seconds": 2.0}, max_windows=100, deferrable=deferrable,
    )  # fmt: skip
    summary, deferrals = drive(op)

    assert summary["stopped"] == "end" and summary["events"] == total, summary
    assert summary["last_position"] in (total, str(total)) and summary["sink"]["inserted"] == total
    # Exact resumes: every seq once, in order, even before the upsert's dedup.
    assert sink.seqs == list(range(1, total + 1))
    assert dest_checksum(schema) == (total, total, source_checksum(total))
    stats = stream_stats(sandbox, key)
    assert stats["drops"] >= total // 170 - 1, stats
    # One deferral per window; the last window closed at the end of the stream, so no extra round.
    assert deferrals == (summary["windows"] if deferrable else 0), (deferrals, summary)


def test_a_crash_before_the_commit_replays_the_window_and_the_upsert_absorbs_it(
    sandbox: SandboxProcess, key: str, schema: str
) -> None:
    total, window = 900, 300
    source = http_source("sse", key, total=total)
    crashing = Recording(dest_sink(schema), fail_on_window=2)
    with pytest.raises(RuntimeError, match="before the commit"):
        drive(operator(source, crashing, window={"max_events": window}, max_windows=10, consumer="c"))
    assert crashing.seqs == list(range(1, 2 * window + 1))

    again = Recording(dest_sink(schema))
    summary, _ = drive(operator(source, again, window={"max_events": window}, max_windows=10, consumer="c"))
    # The second window was stored but never committed: it comes again, then the rest.
    assert again.seqs == list(range(window + 1, total + 1))
    assert summary["sink"] == {"inserted": total - 2 * window, "updated": 0, "unchanged": window}
    assert dest_checksum(schema) == (total, total, source_checksum(total))


def test_windows_too_large_to_travel_inline_are_read_again_on_the_worker(
    sandbox: SandboxProcess, key: str, schema: str
) -> None:
    total = 600
    sink = Recording(dest_sink(schema))
    op = operator(
        http_source("sse", key, total=total, size=300), sink,
        window={"max_events": 250}, max_windows=10, max_inline_bytes=50_000,
    )  # fmt: skip
    summary, _ = drive(op)
    assert sink.seqs == list(range(1, total + 1)) and summary["windows"] == 3
    assert dest_checksum(schema) == (total, total, source_checksum(total, size=300))
    # 250 events of 300 bytes exceed 50 kB: two windows were read twice (once by the trigger).
    assert stream_stats(sandbox, key)["sent"] >= total + 2 * 250


def test_an_idle_stream_ends_the_task_after_flushing_its_partial_window(
    sandbox: SandboxProcess, key: str, schema: str
) -> None:
    seen: list[int] = []

    def collect(batch: StreamBatch) -> dict[str, int]:
        seen.extend(doc["seq"] for doc in batch.json())
        return {"kept": len(batch)}

    # 45 events, then silence: the count window of 100 never fills, and no max_seconds flushes it.
    op = operator(
        http_source("sse", key, stall_after=45, stall=20), collect,
        window={"max_events": 100}, idle_timeout=1.0, max_windows=5,
    )  # fmt: skip
    summary, _ = drive(op)
    assert summary["stopped"] == "idle" and seen == list(range(1, 46)), summary
    assert summary["sink"] == {"kept": 45}


def test_the_next_run_resumes_after_the_checkpoint_committed_in_postgres(
    sandbox: SandboxProcess, key: str, schema: str
) -> None:
    source = http_source("ndjson", key, total=500)
    store = f"postgres_conn://streams_pg?schema={schema}&table=checkpoints"
    common: dict[str, Any] = {"window": {"max_events": 200}, "consumer": "c1", "checkpoint_store": store}
    first, _ = drive(operator(source, dest_sink(schema), max_windows=1, **common))
    assert sql(f'SELECT stream, consumer, position FROM "{schema}".checkpoints') == [
        (first["stream"], "c1", "200")
    ]
    second, _ = drive(operator(source, dest_sink(schema), max_windows=5, **common))
    assert (first["first_position"], first["last_position"]) == (1, 200)
    assert (second["first_position"], second["last_position"], second["stopped"]) == (201, 500, "end")
    assert stream_stats(sandbox, key)["resumes"][:2] == [None, 200]
    assert sql(f'SELECT position FROM "{schema}".checkpoints') == [("500",)]


def test_a_table_tail_feeds_the_sink_with_its_rows(schema: str) -> None:
    sql(f'CREATE TABLE "{schema}".outbox (id bigserial PRIMARY KEY, payload text NOT NULL, kind text)')
    sql(
        f"INSERT INTO \"{schema}\".outbox (payload, kind) SELECT json_build_object('seq', g)::text, 'row'"
        " FROM generate_series(1, 250) g"
    )
    sink = PostgresSink(postgres_conn_id="streams_pg", table="dest", schema=schema, keys=["seq"],
                        columns={"seq": "$position", "body": "$data", "type": "$type"})  # fmt: skip
    source = {"kind": "pg_table", "conn_id": "streams_pg", "table": "outbox", "schema": schema,
              "type_column": "kind", "poll_interval": 0.05, "batch_size": 100}  # fmt: skip
    summary, _ = drive(operator(source, sink, window={"max_events": 100}, idle_timeout=0.5, max_windows=10))
    assert (summary["events"], summary["last_position"], summary["stopped"]) == (250, 250, "idle")
    assert sql(f'SELECT count(*), min(type), max(seq) FROM "{schema}".dest') == [(250, "row", 250)]


@pytest.mark.parametrize("deferrable", [True, False])
def test_notifications_in_the_triggerer_come_in_windows_capped_at_the_inline_limit(
    deferrable: bool, schema: str
) -> None:
    channel = f"ch_{schema}"
    stop = threading.Event()

    def publish() -> None:
        # NOTIFY cannot be replayed: keep sending until the task has its windows.
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            seq = 0
            while not stop.wait(0.005):
                seq += 1
                conn.execute(
                    "SELECT pg_notify(%s, %s)", (channel, json.dumps({"seq": seq, "pad": "x" * 100}))
                )

    seen: list[list[int]] = []
    source = {"kind": "pg_notify", "conn_id": "streams_pg", "channel": channel, "position_field": "seq"}
    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        op = operator(
            source, lambda batch: seen.append([doc["seq"] for doc in batch.json()]),
            window={"max_events": 200}, max_inline_bytes=2048, max_windows=2, deferrable=deferrable,
        )  # fmt: skip
        summary, _ = drive(op)
    finally:
        stop.set()
        publisher.join()
    # Through the triggerer a window must fit inline (about 110 bytes an event); on the worker it need not.
    expected = (lambda n: n <= 2048 // 110) if deferrable else (lambda n: n == 200)
    assert summary["windows"] == 2 and all(expected(len(w)) for w in seen), seen
    for window in seen:
        assert window == list(range(window[0], window[0] + len(window)))  # nothing lost while listening


def test_a_refused_login_fails_the_task_without_retries(
    http_connection: Any, sandbox: SandboxProcess, key: str
) -> None:
    http_connection("streams_bad_auth", sandbox.url, auth_scheme="bearer", password="wrong-token",
                    retry_max_attempts=1, circuit_failure_threshold=0)  # fmt: skip
    source = {**http_source("sse", key, total=10, auth="bearer"), "conn_id": "streams_bad_auth"}
    with pytest.raises(AirflowFailException, match="AuthenticationError"):
        drive(operator(source, lambda batch: None, window={"max_events": 5}))
    with pytest.raises(AirflowFailException, match="AuthenticationError"):
        drive(operator(source, lambda batch: None, window={"max_events": 5}, deferrable=False))
    assert issubclass(AirflowFailException, AirflowException)
