"""The DAG of the real-triggerer restart test: one deferrable StreamBatchOperator, SSE to PostgreSQL.

The test sets ``STREAM_TEST_KEY`` (the sandbox stream's stats key), ``STREAM_TEST_SCHEMA`` (where the
``dest`` table is) and ``STREAM_TEST_TOTAL`` in the environment of the ``dag.test()`` process; the
triggerer never parses this file, it reads the trigger's kwargs from the database.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from airflow.sdk import DAG

from airflow_provider_integrations.operators.streams import PostgresSink, StreamBatchOperator

with DAG(
    dag_id="stream_batch_triggerer",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["test"],
    default_args={"retries": 0},
) as dag:
    StreamBatchOperator(
        task_id="ingest",
        source={
            "kind": "sse",
            "conn_id": "streams_sandbox",
            "path": "/streams/sse",
            "params": {
                "key": os.environ.get("STREAM_TEST_KEY", "unset"),
                "total": int(os.environ.get("STREAM_TEST_TOTAL", "1000")),
                "rate": 100,
            },
        },
        sink=PostgresSink(
            postgres_conn_id="streams_pg",
            table="dest",
            schema=os.environ.get("STREAM_TEST_SCHEMA", "public"),
            columns={"seq": "seq", "body": "$data", "type": "$type"},
            keys=["seq"],
        ),
        window={"max_events": 250, "max_seconds": 10},
        max_windows=100,
        deferrable=True,
    )
