"""
# Anti-pattern: synchronous blocking calls

A worker slot is the scarcest thing in an Airflow deployment: `[core] parallelism`, pool slots and
each worker's concurrency cap how many tasks *run* at once. A task that waits on a partner, in a slow
HTTP call or in a sensor that sleeps between polls, holds its slot for the whole wait while doing
nothing. This DAG measures that waste next to the alternatives: every task records how long it held
a worker slot and how long the wait took, and `compare` prints both and checks the difference.

## Long-running HTTP calls

`long_call_blocking` calls an endpoint that answers after 2 s (a report built while the client waits):
the slot is held for the whole response time. Partners with long operations usually offer an async API
instead (submit, then poll a status URL): submit from a task, wait with a deferrable sensor (see
`108_05_02`, `108_05_04`).

## Worker slot waste

`wait_poke` is an `ApiPollSensor` in `mode="poke"`: between its polls it *sleeps on the worker*, so a
3 s wait costs 3 s of slot time. `wait_deferrable` waits for the same thing with `deferrable=True`: the
worker builds the trigger and is released, the wait runs in the triggerer, and the worker comes back only
to hand the result to XCom. Both poll the same endpoint the same number of times; the measurements show
how long each held a worker slot. (`dag.test()` runs the trigger inline in the same process, so the wall
time is alike; a deployment runs it in the triggerer, which holds thousands of such waits on one event
loop.) The timing comes from `SlotMeter`, a few lines of instrumentation for this demo that add up the
time spent in `execute()` and `execute_complete()` across the deferral in the task's
`task_state_store` (Airflow 3.3).

## Scalability issues

`compare` projects the measurements onto 100 such waits at once with 32 worker slots: in poke mode they
need 100 slots for the whole wait, so they queue in waves and starve every other task; deferred, their
worker time is a fraction of a second each.

## Deferrable alternatives

Prefer, in this order: a deferrable sensor or operator (`deferrable=True`, or `[operators]
default_deferrable = True` for the whole deployment); `mode="reschedule"` for waits of minutes between
polls when no trigger exists (the slot is freed between polls, but every poll is a new task try); poke
mode only for waits of seconds.

## Async patterns

When a task must make several slow calls itself, make them concurrently. `sequential_calls` makes 8
calls of 0.4 s one after the other (3.2 s of slot time); `concurrent_calls` is an `async def` task
(Airflow 3.3 runs it on an event loop in the worker) that sends the same 8 calls at once with
`asyncio.gather` over the hook's one shared session: the slot is held for about one call's time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, Context, task

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.sensors.http import ApiPollSensor

API = "sandbox_api"
POLLS, INTERVAL = 7, 0.5  # the partner is "done" on the 7th poll: a wait of about 3 s
CALLS, CALL_SECONDS = 8, 0.4
DONE = {"jmespath": "status", "equals": "done"}


# [START howto_measure_worker_slot_time]
class SlotMeter:
    """Demo instrumentation: adds up the time each worker phase of the task held its slot.

    The deferrable sensor runs on a worker twice (``execute`` until it defers, ``execute_complete``
    after the trigger fired), possibly on two machines: the running total lives in the task
    instance's ``task_state_store``, which survives the deferral.
    """

    def execute(self, context: Context) -> Any:
        return self._metered(context, super().execute, context)

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        return self._metered(context, super().execute_complete, context, event)

    def _metered(self, context: Context, call: Callable[..., Any], *args: Any) -> Any:
        store, t0 = context["task_state_store"], time.time()
        if store.get("started") is None:
            store.set("started", t0)
        try:
            result = call(*args)
        finally:
            worker = float(store.get("worker_seconds") or 0.0) + time.time() - t0
            phases = int(store.get("phases") or 0) + 1
            store.set("worker_seconds", worker)
            store.set("phases", phases)
        wall = time.time() - float(store.get("started"))
        context["ti"].xcom_push("slot", {"worker_s": worker, "wall_s": wall, "phases": phases})
        return result


class MeteredPollSensor(SlotMeter, ApiPollSensor):
    pass


# [END howto_measure_worker_slot_time]


def timed(call: Callable[[], Any]) -> dict[str, float]:
    """Slot time of a plain task: it holds the slot from start to end, so worker time is wall time."""
    t0 = time.perf_counter()
    call()
    seconds = time.perf_counter() - t0
    return {"worker_s": seconds, "wall_s": seconds, "phases": 1}


with DAG(
    dag_id="108_06_04_sync_blocking",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "anti-pattern", "intermediate", "failure"],
    doc_md=__doc__,
) as dag:

    @task
    def long_call_blocking() -> dict[str, float]:
        hook = IntegrationHttpHook(API)
        return timed(lambda: hook.request("GET", "/delay", params={"seconds": 2.0}))

    # [START howto_poke_vs_deferrable]
    wait_poke = MeteredPollSensor(
        task_id="wait_poke",
        integration_http_conn_id=API,
        endpoint="/poll-after",
        query={"key": "{{ run_id }}:poke", "polls": POLLS},
        success_condition=DONE,
        response_filter="result",
        mode="poke",  # anti-pattern for long waits: sleeps on the worker between polls
        deferrable=False,
        poke_interval=INTERVAL,
        timeout=60,
    )
    wait_deferrable = MeteredPollSensor(
        task_id="wait_deferrable",
        integration_http_conn_id=API,
        endpoint="/poll-after",
        query={"key": "{{ run_id }}:deferrable", "polls": POLLS},
        success_condition=DONE,
        response_filter="result",
        deferrable=True,  # the wait runs in the triggerer; the worker slot is free
        poke_interval=INTERVAL,
        timeout=60,
    )
    # [END howto_poke_vs_deferrable]

    # [START howto_concurrent_calls]
    @task
    def sequential_calls() -> dict[str, float]:
        hook = IntegrationHttpHook(API)

        def calls() -> None:
            for _ in range(CALLS):
                hook.request("GET", "/delay", params={"seconds": CALL_SECONDS})

        return timed(calls)

    @task
    async def concurrent_calls() -> dict[str, float]:
        hook = IntegrationHttpHook(API)
        t0 = time.perf_counter()
        async with hook.client() as api:  # one session, one connection pool for all calls
            answers = await asyncio.gather(
                *(api.request("GET", "/delay", params={"seconds": CALL_SECONDS}) for _ in range(CALLS))
            )
        seconds = time.perf_counter() - t0
        assert [a.json()["slept"] for a in answers] == [CALL_SECONDS] * CALLS
        return {"worker_s": seconds, "wall_s": seconds, "phases": 1}

    # [END howto_concurrent_calls]

    @task
    def compare(
        long_call: dict[str, float],
        sequential: dict[str, float],
        concurrent: dict[str, float],
        **context: Any,
    ) -> dict[str, Any]:
        ti = context["ti"]
        poke = ti.xcom_pull(task_ids="wait_poke", key="slot")
        deferred = ti.xcom_pull(task_ids="wait_deferrable", key="slot")
        outputs = [ti.xcom_pull(task_ids=t) for t in ("wait_poke", "wait_deferrable")]
        assert outputs == [{"polls": POLLS}, {"polls": POLLS}], "both waited for the same 7 polls"

        rows = [
            ("long_call_blocking", "one 2 s response", long_call),
            ("wait_poke", f"{POLLS} polls, sleeps on the slot", poke),
            ("wait_deferrable", f"{POLLS} polls in the triggerer", deferred),
            ("sequential_calls", f"{CALLS} x {CALL_SECONDS} s, one by one", sequential),
            ("concurrent_calls", f"{CALLS} x {CALL_SECONDS} s, asyncio.gather", concurrent),
        ]
        print(f"{'task':<20} {'how it waits':<32} {'wall s':>7} {'slot s':>7} {'slot held':>10}")
        for name, how, m in rows:
            share = m["worker_s"] / m["wall_s"]
            print(f"{name:<20} {how:<32} {m['wall_s']:>7.2f} {m['worker_s']:>7.2f} {share:>10.0%}")

        # Scalability: 100 such waits at once, 32 worker slots.
        waits, slots = 100, 32
        poke_waves = -(-waits // slots)
        print(
            f"100 waits on 32 slots: poke needs {waits} slots for {poke['wall_s']:.1f} s each, so "
            f"{poke_waves} waves, >= {poke_waves * poke['wall_s']:.1f} s with every slot busy; deferred: "
            f"{waits * deferred['worker_s']:.1f} slot-seconds in total, the waits run side by side"
        )

        assert poke["worker_s"] >= 0.9 * poke["wall_s"], "poke mode holds the slot for the whole wait"
        assert poke["worker_s"] >= (POLLS - 1) * INTERVAL * 0.9, poke
        assert deferred["phases"] == 2, "execute until the deferral, execute_complete after the trigger"
        assert deferred["wall_s"] >= (POLLS - 1) * INTERVAL * 0.9, "the same wait..."
        assert deferred["worker_s"] < 0.2 * deferred["wall_s"], "...with the slot free for most of it"
        assert deferred["worker_s"] < poke["worker_s"] / 5, (deferred, poke)
        assert long_call["worker_s"] >= 2.0, "a blocking call holds the slot for its whole response time"
        assert concurrent["wall_s"] < sequential["wall_s"] / 2, (concurrent, sequential)
        assert sequential["worker_s"] >= CALLS * CALL_SECONDS
        return {name: m for name, _, m in rows}

    long_call = long_call_blocking()
    sequential = sequential_calls()
    concurrent = concurrent_calls()
    long_call >> wait_poke >> wait_deferrable >> sequential >> concurrent
    compare(long_call, sequential, concurrent)


if __name__ == "__main__":
    dag.test()
