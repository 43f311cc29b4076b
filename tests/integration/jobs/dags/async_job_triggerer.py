"""The DAG of the real-triggerer tests: one AsyncJobOperator whose sandbox job runs until the test ends it.

The test sets ``JOB_TEST_TAG`` (it groups the sandbox's counters) in the environment of the ``dag.test()``
process; the triggerer never parses this file, it reads the serialized DAG from the database.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_integrations.operators.async_job import AsyncJobOperator
from tests.integration.jobs.shared import JOB_API

RESULTS = 12

with DAG(
    dag_id="async_job_triggerer",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["test"],
    default_args={"retries": 0},
) as dag:
    run_job = AsyncJobOperator(
        task_id="run_job",
        integration_http_conn_id="jobs_sandbox",
        job_api=JOB_API,
        json={"hold": True, "results": RESULTS, "tag": os.environ.get("JOB_TEST_TAG", "")},
        poll_interval=0.3,
        deferrable=True,
    )

    @task
    def check(results: list[dict[str, Any]], **context: Any) -> None:
        summary = context["ti"].xcom_pull(task_ids="run_job", key="job")
        assert [r["n"] for r in results] == list(range(RESULTS)), results
        assert summary["result_items"] == RESULTS and summary["state"] == "succeeded", summary

    check(run_job.output)  # type: ignore[arg-type]  # an XComArg resolves to the list at run time
