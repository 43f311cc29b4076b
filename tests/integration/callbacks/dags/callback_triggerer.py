"""The DAG of the real-triggerer test: callbacks through the API-server plugin into the PostgreSQL store.

- ``early``: the sandbox partner calls back at once, twice (a replay), before any triggerer runs;
- ``late``: no start request; the test itself sends the signed callback once a triggerer listens.

The triggerer never parses this file; it reads the serialized DAG from the database.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_integrations.operators.webhooks import WaitForCallbackOperator

with DAG(
    dag_id="callback_triggerer",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["test"],
    default_args={"retries": 0},
) as dag:
    early = WaitForCallbackOperator(
        task_id="early",
        secret_conn_id="partner_webhook",
        integration_http_conn_id="callbacks_sandbox",
        endpoint="/partner/jobs",
        json={"callback_url": "{{ callback_url }}", "mode": "twice", "delay": 0, "result": {"rows": 5}},
        wait_timeout=300,
        deferrable=True,
    )
    late = WaitForCallbackOperator(
        task_id="late", secret_conn_id="partner_webhook", wait_timeout=300, deferrable=True
    )

    @task
    def check(early_payload: dict[str, Any], late_payload: dict[str, Any]) -> None:
        assert early_payload["status"] == "succeeded" and early_payload["result"] == {"rows": 5}, (
            early_payload
        )
        assert late_payload == {"status": "succeeded", "from": "test"}, late_payload

    check(early.output, late.output)
