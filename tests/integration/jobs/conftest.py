"""Fixtures for the async-job tests: a sandbox connection, a unique counter tag, and real Airflow processes.

The real-triggerer tests run three kinds of child process against one private SQLite metadata database:
``dag.test()`` without inline triggers (:mod:`.drive_dag`), ``airflow triggerer``, and the API route that
marks a task failed (:mod:`.mark_failed`). Each child gets its own process group, so killing it (``kill -9``
included) takes its subprocesses with it and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from yarl import URL

from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests.conftest import ROOT, ConnFactory

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


def wait_until(check: Callable[[], Any], timeout: float, what: str, *, every: float = 0.2) -> Any:
    """Poll another process's observable state (no event crosses the process boundary) until truthy."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Child:
    """One child process in its own process group, output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self) -> None:
        """SIGKILL the whole group: the process and its runner subprocess die without any cleanup."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout:.0f} s:\n{self.tail()}") from None

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def report(self, marker: str) -> dict[str, Any]:
        for line in self.output().splitlines():
            if line.startswith(marker):
                found: dict[str, Any] = json.loads(line[len(marker) :])
                return found
        raise AssertionError(f"{self.name} printed no {marker.strip()!r} line:\n{self.tail()}")


class AirflowProcesses:
    """Start children that share one private Airflow home, database and sandbox connection."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.children: list[Child] = []

    def start(self, name: str, *args: str, **env: str) -> Child:
        child = Child(name, list(args), {**self.env, **env}, self.home)
        self.children.append(child)
        return child

    def triggerer(self, name: str) -> Child:
        return self.start(name, str(Path(sys.executable).with_name("airflow")), "triggerer")

    def dag_test(self, dag_file: str, **env: str) -> Child:
        path = self.home / "dags" / dag_file
        return self.start(
            "dag_test", sys.executable, "-m", "tests.integration.jobs.drive_dag", str(path), **env
        )

    def mark_failed(self, dag_id: str, task_id: str) -> Child:
        return self.start(
            "mark_failed", sys.executable, "-m", "tests.integration.jobs.mark_failed", dag_id, task_id
        )


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly migrated database, copied per test: no trigger rows of other tests' runs in it."""
    home = tmp_path_factory.mktemp("jobs-airflow-template")
    env = {**os.environ, **_airflow_env(home, home / "airflow.db")}
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=240)
    return home / "airflow.db"


def _airflow_env(home: Path, database: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{database}",
        # A killed triggerer's triggers move to a live one once its heartbeat is this old (default 30 s).
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "3",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def airflow_processes(
    tmp_path: Path, migrated_db: Path, sandbox: SandboxProcess
) -> Iterator[AirflowProcesses]:
    home = tmp_path / "airflow-home"
    (home / "dags").mkdir(parents=True)
    shutil.copyfile(migrated_db, home / "airflow.db")
    for dag_file in DAGS.glob("*.py"):
        shutil.copyfile(dag_file, home / "dags" / dag_file.name)
    url = URL(sandbox.url)
    connection = {
        "conn_type": "integration_http",
        "host": url.host,
        "port": url.port,
        "extra": {"scheme": "http", "circuit_failure_threshold": 0},
    }
    env = {
        **os.environ,
        **_airflow_env(home, home / "airflow.db"),
        "AIRFLOW_CONN_JOBS_SANDBOX": json.dumps(connection),
    }
    processes = AirflowProcesses(home, env)
    yield processes
    for child in reversed(processes.children):
        child.stop()
