"""The checkpoint store contract, for the SQLite and the PostgreSQL store alike."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from airflow_provider_integrations.postgres import PgConfig
from airflow_provider_integrations.streaming import (
    Checkpoint,
    CheckpointError,
    CheckpointStore,
    PgCheckpointStore,
    SqliteCheckpointStore,
    StreamConfigError,
)

StoreFactory = Callable[[], CheckpointStore]


@pytest.fixture(params=["sqlite", "postgres"])
async def new_store(
    request: pytest.FixtureRequest, tmp_path: Path, pg_config: PgConfig, schema: str, pg_cleanup: None
) -> AsyncIterator[StoreFactory]:
    """Opens stores on the same backing storage, as separate processes would."""
    opened: list[CheckpointStore] = []

    def make() -> CheckpointStore:
        store: CheckpointStore
        if request.param == "sqlite":
            store = SqliteCheckpointStore(tmp_path / "state" / "checkpoints.db")
        else:
            store = PgCheckpointStore(pg_config, schema=schema)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


async def test_nothing_committed_loads_none(new_store: StoreFactory) -> None:
    assert await new_store().load("orders", "warehouse") is None


async def test_commit_then_load_keeps_the_type_and_the_last_value(new_store: StoreFactory) -> None:
    store = new_store()
    await store.commit("orders", "warehouse", 41)
    await store.commit("orders", "warehouse", 42)
    assert await store.load("orders", "warehouse") == 42
    await store.commit("sse", "c", "2026-01-01T00:00:00+00:00|7")
    assert await store.load("sse", "c") == "2026-01-01T00:00:00+00:00|7"
    await store.commit("sse", "c", "42")  # an SSE id stays a string
    assert await store.load("sse", "c") == "42"


async def test_keys_are_stream_and_consumer(new_store: StoreFactory) -> None:
    store = new_store()
    await store.commit("a", "x", 1)
    await store.commit("a", "y", 2)
    await store.commit("b", "x", 3)
    assert [await store.load(s, c) for s, c in [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]] == [
        1,
        2,
        3,
        None,
    ]


async def test_a_commit_is_visible_to_another_store_on_the_same_storage(new_store: StoreFactory) -> None:
    first, second = new_store(), new_store()
    await first.commit("orders", "warehouse", 100)
    await first.close()
    assert await second.load("orders", "warehouse") == 100


async def test_concurrent_commits_of_many_consumers_all_land(new_store: StoreFactory) -> None:
    store = new_store()
    await asyncio.gather(*(store.commit("s", f"c{i}", i) for i in range(30)))
    assert [await store.load("s", f"c{i}") for i in range(30)] == list(range(30))


async def test_checkpoint_binds_a_consumer_and_skips_empty_commits(new_store: StoreFactory) -> None:
    checkpoint = Checkpoint(new_store(), "orders", "warehouse")
    assert await checkpoint.load() is None
    await checkpoint.commit(None)
    assert await checkpoint.load() is None
    await checkpoint.commit(7)
    assert await checkpoint.load() == 7


@pytest.mark.parametrize("bad", [None, True, 1.5, ["x"], {"a": 1}])
async def test_only_integer_and_string_positions_are_accepted(new_store: StoreFactory, bad: object) -> None:
    with pytest.raises(StreamConfigError, match="position"):
        await new_store().commit("s", "c", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("stream", "consumer", "field"), [("", "c", "stream"), ("s", None, "consumer")])
async def test_keys_must_be_non_empty_strings(
    new_store: StoreFactory, stream: str, consumer: str, field: str
) -> None:
    with pytest.raises(StreamConfigError) as caught:
        await new_store().load(stream, consumer)
    assert caught.value.field == field


async def test_a_corrupt_stored_value_is_a_checkpoint_error(tmp_path: Path) -> None:
    store = SqliteCheckpointStore(tmp_path / "c.db")
    await store.commit("s", "c", 1)
    with sqlite3.connect(tmp_path / "c.db") as conn:
        conn.execute("UPDATE stream_checkpoints SET position = '[1, 2]'")
    with pytest.raises(CheckpointError, match="not a position"):
        await store.load("s", "c")
    await store.close()


async def test_an_unusable_sqlite_path_is_a_checkpoint_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = SqliteCheckpointStore(tmp_path / "file" / "c.db")
    with pytest.raises(CheckpointError, match="cannot commit"):
        await store.commit("s", "c", 1)
    await store.close()


async def test_pg_store_creates_its_table_once_even_when_racing(
    pg_config: PgConfig, schema: str, admin: asyncpg.Connection, pg_cleanup: None
) -> None:
    stores = [PgCheckpointStore(pg_config, schema=schema, table="cp") for _ in range(4)]
    await asyncio.gather(*(s.commit("s", f"c{i}", i) for i, s in enumerate(stores)))
    assert await admin.fetchval(f'SELECT count(*) FROM "{schema}".cp') == 4
    for store in stores:
        await store.close()


async def test_pg_store_failure_is_a_checkpoint_error(schema: str, pg_cleanup: None) -> None:
    store = PgCheckpointStore(PgConfig(database="no_such_database_here", connect_timeout=2), schema=schema)
    with pytest.raises(CheckpointError, match="cannot commit"):
        await store.commit("s", "c", 1)
    await store.close()
