"""End to end with real processes: ``airflow api-server`` (the receiver plugin, loaded from its entry point),
``airflow triggerer`` and ``dag.test()`` without inline triggers, over the PostgreSQL callback store.

One run proves three things: a callback that arrives before any triggerer runs is delivered when one
starts; a duplicate delivery (the partner calls twice) resumes the task once, with the first payload;
a callback sent while the trigger waits on the shared LISTEN connection resumes it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from yarl import URL

from airflow_provider_integrations.plugins.webhooks import URL_PREFIX
from airflow_provider_integrations.sandbox.process import SandboxProcess
from airflow_provider_integrations.sandbox.webhooks import PARTNER_WEBHOOK_SECRET
from tests._airflow_processes import (
    STARTUP,
    AirflowProcesses,
    airflow_home,
    free_port,
    migrate_template,
    wait_for_http,
    wait_until,
)
from tests._drive_dag import REPORT_MARKER
from tests.conftest import ROOT
from tests.integration.callbacks.conftest import PG_CONN, PG_CONNECTION, SECRET_CONN
from tests.webhooks.conftest import PAYLOAD_KEY, pg_schema, signed

pytestmark = pytest.mark.slow

DAGS = Path(__file__).resolve().parent / "dags"
DAG_ID = "callback_triggerer"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrate_template(tmp_path_factory.mktemp("callbacks-airflow-template"))


@pytest.fixture
def schema() -> Iterator[str]:
    with pg_schema("whe2e") as name:
        yield name


@pytest.fixture
def processes(
    tmp_path: Path, migrated_db: Path, sandbox: SandboxProcess, schema: str, plugin_path: str | None
) -> Iterator[tuple[AirflowProcesses, int]]:
    port = free_port()
    sandbox_url = URL(sandbox.url)
    env = {
        "AIRFLOW__INTEGRATIONS__WEBHOOK_STORE": f"postgres_conn://{PG_CONN}?schema={schema}",
        "AIRFLOW__INTEGRATIONS__WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}{URL_PREFIX}",
        "AIRFLOW__INTEGRATIONS__WEBHOOK_PAYLOAD_KEYS": PAYLOAD_KEY,
        f"AIRFLOW_CONN_{PG_CONN.upper()}": json.dumps(PG_CONNECTION),
        f"AIRFLOW_CONN_{SECRET_CONN.upper()}": json.dumps(
            {"conn_type": "generic", "password": PARTNER_WEBHOOK_SECRET}
        ),
        "AIRFLOW_CONN_CALLBACKS_SANDBOX": json.dumps(
            {
                "conn_type": "integration_http",
                "host": sandbox_url.host,
                "port": sandbox_url.port,
                "extra": {"scheme": "http"},
            }
        ),
        # The plugin's entry point: the installed distribution's, or (until it declares it) a stand-in.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), plugin_path])),
    }
    procs = airflow_home(tmp_path / "airflow-home", migrated_db, DAGS.glob("*.py"), env)
    yield procs, port
    procs.stop()


def callbacks(schema: str) -> dict[str, dict[str, Any]]:
    """The store's rows by task id: what the receiver wrote, read outside the code under test."""
    with psycopg.connect(PG_DSN) as conn:
        rows = conn.execute(
            f'SELECT task_id, callback_id, webhook_id IS NOT NULL FROM "{schema}".webhook_callbacks'
        ).fetchall()
    return {task_id: {"callback_id": cid, "delivered": delivered} for task_id, cid, delivered in rows}


def listening(schema: str) -> bool:
    """Whether some session (the triggerer's shared LISTEN connection) listens on the store's channel."""
    with psycopg.connect(PG_DSN) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE %s", (f'LISTEN "{schema}.%',)
        ).fetchone()
    return bool(row and row[0])


def task_states(home: Path) -> dict[str, str]:
    with sqlite3.connect(home / "airflow.db") as conn:
        rows = conn.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ?", (DAG_ID,)).fetchall()
    conn.close()
    return {task_id: state for task_id, state in rows}


def post(url: str, body: dict[str, Any]) -> int:
    data, headers = signed(body)
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def partner_attempts(sandbox: SandboxProcess, job_id: str) -> list[int]:
    with urllib.request.urlopen(f"{sandbox.url}/partner/jobs/{job_id}?wait=10", timeout=20) as response:
        return [attempt["status"] for attempt in json.load(response)["attempts"]]


def test_callbacks_reach_deferred_tasks_through_the_plugin_and_a_real_triggerer(
    processes: tuple[AirflowProcesses, int], schema: str, sandbox: SandboxProcess
) -> None:
    procs, port = processes
    started = time.monotonic()
    api = procs.api_server("api-server", port)
    wait_for_http(f"http://127.0.0.1:{port}{URL_PREFIX}/health", api)

    run = procs.dag_test("callback_triggerer.py")
    # No triggerer yet: both tasks defer; the partner has already called ``early`` back, twice.
    rows = wait_until(
        lambda: (rows := callbacks(schema)).get("early", {}).get("delivered") and "late" in rows and rows,
        STARTUP,
        "the early callback to be stored and the late one registered",
    )
    wait_until(
        lambda: (
            task_states(procs.home) == {"early": "deferred", "late": "deferred", "check": None}
            or task_states(procs.home).get("late") == "deferred"
        ),
        STARTUP,
        "both waits to defer",
    )

    procs.triggerer("triggerer")
    wait_until(lambda: listening(schema), STARTUP, "the triggerer to LISTEN on the store's channel")
    late_url = f"http://127.0.0.1:{port}{URL_PREFIX}/callbacks/{rows['late']['callback_id']}"
    assert post(late_url, {"status": "succeeded", "from": "test"}) == 202
    callback_sent = time.monotonic()

    assert run.wait(timeout=STARTUP) == 0, run.tail()
    resumed = time.monotonic()
    report = run.report(REPORT_MARKER)
    # ``check`` asserts both payloads.
    assert report == {
        "state": "success",
        "tasks": {"early": "success", "late": "success", "check": "success"},
    }, run.tail()
    assert post(late_url, {"status": "succeeded", "from": "replay"}) == 200, "later deliveries change nothing"
    job_id = json.loads(_xcom(procs.home, "early", "start_response"))["job_id"]
    assert partner_attempts(sandbox, job_id) == [202, 200], "the replay was answered duplicate"
    api_log = api.output()
    assert api_log.count(f'"callback_id":"{rows["early"]["callback_id"]}"') == 2  # one audit line per request
    assert PARTNER_WEBHOOK_SECRET not in api_log and PAYLOAD_KEY not in api_log
    print(f"end to end {resumed - started:.1f} s; late callback -> run done {resumed - callback_sent:.1f} s")


def _xcom(home: Path, task_id: str, key: str) -> str:
    with sqlite3.connect(home / "airflow.db") as conn:
        (value,) = conn.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = ?", (DAG_ID, task_id, key)
        ).fetchone()
    conn.close()
    return value if isinstance(value, str) else bytes(value).decode()
