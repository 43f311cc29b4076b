"""PostgreSQL fixtures: ``postgres`` connections through ``AIRFLOW_CONN_<ID>`` and throw-away tables.

The server is the local PostgreSQL at 127.0.0.1:5432 (trust auth, database ``test``); CI starts it, so
nothing here skips when it is down: a failure to connect is a failure.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

PG = {"host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}
PgConnFactory = Callable[..., str]


@pytest.fixture
def pg_connection(monkeypatch: pytest.MonkeyPatch) -> PgConnFactory:
    """Define a connection of the standard ``postgres`` type; fields default to the local server."""
    from airflow_provider_integrations.hooks.postgres import CONFIGS

    def make(conn_id: str = "pg_test", *, extra: dict[str, Any] | None = None, **fields: Any) -> str:
        doc = {"conn_type": "postgres", **PG, **fields, "extra": extra or {}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(doc))
        CONFIGS.invalidate()
        return conn_id

    return make


@pytest.fixture
def pg(pg_connection: PgConnFactory) -> str:
    return pg_connection()


def sql(statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement on a fresh autocommit connection: setup and checks outside the code under test."""
    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", autocommit=True) as conn:
        cur = conn.execute(statement, params or None)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def table() -> Iterator[str]:
    """A fresh ``(id int primary key, name text not null, amount numeric(10,2), day date)`` table."""
    name = f"it_{uuid.uuid4().hex[:10]}"
    sql(f"CREATE TABLE {name} (id int PRIMARY KEY, name text NOT NULL, amount numeric(10,2), day date)")
    yield name
    sql(f"DROP TABLE IF EXISTS {name}")
