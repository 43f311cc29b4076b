"""ApiPollTrigger against the sandbox: outcomes, waits, errors, and one shared session for 1,000 triggers."""

from __future__ import annotations

import asyncio
import importlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_integrations.hooks.http import CONFIGS
from airflow_provider_integrations.http import sessions
from airflow_provider_integrations.http.conditions import ConditionError
from airflow_provider_integrations.sandbox.process import SandboxProcess
from airflow_provider_integrations.triggers.http_poll import ApiPollTrigger
from tests.conftest import ConnFactory
from tests.integration.polling.conftest import DONE, FAILED, fetch, first_event

Job = Callable[..., str]
Count = Callable[[str], int]


def test_serialize_round_trip() -> None:
    trigger = ApiPollTrigger(
        conn_id="c",
        endpoint="/status-jobs/1",
        method="get",
        params={"verbose": "1"},
        headers={"Accept": "application/json"},
        success_condition=DONE,
        failure_condition={"any": [FAILED, {"jmespath": "error"}]},
        pending_statuses=[404, 403, 404],
        response_filter="result",
        poll_interval=5,
        backoff_factor=1.5,
        max_poll_interval=60,
        deadline=1_900_000_000.0,
        max_consecutive_errors=10,
        max_document_bytes=1000,
    )
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert cls is ApiPollTrigger
    assert cls(**kwargs).serialize() == (classpath, kwargs)
    assert kwargs["method"] == "GET" and kwargs["pending_statuses"] == [403, 404]


def test_bad_conditions_fail_at_construction() -> None:
    with pytest.raises(ConditionError, match=r"failure_condition\.in"):
        ApiPollTrigger(conn_id="c", failure_condition={"jmespath": "status", "in": "failed"})
    with pytest.raises(ValueError, match="poll_interval"):
        ApiPollTrigger(conn_id="c", poll_interval=0)


async def test_success_after_transitions(poll_conn: str, status_job: Job, polls_of: Count) -> None:
    job = status_job([["queued", 0.2], ["running", 0.2], ["done", None]], result={"rows": 42})
    trigger = ApiPollTrigger(
        conn_id=poll_conn,
        endpoint=job,
        success_condition=DONE,
        failure_condition=FAILED,
        response_filter="result",
        poll_interval=0.1,
    )
    event = await first_event(trigger)
    assert (event["status"], event["document"], event["http_status"]) == ("success", {"rows": 42}, 200)
    assert 4 <= event["polls"] == polls_of(job) <= 7, "one request per poll"
    assert 0.35 <= event["elapsed"] < 2
    assert event["url"].endswith(job)


async def test_failure_condition_ends_with_the_partners_document(poll_conn: str, status_job: Job) -> None:
    job = status_job([["running", 0.1], ["failed", None]], result={"error": "quota exceeded"})
    trigger = ApiPollTrigger(
        conn_id=poll_conn, endpoint=job, success_condition=DONE, failure_condition=FAILED, poll_interval=0.1
    )
    event = await first_event(trigger)
    assert event["status"] == "failure"
    assert event["document"]["result"] == {"error": "quota exceeded"}
    assert event["reason"] == "status in ['failed', 'cancelled'] (found \"failed\")"


async def test_deadline_polls_once_more_then_times_out(poll_conn: str, status_job: Job) -> None:
    job = status_job([["running", 60], ["done", None]])
    trigger = ApiPollTrigger(
        conn_id=poll_conn, endpoint=job, success_condition=DONE, poll_interval=0.2, deadline=time.time() + 0.5
    )
    event = await first_event(trigger)
    assert event["status"] == "timeout" and "before the deadline" in event["reason"]
    assert event["polls"] == 4, "t=0, 0.2, 0.4 and a last poll at the deadline"
    assert 0.45 <= event["elapsed"] < 1.5


async def test_5xx_burst_is_retried_at_the_interval(poll_conn: str, status_job: Job, polls_of: Count) -> None:
    job = status_job([["done", None]], faults=[[1, 503, None], [2, 502, None], [3, 500, None]])
    trigger = ApiPollTrigger(conn_id=poll_conn, endpoint=job, success_condition=DONE, poll_interval=0.1)
    event = await first_event(trigger)
    assert (event["status"], event["polls"]) == ("success", 4)
    assert polls_of(job) == 4, "a 5xx is one request per poll, not the client's retry loop on top"
    assert event["elapsed"] >= 0.3


async def test_429_retry_after_is_honoured(poll_conn: str, status_job: Job) -> None:
    job = status_job([["done", None]], faults=[[1, 429, 1]])
    trigger = ApiPollTrigger(conn_id=poll_conn, endpoint=job, success_condition=DONE, poll_interval=0.05)
    event = await first_event(trigger)
    assert (event["status"], event["polls"]) == ("success", 2)
    assert event["elapsed"] >= 0.95, "waited Retry-After (1 s), not the 0.05 s interval"


async def test_retry_after_on_a_pending_answer_stretches_the_wait(poll_conn: str, status_job: Job) -> None:
    job = status_job([["running", 0.05], ["done", None]], retry_after=1)
    trigger = ApiPollTrigger(conn_id=poll_conn, endpoint=job, success_condition=DONE, poll_interval=0.05)
    event = await first_event(trigger)
    assert event["status"] == "success" and event["polls"] == 2 and event["elapsed"] >= 0.95


async def test_403_fails_fast_with_status_and_url_and_no_secret(poll_conn: str, requests_for: Count) -> None:
    key = uuid.uuid4().hex
    trigger = ApiPollTrigger(
        conn_id=poll_conn, endpoint="/status/403", params={"key": key, "token": "s3cret"}, poll_interval=0.5
    )
    event = await first_event(trigger)
    assert (event["status"], event["http_status"], event["fatal"]) == ("error", 403, True)
    assert event["error_type"] == "AuthenticationError" and "Forbidden" in event["reason"]
    assert "/status/403" in event["url"] and "token=***" in event["url"] and "s3cret" not in str(event)
    await asyncio.sleep(1.0)  # two poll intervals
    assert requests_for(key) == 1


async def test_403_as_pending_status_waits_the_interval(poll_conn: str, requests_for: Count) -> None:
    """Acceptance: a 403 while polling waits the interval: <= 2 requests in 2 poll intervals."""
    key = uuid.uuid4().hex
    trigger = ApiPollTrigger(
        conn_id=poll_conn,
        endpoint="/status/403",
        params={"key": key},
        pending_statuses=[403],
        poll_interval=0.5,
    )
    task = asyncio.create_task(first_event(trigger))
    await asyncio.sleep(1.0)  # two poll intervals
    seen = requests_for(key)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 1 <= seen <= 2, f"{seen} requests in 2 poll intervals"


async def test_transient_errors_can_be_bounded(poll_conn: str, requests_for: Count) -> None:
    key = uuid.uuid4().hex
    trigger = ApiPollTrigger(
        conn_id=poll_conn,
        endpoint="/status/503",
        params={"key": key},
        poll_interval=0.05,
        max_consecutive_errors=3,
    )
    event = await first_event(trigger)
    assert (event["status"], event["fatal"], event["http_status"], event["polls"]) == ("error", False, 503, 3)
    assert requests_for(key) == 3


async def test_malformed_json_and_missing_connection_are_fatal(poll_conn: str) -> None:
    bad = await first_event(ApiPollTrigger(conn_id=poll_conn, endpoint="/malformed", poll_interval=0.1))
    assert (bad["status"], bad["error_type"], bad["fatal"]) == ("error", "ResponseContractError", True)
    missing = await first_event(ApiPollTrigger(conn_id="no_such_conn_xyz", endpoint="/x", poll_interval=0.1))
    assert (missing["status"], missing["fatal"]) == ("error", True)
    assert "no_such_conn_xyz" in missing["reason"]


async def test_large_documents_are_bounded_in_the_event(poll_conn: str) -> None:
    trigger = ApiPollTrigger(
        conn_id=poll_conn, endpoint="/large", params={"bytes": 200_000}, max_document_bytes=10_000
    )
    event = await first_event(trigger)
    assert event["status"] == "success" and event["truncated"] and event["document"] is None
    assert event["document_bytes"] >= 199_000 and len(event["excerpt"]) <= 1001


async def test_1000_triggers_share_one_session_and_the_pool(
    http_connection: ConnFactory, sandbox: SandboxProcess
) -> None:
    conn_id = http_connection(f"density_{uuid.uuid4().hex[:6]}", sandbox.url, pool_size=20)
    run = uuid.uuid4().hex[:8]
    before = fetch(f"{sandbox.url}/stats")["connections"]
    triggers = [
        ApiPollTrigger(
            conn_id=conn_id,
            endpoint="/poll-after",
            params={"key": f"{run}-{i}", "polls": 3},
            success_condition=DONE,
            poll_interval=0.2,
        )
        for i in range(1000)
    ]
    tasks: list[asyncio.Task[Any]] = []
    for trigger in triggers:  # the triggerer yields to the loop between creations
        tasks.append(asyncio.create_task(first_event(trigger)))
        await asyncio.sleep(0)
    open_during = []
    while not all(t.done() for t in tasks):
        open_during.append(sessions.open_clients())
        await asyncio.sleep(0.05)
    events = [t.result() for t in tasks]
    assert {e["status"] for e in events} == {"success"} and {e["polls"] for e in events} == {3}
    # 0 is possible only before the first lease (the connection lookup is still in flight).
    assert max(open_during) == 1, "every trigger of the connection leases the same session"
    assert sessions.open_clients() == 0, "the last lease closed it"
    opened = fetch(f"{sandbox.url}/stats")["connections"] - before
    assert opened <= 20 + 1, f"{opened} TCP connections for 3,000 polls (pool 20, +1 for /stats)"
    assert CONFIGS.lookups[conn_id] == 1, "one connection lookup for 1,000 triggers"
