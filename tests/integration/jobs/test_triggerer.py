"""AsyncJobOperator with a real ``airflow triggerer`` process: restart safety and ``on_kill``.

``dag.test()`` runs in a child process with inline triggers turned off, so the deferred task waits for
the separate triggerer exactly as it would under a scheduler; all processes share one SQLite database.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests._airflow_processes import STARTUP, wait_until
from tests._drive_dag import REPORT_MARKER
from tests.integration.jobs.conftest import JobProcesses
from tests.integration.jobs.mark_failed import MARKER as MARK_FAILED_MARKER
from tests.integration.jobs.shared import fetch, job_stats

pytestmark = pytest.mark.slow

DAG_FILE = "async_job_triggerer.py"
DAG_ID, TASK_ID = "async_job_triggerer", "run_job"


def polled_job(sandbox: SandboxProcess, tag: str, more_than: int = 0) -> dict[str, Any] | None:
    """The tag's only job once its status was polled more than ``more_than`` times."""
    jobs = job_stats(sandbox.url, tag)["jobs"]
    return jobs[0] if len(jobs) == 1 and jobs[0]["polls"] > more_than else None


def test_killed_triggerer_is_replaced_and_the_task_completes_with_one_submission(
    airflow_processes: JobProcesses, sandbox: SandboxProcess, tag: str
) -> None:
    started = time.monotonic()
    run = airflow_processes.dag_test(DAG_FILE, JOB_TEST_TAG=tag)
    first = airflow_processes.triggerer("triggerer-1")
    job = wait_until(lambda: polled_job(sandbox, tag), STARTUP, "the first triggerer to poll the job")

    first.kill()  # kill -9 while the task is deferred: no cleanup, no on_kill
    polls_before = job_stats(sandbox.url, tag)["jobs"][0]["polls"]
    airflow_processes.triggerer("triggerer-2")
    wait_until(
        lambda: polled_job(sandbox, tag, more_than=polls_before), STARTUP, "the second triggerer to poll"
    )
    fetch(f"{sandbox.url}/jobs/{job['id']}/finish", {"outcome": "succeeded"})

    assert run.wait(timeout=STARTUP) == 0, run.tail()
    report = run.report(REPORT_MARKER)
    # "check" asserts the 12 results and the summary the operator pushed to XCom.
    assert report == {"state": "success", "tasks": {"run_job": "success", "check": "success"}}, run.tail()
    stats = job_stats(sandbox.url, tag)
    assert (stats["submit_requests"], stats["submissions"], stats["cancels"]) == (1, 1, 0), stats
    assert stats["jobs"][0]["state"] == "succeeded"
    print(f"restart scenario: {time.monotonic() - started:.1f} s, {stats['jobs'][0]['polls']} polls")


def test_marking_the_deferred_task_failed_cancels_the_remote_job(
    airflow_processes: JobProcesses, sandbox: SandboxProcess, tag: str
) -> None:
    started = time.monotonic()
    run = airflow_processes.dag_test(DAG_FILE, JOB_TEST_TAG=tag)
    airflow_processes.triggerer("triggerer")
    job = wait_until(lambda: polled_job(sandbox, tag), STARTUP, "the triggerer to poll the job")
    assert job["state"] == "running" and job["cancels"] == 0

    patch = airflow_processes.mark_failed(DAG_ID, TASK_ID)
    assert patch.wait(timeout=STARTUP) == 0, patch.tail()
    answer = patch.report(MARK_FAILED_MARKER)
    assert answer["status"] == 200 and answer["body"]["task_instances"][0]["state"] == "failed", answer

    cancelled = wait_until(
        lambda: job_stats(sandbox.url, tag)["cancels"] == 1, STARTUP, "the trigger's on_kill to cancel"
    )
    assert cancelled
    assert run.wait(timeout=STARTUP) == 0, run.tail()
    assert run.report(REPORT_MARKER) == {
        "state": "failed",
        "tasks": {"run_job": "failed", "check": "upstream_failed"},
    }, run.tail()
    stats = job_stats(sandbox.url, tag)
    assert (stats["submissions"], stats["cancels"]) == (1, 1), stats
    assert stats["jobs"][0]["state"] == "cancelled", stats
    print(f"mark-failed scenario: {time.monotonic() - started:.1f} s")
