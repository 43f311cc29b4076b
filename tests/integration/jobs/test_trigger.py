"""JobStatusTrigger against the sandbox's jobs API: outcomes, Retry-After, deadline, wait timeout, on_kill."""

from __future__ import annotations

import asyncio
import importlib
import time
from typing import Any

import pytest

from airflow_provider_integrations.http.jobs import JobApi, JobEvent
from airflow_provider_integrations.sandbox.process import SandboxProcess
from airflow_provider_integrations.triggers.job_status import JobStatusTrigger
from tests.integration.jobs.shared import JOB_API, fetch, job_stats


def submit(sandbox: SandboxProcess, tag: str, **body: Any) -> str:
    return str(fetch(f"{sandbox.url}/jobs", {"tag": tag, **body})["id"])


def trigger(conn_id: str, job_id: str, **kw: Any) -> JobStatusTrigger:
    return JobStatusTrigger(conn_id=conn_id, job_id=job_id, job_api=JOB_API, **{"poll_interval": 0.1, **kw})


async def first_event(t: JobStatusTrigger) -> JobEvent:
    """Drive ``run()`` the way the triggerer does, to the first event."""
    async for event in t.run():
        payload: JobEvent = event.payload
        return payload
    raise AssertionError("the trigger ended without an event")


def polls(sandbox: SandboxProcess, tag: str) -> int:
    return int(job_stats(sandbox.url, tag)["jobs"][0]["polls"])


def test_serialize_round_trip() -> None:
    t = JobStatusTrigger(
        conn_id="c",
        job_id="j-1",
        job_api=JOB_API,
        poll_interval=5,
        backoff_factor=1.5,
        max_poll_interval=60,
        timeout_at=1_900_000_000.0,
        deadline=1_900_000_600.0,
        max_consecutive_errors=4,
        max_document_bytes=1000,
    )
    classpath, kwargs = t.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert cls is JobStatusTrigger
    assert cls(**kwargs).serialize() == (classpath, kwargs)
    assert kwargs["job_api"] == JOB_API.to_spec() and "password" not in str(kwargs)


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        JobStatusTrigger(conn_id="c", job_id="j", job_api=JOB_API, poll_interval=0)
    with pytest.raises(ValueError, match="job_id must be a non-empty string"):
        JobStatusTrigger(conn_id="c", job_id="", job_api=JOB_API)
    with pytest.raises(ValueError, match=r"job_api\.status_endpoint"):
        JobStatusTrigger(
            conn_id="c", job_id="j", job_api={"submit_endpoint": "/jobs", "status_endpoint": "/x"}
        )


@pytest.mark.parametrize(("outcome", "status"), [("succeeded", "success"), ("failed", "failure")])
async def test_terminal_outcomes(
    job_conn: str, sandbox: SandboxProcess, tag: str, outcome: str, status: str
) -> None:
    job = submit(sandbox, tag, queued=0.1, duration=0.2, outcome=outcome)
    event = await first_event(trigger(job_conn, job))
    assert (event["status"], event["state"], event["job_id"], event["http_status"]) == (
        status,
        outcome,
        job,
        200,
    )
    assert event["document"]["id"] == job and event["url"].endswith(f"/jobs/{job}")
    assert 3 <= event["polls"] == polls(sandbox, tag) <= 6, "one request per poll, every 0.1 s for 0.3 s"


async def test_a_job_cancelled_at_the_partner(job_conn: str, sandbox: SandboxProcess, tag: str) -> None:
    job = submit(sandbox, tag, hold=True)
    fetch(f"{sandbox.url}/jobs/{job}/cancel", {})
    event = await first_event(trigger(job_conn, job))
    assert (event["status"], event["state"], event["polls"]) == ("cancelled", "cancelled", 1)


async def test_retry_after_is_honoured(job_conn: str, sandbox: SandboxProcess, tag: str) -> None:
    job = submit(sandbox, tag, duration=1.5, retry_after=1)
    event = await first_event(trigger(job_conn, job, poll_interval=0.05))
    assert event["status"] == "success"
    # Every 0.05 s would be ~30 polls; Retry-After: 1 makes it one per second.
    assert 2 <= polls(sandbox, tag) <= 3
    assert 1.4 <= event["elapsed"] < 3.5


async def test_transient_errors_are_waited_out_or_bounded(
    job_conn: str, sandbox: SandboxProcess, tag: str
) -> None:
    faults = [[1, 503, None], [2, 429, None]]
    job = submit(sandbox, tag, duration=0.0, faults=faults)
    assert (await first_event(trigger(job_conn, job, max_consecutive_errors=3)))["status"] == "success"
    other = submit(sandbox, f"{tag}-b", duration=0.0, faults=faults)
    event = await first_event(trigger(job_conn, other, max_consecutive_errors=2))
    assert (event["status"], event["fatal"], event["http_status"], event["error_type"]) == (
        "error",
        False,
        429,
        "RateLimitedError",
    )


async def test_unknown_job_is_a_fatal_error(job_conn: str, sandbox: SandboxProcess) -> None:
    event = await first_event(trigger(job_conn, "no-such-job"))
    assert (event["status"], event["fatal"], event["http_status"], event["polls"]) == ("error", True, 404, 1)


async def test_missing_connection_is_a_fatal_error() -> None:
    event = await first_event(trigger("jobs_no_such_connection", "j"))
    assert (event["status"], event["fatal"], event["error_type"]) == (
        "error",
        True,
        "AirflowNotFoundException",
    )


async def test_wait_timeout_leaves_the_job_running(job_conn: str, sandbox: SandboxProcess, tag: str) -> None:
    job = submit(sandbox, tag, hold=True)
    event = await first_event(trigger(job_conn, job, timeout_at=time.time() + 0.4))
    assert (event["status"], event["state"], event["cancel"]) == ("timeout", "running", "")
    assert "keeps running" in event["reason"]
    stats = job_stats(sandbox.url, tag)
    assert (stats["cancels"], stats["jobs"][0]["state"]) == (0, "running")


async def test_deadline_cancels_the_job_then_reports(
    job_conn: str, sandbox: SandboxProcess, tag: str
) -> None:
    job = submit(sandbox, tag, hold=True)
    event = await first_event(trigger(job_conn, job, deadline=time.time() + 0.4, timeout_at=time.time() + 60))
    assert (event["status"], event["cancel"], event["state"]) == ("deadline", "sent", "running")
    assert 0.35 <= event["elapsed"] < 2
    stats = job_stats(sandbox.url, tag)
    assert (stats["cancels"], stats["jobs"][0]["state"]) == (1, "cancelled")


async def test_deadline_without_a_cancel_endpoint(job_conn: str, sandbox: SandboxProcess, tag: str) -> None:
    api = JobApi(submit_endpoint="/jobs", status_endpoint="/jobs/{job_id}")
    job = submit(sandbox, tag, hold=True)
    t = JobStatusTrigger(conn_id=job_conn, job_id=job, job_api=api, poll_interval=0.1, deadline=time.time())
    event = await first_event(t)
    assert (event["status"], event["cancel"], event["polls"]) == ("deadline", "not_supported", 1)
    assert job_stats(sandbox.url, tag)["cancels"] == 0


async def test_on_kill_cancels_the_remote_job(job_conn: str, sandbox: SandboxProcess, tag: str) -> None:
    job = submit(sandbox, tag, hold=True)
    t = trigger(job_conn, job)
    running = asyncio.create_task(first_event(t))
    done, _ = await asyncio.wait({running}, timeout=0.5)
    assert not done and polls(sandbox, tag) >= 2, "a held job keeps the trigger polling"
    running.cancel()  # what the triggerer does first when a user marks the task failed
    with pytest.raises(asyncio.CancelledError):
        await running
    await t.on_kill()
    stats = job_stats(sandbox.url, tag)
    assert (stats["cancels"], stats["jobs"][0]["state"]) == (1, "cancelled")
    await t.on_kill()  # a second kill finds the job ended: a 409, logged, never raised
    assert job_stats(sandbox.url, tag)["cancels"] == 2


async def test_on_kill_with_a_broken_connection_does_not_raise(capsys: pytest.CaptureFixture[str]) -> None:
    await trigger("jobs_no_such_connection", "j").on_kill()
    assert (
        "cancelling job j failed: The conn_id `jobs_no_such_connection` isn't defined"
        in capsys.readouterr().out
    )
