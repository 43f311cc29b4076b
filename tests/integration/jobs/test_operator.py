"""AsyncJobOperator against the sandbox: submit once, reconnect on retry, results, and task outcomes.

``execute()`` is called directly with a small context: a task instance that records XCom pushes and an
in-memory ``task_state_store`` with the accessor's ``get``/``set``. ``dag.test()`` and a real triggerer
run the same operator in ``test_triggerer.py`` and in the example DAG.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_integrations.http.jobs import JobApiError, job_event
from airflow_provider_integrations.operators.async_job import AsyncJobOperator
from airflow_provider_integrations.operators.http import idempotency_key_for
from airflow_provider_integrations.sandbox.process import SandboxProcess
from airflow_provider_integrations.triggers.job_status import JobStatusTrigger
from tests.integration.jobs.shared import JOB_API, fetch, job_stats


class FakeTI:
    dag_id, task_id, map_index = "d", "t", -1

    def __init__(self) -> None:
        self.run_id = f"manual__{uuid.uuid4().hex[:8]}"
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


class Store:
    """``TaskStateStoreAccessor``'s get/set over a dict."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        assert value is not None
        self.data[key] = value


def context(store: Store | None = None) -> Any:
    ctx: dict[str, Any] = {"ti": FakeTI()}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


def op(conn_id: str, tag: str, *, body: dict[str, Any] | None = None, **kw: Any) -> AsyncJobOperator:
    return AsyncJobOperator(
        task_id=f"t{uuid.uuid4().hex[:6]}",
        integration_http_conn_id=conn_id,
        job_api=JOB_API,
        json={"tag": tag, **(body or {"hold": True})},
        poll_interval=0.1,
        **{"deferrable": True, **kw},
    )


def deferred(operator: AsyncJobOperator, ctx: Any) -> JobStatusTrigger:
    with pytest.raises(TaskDeferred) as info:
        operator.execute(ctx)
    trigger = info.value.trigger
    assert isinstance(trigger, JobStatusTrigger) and info.value.method_name == "execute_complete"
    return trigger


def test_submit_persists_the_job_and_defers(job_conn: str, sandbox: SandboxProcess, tag: str) -> None:
    store = Store()
    ctx = context(store)
    operator = op(job_conn, tag, wait_timeout=60, job_deadline=600)
    with pytest.raises(TaskDeferred) as info:
        operator.execute(ctx)
    trigger = info.value.trigger
    assert isinstance(trigger, JobStatusTrigger)
    [job] = job_stats(sandbox.url, tag)["jobs"]
    assert trigger.job_id == job["id"] and trigger.conn_id == job_conn
    assert trigger.timeout_at is not None and 55 < trigger.timeout_at - time.time() <= 60
    record = store.data["async_job"]
    assert record["job_id"] == job["id"] and (record["generation"], record["done"]) == (0, False)
    assert trigger.deadline == record["deadline"] and 590 < record["deadline"] - time.time() <= 600
    assert info.value.timeout is not None and 170 < info.value.timeout.total_seconds() <= 180, "wait + grace"


def test_a_retry_reconnects_instead_of_submitting(job_conn: str, sandbox: SandboxProcess, tag: str) -> None:
    store = Store()
    ctx = context(store)
    first = deferred(op(job_conn, tag, job_deadline=600), ctx)
    deadline = store.data["async_job"]["deadline"]
    again = deferred(op(job_conn, tag, job_deadline=600), ctx)
    assert again.job_id == first.job_id
    assert again.deadline == deadline, "the job's deadline runs from its submission, not from the retry"
    stats = job_stats(sandbox.url, tag)
    assert (stats["submit_requests"], stats["submissions"]) == (1, 1)


def test_a_worker_lost_between_submit_and_persist_gets_the_same_job(
    job_conn: str, sandbox: SandboxProcess, tag: str
) -> None:
    """The gap ResumableJobMixin documents: the key derived from the task instance closes it."""
    store = Store()
    ctx = context(store)
    first = deferred(op(job_conn, tag), ctx)
    store.data.clear()  # the persist never happened
    again = deferred(op(job_conn, tag), ctx)
    assert again.job_id == first.job_id
    stats = job_stats(sandbox.url, tag)
    assert (stats["submit_requests"], stats["submissions"]) == (2, 1)


def test_without_a_task_state_store_the_key_alone_protects(
    job_conn: str, sandbox: SandboxProcess, tag: str
) -> None:
    ctx = context(None)
    assert deferred(op(job_conn, tag), ctx).job_id == deferred(op(job_conn, tag), ctx).job_id
    assert job_stats(sandbox.url, tag)["submissions"] == 1
    no_key = context(None)
    deferred(op(job_conn, tag, idempotency_key=None), no_key)
    deferred(op(job_conn, tag, idempotency_key=None), no_key)
    assert job_stats(sandbox.url, tag)["submissions"] == 3, "idempotency_key=None: every try submits"


def test_a_failed_job_is_replaced_under_the_next_generation_key(
    job_conn: str, sandbox: SandboxProcess, tag: str
) -> None:
    store = Store()
    ctx = context(store)
    failed = deferred(op(job_conn, tag), ctx)
    fetch(f"{sandbox.url}/jobs/{failed.job_id}/finish", {"outcome": "failed"})
    gen0 = dict(store.data["async_job"])
    fresh = deferred(op(job_conn, tag), ctx)
    assert fresh.job_id != failed.job_id and store.data["async_job"]["generation"] == 1
    store.data["async_job"] = gen0  # the resubmit's persist was lost: the same generation-1 key again
    assert deferred(op(job_conn, tag), ctx).job_id == fresh.job_id
    stats = job_stats(sandbox.url, tag)
    assert (stats["submit_requests"], stats["submissions"]) == (3, 2)


def test_a_job_that_already_succeeded_is_read_not_rerun_and_a_clear_submits_anew(
    job_conn: str, sandbox: SandboxProcess, tag: str
) -> None:
    store = Store()
    ctx = context(store)
    first = deferred(op(job_conn, tag, body={"duration": 0, "results": 4}), ctx)
    output = op(job_conn, tag, body={"duration": 0, "results": 4}).execute(ctx)  # the retry
    assert [r["n"] for r in output] == [0, 1, 2, 3]
    assert ctx["ti"].xcom["job"] == {
        "job_id": first.job_id,
        "state": "succeeded",
        "polls": 1,
        "result_items": 4,
        "result_pages": 1,
    }
    assert store.data["async_job"]["done"] is True
    cleared = deferred(op(job_conn, tag, body={"duration": 0, "results": 4}), ctx)
    assert cleared.job_id != first.job_id, "a clear after success runs the job again"
    assert job_stats(sandbox.url, tag)["submissions"] == 2


def test_worker_side_wait_returns_results_page_by_page(
    job_conn: str, sandbox: SandboxProcess, tag: str
) -> None:
    ctx = context(Store())
    operator = op(job_conn, tag, body={"duration": 0.3, "results": 25}, deferrable=False)
    output = operator.execute(ctx)
    assert [r["n"] for r in output] == list(range(25))
    summary = ctx["ti"].xcom["job"]
    assert (summary["state"], summary["result_items"], summary["result_pages"]) == ("succeeded", 25, 3)
    assert 2 <= summary["polls"] == job_stats(sandbox.url, tag)["jobs"][0]["polls"] <= 6


def test_results_above_the_bound_fail_the_task(job_conn: str, sandbox: SandboxProcess, tag: str) -> None:
    operator = op(job_conn, tag, body={"duration": 0, "results": 25}, deferrable=False, max_results=12)
    with pytest.raises(AirflowFailException, match="more than max_results=12 result items"):
        operator.execute(context(Store()))


def test_worker_side_deadline_cancels_and_fails_without_retries(
    job_conn: str, sandbox: SandboxProcess, tag: str
) -> None:
    operator = op(job_conn, tag, deferrable=False, job_deadline=0.4)
    with pytest.raises(AirflowFailException, match=r"deadline passed .*\(cancel: sent\)"):
        operator.execute(context(Store()))
    stats = job_stats(sandbox.url, tag)
    assert (stats["cancels"], stats["jobs"][0]["state"]) == (1, "cancelled")


def test_killing_a_worker_side_wait_cancels_the_job(job_conn: str, sandbox: SandboxProcess, tag: str) -> None:
    operator = op(job_conn, tag, deferrable=False)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            operator.execute(context(Store()))
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=0.6)
    assert worker.is_alive(), "a held job keeps the worker waiting"
    operator.on_kill()  # what the task runner calls on SIGTERM (a user marked the task failed)
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert isinstance(raised[0], AirflowFailException) and "cancelled at the partner" in str(raised[0])
    assert job_stats(sandbox.url, tag)["cancels"] == 1


@pytest.mark.parametrize(
    ("status", "fields", "error", "fragment"),
    [
        (
            "failure",
            {"reason": "the partner reports state 'failed'"},
            AirflowException,
            "failed: the partner",
        ),
        ("cancelled", {}, AirflowFailException, "was cancelled at the partner"),
        ("deadline", {"cancel": "sent"}, AirflowFailException, "j1"),
        ("timeout", {}, AirflowException, "a retry reconnects to it"),
        ("error", {"fatal": True, "http_status": 401}, AirflowFailException, "HTTP 401"),
        ("error", {"fatal": False, "polls": 3}, AirflowException, "transient errors persisted"),
    ],
)
def test_events_map_to_task_outcomes(
    status: Any, fields: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    operator = AsyncJobOperator(task_id="t", job_api=JOB_API)
    with pytest.raises(error, match=fragment) as info:
        operator.execute_complete(context(), job_event(status, "j1", "https://api/jobs/j1", **fields))
    # A failed job is retried (the retry submits anew); a cancelled one or a blown deadline is final.
    assert isinstance(info.value, AirflowFailException) == (error is AirflowFailException)
    with pytest.raises(AirflowException, match="without an event"):
        operator.execute_complete(context(), None)


def test_bad_arguments_fail_at_dag_parse_time() -> None:
    with pytest.raises(JobApiError, match=r"job_api\.state_path"):
        AsyncJobOperator(task_id="t", job_api={**JOB_API.to_spec(), "state_path": ""})
    with pytest.raises(ValueError, match="wait_timeout must be > 0"):
        AsyncJobOperator(task_id="t", job_api=JOB_API, wait_timeout=0)


def test_generation_keys_derive_from_the_task_instance() -> None:
    operator = AsyncJobOperator(task_id="t", job_api=JOB_API)
    ctx = context()
    base = idempotency_key_for(ctx)
    assert (operator._key(ctx, 0), operator._key(ctx, 2)) == (base, f"{base}-2")
    explicit = AsyncJobOperator(task_id="t", job_api=JOB_API, idempotency_key="order-7")
    assert explicit._key(ctx, 1) == "order-7-1"
