"""Real Airflow processes for tests: ``dag.test()`` without inline triggers, ``airflow triggerer`` and
``airflow api-server``, all sharing one private Airflow home and SQLite metadata database.

``dag.test()`` runs in a child process (:mod:`tests._drive_dag`) with inline triggers turned off, so a
deferred task waits for the separate triggerer exactly as it would under a scheduler. Each child gets its
own process group, so killing it (``kill -9`` included) takes its subprocesses with it and nothing else.

Use: migrate a template database once per module (:func:`migrate_template`), then per test
:func:`airflow_home` copies it with the test's DAG files and :class:`AirflowProcesses` starts children.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, TypeVar

from tests.conftest import ROOT

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
#: Seconds for Airflow processes to start on a loaded 2-core machine.
STARTUP = 60.0


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
    """Start children that share one private Airflow home and database; stop them all with :meth:`stop`."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.children: list[Child] = []

    def start(self, name: str, *args: str, **env: str) -> Child:
        child = Child(name, list(args), {**self.env, **env}, self.home)
        self.children.append(child)
        return child

    def triggerer(self, name: str, **env: str) -> Child:
        return self.start(name, AIRFLOW, "triggerer", **env)

    def dag_test(self, dag_file: str, **env: str) -> Child:
        path = self.home / "dags" / dag_file
        return self.start("dag_test", sys.executable, "-m", "tests._drive_dag", str(path), **env)

    def api_server(self, name: str, port: int, **env: str) -> Child:
        """``airflow api-server`` (core API and plugins, one worker); wait with :func:`wait_for_http`."""
        args = ["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--apps", "core"]
        return self.start(name, AIRFLOW, *args, **env)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


def wait_for_http(url: str, child: Child, timeout: float = STARTUP) -> None:
    """Until ``url`` answers 200, failing early (with the log) when ``child`` exits."""

    def answers() -> bool:
        if child.proc.poll() is not None:
            raise AssertionError(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    wait_until(answers, timeout, f"{child.name} to answer {url}", every=0.3)


def airflow_env(home: Path, database: Path) -> dict[str, str]:
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


def migrate_template(home: Path) -> Path:
    """A freshly migrated database in ``home``; copy it per test so no test sees another's trigger rows."""
    env = {**os.environ, **airflow_env(home, home / "airflow.db")}
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=240)
    return home / "airflow.db"


P = TypeVar("P", bound=AirflowProcesses)


def airflow_home(
    home: Path,
    template: Path,
    dag_files: Iterable[Path],
    env: dict[str, str] | None = None,
    kind: type[P] = AirflowProcesses,  # type: ignore[assignment]
) -> P:
    """A private Airflow home with a copy of ``template`` and ``dag_files``; ``env`` goes to every child."""
    (home / "dags").mkdir(parents=True)
    shutil.copyfile(template, home / "airflow.db")
    for dag_file in dag_files:
        shutil.copyfile(dag_file, home / "dags" / dag_file.name)
    return kind(home, {**os.environ, **airflow_env(home, home / "airflow.db"), **(env or {})})
