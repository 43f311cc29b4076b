"""Fixtures for the webhook tests: stores over SQLite and PostgreSQL, and the standalone receiver as a
real child process.

The receiver process and the test share the store (the same SQLite file, or the same PostgreSQL
schema), so a test can register callbacks, send requests over loopback, and then look at what was
stored, exactly as a triggerer would.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

import asyncpg
import pytest

from airflow_provider_integrations.postgres import PgConfig
from airflow_provider_integrations.postgres.listen import close_loop_listeners
from airflow_provider_integrations.postgres.pool import close_loop_pools
from airflow_provider_integrations.sandbox.webhooks import PARTNER_WEBHOOK_SECRET
from airflow_provider_integrations.webhooks import (
    CallbackRegistration,
    CallbackStore,
    PayloadCodec,
    PostgresCallbackStore,
    Signer,
    SqliteCallbackStore,
)
from tests.postgres.conftest import unique

ROOT = Path(__file__).resolve().parents[2]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
# Fixed test keys: a rotation pair and a payload key (never used outside tests).
OLD_SECRET = "whsec_" + "b2xkLXNlY3JldC1vbGQtc2VjcmV0LWtleS0wMQ=="
NEW_SECRET = "whsec_" + "bmV3LXNlY3JldC1uZXctc2VjcmV0LWtleS0wMg=="
PAYLOAD_KEY = "q7TcYtE0yW3kVb8bS1Y2k0l3mC4nD5oE6pF7gH8iJ9k="
_READY = re.compile(r"^webhook receiver listening on (http://\S+)$")


def registration(
    *, secret_name: str = "partner", ttl: float = 600, schema: dict[str, Any] | None = None, **kw: Any
) -> CallbackRegistration:
    return CallbackRegistration.new(
        dag_id=kw.pop("dag_id", "dag"),
        run_id=kw.pop("run_id", "manual__1"),
        task_id=kw.pop("task_id", "wait"),
        secret_name=secret_name,
        ttl=ttl,
        schema=schema,
        **kw,
    )


def expired_registration(secret_name: str = "partner") -> CallbackRegistration:
    return registration(secret_name=secret_name, ttl=60, now=datetime.now(timezone.utc) - timedelta(hours=1))


def signed(
    body: bytes | dict[str, Any],
    secret: str = PARTNER_WEBHOOK_SECRET,
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = Signer.from_secrets([secret]).headers(data, webhook_id=webhook_id, timestamp=timestamp)
    headers["Content-Type"] = "application/json"
    return data, headers


# -- stores ---------------------------------------------------------------------------------------


@pytest.fixture
async def admin() -> AsyncIterator[asyncpg.Connection]:
    """A plain connection outside the code under test."""
    conn = await asyncpg.connect(**PG)
    try:
        yield conn
    finally:
        await conn.close()


def pg_config(**overrides: Any) -> PgConfig:
    return PgConfig(database="test", max_size=8, acquire_timeout=10.0, name=unique("whtest"), **overrides)


def make_store(
    kind: str, where: str, *, codec: PayloadCodec | None = None, config: PgConfig | None = None
) -> CallbackStore:
    if kind == "sqlite":
        return SqliteCallbackStore(where, codec=codec, poll_interval=0.02)
    return PostgresCallbackStore(config or pg_config(), schema=where, codec=codec)


def store_url(kind: str, where: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{where}"  # ``where`` is absolute: sqlite:////tmp/...
    return f"postgresql://postgres@127.0.0.1:5432/test?schema={where}"


@pytest.fixture
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(kind, where): a fresh SQLite file, or a fresh PostgreSQL schema (created synchronously)."""
    kind = request.param
    if kind == "sqlite":
        yield kind, str(tmp_path / "callbacks.db")
        return
    with pg_schema("wh") as name:
        yield kind, name


@contextlib.contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped with everything in it afterwards."""
    name = unique(prefix)
    _psql(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        _psql(f'DROP SCHEMA "{name}" CASCADE')


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", PG["host"], "-U", PG["user"], "-d", PG["database"], "-qAtc", sql],
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture
async def store(store_location: tuple[str, str]) -> AsyncIterator[CallbackStore]:
    """An open store of each kind (parametrize ``store_location`` indirectly)."""
    kind, where = store_location
    async with make_store(kind, where, codec=PayloadCodec([PAYLOAD_KEY])) as opened:
        yield opened
    await close_loop_listeners()
    await close_loop_pools()


# -- the standalone receiver as a child process ------------------------------------------------------


class ReceiverProcess:
    """``python -m airflow_provider_integrations.webhooks serve`` on a free port."""

    def __init__(
        self,
        store: str,
        secrets: dict[str, str],
        *,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.extra = extra
        self.env = env or {}
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[bytes] | None = None

    def start(self) -> ReceiverProcess:
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "airflow_provider_integrations.webhooks", "serve", "--port", "0"]
        cmd += ["--store", self.store, *self.extra]
        for i, (name, value) in enumerate(self.secrets.items()):
            env[f"TEST_WEBHOOK_SECRET_{i}"] = value
            cmd += ["--secret-env", f"{name}=TEST_WEBHOOK_SECRET_{i}"]
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, env=env, text=True)
        try:
            self.url = self._ready_url(time.monotonic() + 20)
            self.health(timeout=10)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def _ready_url(self, deadline: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = self._proc.stdout

        def pump() -> None:
            for line in stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=pump, daemon=True).start()
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line == "":
                break
            if match := _READY.match(line.strip()):
                return match.group(1)
        raise RuntimeError(f"receiver did not start:\n{self.stderr_text()}")

    def health(self, timeout: float = 5) -> dict[str, Any]:
        """GET /health; proves the process still answers."""
        with urllib.request.urlopen(f"{self.url}/health", timeout=timeout) as response:
            assert response.status == 200
            doc: dict[str, Any] = json.loads(response.read())
            return doc

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        return self._proc.wait(10)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

    def close(self) -> None:
        self.stop()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def audit_lines(self) -> list[dict[str, Any]]:
        marker = "airflow_provider_integrations.webhooks.audit "
        return [
            json.loads(line.split(marker, 1)[1]) for line in self.stderr_text().splitlines() if marker in line
        ]


SECRETS = {"partner": PARTNER_WEBHOOK_SECRET, "rotating": f"{NEW_SECRET} {OLD_SECRET}"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, ReceiverProcess]]:
    """(kind, where, process): a receiver serving a store of each kind, shared by a test module."""
    kind = request.param
    if kind == "sqlite":
        where = str(tmp_path_factory.mktemp("receiver") / "callbacks.db")
    else:
        where = unique("whsrv")
        _psql(f'CREATE SCHEMA "{where}"')
    proc = ReceiverProcess(
        store_url(kind, where),
        SECRETS,
        extra=("--encryption-key-env", "PAYLOAD_KEY"),
        env={"PAYLOAD_KEY": PAYLOAD_KEY},
    )
    try:
        proc.start()
        yield kind, where, proc
        assert "Traceback" not in proc.stderr_text(), proc.stderr_text()
    finally:
        proc.close()
        if kind == "postgres":
            _psql(f'DROP SCHEMA "{where}" CASCADE')


@pytest.fixture
async def served_store(served: tuple[str, str, ReceiverProcess]) -> AsyncIterator[CallbackStore]:
    """The test's own handle on the store the receiver process writes to."""
    kind, where, _ = served
    async with make_store(kind, where, codec=PayloadCodec([PAYLOAD_KEY])) as opened:
        yield opened
    await close_loop_listeners()
    await close_loop_pools()
