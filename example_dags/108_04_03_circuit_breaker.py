"""
# Circuit breaker pattern

Retries help with blips; they hurt during an outage. When a partner is down, every caller that keeps
retrying adds load exactly when the partner is trying to recover, and every task burns its worker slot
waiting for timeouts. A **circuit breaker** stops calling a partner that keeps failing, fails fast
instead, and lets a single probe test whether it has recovered.

Each `integration_http` connection has one breaker per process, configured in its extras:
`circuit_failure_threshold` (0 disables it) and `circuit_reset_timeout` (seconds). `sandbox_breaker`
uses 3 failures and 1 s, with a single attempt per call so each failure counts once.

```
closed --(threshold consecutive failures)--> open --(reset timeout)--> half_open
   ^                                          ^                            |
   |                                          +------(probe fails)---------+
   +-------------------------(probe succeeds)----------------------------+
```

## Failure threshold

5xx responses, timeouts and transport errors count as failures; 4xx answers do not (the partner is up,
the request is wrong). Failures must be *consecutive*: one success resets the count
(`breaker_lifecycle`, steps 1-2).

## Open circuit behavior

While open, calls raise `CircuitOpenError` at once, without touching the network; its `retry_after`
says when the next probe is allowed. `breaker_lifecycle` checks that the partner's own request counter
does not move while the circuit is open. `shed_load_while_open` processes a batch during an outage:
after 3 failures the remaining records are set aside for a later run instead of hammering the partner.

## Half-open testing

After `circuit_reset_timeout` the breaker lets exactly **one** request through. Concurrent callers keep
failing fast while that probe is in flight (step 5 sends three requests at once: one probe, two
rejections).

## Reset logic

A failed probe re-opens the circuit for another full reset timeout; a successful probe closes it and
resets the failure count. `CircuitOpenError` is retriable but the connection never retries it itself;
for Airflow it is an ordinary retriable error, so choose `retry_delay >= circuit_reset_timeout`
(or use a `retry_policy` honouring `retry_after`, see `108_04_01`).

## Monitoring circuit state

`breaker_states()` returns a snapshot per connection: `state`, `consecutive_failures`, `times_opened`,
`rejected_calls`, `retry_in`. Breakers live in the process that makes the calls: the triggerer (where
thousands of deferred tasks share one breaker per connection) or one task's worker process. Publish
the snapshots from there (logs, XCom, metrics); `monitor_circuit` reads the timeline the other tasks
published and raises the alert a dashboard would show.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.errors import CircuitOpenError, HttpError, ServerError
from airflow_provider_integrations.http.sessions import breaker_states

CONN_ID = "sandbox_breaker"


def fault_key(purpose: str) -> str:
    return f"{get_current_context()['run_id']}:{purpose}"


def requests_seen(key: str) -> int:
    stats = IntegrationHttpHook("sandbox_api").request("GET", "/stats", params={"key": key}).json()
    return int(stats["key"]["requests"])


# [START howto_circuit_snapshot]
def snapshot(step: str) -> dict[str, Any]:
    state = breaker_states()[CONN_ID]
    return {"step": step, **{k: state[k] for k in ("state", "consecutive_failures", "times_opened")}}


# [END howto_circuit_snapshot]

with DAG(
    dag_id="108_04_03_circuit_breaker",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "patterns", "advanced", "success"],
    doc_md=__doc__,
    default_args={"retries": 0},
) as dag:
    # [START howto_circuit_lifecycle]
    @task
    def breaker_lifecycle() -> list[dict[str, Any]]:
        hook = IntegrationHttpHook(CONN_ID)
        settings = hook.get_config().breaker
        assert (settings.failure_threshold, settings.reset_timeout) == (3, 1.0)
        outage = fault_key("outage")
        timeline = []

        def fail_once() -> None:
            try:
                hook.request("GET", "/status/503", params={"key": outage})
            except ServerError:
                return
            raise AssertionError("the partner was supposed to be down")

        # 1. Closed: calls go through.
        hook.request("GET", "/health")
        timeline.append(snapshot("1 healthy call"))

        # 2. Two failures, then a success: the count resets, the circuit stays closed.
        fail_once()
        fail_once()
        timeline.append(snapshot("2 two failures"))
        hook.request("GET", "/health")
        timeline.append(snapshot("2 success resets the count"))

        # 3. Three consecutive failures reach the threshold.
        for _ in range(3):
            fail_once()
        timeline.append(snapshot("3 threshold reached"))

        # 4. Open: fail fast, nothing reaches the partner.
        reached = requests_seen(outage)
        t0 = time.monotonic()
        try:
            hook.request("GET", "/status/503", params={"key": outage})
        except CircuitOpenError as exc:
            assert time.monotonic() - t0 < 0.5 and 0 < (exc.retry_after or 0) <= settings.reset_timeout
            wait = exc.retry_after or settings.reset_timeout
        else:
            raise AssertionError("an open circuit must not send requests")
        assert requests_seen(outage) == reached, "an open circuit must not reach the partner"
        timeline.append(snapshot("4 rejected while open"))

        # 5. Half-open: one probe at a time. It fails, so the circuit re-opens.
        time.sleep(wait)
        timeline.append(snapshot("5 reset timeout elapsed"))
        fail_once()
        timeline.append(snapshot("5 probe failed"))

        # 6. Half-open again: three concurrent callers, one probe; it succeeds and closes the circuit.
        time.sleep(settings.reset_timeout)
        outcomes = asyncio.run(concurrent_calls(hook, 3))
        assert sorted(outcomes) == ["CircuitOpenError", "CircuitOpenError", "ok"], outcomes
        timeline.append(snapshot("6 probe succeeded"))
        return timeline

    async def concurrent_calls(hook: IntegrationHttpHook, n: int) -> list[str]:
        async def one() -> str:
            try:
                await hook.arequest("GET", "/delay", params={"seconds": 0.2})
            except HttpError as exc:
                return type(exc).__name__
            return "ok"

        return list(await asyncio.gather(*(one() for _ in range(n))))

    # [END howto_circuit_lifecycle]

    # [START howto_circuit_shed_load]
    @task
    def shed_load_while_open() -> dict[str, Any]:
        hook = IntegrationHttpHook(CONN_ID)
        outage = fault_key("batch-outage")
        records = [{"id": n} for n in range(1, 9)]
        failed, deferred = [], []
        for record in records:
            try:
                hook.request(
                    "POST",
                    "/flaky",
                    params={"key": outage, "fail": 100},
                    json=record,
                    idempotency_key=f"record-{record['id']}",
                )
            except CircuitOpenError:
                deferred.append(record["id"])  # picked up by the next run instead
            except ServerError:
                failed.append(record["id"])
        sent = requests_seen(outage)
        assert (sent, failed, deferred) == (3, [1, 2, 3], [4, 5, 6, 7, 8]), (sent, failed, deferred)
        return {"sent": sent, "failed": failed, "deferred": deferred, "breaker": snapshot("batch done")}

    # [END howto_circuit_shed_load]

    # [START howto_circuit_monitor]
    @task
    def monitor_circuit(timeline: list[dict[str, Any]], batch: dict[str, Any]) -> dict[str, Any]:
        states = [(s["step"], s["state"], s["consecutive_failures"]) for s in timeline]
        assert states == [
            ("1 healthy call", "closed", 0),
            ("2 two failures", "closed", 2),
            ("2 success resets the count", "closed", 0),
            ("3 threshold reached", "open", 3),
            ("4 rejected while open", "open", 3),
            ("5 reset timeout elapsed", "half_open", 3),
            ("5 probe failed", "open", 4),
            ("6 probe succeeded", "closed", 0),
        ], states
        assert timeline[-1]["times_opened"] - timeline[0]["times_opened"] == 2
        assert batch["breaker"]["state"] == "open"

        alerts = [f"{CONN_ID}: circuit open, {len(batch['deferred'])} records deferred to the next run"]
        return {"alerts": alerts, "last_state": batch["breaker"]["state"]}

    # [END howto_circuit_monitor]

    lifecycle = breaker_lifecycle()
    batch = shed_load_while_open()
    lifecycle >> batch
    monitor_circuit(lifecycle, batch)


if __name__ == "__main__":
    dag.test()
