"""Fixtures for the async-job tests: a sandbox connection, a unique counter tag, and real Airflow processes.

The real-triggerer tests run three kinds of child process against one private SQLite metadata database
(:mod:`tests._airflow_processes`): ``dag.test()`` without inline triggers, ``airflow triggerer``, and the API
route that marks a task failed (:mod:`.mark_failed`).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from yarl import URL

from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests._airflow_processes import AirflowProcesses, Child, airflow_home, migrate_template
from tests.conftest import ConnFactory

DAGS = Path(__file__).resolve().parent / "dags"


@pytest.fixture
def tag() -> str:
    """Groups this test's jobs in the sandbox's counters (``/jobs-stats?tag=``)."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def job_conn(http_connection: ConnFactory, sandbox: SandboxProcess) -> str:
    return http_connection(
        f"jobs_{uuid.uuid4().hex[:8]}", sandbox.url, circuit_failure_threshold=0, retry_base_delay=0.01
    )


class JobProcesses(AirflowProcesses):
    def mark_failed(self, dag_id: str, task_id: str) -> Child:
        return self.start(
            "mark_failed", sys.executable, "-m", "tests.integration.jobs.mark_failed", dag_id, task_id
        )


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly migrated database, copied per test: no trigger rows of other tests' runs in it."""
    return migrate_template(tmp_path_factory.mktemp("jobs-airflow-template"))


@pytest.fixture
def airflow_processes(tmp_path: Path, migrated_db: Path, sandbox: SandboxProcess) -> Iterator[JobProcesses]:
    url = URL(sandbox.url)
    connection = {
        "conn_type": "integration_http",
        "host": url.host,
        "port": url.port,
        "extra": {"scheme": "http", "circuit_failure_threshold": 0},
    }
    processes = airflow_home(
        tmp_path / "airflow-home",
        migrated_db,
        DAGS.glob("*.py"),
        {"AIRFLOW_CONN_JOBS_SANDBOX": json.dumps(connection)},
        kind=JobProcesses,
    )
    yield processes
    processes.stop()
