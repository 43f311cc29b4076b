"""
# Timeout handling

A slow partner must never hold a worker slot forever. Timeouts are layered, from the narrowest to the
widest, and each layer should fire before the next one so the code closest to the problem handles it:

| layer | set with | bounds | raises |
|-------|----------|--------|--------|
| connect | extra `connect_timeout` | TCP (and TLS) handshake | `RequestTimeout`, `sent=False` |
| read | extra `read_timeout` | silence while reading the response | `RequestTimeout` |
| total | extra `total_timeout`, call `timeout=`, operator `timeout=` | one attempt | `RequestTimeout` |
| retries | `retry_max_attempts`, `retry_budget_seconds` | all attempts of one call | the last error |
| task | `execution_timeout` | one task try, whatever it does | `AirflowTaskTimeout` |

Keep `execution_timeout` above `attempts x total_timeout + retry budget`, so a slow partner surfaces as
a typed `RequestTimeout` your task can handle; `execution_timeout` is the backstop for everything else
(a hung library call, a loop that never ends).

## execution_timeout parameter

`execution_timeout_backstop` calls an endpoint that answers after 5 s with per-call timeouts that are
too lax (10 s), so Airflow's `execution_timeout=1.5 s` ends the try with `AirflowTaskTimeout`. Airflow
then calls the operator's `on_kill()` and the `on_failure_callback`, and retries if `retries` allows.

## Connection timeouts

`connect_timeout` covers the TCP handshake (and TLS on https). `connect_timeouts` uses `broken_firewall`,
a port behind a firewall that silently drops packets: the handshake never completes, so each attempt ends
after 0.3 s. Nothing reached the server (`sent=False`), so even a `POST` is retried safely. A port that
*rejects* connections (`broken_port`) fails at once with "connection refused" instead.

## Read timeouts

`read_timeout` bounds the silence while waiting for response bytes: a server that accepts the request and
then thinks for too long, or stalls in the middle of the body. `read_timeouts` hits both on `sandbox_slow`
(`read_timeout: 0.5`), then lifts the limit for one known-slow call with
`timeout=Timeouts(connect=..., read=..., total=...)`, and finally shows graceful degradation: catch the
typed `RequestTimeout` and fall back to the last known value instead of failing the run.

## Graceful termination

When `execution_timeout` fires, the worker's main thread receives `AirflowTaskTimeout` wherever it is.
`execution_timeout_backstop` drives the hook's async API on a loop the task owns (`asyncio.run`): the
exception stops that loop, `asyncio.run` cancels the in-flight request, the task's `except
asyncio.CancelledError` block runs its cleanup and `async with hook.client()` closes the connection pool.
The task checks all of this before it lets `AirflowTaskTimeout` propagate.

## Timeout alerts

Both failing tasks carry `on_failure_callback=timeout_alert`, which tells an Airflow-level timeout
(`AirflowTaskTimeout`) from a partner-level one (`RequestTimeout`) and records an alert (a pager or
chat webhook in a deployment). `verify_timeouts` runs last with `trigger_rule=all_done` and checks both
alerts, so that a green `dag.test()` proves the callbacks fired. For whole-run deadlines see Airflow's
DAG-level `deadline=DeadlineAlert(...)`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, Context, TriggerRule, task
from airflow.sdk.exceptions import AirflowTaskTimeout

from airflow_provider_integrations.connections.http_config import Timeouts
from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.errors import RequestTimeout, TransportError
from airflow_provider_integrations.http.sessions import open_clients


# [START howto_timeout_alert_callback]
def timeout_alert(context: Context) -> None:
    """Classify the timeout and raise the alert (kept as an XCom here instead of paging someone)."""
    exc = context["exception"]
    if isinstance(exc, AirflowTaskTimeout):
        kind = "execution_timeout"
    elif isinstance(exc, RequestTimeout):
        kind = f"partner {exc.args[0]}"
    else:
        kind = "other failure"
    alert = {"task_id": context["ti"].task_id, "kind": kind, "error": type(exc).__name__}
    context["ti"].xcom_push(key="timeout_alert", value=alert)


# [END howto_timeout_alert_callback]

with DAG(
    dag_id="108_04_02_timeout_handling",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "patterns", "intermediate", "success"],
    doc_md=__doc__,
    default_args={"retries": 0, "execution_timeout": timedelta(seconds=30)},
) as dag:
    # [START howto_timeout_connect]
    @task
    def connect_timeouts() -> dict[str, Any]:
        t0 = time.monotonic()
        try:
            IntegrationHttpHook("broken_firewall").request("POST", "/orders", json={"sku": "A-1"})
        except RequestTimeout as exc:
            dropped = time.monotonic() - t0
            assert exc.args[0] == "connect timeout" and exc.sent is False, exc
        else:
            raise AssertionError("a dropped handshake must time out")
        # Two attempts of 0.3 s each: a request that was never sent may be repeated, even a POST.
        assert 0.55 < dropped < 2.0, dropped

        t0 = time.monotonic()
        try:
            IntegrationHttpHook("broken_port").request("GET", "/health")
        except TransportError as exc:
            refused = time.monotonic() - t0
            assert not isinstance(exc, RequestTimeout) and exc.sent is False, exc
        assert refused < 1.0, refused

        ok, message = IntegrationHttpHook("broken_firewall").test_connection()
        assert not ok and "timed out" in message, message
        return {"dropped_s": round(dropped, 2), "refused_s": round(refused, 2), "diagnosis": message}

    # [END howto_timeout_connect]

    # [START howto_timeout_read]
    @task
    def read_timeouts() -> dict[str, Any]:
        hook = IntegrationHttpHook("sandbox_slow")
        assert hook.get_config().timeouts.read == 0.5

        t0 = time.monotonic()
        try:
            hook.request("GET", "/delay", params={"seconds": 1})
        except RequestTimeout as exc:
            assert exc.args[0] == "read timeout", exc
        else:
            raise AssertionError("a 1 s pause must exceed the 0.5 s read timeout")
        assert time.monotonic() - t0 < 2.0

        # A known-slow report endpoint: lift the limits for this one call only.
        slow = hook.request(
            "GET", "/delay", params={"seconds": 0.7}, timeout=Timeouts(connect=1, read=2, total=3)
        )
        assert slow.json() == {"slept": 0.7}

        # Graceful degradation: a typed timeout is an answer too.
        last_known = {"rate": 1.08, "stale": True}
        try:
            rate = hook.request("GET", "/delay", params={"seconds": 1}).json()
        except RequestTimeout:
            rate = last_known
        assert rate is last_known
        return {"override": slow.json(), "fallback": rate}

    # [END howto_timeout_read]

    # [START howto_timeout_partner_alert]
    @task(on_failure_callback=timeout_alert)
    def partner_stalls_mid_body() -> None:
        # Headers arrive at once, then the body stops for 1 s: a read timeout in the middle of the body.
        IntegrationHttpHook("sandbox_slow").request("GET", "/slow-body", params={"seconds": 1})

    # [END howto_timeout_partner_alert]

    # [START howto_timeout_execution_timeout]
    @task(execution_timeout=timedelta(seconds=1.5), on_failure_callback=timeout_alert)
    def execution_timeout_backstop(**context: Any) -> None:
        observed: dict[str, Any] = {}

        async def call_partner() -> None:
            observed["loop"] = asyncio.get_running_loop()
            hook = IntegrationHttpHook("sandbox_api")
            async with hook.client() as api:
                observed["session"] = api.session
                try:
                    await api.request(
                        "GET", "/delay", params={"seconds": 5}, timeout=Timeouts(connect=1, read=10, total=10)
                    )
                except asyncio.CancelledError:
                    observed["cancelled"] = True  # roll back partial work here
                    raise

        t0 = time.monotonic()
        try:
            asyncio.run(call_partner())
        except AirflowTaskTimeout:
            termination = {
                "after_s": round(time.monotonic() - t0, 2),
                "request_cancelled": observed.get("cancelled", False),
                "session_closed": observed["session"].closed,
                "clients_left_open": open_clients(observed["loop"]),
            }
            context["ti"].xcom_push(key="termination", value=termination)
            raise
        raise AssertionError("execution_timeout did not fire")

    # [END howto_timeout_execution_timeout]

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def verify_timeouts(**context: Any) -> dict[str, Any]:
        ti = context["ti"]
        failing = ["partner_stalls_mid_body", "execution_timeout_backstop"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=failing)[ti.run_id]
        assert states == dict.fromkeys(failing, "failed"), states

        alerts = {t: ti.xcom_pull(task_ids=t, key="timeout_alert") for t in failing}
        assert alerts["partner_stalls_mid_body"]["kind"] == "partner read timeout", alerts
        assert alerts["execution_timeout_backstop"]["kind"] == "execution_timeout", alerts

        termination = ti.xcom_pull(task_ids="execution_timeout_backstop", key="termination")
        assert termination["request_cancelled"] and termination["session_closed"], termination
        assert termination["clients_left_open"] == 0, termination
        assert 1.4 < termination["after_s"] < 3.0, "the backstop fired at 1.5 s, not after the 5 s reply"
        return {"alerts": alerts, "termination": termination}

    connect = connect_timeouts()
    read = read_timeouts()
    connect >> read >> [partner_stalls_mid_body(), execution_timeout_backstop()] >> verify_timeouts()


if __name__ == "__main__":
    dag.test()
