"""The DAG of the operator's ``dag.test()`` test (SQLite store, standalone receiver, sandbox partner).

- ``mapped``: two mapped waits; each map index renders its own ``{{ callback_url }}``;
- ``retried``: the first try's partner job never calls back, so the try times out; the retry registers
  a new callback URL (a new id, bound to try 2) and its job calls that one back;
- ``on_worker``: ``deferrable=False`` waits on the worker through the trigger's own code.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, TriggerRule, task

from airflow_provider_integrations.operators.webhooks import WaitForCallbackOperator

COMMON: dict[str, Any] = {
    "secret_conn_id": "partner_webhook",
    "integration_http_conn_id": "sandbox_api",
    "endpoint": "/partner/jobs",
}


def job(mode: str, result: Any) -> dict[str, Any]:
    return {"callback_url": "{{ callback_url }}", "mode": mode, "delay": 0.1, "result": result}


with DAG(
    dag_id="callback_cases",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["test"],
    default_args={"retries": 0},
) as dag:
    mapped = WaitForCallbackOperator.partial(task_id="mapped", deferrable=True, **COMMON).expand(
        json=[job("normal", {"n": 0}), job("normal", {"n": 1})]
    )
    retried = WaitForCallbackOperator(
        task_id="retried",
        json={
            "callback_url": "{{ callback_url }}",
            "mode": "{{ 'never' if ti.try_number == 1 else 'normal' }}",
            "delay": 0.1,
            "result": {"try": "{{ ti.try_number }}", "url": "{{ callback_url }}"},
        },
        wait_timeout=2,
        retries=1,
        retry_delay=timedelta(seconds=0),
        deferrable=True,
        **COMMON,
    )
    on_worker = WaitForCallbackOperator(
        task_id="on_worker", json=job("normal", {"where": "worker"}), deferrable=False, **COMMON
    )

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def verify(**context: Any) -> None:
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=["retried", "on_worker"])
        assert states[ti.run_id] == {"retried": "success", "on_worker": "success"}, states
        payloads = ti.xcom_pull(task_ids="mapped")
        assert sorted(p["result"]["n"] for p in payloads) == [0, 1], payloads
        urls = ti.xcom_pull(task_ids="mapped", key="callback_url")
        assert len(set(urls)) == 2, urls
        retried_payload = ti.xcom_pull(task_ids="retried")
        assert retried_payload["result"]["try"] == "2", retried_payload
        # The URL the partner was given in try 2 is the one the resumed task reports.
        assert retried_payload["result"]["url"] == ti.xcom_pull(task_ids="retried", key="callback_url")
        assert ti.xcom_pull(task_ids="on_worker")["result"] == {"where": "worker"}

    [mapped, retried, on_worker] >> verify()
