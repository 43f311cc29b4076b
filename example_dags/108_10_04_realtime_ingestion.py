"""
# Real-time ingestion: stream to mini-batches to a PostgreSQL upsert

A partner streams order events (Server-Sent Events, 500 per second here, and its server drops the
connection every 400 events); the warehouse wants them in a table within a second or two, each
exactly once.

## Stream to mini-batches

`StreamBatchOperator` cuts the stream into **mini-batches**: a window closes at 200 events, or one second
after its first event, whichever comes first. The flush timeout bounds the latency when the stream is
slow; the count bounds the batch when it is fast. `ingest_live` reads on the worker with the connection
held open across windows (`deferrable=False`, lowest latency); `ingest_rest` continues from the same
checkpoint in the triggerer (`deferrable=True`: no worker slot while waiting for a window, one deferral
per window), until the stream ends.

## PostgreSQL upsert, exactly-once effect

`PostgresSink(keys=["seq"])` writes each mini-batch in one transaction: COPY into a staging table, then
`INSERT ... ON CONFLICT (seq) DO UPDATE` (rows equal to the stored ones are not rewritten). The
checkpoint is committed only after that transaction, so:

- a crash before the commit replays the mini-batch, and the upsert absorbs it (at-least-once delivery,
  exactly-once effect);
- the source resumes after a drop with `Last-Event-ID`, so nothing is lost in between.

`measure` checks the table against the stream (every sequence number once) and prints the latency from
the server's send time (`ts` in each event) to the row's insert. `replay_everything` then proves the
effect: a second consumer reads the whole stream again into the same table, and not one row is added
(the partner stamps a fresh `ts` into every event it sends, so replayed rows are updated in place).

Each run writes to its own table (`create_table`), dropped at the end.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.operators.streams import PostgresSink, StreamBatchOperator

REQUIRES = ["postgresql"]
PG_CONN = "integrations_pg"
TOTAL = 2000
TABLE = "{{ ti.xcom_pull(task_ids='create_table') }}"
STREAM = {
    "kind": "sse",
    "conn_id": "sandbox_api",
    "path": "/streams/sse",
    "params": {"total": TOTAL, "rate": 500, "ts": 1, "drop_every": 400, "partial": 1, "keys": 50},
    "key_field": "key",
}


# [START howto_stream_postgres_sink]
def orders_sink() -> PostgresSink:
    return PostgresSink(
        postgres_conn_id=PG_CONN,
        table=TABLE,  # templated: this run's table
        columns={"seq": "seq", "customer": "key", "type": "$type", "sent_ts": "ts", "body": "$data"},
        keys=["seq"],  # the event id: replays update nothing
    )


# [END howto_stream_postgres_sink]

with DAG(
    dag_id="108_10_04_realtime_ingestion",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    doc_md=__doc__,
    tags=["example", "streaming", "postgres"],
    default_args={"retries": 0},
    max_active_runs=1,
) as dag:

    @task
    def create_table(run_id: str | None = None) -> str:
        table = "realtime_orders_" + hashlib.sha1(str(run_id).encode()).hexdigest()[:12]
        AsyncPostgresHook(PG_CONN).execute(
            f"CREATE TABLE {table} (seq bigint PRIMARY KEY, customer text NOT NULL, type text NOT NULL,"
            " sent_ts double precision NOT NULL, body jsonb NOT NULL,"
            " stored_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        return table

    # [START howto_realtime_ingestion]
    ingest_live = StreamBatchOperator(
        task_id="ingest_live",
        source=STREAM,
        window={"max_events": 200, "max_seconds": 1.0},
        sink=orders_sink(),
        consumer="108_10_04-{{ run_id }}",
        max_windows=4,
        deferrable=False,
    )
    ingest_rest = StreamBatchOperator(
        task_id="ingest_rest",
        source=STREAM,
        window={"max_events": 400, "max_seconds": 1.0},
        sink=orders_sink(),
        consumer="108_10_04-{{ run_id }}",  # the same consumer: resumes at ingest_live's checkpoint
        max_windows=50,
        deferrable=True,
    )
    # [END howto_realtime_ingestion]

    replay_everything = StreamBatchOperator(
        task_id="replay_everything",
        source=STREAM,
        window={"max_events": 1000, "max_seconds": 1.0},
        sink=orders_sink(),
        consumer="108_10_04-replay-{{ run_id }}",  # a new consumer: the stream from its start
        max_windows=50,
        deferrable=False,
    )

    @task
    def measure(table: str, live: dict[str, Any], rest: dict[str, Any]) -> None:
        assert live["windows"] == 4 and live["stopped"] == "max_windows", live
        assert rest["first_position"] == str(int(live["last_position"]) + 1), (live, rest)
        assert live["events"] + rest["events"] == TOTAL and rest["stopped"] == "end", (live, rest)
        (row,) = AsyncPostgresHook(PG_CONN).fetch(
            f"SELECT count(*) AS n, count(DISTINCT seq) AS seqs, min(seq) AS first, max(seq) AS last,"
            f" percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at) - sent_ts) AS p50,"
            f" percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at) - sent_ts) AS p95"
            f" FROM {table}"
        )
        assert (row["n"], row["seqs"], row["first"], row["last"]) == (TOTAL, TOTAL, 1, TOTAL), row
        print(
            f"{TOTAL} events stored once each; latency send -> stored: p50 {row['p50']:.3f} s,"
            f" p95 {row['p95']:.3f} s; window open -> commit: live {live['max_latency']} s,"
            f" deferred {rest['max_latency']} s"
        )

    @task
    def verify_replay(table: str, replay: dict[str, Any]) -> None:
        sink = replay["sink"]
        assert replay["events"] == TOTAL and sink["inserted"] == 0, replay
        assert sink["updated"] + sink["unchanged"] == TOTAL, replay
        (row,) = AsyncPostgresHook(PG_CONN).fetch(
            f"SELECT count(*) AS n, count(DISTINCT seq) AS seqs FROM {table}"
        )
        assert (row["n"], row["seqs"]) == (TOTAL, TOTAL), row
        print(f"replayed {TOTAL} events: {sink}; still {row['n']} rows")

    @task
    def drop_table(table: str) -> None:
        AsyncPostgresHook(PG_CONN).execute(f"DROP TABLE {table}")

    table = create_table()
    measured = measure(table, ingest_live.output, ingest_rest.output)  # type: ignore[arg-type]
    replayed = verify_replay(table, replay_everything.output)  # type: ignore[arg-type]
    table >> ingest_live >> ingest_rest >> measured >> replay_everything >> replayed >> drop_table(table)  # type: ignore[arg-type]
