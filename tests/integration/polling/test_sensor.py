"""ApiPollSensor: poke mode against the sandbox, event mapping, deferral, and dag.test() end to end."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_integrations.http.conditions import ConditionError
from airflow_provider_integrations.http.polling import event
from airflow_provider_integrations.sensors.http import ApiPollSensor
from airflow_provider_integrations.triggers.http_poll import ApiPollTrigger
from tests.integration.polling.conftest import DONE, FAILED

Job = Callable[..., str]
Count = Callable[[str], int]
CONTEXT: Any = {}


def sensor(conn_id: str, endpoint: str, **kw: Any) -> ApiPollSensor:
    kw.setdefault("deferrable", False)
    kw.setdefault("poke_interval", 0.1)
    kw.setdefault("timeout", 10)
    return ApiPollSensor(
        task_id=f"s{uuid.uuid4().hex[:6]}", integration_http_conn_id=conn_id, endpoint=endpoint, **kw
    )


def test_conditions_are_validated_at_parse_time() -> None:
    with pytest.raises(ConditionError, match=r"^success_condition\.equls: unknown operator"):
        sensor("c", "/x", success_condition={"jmespath": "status", "equls": "done"})
    with pytest.raises(ValueError, match="tight loop"):
        sensor("c", "/x", poke_interval=0)


def test_poke_mode_returns_the_filtered_document(poll_conn: str, status_job: Job, polls_of: Count) -> None:
    s = sensor(poll_conn, "", success_condition=DONE, failure_condition=FAILED, response_filter="result")
    s.endpoint = job = status_job([["running", 0.6], ["done", None]], result={"rows": 7})
    t0 = time.monotonic()
    assert s.execute(CONTEXT) == {"rows": 7}
    # One request per poke, every 0.1 s (the first poke also resolves the connection).
    assert 3 <= polls_of(job) <= (time.monotonic() - t0) / 0.1 + 1


def test_poke_mode_failure_condition_fails_without_retries(poll_conn: str, status_job: Job) -> None:
    job = status_job([["cancelled", None]])
    with pytest.raises(AirflowFailException, match=r"failure condition met: status in .*found \"cancelled\""):
        sensor(poll_conn, job, success_condition=DONE, failure_condition=FAILED).execute(CONTEXT)


def test_poke_mode_403_fails_at_once(poll_conn: str, requests_for: Count) -> None:
    key = uuid.uuid4().hex
    with pytest.raises(AirflowFailException, match=r"HTTP 403 Forbidden \(GET http://.*/status/403"):
        sensor(poll_conn, "/status/403", query={"key": key}).execute(CONTEXT)
    assert requests_for(key) == 1


def test_poke_mode_timeout_and_soft_fail(poll_conn: str, status_job: Job) -> None:
    job = status_job([["running", 60], ["done", None]])
    with pytest.raises(AirflowSensorTimeout):
        sensor(poll_conn, job, success_condition=DONE, timeout=0.3).execute(CONTEXT)
    with pytest.raises(AirflowSkipException):
        sensor(poll_conn, job, success_condition=DONE, timeout=0.3, soft_fail=True).execute(CONTEXT)


def test_poke_mode_waits_retry_after_and_bounds_transient_errors(
    poll_conn: str, status_job: Job, requests_for: Count
) -> None:
    job = status_job([["done", None]], faults=[[1, 429, 1]])
    t0 = time.monotonic()
    assert (
        sensor(poll_conn, job, success_condition=DONE, poke_interval=0.05).execute(CONTEXT)["status"]
        == "done"
    )
    assert time.monotonic() - t0 >= 0.95
    key = uuid.uuid4().hex
    with pytest.raises(AirflowException, match="3 transient errors in a row") as info:
        sensor(poll_conn, "/status/503", query={"key": key}, max_consecutive_errors=3).execute(CONTEXT)
    assert not isinstance(info.value, AirflowFailException), "Airflow's retries still apply"
    assert requests_for(key) == 3


def test_deferrable_mode_defers_with_a_deadline() -> None:
    s = sensor("c", "/jobs/1", deferrable=True, success_condition=DONE, timeout=60, max_wait=30)
    with pytest.raises(TaskDeferred) as info:
        s.execute(CONTEXT)
    trigger = info.value.trigger
    assert isinstance(trigger, ApiPollTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["success_condition"] == DONE and kwargs["max_poll_interval"] == 30
    assert time.time() + 55 < kwargs["deadline"] <= time.time() + 60
    assert info.value.method_name == "execute_complete"


@pytest.mark.parametrize(
    ("payload", "outcome"),
    [
        (event("success", "u", document={"a": 1}), {"a": 1}),
        (event("failure", "u", reason="status in ['failed'] (found \"failed\")"), AirflowFailException),
        (event("timeout", "u", reason="no terminal answer"), AirflowSensorTimeout),
        (
            event("error", "u", http_status=401, error_type="AuthenticationError", fatal=True),
            AirflowFailException,
        ),
        (event("error", "u", http_status=503, error_type="ServerError", fatal=False), AirflowException),
        (event("success", "u", truncated=True, document_bytes=10**6), AirflowFailException),
        (None, AirflowException),
    ],
)
def test_events_map_to_task_outcomes(payload: Any, outcome: Any) -> None:
    s = sensor("c", "/x", deferrable=True)
    if isinstance(outcome, type) and issubclass(outcome, Exception):
        with pytest.raises(outcome) as info:
            s.execute_complete(CONTEXT, payload)
        if outcome is AirflowException:
            assert not isinstance(info.value, AirflowFailException)
    else:
        assert s.execute_complete(CONTEXT, payload) == outcome


def test_soft_fail_skips_a_deferred_timeout() -> None:
    s = sensor("c", "/x", deferrable=True, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        s.resume_execution("execute_complete", {"event": event("timeout", "u", reason="r")}, CONTEXT)


def test_reschedule_mode_recovers_the_poll_number() -> None:
    s = sensor("c", "/x", mode="reschedule", poke_interval=1, backoff_factor=2.0, max_wait=3, timeout=100)
    # 3.5 s waited = polls 1 and 2 (1 s, 2 s) done: the third interval, 4 s, is capped by max_wait.
    assert s._get_next_poke_interval(None, lambda: 3.5, 1) == 3.0


DAG_FILE = """
from datetime import datetime, timezone

from airflow.sdk import DAG, task

from airflow_provider_integrations.sensors.http import ApiPollSensor

with DAG("{dag_id}", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):
    wait = ApiPollSensor(
        task_id="wait",
        integration_http_conn_id="{conn_id}",
        endpoint="/poll-after",
        query={{"key": "{key}", "polls": 3}},
        success_condition={{"jmespath": "status", "equals": "done"}},
        failure_condition={{"jmespath": "status", "in": ["failed", "cancelled"]}},
        response_filter="result",
        poke_interval=0.2,
        timeout=30,
        deferrable=True,
    )

    @task
    def check(document):
        assert document == {{"polls": 3}}, document

    check(wait.output)
"""


@pytest.mark.slow
def test_deferrable_sensor_through_dag_test(
    airflow_db: Path, tmp_path: Path, poll_conn: str, requests_for: Count
) -> None:
    """dag.test() runs the trigger inline (first event) and resumes the sensor with it.

    dag.test() reads DAGs from the DAGs folder, so the DAG is a file run by the example runner's
    ``run_one`` in a child process (the connection reaches it as ``AIRFLOW_CONN_*``).
    """
    from tests.examples.conftest import RUNNER

    key = uuid.uuid4().hex
    dags = tmp_path / "dags"
    dags.mkdir()
    path = dags / "poll_sensor_dag_test.py"
    path.write_text(DAG_FILE.format(dag_id=path.stem, conn_id=poll_conn, key=key))
    result = RUNNER.run_one(path, {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)})
    assert result.status == "success", f"{result.note}\n{result.output[-3000:]}"
    assert result.note == "2 tasks", "the sensor and the task that checked its XCom both succeeded"
    assert requests_for(key) == 3, "done on the third poll, then no more requests"
