"""The Airflow layer of streaming with a real ``airflow triggerer`` process.

- StreamBatchOperator, deferred, while its triggerer is killed (``kill -9``) mid-window and another one
  takes over: every sequence number reaches PostgreSQL, and the table equals the source.
- Two AssetWatchers with StreamEventTriggers on one stream, registered by ``airflow dags reserialize``:
  one connection at the sandbox, each asset gets its filtered events in order, the checkpoint moves.

``dag.test()`` runs in a child process with inline triggers off (:mod:`tests._drive_dag`); all processes
share one private SQLite metadata database (:mod:`tests._airflow_processes`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests._airflow_processes import (
    AIRFLOW,
    STARTUP,
    AirflowProcesses,
    airflow_home,
    migrate_template,
    wait_until,
)
from tests._drive_dag import REPORT_MARKER
from tests.integration.streams.conftest import PG_CONN, dest_checksum, source_checksum, sql, stream_stats

pytestmark = pytest.mark.slow

DAGS = Path(__file__).resolve().parent / "dags"


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrate_template(tmp_path_factory.mktemp("streams-airflow-template"))


@pytest.fixture
def airflow_for(
    tmp_path: Path, migrated_db: Path, sandbox: SandboxProcess
) -> Iterator[Callable[[str], AirflowProcesses]]:
    """``airflow_for(dag_file)``: a private Airflow home holding only that DAG file.

    Only that file: ``dag.test()`` syncs the whole DAG folder, and the watcher DAGs of the other test
    would start reading the sandbox stream of this one.
    """
    url = URL(sandbox.url)
    extra = {"scheme": "http", "circuit_failure_threshold": 0, "retry_base_delay": 0.05}
    http = {"conn_type": "integration_http", "host": url.host, "port": url.port, "extra": extra}
    home = tmp_path / "airflow-home"
    env = {
        "AIRFLOW_CONN_STREAMS_SANDBOX": json.dumps(http),
        "AIRFLOW_CONN_STREAMS_PG": json.dumps(PG_CONN),
        "AIRFLOW__INTEGRATIONS__STREAM_CHECKPOINTS": f"sqlite:///{home}/checkpoints.db",
    }
    started: list[AirflowProcesses] = []

    def make(dag_file: str) -> AirflowProcesses:
        started.append(airflow_home(home, migrated_db, [DAGS / dag_file], env))
        return started[-1]

    yield make
    for procs in started:
        procs.stop()


def dest_rows(schema: str) -> int:
    ((count,),) = sql(f'SELECT count(*) FROM "{schema}".dest')
    return int(count)


def test_killed_triggerer_mid_window_loses_and_duplicates_nothing(
    airflow_for: Callable[[str], AirflowProcesses], sandbox: SandboxProcess, key: str, schema: str
) -> None:
    processes = airflow_for("stream_batch_triggerer.py")
    total, window = 1000, 250
    started = time.monotonic()
    run = processes.dag_test(
        "stream_batch_triggerer.py",
        STREAM_TEST_KEY=key,
        STREAM_TEST_SCHEMA=schema,
        STREAM_TEST_TOTAL=str(total),
    )
    first = processes.triggerer("triggerer-1")
    wait_until(lambda: dest_rows(schema) >= window, STARTUP, "the first window to be stored")
    # The next trigger has been reading for a while (100 events/s), its window half full: kill it.
    wait_until(
        lambda: stream_stats(sandbox, key)["sent"] >= window + 100, STARTUP, "the second window to fill"
    )
    rows_at_kill = dest_rows(schema)
    first.kill()
    processes.triggerer("triggerer-2")

    assert run.wait(timeout=4 * STARTUP) == 0, run.tail()
    assert run.report(REPORT_MARKER) == {"state": "success", "tasks": {"ingest": "success"}}, run.tail()
    assert rows_at_kill < total
    assert dest_checksum(schema) == (total, total, source_checksum(total))
    resumes = stream_stats(sandbox, key)["resumes"]
    # The killed trigger's window was read again, from the same checkpoint, by the second triggerer.
    assert resumes.count(rows_at_kill) >= 2, resumes
    print(f"triggerer kill: {time.monotonic() - started:.1f} s, resumes {resumes}")


def asset_events(database: Path) -> dict[str, list[dict[str, Any]]]:
    """The payloads of the asset events in the metadata database, per asset name, in id order."""
    with closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            "SELECT asset.name, asset_event.extra FROM asset_event"
            " JOIN asset ON asset.id = asset_event.asset_id ORDER BY asset_event.id"
        ).fetchall()
    found: dict[str, list[dict[str, Any]]] = {}
    for name, extra in rows:
        found.setdefault(name, []).append(json.loads(extra)["payload"])
    return found


def committed(path: Path) -> list[str]:
    if not path.exists():
        return []
    with closing(sqlite3.connect(path)) as db:
        try:
            return [str(row[0]) for row in db.execute("SELECT position FROM stream_checkpoints")]
        except sqlite3.OperationalError:
            return []


def test_two_asset_watchers_share_one_stream_connection(
    airflow_for: Callable[[str], AirflowProcesses], sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    processes = airflow_for("stream_watchers.py")
    store = tmp_path / "watchers.db"
    env = {"STREAM_TEST_KEY": key, "STREAM_TEST_STORE": f"sqlite:///{store}"}
    reserialize = processes.start("reserialize", AIRFLOW, "dags", "reserialize", **env)
    assert reserialize.wait(timeout=4 * STARTUP) == 0, reserialize.tail()
    processes.triggerer("triggerer", **env)

    database = processes.home / "airflow.db"
    events = wait_until(
        lambda: (
            (found := asset_events(database))
            and all(len(found.get(name, [])) >= 5 for name in ("stream_created", "stream_key_k1"))
            and found
        ),
        3 * STARTUP,
        "five asset events for each watcher",
    )
    # Seq n has type created when n % 3 == 0, and key k<n % 3>: each watcher got its slice, in order.
    created = [int(p["position"]) for p in events["stream_created"]]
    k1 = [int(p["position"]) for p in events["stream_key_k1"]]
    assert created[:5] == [3, 6, 9, 12, 15] and k1[:5] == [1, 4, 7, 10, 13], (created, k1)
    assert created == sorted(created) and k1 == sorted(k1)
    assert {p["type"] for p in events["stream_created"]} == {"created"}
    assert {p["key"] for p in events["stream_key_k1"]} == {"k1"}
    # The checkpoint of the shared group moves once Airflow confirmed the asset events stored.
    wait_until(
        lambda: any(int(json.loads(p)) >= 13 for p in committed(store)), STARTUP, "the checkpoint to move"
    )
    assert len(committed(store)) == 1, "one consumer for both watchers"
    assert stream_stats(sandbox, key)["connections"] == 1
