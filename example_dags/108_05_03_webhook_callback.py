"""
# Webhook callback pattern

Many partners answer asynchronously: you hand them a URL, they do the work and call the URL back.
`WaitForCallbackOperator` turns that into one deferrable task that resumes within milliseconds of the
callback, without polling the partner and without a worker slot held while waiting.

## Callback URL generation

Per task try the operator registers a callback in the callback store: an unguessable id (32 random
bytes) bound to dag_id, run_id, task_id, map_index and try number, expiring with the wait. Its URL is
`[integrations] webhook_base_url` + `/callbacks/<id>`; it is pushed to XCom (`callback_url`) and is in the
template context, so the request that starts the work carries `{{ callback_url }}`. The operator sends
that request itself, once per try, with an idempotency key (`start_response` in XCom holds the answer).
A retry gets a new URL and starts the work again.

## Webhook endpoint

The callback reaches a receiver that writes it to the store, where the waiting trigger finds it:

- inside the Airflow API server, the provider's plugin (`/integrations/webhooks/callbacks/<id>`, loaded
  through the `airflow.plugins` entry point), or
- the standalone service `python -m airflow_provider_integrations.webhooks serve` for a DMZ host (this
  demo: `scripts/run_examples.py` starts it next to the sandbox partner).

Stores: SQLite (default, one machine) or PostgreSQL (`webhook_store = postgres_conn://<conn_id>`), where
every waiting trigger of a triggerer wakes on one shared LISTEN connection. Payloads are encrypted at
rest with `webhook_payload_keys`. A 202 means the callback is durably stored.

## Security validation

Every request must be signed the Standard Webhooks way with a key held in the password of the
connection `secret_conn_id` names (space-separated `whsec_`/`whpk_` keys, old and new while rotating).
The receiver answers 401 to a forged signature or a stale timestamp, 404 to an unknown or expired id,
413/415/400 to oversized, non-JSON or schema-violating bodies, and 200 (nothing applied) to a replay.
`forged_callback` shows it: the partner signs with a key the receiver does not know, the receiver
answers 401, and the task never resumes on it (it fails at its 3 s timeout).

## Payload processing and resume

The task resumes with the payload as its return value (`payload_schema` is enforced by the receiver
before anything is stored). `failure_condition` turns a partner's failure report into a task failure
with the partner's reason (`partner_failure`); a duplicate delivery (`duplicate_delivery`: the partner
calls twice) resumes the task once. `verify` checks every outcome against the partner's own log.

Tasks without `deferrable=True` follow `[operators] default_deferrable`; with it off (the default) they
wait on the worker through the same code, holding the worker slot meanwhile.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, TriggerRule, task

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.operators.webhooks import WaitForCallbackOperator

PARTNER = "sandbox_api"
# [START howto_callback_contract]
FAILED = {"jmespath": "status", "equals": "failed"}
RESULT_SCHEMA = {
    "type": "object",
    "required": ["job_id", "status"],
    "properties": {"status": {"enum": ["succeeded", "failed"]}},
}
# [END howto_callback_contract]


def partner_job(mode: str, **extra: Any) -> dict[str, Any]:
    """The sandbox partner's job request: it calls ``callback_url`` back after ``delay`` seconds."""
    return {"callback_url": "{{ callback_url }}", "mode": mode, "delay": 0.3, **extra}


with DAG(
    dag_id="108_05_03_webhook_callback",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "patterns", "intermediate", "success"],
    doc_md=__doc__,
    default_args={"retries": 0},
) as dag:
    # [START howto_wait_for_callback]
    wait_for_partner = WaitForCallbackOperator(
        task_id="wait_for_partner",
        secret_conn_id="partner_webhook",  # its password holds the partner's signing key(s)
        integration_http_conn_id=PARTNER,
        endpoint="/partner/jobs",
        json=partner_job("normal", result={"rows": 1200, "file": "exports/{{ ds }}.csv"}),
        payload_schema=RESULT_SCHEMA,
        failure_condition=FAILED,
        failure_reason="reason",
        wait_timeout=timedelta(minutes=5),
        deferrable=True,
    )
    # [END howto_wait_for_callback]

    duplicate_delivery = WaitForCallbackOperator(
        task_id="duplicate_delivery",
        secret_conn_id="partner_webhook",
        integration_http_conn_id=PARTNER,
        endpoint="/partner/jobs",
        json=partner_job("twice", result={"rows": 7}),
        wait_timeout=timedelta(minutes=5),
        deferrable=True,
    )

    partner_failure = WaitForCallbackOperator(
        task_id="partner_failure",
        secret_conn_id="partner_webhook",
        integration_http_conn_id=PARTNER,
        endpoint="/partner/jobs",
        json=partner_job("failure"),
        failure_condition=FAILED,
        wait_timeout=timedelta(minutes=5),
    )

    forged_callback = WaitForCallbackOperator(
        task_id="forged_callback",
        secret_conn_id="partner_webhook",
        integration_http_conn_id=PARTNER,
        endpoint="/partner/jobs",
        json=partner_job("forged"),
        wait_timeout=3,
    )

    # [START howto_process_callback_payload]
    @task
    def process_payload(payload: dict[str, Any]) -> dict[str, Any]:
        """The resumed task's return value is the verified payload: use it like any XCom."""
        result = payload["result"]
        return {"job_id": payload["job_id"], "rows": result["rows"], "file": result["file"]}

    processed = process_payload(wait_for_partner.output)
    # [END howto_process_callback_payload]

    waits = [wait_for_partner, duplicate_delivery, partner_failure, forged_callback]

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def verify(processed: dict[str, Any], **context: Any) -> dict[str, Any]:
        ti = context["ti"]
        states = ti.get_task_states(
            dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=[t.task_id for t in waits]
        )
        assert states[ti.run_id] == {
            "wait_for_partner": "success",
            "duplicate_delivery": "success",  # resumed once, though called twice
            "partner_failure": "failed",  # the partner's reason is in the task's log
            "forged_callback": "failed",  # rejected with 401; the wait timed out
        }, states
        assert processed["rows"] == 1200 and processed["file"].startswith("exports/"), processed

        urls = {t.task_id: ti.xcom_pull(task_ids=t.task_id, key="callback_url") for t in waits}
        assert len(set(urls.values())) == len(waits), "one callback URL per task try"
        assert all("/callbacks/" in url for url in urls.values()), urls

        # The partner's own log of its callback attempts: the status codes our receiver answered.
        hook = IntegrationHttpHook(PARTNER)
        attempts = {}
        for t in waits:
            job_id = ti.xcom_pull(task_ids=t.task_id, key="start_response")["job_id"]
            job = hook.request("GET", f"/partner/jobs/{job_id}", params={"wait": 10}).json()
            attempts[t.task_id] = [a["status"] for a in job["attempts"]]
        assert attempts == {
            "wait_for_partner": [202],  # accepted: verified, validated, durably stored
            "duplicate_delivery": [202, 200],  # the replay is answered "duplicate" and changes nothing
            "partner_failure": [202],
            "forged_callback": [401],  # bad signature: nothing stored
        }, attempts
        duplicate = ti.xcom_pull(task_ids="duplicate_delivery")
        assert duplicate["result"] == {"rows": 7}, duplicate
        return {"attempts": attempts, "processed": processed}

    [*waits, processed] >> verify(processed)


if __name__ == "__main__":
    dag.test()
