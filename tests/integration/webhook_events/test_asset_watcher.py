"""End to end with real processes: events POSTed to the standalone receiver start DAG runs through
``Asset(..., watchers=[AssetWatcher(..., trigger=WebhookEventTrigger(...))])``.

The Trigger row is created the way the DAG processor creates it (``airflow dags reserialize`` runs the
same ``add_asset_trigger_references``); then a real ``airflow triggerer`` watches the PostgreSQL event
log, and a real ``airflow scheduler`` turns the queued asset event into a DAG run. One run proves:
filtering by type and by condition; a duplicate delivery yields one asset event; a triggerer killed with
``kill -9`` and replaced neither replays what it had delivered nor loses what arrived while none ran.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from airflow_provider_integrations.sandbox.webhooks import PARTNER_WEBHOOK_SECRET
from airflow_provider_integrations.triggers.webhook_events import WebhookEventTrigger
from tests._airflow_processes import (
    AIRFLOW,
    STARTUP,
    AirflowProcesses,
    airflow_home,
    migrate_template,
    wait_until,
)
from tests.webhooks.conftest import PAYLOAD_KEY, ReceiverProcess, pg_schema, signed

pytestmark = pytest.mark.slow

DAGS = Path(__file__).resolve().parent / "dags"
DAG_ID = "partner_order_watch"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PG_CONNECTION = {
    "conn_type": "postgres",
    "host": "127.0.0.1",
    "port": 5432,
    "login": "postgres",
    "schema": "test",
}
# The watcher of the DAG file: its cursor is found in the log under this key.
WATCHER = WebhookEventTrigger(
    source="partner", event_types=["order.*"], condition={"jmespath": "data.total", "gte": 100}
)


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrate_template(tmp_path_factory.mktemp("webhook-events-airflow-template"))


@pytest.fixture
def schema() -> Iterator[str]:
    with pg_schema("whev") as name:
        yield name


@pytest.fixture
def airflow(tmp_path: Path, migrated_db: Path, schema: str) -> Iterator[AirflowProcesses]:
    processes = airflow_home(
        tmp_path / "airflow-home",
        migrated_db,
        DAGS.glob("*.py"),
        {
            # The watcher of a paused DAG is not registered; new DAGs start paused by default.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__INTEGRATIONS__WEBHOOK_STORE": f"postgres_conn://webhooks_pg?schema={schema}",
            "AIRFLOW__INTEGRATIONS__WEBHOOK_PAYLOAD_KEYS": PAYLOAD_KEY,
            "AIRFLOW_CONN_WEBHOOKS_PG": json.dumps(PG_CONNECTION),
        },
    )
    yield processes
    processes.stop()


@pytest.fixture
def receiver(schema: str) -> Iterator[ReceiverProcess]:
    """The standalone receiver on the same PostgreSQL schema (the DMZ deployment)."""
    proc = ReceiverProcess(
        f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}",
        {"partner": PARTNER_WEBHOOK_SECRET},
        extra=("--encryption-key-env", "PAYLOAD_KEY"),
        env={"PAYLOAD_KEY": PAYLOAD_KEY},
    ).start()
    try:
        yield proc
        assert "Traceback" not in proc.stderr_text(), proc.stderr_text()
    finally:
        proc.close()


def send(receiver: ReceiverProcess, webhook_id: str, kind: str, total: int = 0) -> int:
    body, headers = signed({"type": kind, "data": {"total": total}}, webhook_id=webhook_id)
    request = urllib.request.Request(f"{receiver.url}/events/partner", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


def cursor(schema: str) -> int | None:
    """The watcher's committed cursor in the event log (``None`` until the trigger first started)."""
    with psycopg.connect(PG_DSN) as conn:
        row = conn.execute(
            f'SELECT seq FROM "{schema}".webhook_event_consumers WHERE consumer = %s', (WATCHER.consumer_key,)
        ).fetchone()
    return None if row is None else int(row[0])


def query(airflow: AirflowProcesses, sql: str) -> list[Any]:
    with closing(sqlite3.connect(airflow.home / "airflow.db", timeout=30)) as conn:
        return conn.execute(sql).fetchall()


def asset_event_ids(airflow: AirflowProcesses) -> list[str]:
    rows = query(
        airflow,
        "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
        "WHERE a.name = 'partner_orders' ORDER BY e.id",
    )
    return [json.loads(extra)["payload"]["event_id"] for (extra,) in rows]


def test_webhook_events_start_dag_runs_once_each_across_a_triggerer_kill(
    airflow: AirflowProcesses, receiver: ReceiverProcess, schema: str
) -> None:
    registered = subprocess.run(
        [AIRFLOW, "dags", "reserialize"],
        env=airflow.env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert registered.returncode == 0, registered.stderr[-3000:]
    assert query(airflow, "SELECT classpath FROM trigger") == [
        ("airflow_provider_integrations.triggers.webhook_events.WebhookEventTrigger",)
    ]

    first = airflow.triggerer("triggerer-1")
    wait_until(lambda: cursor(schema) is not None, STARTUP, "the watcher to start consuming")
    sent = [
        send(receiver, "e1", "order.created", 150),
        send(receiver, "e2", "invoice.paid", 900),  # another type
        send(receiver, "e3", "order.created", 20),  # below the condition
        send(receiver, "e4", "order.updated", 300),
        send(receiver, "e1", "order.created", 150),  # the partner retries e1
    ]
    assert sent == [202, 202, 202, 202, 200]
    wait_until(lambda: asset_event_ids(airflow) == ["e1", "e4"], STARTUP, "asset events e1 and e4")
    # Committed only once Airflow confirmed the asset events stored (ack mode): then a kill loses nothing.
    wait_until(lambda: cursor(schema) == 4, STARTUP, "the cursor to pass e4")
    assert query(airflow, "SELECT target_dag_id FROM asset_dag_run_queue") == [(DAG_ID,)]

    first.kill()
    assert [send(receiver, "e5", "order.created", 500), send(receiver, "e6", "ping")] == [202, 202]
    second = airflow.triggerer("triggerer-2")
    wait_until(lambda: cursor(schema) == 6, STARTUP, "the new triggerer to consume e5 and e6")
    assert asset_event_ids(airflow) == ["e1", "e4", "e5"], "nothing replayed, nothing skipped"
    second.stop()

    airflow.start("scheduler", AIRFLOW, "scheduler")
    runs = wait_until(
        lambda: query(
            airflow, f"SELECT id FROM dag_run WHERE dag_id = '{DAG_ID}' AND run_type = 'asset_triggered'"
        ),
        STARTUP,
        "the scheduler to create the asset-triggered run",
    )
    run_ids = ",".join(str(run_id) for (run_id,) in runs)
    consumed = query(
        airflow,
        "SELECT json_extract(e.extra, '$.payload.event_id') FROM dagrun_asset_event r "
        f"JOIN asset_event e ON e.id = r.event_id WHERE r.dag_run_id IN ({run_ids}) ORDER BY e.id",
    )
    # The queue row dates from e1: Airflow's first run consumes the events up to then.
    assert [event_id for (event_id,) in consumed][:1] == ["e1"]
    assert {event_id for (event_id,) in consumed} <= {"e1", "e4", "e5"}
