from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import asyncpg
import pytest

from airflow_provider_integrations.postgres import (
    PgDataError,
    PgError,
    PgPool,
    UpsertResult,
    copy_records,
    upsert_records,
)

COLUMNS = ["id", "n", "name", "code", "at"]
DAY = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)


def rows(count: int, offset: int = 0) -> list[tuple[Any, ...]]:
    return [
        (i, i * 10 + offset, f"name {i}", f"c{i % 100}", DAY + dt.timedelta(hours=i))
        for i in range(1, count + 1)
    ]


@pytest.fixture
async def table(admin: asyncpg.Connection, schema: str) -> str:
    await admin.execute(
        f'CREATE TABLE "{schema}".items (id bigint PRIMARY KEY, n int, name text NOT NULL, '
        "code varchar(3), at timestamptz, note text DEFAULT 'none')"
    )
    return "items"


async def contents(admin: asyncpg.Connection, schema: str, table: str = "items") -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await admin.fetch(f'SELECT * FROM "{schema}"."{table}" ORDER BY id')]


async def agen(items: Sequence[tuple[Any, ...]]) -> AsyncIterator[tuple[Any, ...]]:
    for item in items:
        yield item


def gen(items: Sequence[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    yield from items


@pytest.mark.parametrize("shape", ["list", "tuple", "generator", "async"])
async def test_copy_records_from_any_iterable(
    pool: PgPool, admin: asyncpg.Connection, schema: str, table: str, shape: str
) -> None:
    data = rows(500)
    source: Any = {"list": data, "tuple": tuple(data), "generator": gen(data), "async": agen(data)}[shape]
    assert await copy_records(pool, table, COLUMNS, source, schema=schema) == 500
    stored = await contents(admin, schema)
    assert [r[:5] for r in stored] == data
    assert {r[5] for r in stored} == {"none"}  # columns left out take their defaults


@pytest.mark.parametrize("shape", ["list", "generator", "async"])
async def test_bad_value_names_row_and_column_and_commits_nothing(
    pool: PgPool, admin: asyncpg.Connection, schema: str, table: str, shape: str
) -> None:
    data = rows(5)
    data[2] = (3, "thirty", "name 3", "c3", DAY)
    source: Any = {"list": data, "generator": gen(data), "async": agen(data)}[shape]
    with pytest.raises(PgDataError) as info:
        await copy_records(pool, table, COLUMNS, source, schema=schema)
    assert (info.value.row_number, info.value.column) == (3, "n")
    assert "'thirty' is not a valid integer" in str(info.value)
    assert await contents(admin, schema) == []


@pytest.mark.parametrize(
    ("bad", "column", "sqlstate"),
    [
        ((4, 40, None, "c4", DAY), "name", "23502"),  # NOT NULL, found by the server
        ((4, 40, "name 4", "long", DAY), "code", "22001"),  # varchar(3), found by the server
        ((4, 40, "name 4", "c4", "yesterday"), "at", None),  # wrong type, found by asyncpg
    ],
)
async def test_server_and_client_side_failures_name_the_row(
    pool: PgPool,
    admin: asyncpg.Connection,
    schema: str,
    table: str,
    bad: tuple[Any, ...],
    column: str,
    sqlstate: str | None,
) -> None:
    data = rows(6)
    data[3] = bad
    with pytest.raises(PgDataError) as info:
        await copy_records(pool, table, COLUMNS, data, schema=schema)
    assert (info.value.row_number, info.value.column, info.value.sqlstate) == (4, column, sqlstate)
    assert str(info.value).startswith(f"row 4, column {column!r}: ")
    assert await contents(admin, schema) == []


async def test_rows_of_the_wrong_shape(pool: PgPool, schema: str, table: str) -> None:
    with pytest.raises(PgDataError, match=r"row 2: has 2 values, expected 5"):
        await copy_records(pool, table, COLUMNS, [rows(1)[0], (2, 20)], schema=schema)
    with pytest.raises(PgDataError, match=r"row 1: expected a sequence of values, got int"):
        await copy_records(pool, table, COLUMNS, [7], schema=schema)


async def test_a_failing_source_is_not_blamed_on_a_row(
    pool: PgPool, admin: asyncpg.Connection, schema: str, table: str
) -> None:
    def broken() -> Iterator[tuple[Any, ...]]:
        yield rows(1)[0]
        raise ValueError("the source broke")

    with pytest.raises(ValueError, match="the source broke"):
        await copy_records(pool, table, COLUMNS, broken(), schema=schema)
    assert await contents(admin, schema) == []


async def test_identifiers_are_quoted(pool: PgPool, admin: asyncpg.Connection, schema: str) -> None:
    await admin.execute(f'CREATE TABLE "{schema}"."Odd ""Table""" ("Key" int PRIMARY KEY, "a b; drop" text)')
    cols = ["Key", "a b; drop"]
    assert await copy_records(pool, 'Odd "Table"', cols, [(1, "x")], schema=schema) == 1
    result = await upsert_records(pool, 'Odd "Table"', cols, [(1, "y"), (2, "z")], ["Key"], schema=schema)
    assert result == UpsertResult(inserted=1, updated=1)
    assert await admin.fetch(f'SELECT * FROM "{schema}"."Odd ""Table""" ORDER BY 1') == [(1, "y"), (2, "z")]


async def test_upsert_run_twice_leaves_the_same_table(
    pool: PgPool, admin: asyncpg.Connection, schema: str, table: str
) -> None:
    await copy_records(pool, table, COLUMNS, rows(50), schema=schema)
    batch = rows(100, offset=1)  # 50 changed, 50 new
    first = await upsert_records(pool, table, COLUMNS, batch, ["id"], schema=schema)
    assert first == UpsertResult(inserted=50, updated=50, unchanged=0)
    after_first = await contents(admin, schema)
    assert [r[:5] for r in after_first] == batch
    second = await upsert_records(pool, table, COLUMNS, batch, ["id"], schema=schema)
    assert second == UpsertResult(inserted=0, updated=0, unchanged=100)
    assert await contents(admin, schema) == after_first
    rewrite = await upsert_records(pool, table, COLUMNS, batch, ["id"], schema=schema, skip_unchanged=False)
    assert rewrite == UpsertResult(inserted=0, updated=100, unchanged=0)
    assert await contents(admin, schema) == after_first


async def test_upsert_with_a_bad_row_changes_nothing(
    pool: PgPool, admin: asyncpg.Connection, schema: str, table: str
) -> None:
    await copy_records(pool, table, COLUMNS, rows(10), schema=schema)
    before = await contents(admin, schema)
    batch = rows(20, offset=5)
    batch[14] = (15, 150, None, "c15", DAY)
    with pytest.raises(PgDataError) as info:
        await upsert_records(pool, table, COLUMNS, batch, ["id"], schema=schema)
    assert (info.value.row_number, info.value.column) == (15, "name")
    batch[14] = (15, "x", "name 15", "c15", DAY)
    with pytest.raises(PgDataError) as info:
        await upsert_records(pool, table, COLUMNS, agen(batch), ["id"], schema=schema)
    assert (info.value.row_number, info.value.column) == (15, "n")
    assert await contents(admin, schema) == before
    assert await pool.fetchval("SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_upsert\\_%'") == 0


async def test_upsert_of_a_subset_of_columns_keeps_the_others(
    pool: PgPool, admin: asyncpg.Connection, schema: str, table: str
) -> None:
    await copy_records(pool, table, ["id", "name", "note"], [(1, "a", "kept")], schema=schema)
    result = await upsert_records(pool, table, ["id", "name"], [(1, "b"), (2, "c")], ["id"], schema=schema)
    assert result == UpsertResult(inserted=1, updated=1)
    stored = await admin.fetch(f'SELECT id, name, note FROM "{schema}".items ORDER BY id')
    assert [tuple(r) for r in stored] == [(1, "b", "kept"), (2, "c", "none")]


async def test_upsert_with_only_key_columns_inserts_missing_rows(
    pool: PgPool, schema: str, admin: asyncpg.Connection
) -> None:
    await admin.execute(f'CREATE TABLE "{schema}".tags (tag text PRIMARY KEY)')
    await upsert_records(pool, "tags", ["tag"], [("a",), ("b",)], ["tag"], schema=schema)
    result = await upsert_records(pool, "tags", ["tag"], [("b",), ("c",)], ["tag"], schema=schema)
    assert result == UpsertResult(inserted=1, updated=0, unchanged=1)


async def test_upsert_misuse_is_explained(pool: PgPool, schema: str, table: str) -> None:
    with pytest.raises(PgError, match="must be a non-empty subset"):
        await upsert_records(pool, table, ["id", "name"], [], ["code"], schema=schema)
    with pytest.raises(PgError, match="has no column 'nope'") as info:
        await upsert_records(pool, table, ["id", "nope"], [], ["id"], schema=schema)
    assert info.value.sqlstate == "42703"
    with pytest.raises(PgError) as info:  # one key twice in a batch
        await upsert_records(pool, table, ["id", "name"], [(1, "a"), (1, "b")], ["id"], schema=schema)
    assert info.value.sqlstate == "21000"
    with pytest.raises(PgError) as info:  # no unique constraint on the keys
        await upsert_records(pool, table, ["id", "name"], [(1, "a")], ["name"], schema=schema)
    assert info.value.sqlstate == "42P10"


async def test_upsert_after_a_column_changes_type(
    pool: PgPool, admin: asyncpg.Connection, schema: str, table: str
) -> None:
    """The staging table (and asyncpg's cached COPY codecs) follow the target's current types."""
    assert await upsert_records(pool, table, ["id", "n", "name"], [(1, 5, "a")], ["id"], schema=schema) == (
        UpsertResult(1, 0)
    )
    await admin.execute(f'ALTER TABLE "{schema}".items ALTER COLUMN n TYPE text')
    result = await upsert_records(pool, table, ["id", "n", "name"], [(1, "five", "a")], ["id"], schema=schema)
    assert result == UpsertResult(0, 1)
    assert await admin.fetchval(f'SELECT n FROM "{schema}".items') == "five"


@pytest.mark.parametrize(
    ("column_type", "bad"),
    [("numeric", "not-a-number"), ("date", "2024-13-45")],
)
async def test_wrong_python_types_are_data_errors(
    pool: PgPool, admin: asyncpg.Connection, schema: str, column_type: str, bad: str
) -> None:
    await admin.execute(f'CREATE TABLE "{schema}".typed (id int PRIMARY KEY, v {column_type})')
    with pytest.raises(PgDataError) as info:
        await copy_records(pool, "typed", ["id", "v"], [(1, None), (2, bad)], schema=schema)
    assert (info.value.row_number, info.value.column) == (2, "v")
    assert await admin.fetchval(f'SELECT count(*) FROM "{schema}".typed') == 0
