"""HttpRequestOperator against the sandbox: execute() directly for outcomes, dag.test() for templating."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_integrations import bridge
from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http import sessions
from airflow_provider_integrations.http.errors import ServerError
from airflow_provider_integrations.operators.http import HttpRequestOperator, idempotency_key_for
from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests.conftest import ConnFactory


class FakeTI:
    dag_id, task_id, run_id, map_index = "d", "t", "manual__1", -1


CONTEXT: Any = {"ti": FakeTI()}


def op(conn_id: str, **kw: Any) -> HttpRequestOperator:
    return HttpRequestOperator(task_id=f"t{uuid.uuid4().hex[:6]}", integration_http_conn_id=conn_id, **kw)


@pytest.fixture
def api(http_connection: ConnFactory, sandbox: SandboxProcess) -> str:
    return http_connection("op_api", sandbox.url, retry_base_delay=0.01, retry_max_attempts=2)


def test_paginated_items_and_filter(api: str) -> None:
    out = op(
        api,
        endpoint="/pages/cursor",
        query={"limit": 20},
        pagination={"type": "cursor", "cursor_path": "meta.next_cursor", "items_path": "data"},
        response_filter="[].id",
    ).execute(CONTEXT)
    assert out == list(range(1, 96))


def test_post_sends_a_stable_idempotency_key(api: str) -> None:
    first = op(api, endpoint="/echo", method="POST", json={"a": 1}).execute(CONTEXT)
    again = op(api, endpoint="/echo", method="POST", json={"a": 1}).execute(CONTEXT)
    assert first["idempotency_key"] == idempotency_key_for(CONTEXT) == again["idempotency_key"]
    assert again["replayed"] is True, (
        "an Airflow retry of the same task instance is recognised by the partner"
    )
    get = op(api, endpoint="/echo").execute(CONTEXT)
    assert get["idempotency_key"] is None


@pytest.mark.parametrize(
    ("kwargs", "exc", "fragment"),
    [
        ({"endpoint": "/status/404"}, AirflowFailException, "HTTP 404"),
        (
            {
                "endpoint": "/drift",
                "query": {"version": 2},
                "response_schema": {"type": "object", "required": ["name"]},
            },
            AirflowFailException,
            "breaks the contract at $",
        ),
        (
            {"endpoint": "/large", "query": {"bytes": 5000}, "max_xcom_bytes": 1000},
            AirflowFailException,
            "max_xcom_bytes=1000",
        ),
        ({"endpoint": "/status/503"}, AirflowException, "retries of the connection exhausted"),
    ],
)
def test_outcomes_map_to_airflow_exceptions(
    api: str, kwargs: dict[str, Any], exc: type[Exception], fragment: str
) -> None:
    with pytest.raises(exc) as info:
        op(api, **kwargs).execute(CONTEXT)
    assert fragment in str(info.value)
    if exc is AirflowException:
        assert not isinstance(info.value, AirflowFailException), "transient errors keep Airflow's retries"


def test_invalid_connection_fails_without_retries(
    http_connection: ConnFactory, sandbox: SandboxProcess
) -> None:
    conn_id = http_connection("op_bad", sandbox.url, retry_max_attempts=99)
    with pytest.raises(AirflowFailException, match=r"\$\.retry_max_attempts"):
        op(conn_id, endpoint="/health").execute(CONTEXT)


def test_bad_pagination_spec_fails_at_parse_time() -> None:
    with pytest.raises(ValueError, match=r"pagination\.type = 'scroll'"):
        op("x", pagination={"type": "scroll"})


def test_interrupted_sync_call_cancels_the_request_on_the_bridge(api: str) -> None:
    hook = IntegrationHttpHook(api)
    hook.request("GET", "/health")
    with pytest.raises(concurrent.futures.TimeoutError):
        bridge.run_sync(hook.arequest("GET", "/delay", params={"seconds": 3}), timeout=0.3)
    time.sleep(0.1)

    async def pending() -> int:
        return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])

    assert bridge.run_sync(pending()) == 0


def test_connection_test_does_not_hide_the_real_breaker(
    http_connection: ConnFactory, sandbox: SandboxProcess
) -> None:
    conn_id = http_connection("op_breaker", sandbox.url, retry_max_attempts=1, circuit_failure_threshold=2)
    hook = IntegrationHttpHook(conn_id)
    for _ in range(2):
        with pytest.raises(ServerError):
            hook.request("GET", "/status/503")
    assert sessions.breaker_states()[conn_id]["state"] == "open"
    ok, _ = hook.test_connection()
    assert ok, "the probe bypasses the breaker"
    assert sessions.breaker_states()[conn_id]["state"] == "open"


def test_dag_serializes_and_templated_fields_render(api: str) -> None:
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("op_templating", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)) as dag:
        task = HttpRequestOperator(
            task_id="echo",
            integration_http_conn_id=api,
            endpoint="/echo/{{ dag.dag_id }}",
            query={"ds": "{{ ds }}"},
            headers={"X-Run": "{{ run_id }}"},
        )
    # The scheduler serializes every DAG; a bad template_fields entry fails exactly here.
    assert DagSerialization.to_dict(dag)["dag"]["dag_id"] == "op_templating"
    task.render_template_fields({"ds": "2026-03-04", "run_id": "manual__1", "dag": dag, "ti": FakeTI()})
    echoed = task.execute(CONTEXT)
    assert echoed["path"] == "/echo/op_templating"
    assert echoed["query"]["ds"] == "2026-03-04" and echoed["headers"]["X-Run"] == "manual__1"
