"""Fixtures for the Airflow layer of streaming: sandbox and PostgreSQL connections, tables, checkpoints.

Connections come through ``AIRFLOW_CONN_<ID>``; PostgreSQL is the local server (database ``test``) and
each test gets its own schema; checkpoints go to a SQLite file in the test's temporary directory.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from airflow_provider_integrations.sandbox.process import SandboxProcess
from airflow_provider_integrations.sandbox.streams import payload
from tests.conftest import ConnFactory

PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
PG_CONN = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}


def sql(statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """One statement on a fresh autocommit connection, outside the code under test."""
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        cur = conn.execute(statement, params or None)
        return cur.fetchall() if cur.description else []


def stream_stats(sandbox: SandboxProcess, key: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sandbox.url}/streams/stats?key={key}", timeout=5) as response:
        stats: dict[str, Any] = json.load(response)
    return stats


def source_checksum(total: int, size: int = 0, keys: int = 10) -> str:
    """md5 over the sandbox's payloads 1..total in seq order, as ``dest_checksum`` computes it in SQL."""
    return hashlib.md5("".join(payload(seq, size, keys) for seq in range(1, total + 1)).encode()).hexdigest()


def dest_checksum(schema: str, table: str = "dest") -> tuple[int, int, str]:
    """(rows, distinct seqs, md5 of the bodies in seq order) of the destination table."""
    ((rows, seqs, digest),) = sql(
        f"SELECT count(*), count(DISTINCT seq), md5(coalesce(string_agg(body, '' ORDER BY seq), ''))"
        f' FROM "{schema}".{table}'
    )
    return rows, seqs, digest


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """A sandbox stats key unique to this test."""
    return f"{request.node.name[:30]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def schema() -> Iterator[str]:
    """A schema with ``dest (seq bigint primary key, body text)`` and an append-only ``receipts (seq)``."""
    name = f"st_{uuid.uuid4().hex[:10]}"
    sql(f'CREATE SCHEMA "{name}"')
    sql(f'CREATE TABLE "{name}".dest (seq bigint PRIMARY KEY, body text NOT NULL, type text)')
    sql(f'CREATE TABLE "{name}".receipts (seq bigint NOT NULL)')
    yield name
    sql(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def stream_conns(
    http_connection: ConnFactory, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``streams_sandbox`` (integration_http, fast reconnects) and ``streams_pg`` (postgres)."""
    from airflow_provider_integrations.hooks.postgres import CONFIGS

    http_connection("streams_sandbox", sandbox.url, retry_base_delay=0.01, retry_max_delay=0.1,
                    circuit_failure_threshold=0)  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_STREAMS_PG", json.dumps(PG_CONN))
    CONFIGS.invalidate()


@pytest.fixture
def checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``[integrations] stream_checkpoints`` pointing at a SQLite file of this test."""
    path = tmp_path / "checkpoints.db"
    monkeypatch.setenv("AIRFLOW__INTEGRATIONS__STREAM_CHECKPOINTS", f"sqlite:///{path}")
    return path
