"""
# Batch API pattern

Many partners accept work in batches: one request carries hundreds of records and the answer reports
each record separately. This cuts request overhead by orders of magnitude, but turns every call into a
*partial* success: some items are accepted, some must be sent again later, some are rejected for good.
`BatchApiOperator` handles that loop; `send_orders` sends 2,000 orders to the sandbox's batch endpoint.

## Batch request assembly

Items come from an upstream task's output (`items=make_orders()`), a literal list, or a file
(`items_file=`, a JSON array or JSON Lines). They are cut into batches of `batch_size` in input order and
sent as `{"items": [...], **extra_body}` (`items_field` renames the key) with `query` parameters, at most
`concurrency` requests at a time. The connection's client does the rest: `sandbox_batch` allows 50
requests/s in bursts of 5, and a throttled request (429 with `Retry-After`, every 7th here) is repeated
by the connection under the same idempotency key, so the partner never applies it twice.

## Partial success handling

`item_rules` says where the per-item results are (`results`, JMESPath) and what their statuses mean
(`success`, `retriable`; an integer status is read as a per-item HTTP status). Everything else is a
permanent failure. `max_failed` / `max_failed_ratio` is the partial-failure policy: `send_orders`
tolerates 2% failed items; `strict_send` (items from a JSONL file) tolerates none, so it stops starting
new batches as soon as the first rejection arrives and fails with the counts (no Airflow retries: a
rejected record stays rejected).

## Retry failed items

Items answered "retry" are sent again, alone, after an exponential backoff with jitter
(`retry_base_delay`, `retry_max_delay`), up to `max_attempts` per item. A batch waiting for its retry
holds no request slot. Each batch is **acknowledged** once all its items have a final outcome: the
outcomes are appended to a JSONL file and the batch number to a checkpoint, both fsync'd. A retry of the
task (a worker crash, a killed pod) resumes from the checkpoint in the task instance's state directory
and sends no acknowledged batch again; see `tests/integration/batch/test_crash.py` for a SIGKILL
mid-run.

## Progress tracking

Every `progress_interval` seconds the task log shows done/total, items per second, the ETA and the
failed and retried counts; a resumed try starts at the acknowledged count.

## Result aggregation

The task's return value is a summary (succeeded, failed permanently or after all attempts, retried, not
sent, requests, duration, the most frequent failure reasons, file paths); it is also pushed under the
XCom key `summary` before a policy violation fails the task. `aggregate` reads both summaries and the
outcomes file, checks them against the partner's own counters (no item lost, none applied twice), and
shows the efficiency: 2,000 orders in about 40 requests instead of 2,000.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, TriggerRule, get_current_context, task

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.operators.batch import BatchApiOperator

ORDERS = 2000
BATCH_SIZE = 100

with DAG(
    dag_id="108_05_04_batch_api",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "patterns", "intermediate", "success"],
    doc_md=__doc__,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=1)},
) as dag:

    @task
    def make_orders() -> list[dict[str, Any]]:
        return [{"id": f"order-{n}", "sku": f"SKU-{n % 37}", "quantity": 1 + n % 5} for n in range(ORDERS)]

    # [START howto_batch_api_operator]
    send_orders = BatchApiOperator(
        task_id="send_orders",
        integration_http_conn_id="sandbox_batch",
        endpoint="/batch",
        items=make_orders(),
        # The sandbox rejects 1% of the ids for good, answers "retry" once for another 5%, and
        # throttles every 7th request.
        query={
            "key": "{{ run_id }}:orders",
            "permanent": 0.01,
            "transient": 0.05,
            "throttle_every": 7,
            "retry_after": 0,
        },
        extra_body={"source": "airflow", "run": "{{ run_id }}"},
        batch_size=BATCH_SIZE,
        concurrency=4,
        item_rules={"results": "results", "status": "status", "success": ["ok"], "retriable": ["retry"]},
        max_attempts=3,
        retry_base_delay=0.05,
        retry_max_delay=0.5,
        max_failed=None,
        max_failed_ratio=0.02,
        progress_interval=0.2,
    )
    # [END howto_batch_api_operator]

    @task
    def write_items_file() -> str:
        path = Path(tempfile.mkdtemp(prefix="batch-items-")) / "items.jsonl"
        path.write_text(
            "".join(json.dumps({"id": n, "email": f"user{n}@example.com"}) + "\n" for n in range(500))
        )
        return str(path)

    # [START howto_batch_api_strict]
    strict_send = BatchApiOperator(
        task_id="strict_send",
        integration_http_conn_id="sandbox_batch",
        endpoint="/batch",
        items_file=write_items_file(),
        query={"key": "{{ run_id }}:strict", "permanent": 0.02},
        batch_size=50,
        concurrency=1,
        max_failed=0,
    )
    # [END howto_batch_api_strict]

    # [START howto_batch_api_aggregate]
    @task(trigger_rule=TriggerRule.ALL_DONE)
    def aggregate(summary: dict[str, Any]) -> dict[str, Any]:
        ctx = get_current_context()
        ti = ctx["ti"]
        states = ti.get_task_states(
            dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=["send_orders", "strict_send"]
        )[ti.run_id]
        assert states == {"send_orders": "success", "strict_send": "failed"}, states

        hook = IntegrationHttpHook("sandbox_batch")
        partner = hook.request("GET", "/batch/stats", params={"key": f"{ti.run_id}:orders"}).json()
        outcomes = [json.loads(line) for line in Path(summary["outcomes_path"]).read_text().splitlines()]
        by_outcome = Counter(o["outcome"] for o in outcomes)

        # Nothing lost, nothing applied twice, every item with exactly one final outcome.
        assert len({o["id"] for o in outcomes}) == len(outcomes) == ORDERS
        assert partner["distinct_items"] == ORDERS and partner["duplicates"] == 0
        assert by_outcome["succeeded"] == summary["succeeded"] == partner["ok_distinct"]
        assert summary["failed_permanent"] == partner["rejected_distinct"] > 0
        assert summary["failed"] <= ORDERS * 0.02 and not summary["policy_violated"]
        assert summary["retried"] > 0 and partner["throttled"] > 0
        assert all(o["attempts"] == 2 for o in outcomes if o["outcome"] == "succeeded" and o["attempts"] > 1)

        # Efficient: one request per batch plus one retry round per batch with a transient item.
        batches = ORDERS // BATCH_SIZE
        assert batches < summary["requests"] <= 2 * batches, summary["requests"]

        strict = ti.xcom_pull(task_ids="strict_send", key="summary")
        assert strict["policy_violated"] and strict["policy"] == "at most 0 failed items"
        assert strict["failed"] >= 1 and strict["not_sent"] > 0, strict
        return {
            "orders": {k: summary[k] for k in ("succeeded", "failed", "retried", "requests", "items_per_s")},
            "failure_reasons": summary["failure_reasons"],
            "strict": {k: strict[k] for k in ("succeeded", "failed", "not_sent")},
        }

    # [END howto_batch_api_aggregate]

    aggregate(send_orders.output).set_upstream(strict_send)


if __name__ == "__main__":
    dag.test()
