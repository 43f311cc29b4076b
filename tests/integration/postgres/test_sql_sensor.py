"""SqlConditionTrigger / SqlConditionSensor: conditions as data, real probes, deferral through dag.test()."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_integrations.postgres.pool import open_pools
from airflow_provider_integrations.sensors.sql import SqlConditionSensor
from airflow_provider_integrations.triggers.sql import (
    ConditionError,
    SqlConditionTrigger,
    check_condition,
    jsonable,
    matches,
)
from tests.integration.postgres.conftest import sql


@pytest.mark.parametrize(
    ("condition", "rows", "expected"),
    [
        ({"op": "any_row"}, [], False),
        ({"op": "any_row"}, [(None,)], True),
        ({"op": "no_rows"}, [], True),
        ({"op": ">=", "value": 1}, [(1,)], True),
        ({"op": ">=", "value": 1}, [(0,)], False),
        ({"op": ">=", "value": 1}, [], False),
        ({"op": "==", "value": "done"}, [("done",)], True),
        ({"op": "!=", "value": "done"}, [(None,)], False),
        ({"op": "<", "value": 2.5}, [(Decimal("2.4"),)], True),
        ({"op": "in", "value": ["a", "b"]}, [("b",)], True),
        ({"op": "not_in", "value": ["a", "b"]}, [("c",)], True),
        ({"op": "is_null"}, [(None,)], True),
        ({"op": "not_null"}, [(None,)], False),
        ({"op": ">", "value": "2026-01-01"}, [(dt.date(2026, 1, 2),)], True),
        ({"op": "==", "value": 7, "column": 1}, [("x", 7)], True),
    ],
)
def test_conditions(condition: dict[str, Any], rows: list[tuple[Any, ...]], expected: bool) -> None:
    check_condition(condition, "success")
    assert matches(condition, rows) is expected


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ({"op": "~"}, "expected {'op': one of"),
        ({"op": ">="}, "needs 'value'"),
        ({"op": "any_row", "value": 1}, "takes no 'value'"),
        ({"op": "in", "value": "abc"}, "needs a list 'value'"),
        ({"op": "==", "value": 1, "colum": 1}, r"unknown keys \['colum'\]"),
        ("count > 0", "expected {'op': one of"),
    ],
)
def test_malformed_conditions_fail_at_parse_time(condition: Any, fragment: str) -> None:
    with pytest.raises(ConditionError, match=fragment):
        SqlConditionSensor(task_id="s", sql="SELECT 1", success=condition)


def test_incomparable_value_and_missing_column_are_condition_errors() -> None:
    with pytest.raises(ConditionError, match="cannot apply"):
        matches({"op": ">", "value": 1}, [("text",)])
    with pytest.raises(ConditionError, match="column 3 is not in the query's result"):
        matches({"op": "==", "value": 1, "column": 3}, [(1,)])


def test_values_become_json_safe() -> None:
    assert jsonable(Decimal("3")) == 3 and jsonable(Decimal("2.5")) == 2.5
    assert jsonable(dt.date(2026, 1, 2)) == "2026-01-02" and jsonable(uuid.UUID(int=1)).endswith("01")


def test_trigger_serialize_round_trip() -> None:
    trigger = SqlConditionTrigger(
        postgres_conn_id="pg_test",
        sql="SELECT count(*) FROM t WHERE day = $1",
        parameters=["2026-01-01"],
        success={"op": ">=", "value": 1},
        failure={"op": "<", "value": 0},
        poke_interval=5,
        pool_options={"pool_max_size": 2},
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_integrations.triggers.sql.SqlConditionTrigger"
    assert SqlConditionTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert set(kwargs) == {
        "postgres_conn_id",
        "sql",
        "parameters",
        "success",
        "failure",
        "poke_interval",
        "pool_options",
    }


async def _first_event(trigger: SqlConditionTrigger) -> dict[str, Any]:
    event = await anext(trigger.run())
    payload: dict[str, Any] = event.payload
    return payload


async def test_trigger_waits_until_an_insert_makes_the_condition_true(pg: str, table: str) -> None:
    trigger = SqlConditionTrigger(
        pg,
        f"SELECT count(*) FROM {table} WHERE amount > $1",
        [5],
        {"op": ">=", "value": 1},
        poke_interval=0.1,
    )
    task = asyncio.create_task(_first_event(trigger))
    await asyncio.sleep(0.5)
    assert not task.done(), "the condition is false: the trigger keeps probing"
    assert len(open_pools()) == 1, "one pooled connection set while probing"
    await asyncio.to_thread(sql, f"INSERT INTO {table} (id, name, amount) VALUES (1, 'a', 9)")
    event = await asyncio.wait_for(task, 5)
    assert event["status"] == "success" and event["value"] == 1 and event["rows"] == 1
    assert event["probes"] >= 3, event
    assert open_pools() == [], "the lease is returned before the event is yielded"


async def test_failure_condition_wins(pg: str, table: str) -> None:
    sql(f"INSERT INTO {table} (id, name) VALUES (1, 'failed')")
    trigger = SqlConditionTrigger(
        pg,
        f"SELECT name FROM {table} ORDER BY id DESC LIMIT 1",
        success={"op": "any_row"},
        failure={"op": "==", "value": "failed"},
        poke_interval=0.1,
    )
    event = await asyncio.wait_for(_first_event(trigger), 5)
    assert (event["status"], event["value"], event["probes"]) == ("failure", "failed", 1)


async def test_sql_error_ends_with_a_typed_error_event(pg: str) -> None:
    event = await _first_event(SqlConditionTrigger(pg, "SELEC 1", poke_interval=0.1))
    assert event["status"] == "error" and event["sqlstate"] == "42601" and event["retriable"] is False
    assert event["error_type"] == "PgError" and "syntax error" in event["message"]


async def test_triggers_of_one_connection_share_one_pool(pg: str, table: str) -> None:
    triggers = [
        SqlConditionTrigger(
            pg, f"SELECT count(*) FROM {table}", success={"op": ">", "value": n}, poke_interval=0.1
        )
        for n in range(3)
    ]
    tasks = [asyncio.create_task(_first_event(t)) for t in triggers]
    await asyncio.sleep(0.3)
    pools = open_pools()
    assert len(pools) == 1 and pools[0].stats()["size"] <= 3
    for n in range(1, 4):
        sql(f"INSERT INTO {table} (id, name) VALUES ({n}, 'x')")
    events = await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert [e["status"] for e in events] == ["success"] * 3
    assert open_pools() == []


async def test_cleanup_returns_the_lease_of_a_cancelled_run(pg: str) -> None:
    trigger = SqlConditionTrigger(pg, "SELECT 1 WHERE false", poke_interval=10)
    task = asyncio.create_task(_first_event(trigger))
    await asyncio.sleep(0.3)
    assert len(open_pools()) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await trigger.cleanup()  # the triggerer calls it after every run; a second release is a no-op
    assert open_pools() == []


def sensor(pg: str, **kwargs: Any) -> SqlConditionSensor:
    return SqlConditionSensor(
        task_id=f"wait_{uuid.uuid4().hex[:6]}", postgres_conn_id=pg, poke_interval=0.1, timeout=10, **kwargs
    )


def test_poke_mode_uses_the_same_probe(pg: str, table: str) -> None:
    sql(f"INSERT INTO {table} (id, name, amount) VALUES (1, 'a', 2.5)")
    wait = sensor(pg, sql=f"SELECT amount FROM {table}", success={"op": ">", "value": 2}, deferrable=False)
    assert wait.execute({}) == 2.5  # type: ignore[arg-type]

    failing = sensor(
        pg, sql=f"SELECT name FROM {table}", failure={"op": "==", "value": "a"}, deferrable=False, mode="poke"
    )
    with pytest.raises(AirflowFailException, match=r"failure condition .* met: 1 row\(s\), value 'a'"):
        failing.execute({})  # type: ignore[arg-type]

    broken = sensor(pg, sql="SELECT * FROM no_such_table_it", deferrable=False)
    with pytest.raises(AirflowFailException, match="42P01"):
        broken.execute({})  # type: ignore[arg-type]


def test_execute_complete_maps_events() -> None:
    wait = SqlConditionSensor(task_id="s", sql="SELECT 1", failure={"op": "==", "value": 0})
    ok = {"status": "success", "value": 3, "rows": 1, "probes": 2, "message": "m"}
    assert wait.execute_complete({}, ok) == 3  # type: ignore[arg-type]
    with pytest.raises(AirflowFailException, match="failure condition"):
        wait.execute_complete({}, {"status": "failure", "value": 0, "rows": 1})  # type: ignore[arg-type]
    transient = {"status": "error", "error_type": "PgRetriableError", "message": "gone", "retriable": True}
    with pytest.raises(AirflowException) as info:
        wait.execute_complete({}, transient)  # type: ignore[arg-type]
    assert type(info.value) is AirflowException, "a lost connection may be retried by Airflow"
    with pytest.raises(AirflowFailException, match="PgError: syntax"):
        wait.execute_complete({}, {"status": "error", "error_type": "PgError", "message": "syntax"})  # type: ignore[arg-type]


DAG_FILE = """
from datetime import datetime, timezone

from airflow.sdk import DAG, task

from airflow_provider_integrations.sensors.sql import SqlConditionSensor

with DAG("{dag_id}", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):
    wait = SqlConditionSensor(
        task_id="wait_for_rows",
        postgres_conn_id="{conn_id}",
        sql="SELECT count(*) FROM {table} WHERE name = $1",
        parameters=["{{{{ dag.dag_id }}}}"],
        success={{"op": ">=", "value": 2}},
        poke_interval=0.2,
        deferrable=True,
    )

    @task
    def check(value: int) -> None:
        assert value == 2, f"expected 2 rows, got {{value!r}}"

    check(wait.output)
"""


@pytest.mark.slow
def test_deferrable_sensor_through_dag_test(airflow_db: object, pg: str, table: str, tmp_path: Path) -> None:
    """dag.test() (in a child process, as the example runner does: it needs the DAG in a bundle) defers
    the sensor and runs its trigger inline; the rows appear only once the trigger is probing."""
    from tests.examples.conftest import RUNNER

    dags = tmp_path / "dags"
    dags.mkdir()
    dag_id = f"it_sql_sensor_{table}"
    path = dags / f"{dag_id}.py"
    path.write_text(DAG_FILE.format(dag_id=dag_id, conn_id=pg, table=table))

    # Backends of earlier tests' pools (same application name) must not count as the trigger's.
    before = [pid for (pid,) in sql("SELECT pid FROM pg_stat_activity WHERE application_name = %s", pg)]

    def insert_once_probing() -> None:
        # Wait until the trigger's pool (named after the connection in pg_stat_activity) has run the probe
        # at least once: its backend's last query is the probe, or asyncpg's reset after releasing the
        # connection (which only follows a query). Time-based waits flake on a loaded machine.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ran = sql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                " AND (query LIKE %s OR query LIKE %s) AND NOT (pid = ANY(%s))",
                pg,
                f"SELECT count(*) FROM {table}%",
                "%RESET ALL%",
                before,
            )
            if ran != [(0,)]:
                break
            time.sleep(0.05)
        sql(f"INSERT INTO {table} (id, name) VALUES (1, %s), (2, %s)", dag_id, dag_id)

    writer = threading.Thread(target=insert_once_probing)
    writer.start()
    try:
        result = RUNNER.run_one(path, {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}, timeout=180)
    finally:
        writer.join()
    tail = "\n".join(result.output.splitlines()[-40:])
    assert result.status == "success", f"{result.note}\n{tail}"
    assert "condition met after" in result.output and "2 tasks" in result.note, tail
    probes = re.search(r"success condition met after (\d+) probe", result.output)
    assert probes and int(probes.group(1)) >= 2, "the trigger probed before the rows existed"
