"""
# Polling pattern

Wait for external state: a report being built, an export, an import that may fail at the partner. The
partner offers a status URL; a sensor asks it at intervals until the answer is terminal.

## Sensor operators

`ApiPollSensor` polls an endpoint of an `integration_http` connection. What "done" and "failed" mean
is **data**, not a Python callable, so the same check runs on a worker or inside the triggerer:

- `success_condition={"jmespath": "status", "equals": "done"}` (also `in`, `not_in`, `gt`/`gte`/`lt`/
  `lte`, `matches`, `exists`, a bare JMESPath expression for truthiness, `{"json_schema": {...}}`, and
  `all` / `any` / `not` to combine); without one, any 2xx answer is success;
- `failure_condition` is checked first and fails the task at once, without retries, with the partner's
  document in the error: polling a failed job until the timeout wastes hours;
- `pending_statuses=[404]` for a resource that does not exist yet; any other 4xx (401, 403, 404...)
  fails at once with the status and the URL, because waiting cannot fix a revoked credential;
- `response_filter` (JMESPath) selects what of the final document goes to XCom.

Conditions are validated when the DAG is parsed: a typo (`"equls"`) is an import error naming the field.

## Poll interval

`poke_interval` is the wait between polls; `backoff_factor` grows it per poll (1.5: 1 s, 1.5 s, 2.25 s...)
up to `max_wait`. After **every** non-terminal answer and **every** error the sensor waits: the interval,
or the partner's `Retry-After` when that is longer. 429, 5xx and network errors count as "not yet" and
are logged; `max_consecutive_errors` bounds them. `wait_export_poke` meets a 503 and a 429 with
`Retry-After: 1` and still makes exactly three requests.

## Timeout configuration

- `timeout`: how long to wait for the external state (from the first poll, across reschedules and
  deferral). Then the sensor fails with `AirflowSensorTimeout`, or is skipped with `soft_fail=True`
  (`give_up_after_timeout`).
- `execution_timeout`: how long one try may *run* on a worker (the same thing in poke mode, much less
  than `timeout` in reschedule mode).
- The connection's own timeouts bound each request.

## Poke vs reschedule

- `mode="poke"` keeps the worker slot (and pool slot) for the whole wait and sleeps in between: fine
  for waits of seconds to a few minutes (`wait_export_poke`).
- `mode="reschedule"` frees the slot between polls and comes back through the scheduler: every poll is a
  new task try, so keep intervals at a minute or more in production (`wait_reconcile_reschedule`).

## Deferrable sensors

With `deferrable=True` (the default when `[operators] default_deferrable = True`) the sensor hands the
wait to `ApiPollTrigger` and frees the worker at once. The triggerer runs thousands of such waits on one
event loop; all triggers of a connection share one HTTP session and connection pool and one connection
lookup (bench/RESULTS.md: 10,000 triggers, 100 TCP connections). The trigger's deadline enforces
`timeout`, so it holds in `dag.test()` too (which runs triggers inline). `wait_report_deferrable`,
`wait_until_created` (404 until the resource exists), `detect_partner_failure` and
`give_up_after_timeout` are deferrable; `verify` checks every outcome and the number of polls.
## Async jobs: submit, poll, fetch

Many partner APIs run work as a *job*: submit it, poll its status, read its results, maybe cancel it.
`AsyncJobOperator` takes the API's shape as data (`JobApi`: submit endpoint, job-id JMESPath, status
endpoint with `{job_id}`, state JMESPath and the success / failure / cancelled state sets, results
endpoint and pagination, cancel endpoint):

- it **submits from `execute()`** on the worker, once, with an idempotency key derived from the task
  instance, then defers to `JobStatusTrigger`, which only reads the status (so a restarted triggerer
  never submits twice) and honours `Retry-After`;
- the job id goes to `task_state_store`, so a **retry reconnects** to the job it already submitted
  instead of starting another (`reconnect_after_retry`: the first try gives up after two 503s; the retry
  takes the job over, waiting for it if it still runs or reading its results if it is done; the partner
  saw one submission);
- `wait_timeout` ends only the *wait* (a retry reconnects), `job_deadline` ends the *job*: it is
  **cancelled at the partner**, then the task fails without retries (`cancel_at_deadline`);
- marking the deferred task failed (or clearing it) cancels the remote job too, through the trigger's
  `on_kill`;
- on success the results are read **page by page**, bounded by `max_results`, and returned to XCom
  with a summary under the key `job` (`run_export_job`). `verify_async_jobs` checks all of it against the
  partner's own counters.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, TriggerRule, task

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.jobs import JobApi
from airflow_provider_integrations.operators.async_job import AsyncJobOperator
from airflow_provider_integrations.sensors.http import ApiPollSensor

DONE = {"jmespath": "status", "equals": "done"}
FAILED = {"jmespath": "status", "in": ["failed", "cancelled"]}

# Timetables of the sandbox's status jobs: [state, seconds in it]; the last state is terminal.
JOBS: dict[str, dict[str, Any]] = {
    "report": {
        "states": [["queued", 1.0], ["running", 1.5], ["done", None]],
        "result": {"rows": 1200, "file": "reports/2025-01.csv"},
    },
    # The 1st poll gets a 503, the 2nd a 429 with Retry-After: 1.
    "export": {
        "states": [["done", None]],
        "result": {"exported": 42},
        "faults": [[1, 503, None], [2, 429, 1]],
    },
    "import": {
        "states": [["running", 0.5], ["failed", None]],
        "result": {"error": "unknown column 'amount'"},
    },
    "stuck": {"states": [["running", 3600], ["done", None]]},
}


# [START howto_job_api]
# The sandbox's jobs API; a real partner's differs only in these fields.
PARTNER_JOBS = JobApi(
    submit_endpoint="/jobs",
    job_id_path="id",
    status_endpoint="/jobs/{job_id}",
    state_path="state",
    success_states=("succeeded",),
    failure_states=("failed",),
    cancelled_states=("cancelled",),
    results_endpoint="/jobs/{job_id}/results",
    results_pagination={"type": "cursor", "cursor_path": "next_cursor", "items_path": "items"},
    cancel_endpoint="/jobs/{job_id}/cancel",
)
# [END howto_job_api]


def job_tag(name: str) -> str:
    """Groups one task's jobs in the sandbox's counters, per DAG run."""
    return "{{ run_id }}:" + name


def job_path(name: str) -> str:
    """The status path the upstream task got for job ``name`` (rendered when the sensor runs)."""
    return "{{ ti.xcom_pull(task_ids='start_partner_jobs')['" + name + "'] }}"


with DAG(
    dag_id="108_05_02_polling_pattern",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "patterns", "intermediate", "success"],
    doc_md=__doc__,
    default_args={"retries": 0, "retry_delay": timedelta(seconds=1)},
) as dag:

    @task
    def start_partner_jobs() -> dict[str, str]:
        """Stand-in for the upstream task that asked the partner to start work."""
        hook = IntegrationHttpHook("sandbox_api")
        return {
            name: hook.request("POST", "/status-jobs", json=body).json()["url"] for name, body in JOBS.items()
        }

    jobs = start_partner_jobs()

    # [START howto_api_poll_sensor_deferrable]
    wait_report_deferrable = ApiPollSensor(
        task_id="wait_report_deferrable",
        integration_http_conn_id="sandbox_api",
        endpoint=job_path("report"),
        success_condition=DONE,
        failure_condition=FAILED,
        response_filter="result",
        poke_interval=0.5,
        timeout=60,
        deferrable=True,
    )
    # [END howto_api_poll_sensor_deferrable]

    wait_until_created = ApiPollSensor(
        task_id="wait_until_created",
        integration_http_conn_id="sandbox_api",
        endpoint="/poll-after",
        query={"key": "{{ run_id }}:created", "polls": 3, "pending_status": 404},
        pending_statuses=[404],  # "not there yet", not an error
        success_condition={"json_schema": {"type": "object", "required": ["result"]}},
        response_filter="result",
        poke_interval=0.3,
        timeout=30,
        deferrable=True,
    )

    # [START howto_api_poll_sensor_poke]
    wait_export_poke = ApiPollSensor(
        task_id="wait_export_poke",
        integration_http_conn_id="sandbox_api",
        endpoint=job_path("export"),
        success_condition=DONE,
        failure_condition=FAILED,
        response_filter="result",
        mode="poke",
        deferrable=False,
        poke_interval=0.2,
        backoff_factor=1.5,
        max_wait=2,
        timeout=30,
    )
    # [END howto_api_poll_sensor_poke]

    # [START howto_api_poll_sensor_reschedule]
    wait_reconcile_reschedule = ApiPollSensor(
        task_id="wait_reconcile_reschedule",
        integration_http_conn_id="sandbox_api",
        endpoint="/poll-after",
        query={"key": "{{ run_id }}:reconcile", "polls": 2},  # "done" on the 2nd poll: one reschedule
        success_condition=DONE,
        failure_condition=FAILED,
        response_filter="result",
        mode="reschedule",
        deferrable=False,
        poke_interval=1,
        timeout=60,
    )
    # [END howto_api_poll_sensor_reschedule]

    detect_partner_failure = ApiPollSensor(
        task_id="detect_partner_failure",
        integration_http_conn_id="sandbox_api",
        endpoint=job_path("import"),
        success_condition=DONE,
        failure_condition=FAILED,
        poke_interval=0.3,
        timeout=60,
        deferrable=True,
    )

    # [START howto_api_poll_sensor_timeout]
    give_up_after_timeout = ApiPollSensor(
        task_id="give_up_after_timeout",
        integration_http_conn_id="sandbox_api",
        endpoint=job_path("stuck"),
        success_condition=DONE,
        poke_interval=0.5,
        timeout=2,
        soft_fail=True,  # skipped instead of failed when the partner never finishes
        deferrable=True,
    )
    # [END howto_api_poll_sensor_timeout]

    sensors = [
        wait_report_deferrable,
        wait_until_created,
        wait_export_poke,
        wait_reconcile_reschedule,
        detect_partner_failure,
        give_up_after_timeout,
    ]

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def verify(paths: dict[str, str], **context: Any) -> dict[str, Any]:
        ti = context["ti"]
        states = ti.get_task_states(
            dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=[s.task_id for s in sensors]
        )
        assert states[ti.run_id] == {
            "wait_report_deferrable": "success",
            "wait_until_created": "success",
            "wait_export_poke": "success",
            "wait_reconcile_reschedule": "success",
            "detect_partner_failure": "failed",  # the partner said "failed": no waiting until the timeout
            "give_up_after_timeout": "skipped",  # soft_fail
        }, states
        outputs = {s.task_id: ti.xcom_pull(task_ids=s.task_id) for s in sensors[:4]}
        assert outputs == {
            "wait_report_deferrable": JOBS["report"]["result"],
            "wait_until_created": {"polls": 3},
            "wait_export_poke": JOBS["export"]["result"],
            "wait_reconcile_reschedule": {"polls": 2},
        }, outputs

        hook = IntegrationHttpHook("sandbox_api")
        polls = {name: hook.request("GET", f"{path}/stats").json()["polls"] for name, path in paths.items()}
        assert polls["export"] == 3, "503, then 429 (waits Retry-After), then done: one request each"
        # A 2.5 s job polled every 0.5 s: a handful of requests, never a tight loop.
        assert 1 <= polls["report"] <= 8, polls
        assert 4 <= polls["stuck"] <= 7, f"2 s timeout at 0.5 s intervals, plus a last poll: {polls}"
        return {"polls": polls, "outputs": outputs}

    # The sensors read the job paths through templates, which create no dependency: state it.
    jobs >> sensors
    sensors >> verify(jobs)

    # -- async jobs ---------------------------------------------------------------------------------

    # [START howto_async_job_operator]
    run_export_job = AsyncJobOperator(
        task_id="run_export_job",
        integration_http_conn_id="sandbox_api",
        job_api=PARTNER_JOBS,
        json={"queued": 0.3, "duration": 1.0, "results": 25, "tag": job_tag("export")},
        poll_interval=0.3,
        wait_timeout=timedelta(minutes=5),  # the wait; the job keeps running and a retry reconnects
        job_deadline=timedelta(hours=1),  # the job; cancelled at the partner when it runs longer
        max_results=1000,
        deferrable=True,
    )
    # [END howto_async_job_operator]

    reconnect_after_retry = AsyncJobOperator(
        task_id="reconnect_after_retry",
        integration_http_conn_id="sandbox_api",
        job_api=PARTNER_JOBS,
        # Polls 1 and 2 answer 503: the first try gives up after two transient errors in a row.
        json={
            "duration": 4.0,
            "results": 3,
            "faults": [[1, 503, None], [2, 503, None]],
            "tag": job_tag("retry"),
        },
        poll_interval=0.3,
        max_consecutive_errors=2,
        retries=1,
        retry_delay=timedelta(seconds=1),
        deferrable=True,
    )

    cancel_at_deadline = AsyncJobOperator(
        task_id="cancel_at_deadline",
        integration_http_conn_id="sandbox_api",
        job_api=PARTNER_JOBS,
        json={"hold": True, "tag": job_tag("deadline")},  # a job that never ends by itself
        poll_interval=0.3,
        job_deadline=1.0,
        deferrable=True,
    )

    async_jobs = [run_export_job, reconnect_after_retry, cancel_at_deadline]

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def verify_async_jobs(**context: Any) -> dict[str, Any]:
        ti = context["ti"]
        states = ti.get_task_states(
            dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=[t.task_id for t in async_jobs]
        )
        assert states[ti.run_id] == {
            "run_export_job": "success",
            "reconnect_after_retry": "success",
            "cancel_at_deadline": "failed",  # cancelled at the partner, no retries
        }, states
        export = ti.xcom_pull(task_ids="run_export_job")
        assert [item["n"] for item in export] == list(range(25)), export
        summary = ti.xcom_pull(task_ids="run_export_job", key="job")
        assert (summary["state"], summary["result_items"], summary["result_pages"]) == ("succeeded", 25, 3)
        assert len(ti.xcom_pull(task_ids="reconnect_after_retry")) == 3

        hook = IntegrationHttpHook("sandbox_api")
        stats = {
            name: hook.request("GET", "/jobs-stats", params={"tag": f"{ti.run_id}:{name}"}).json()
            for name in ("export", "retry", "deadline")
        }
        counts = {name: (s["submit_requests"], s["submissions"]) for name, s in stats.items()}
        # Two tries of reconnect_after_retry, one submit request: the retry found the job in task_state_store.
        assert counts == {"export": (1, 1), "retry": (1, 1), "deadline": (1, 1)}, counts
        deadline_job = stats["deadline"]["jobs"][0]
        assert (deadline_job["state"], stats["deadline"]["cancels"]) == ("cancelled", 1), stats["deadline"]
        return {"submissions": counts, "export_pages": summary["result_pages"]}

    async_jobs >> verify_async_jobs()


if __name__ == "__main__":
    dag.test()
