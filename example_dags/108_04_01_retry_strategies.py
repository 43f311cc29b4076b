"""
# Retry strategies

Transient failures (a 503 during a deploy, a 429 burst, a dropped connection) should be recovered
without a human. Two retry layers do this, and they compose:

1. **The connection** retries *inside one task try*: a few quick attempts with exponential backoff and
   jitter, for retriable errors only (5xx, 429, timeouts, transport errors), and only when repeating the
   request is safe (idempotent method, or an idempotency key). Set it in the connection's extras:
   `retry_max_attempts`, `retry_base_delay`, `retry_max_delay`, `retry_jitter`, `retry_on_statuses`,
   `retry_respect_retry_after`, `retry_budget_seconds`.
2. **Airflow** retries *the task* for what survives the connection's attempts: a new try, on any worker,
   after `retry_delay`. Fatal errors (401/403, 404, other 4xx, a broken response contract) are raised as
   `AirflowFailException` by `HttpRequestOperator`, so Airflow does not waste its retries on them.

Rule of thumb: seconds-scale waits belong to the connection (cheap, the worker keeps its slot);
minutes-scale waits belong to Airflow (the slot is freed while waiting).

## Airflow retries configuration

`retries` and `retry_delay` come from, in order of precedence: the task argument, the DAG's
`default_args`, then `[core] default_task_retries` / `[core] default_task_retry_delay`. Here
`default_args` gives every task 2 retries, and tasks override it where they need something else.
`[core] max_task_retry_delay` caps every delay globally.

## Exponential backoff

The connection waits `retry_base_delay * 2 ** (attempt - 1)`, capped by `retry_max_delay`, between
attempts (`connection_retries` sees 503, 503, 200 in one call: `Response.attempts == 3`).
A `Retry-After` header from the partner wins over the computed backoff, even above `retry_max_delay`;
only `retry_budget_seconds` (the total waiting one call may do) limits it (`honour_retry_after`).

## `retry_delay` and `retry_exponential_backoff`

`call_until_recovered` fails 7 times in a row at the partner: the connection's 3 attempts per try are
not enough, so the operator raises `AirflowException` and Airflow retries the task. With
`retry_exponential_backoff=2.0` the delay before try *n + 1* is
`retry_delay * 2 ** (n - 1)` plus Airflow's deterministic jitter, so tries 1-2-3 are 3 + 3 + 2 partner
requests and the 8th request succeeds. A fatal 404 (`fatal_error_fails_fast`) is not retried at all,
neither by the connection nor by Airflow, although the task has `retries=3`.

Airflow 3.3 also lets a task decide per exception with `retry_policy`: `RetryAfterPolicy` below fails
fatal errors at once and, when the partner sent `Retry-After` longer than the connection's budget,
retries after exactly that delay instead of the task's 5-minute `retry_delay` (`long_rate_limit`).
`ExceptionRetryPolicy(rules=[RetryRule(...)])` is the declarative variant.

## `max_retry_delay`

Exponential backoff grows without bound; `max_retry_delay` caps one delay (`call_until_recovered`:
1 s, then 2 s instead of 2-3 s). The connection's equivalent is `retry_max_delay`.

## Jitter patterns

If a partner outage fails 500 tasks at once, identical backoff makes them all retry at the same instant
and knock the partner over again. Jitter spreads them out. `jitter_patterns` compares, for 1,000
simulated clients: no jitter (everyone at the same instant), **full jitter** (`uniform(0, backoff)`,
the connection's `retry_jitter: true`), **equal jitter** (`backoff/2 + uniform(0, backoff/2)`) and
**decorrelated jitter** (`uniform(base, 3 * previous)`). Airflow's own task backoff adds a deterministic
jitter derived from the task instance, between 1x and 2x the exponential delay.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, RetryDecision, RetryPolicy, TriggerRule, chain, get_current_context, task

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.errors import FatalError, RetriableError, ServerError
from airflow_provider_integrations.http.retry import backoff_delay
from airflow_provider_integrations.operators.http import HttpRequestOperator


def fault_key(purpose: str) -> str:
    """A sandbox fault counter private to this DAG run (stable across Airflow retries of a task)."""
    return f"{get_current_context()['run_id']}:{purpose}"


def requests_seen(key: str) -> int:
    """How many requests with ``key`` reached the sandbox (its own accounting, not the client's)."""
    stats = IntegrationHttpHook("sandbox_api").request("GET", "/stats", params={"key": key}).json()
    return int(stats["key"]["requests"])


# [START howto_retry_policy]
class RetryAfterPolicy(RetryPolicy):
    """Fail what cannot succeed; retry a rate limit exactly when the partner said it may."""

    def evaluate(
        self, exception: BaseException, try_number: int, max_tries: int, context: Any = None
    ) -> RetryDecision:
        if isinstance(exception, FatalError):
            return RetryDecision.fail(f"{type(exception).__name__} is not retriable")
        if isinstance(exception, RetriableError) and exception.retry_after is not None:
            delay = timedelta(seconds=max(1.0, exception.retry_after))
            return RetryDecision.retry(
                delay=delay, reason=f"partner asked to wait {delay.total_seconds():.0f} s"
            )
        return RetryDecision.default()


# [END howto_retry_policy]

with DAG(
    dag_id="108_04_01_retry_strategies",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "patterns", "intermediate", "success"],
    doc_md=__doc__,
    # [START howto_retry_default_args]
    default_args={"retries": 2, "retry_delay": timedelta(seconds=1)},
    # [END howto_retry_default_args]
) as dag:
    # [START howto_retry_connection_level]
    @task
    def connection_retries() -> dict[str, Any]:
        hook = IntegrationHttpHook("sandbox_api")

        # Two 503s, then 200: absorbed inside one call.
        key = fault_key("blip")
        response = hook.request("GET", "/flaky", params={"key": key, "fail": 2, "status": 503})
        assert response.status == 200 and response.attempts == 3, response.attempts
        assert requests_seen(key) == 3

        # A POST is only repeated when the partner can recognise the repeat (idempotency key).
        bare, keyed = fault_key("post-no-key"), fault_key("post-with-key")
        try:
            hook.request("POST", "/flaky", params={"key": bare, "fail": 1}, json={"order": 42})
        except ServerError as exc:
            assert exc.status == 503
        else:
            raise AssertionError("a POST without idempotency key must not be retried")
        assert requests_seen(bare) == 1
        response = hook.request(
            "POST", "/flaky", params={"key": keyed, "fail": 1}, json={"order": 42}, idempotency_key="order-42"
        )
        assert response.status == 200 and requests_seen(keyed) == 2
        return {"blip_attempts": 3, "post_without_key": 1, "post_with_key": 2}

    # [END howto_retry_connection_level]

    # [START howto_retry_after]
    @task
    def honour_retry_after() -> float:
        policy = IntegrationHttpHook("sandbox_api").get_config().retry
        t0 = time.monotonic()
        response = IntegrationHttpHook("sandbox_api").request(
            "GET", "/flaky", params={"key": fault_key("429"), "fail": 1, "status": 429, "retry_after": 1}
        )
        waited = time.monotonic() - t0
        assert response.status == 200 and response.attempts == 2
        # The partner's 1 s beats the connection's own backoff cap.
        assert policy.max_delay < 1.0 <= waited + 0.05, (policy.max_delay, waited)
        return round(waited, 2)

    # [END howto_retry_after]

    # [START howto_retry_airflow_level]
    call_until_recovered = HttpRequestOperator(
        task_id="call_until_recovered",
        integration_http_conn_id="sandbox_api",
        endpoint="/flaky",
        query={"key": "{{ run_id }}:outage", "fail": 7, "status": 503},
        retries=3,
        retry_delay=timedelta(seconds=1),
        retry_exponential_backoff=2.0,
        max_retry_delay=timedelta(seconds=2),
    )

    fatal_error_fails_fast = HttpRequestOperator(
        task_id="fatal_error_fails_fast",
        integration_http_conn_id="sandbox_api",
        endpoint="/status/404",
        query={"key": "{{ run_id }}:fatal"},
        retries=3,
    )
    # [END howto_retry_airflow_level]

    # [START howto_retry_policy_task]
    @task(retries=2, retry_delay=timedelta(minutes=5), retry_policy=RetryAfterPolicy())
    def long_rate_limit(**context: Any) -> dict[str, Any]:
        # The connection may wait at most 0.2 s in total (retry_budget_seconds), so a 1 s Retry-After
        # surfaces as RateLimitedError and the policy turns it into a 1 s Airflow retry.
        response = IntegrationHttpHook("sandbox_retry_budget").request(
            "GET", "/flaky", params={"key": fault_key("long-429"), "fail": 1, "status": 429, "retry_after": 1}
        )
        ti = context["ti"]
        assert ti.try_number == 2 and response.attempts == 1, (ti.try_number, response.attempts)
        since_start = datetime.now(timezone.utc) - context["dag_run"].start_date
        assert timedelta(seconds=1) <= since_start < timedelta(minutes=5), since_start
        return {"try_number": ti.try_number, "status": response.status}

    # [END howto_retry_policy_task]

    # [START howto_retry_jitter]
    @task
    def jitter_patterns() -> dict[str, Any]:
        policy = IntegrationHttpHook("sandbox_api").get_config().retry
        base, cap, clients, attempt = policy.base_delay, policy.max_delay, 1000, 3
        rng = random.Random(108)

        exponential = [backoff_delay(dataclasses.replace(policy, jitter=False), n) for n in range(1, 7)]
        assert exponential == [min(cap, base * 2**n) for n in range(6)], exponential
        backoff = exponential[attempt - 1]

        def decorrelated(previous: float) -> float:
            return min(cap, rng.uniform(base, previous * 3))

        patterns: dict[str, Callable[[], float]] = {
            "none": lambda: backoff,
            "full": lambda: backoff_delay(policy, attempt, rng.random),
            "equal": lambda: backoff / 2 + rng.uniform(0, backoff / 2),
            "decorrelated": lambda: decorrelated(exponential[attempt - 2]),
        }
        delays = {name: [draw() for _ in range(clients)] for name, draw in patterns.items()}

        assert len(set(delays["none"])) == 1, "without jitter every client retries at the same instant"
        assert policy.jitter and all(0 <= d <= backoff for d in delays["full"])
        assert all(backoff / 2 <= d <= backoff for d in delays["equal"])
        assert all(base <= d <= cap for d in delays["decorrelated"])
        spread = {name: round(statistics.pstdev(values), 4) for name, values in delays.items()}
        assert spread["none"] == 0 < spread["equal"] < spread["full"], spread
        return {"exponential": exponential, "spread": spread}

    # [END howto_retry_jitter]

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def verify(**context: Any) -> dict[str, Any]:
        ti = context["ti"]
        states = ti.get_task_states(
            dag_id=ti.dag_id,
            run_ids=[ti.run_id],
            task_ids=["call_until_recovered", "fatal_error_fails_fast", "long_rate_limit"],
        )[ti.run_id]
        assert states == {
            "call_until_recovered": "success",
            "fatal_error_fails_fast": "failed",
            "long_rate_limit": "success",
        }, states

        # 3 tries x 3 connection attempts, the last one succeeding at the partner's 8th request.
        recovered = ti.xcom_pull(task_ids="call_until_recovered")
        assert recovered == {"ok": True, "attempt": 8}, recovered
        assert requests_seen(f"{ti.run_id}:outage") == 8
        # Both Airflow retry delays (1 s, then 2 s) have passed since the run started.
        assert datetime.now(timezone.utc) - context["dag_run"].start_date >= timedelta(seconds=3)

        # The 404 reached the partner once: no connection retries, no Airflow retries.
        assert requests_seen(f"{ti.run_id}:fatal") == 1
        return states

    chain(
        [connection_retries(), jitter_patterns()],
        honour_retry_after(),
        call_until_recovered,
        long_rate_limit(),
        fatal_error_fails_fast,
        verify(),
    )


if __name__ == "__main__":
    dag.test()
