from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from airflow_provider_integrations.postgres import PgDataError, PgPool, copy_csv, copy_jsonl


@pytest.fixture
async def table(admin: asyncpg.Connection, schema: str) -> str:
    await admin.execute(
        f'CREATE TABLE "{schema}".events (id int PRIMARY KEY, kind text NOT NULL, amount numeric, '
        "ok boolean, meta jsonb)"
    )
    return "events"


async def stored(admin: asyncpg.Connection, schema: str) -> list[tuple[Any, ...]]:
    rows = await admin.fetch(f'SELECT id, kind, amount::text, ok, meta FROM "{schema}".events ORDER BY id')
    return [tuple(r) for r in rows]


async def test_csv_header_names_the_columns(
    pool: PgPool, admin: asyncpg.Connection, schema: str, table: str, tmp_path: Path
) -> None:
    path = tmp_path / "events.csv"
    path.write_text('kind,id,amount\n"multi\nline, quoted",1,2.50\nplain,2,\n')
    assert await copy_csv(pool, table, path, schema=schema) == 2
    assert await stored(admin, schema) == [
        (1, "multi\nline, quoted", "2.50", None, None),
        (2, "plain", None, None, None),
    ]


async def test_csv_without_header_and_file_objects(
    pool: PgPool, admin: asyncpg.Connection, schema: str, table: str
) -> None:
    assert (
        await copy_csv(pool, table, io.BytesIO(b"1,a\n2,b\n"), ["id", "kind"], header=False, schema=schema)
        == 2
    )
    text = io.StringIO("\ufeffid;kind;ok\n3;c;true\n")  # BOM and another delimiter
    assert await copy_csv(pool, table, text, schema=schema, delimiter=";") == 1
    assert [r[:2] for r in await stored(admin, schema)] == [(1, "a"), (2, "b"), (3, "c")]
    assert await copy_csv(pool, table, io.BytesIO(b""), schema=schema) == 0


async def test_csv_bad_row_names_data_row_and_column(
    pool: PgPool, admin: asyncpg.Connection, schema: str, table: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,kind,amount\n1,a,1\n2,b,2\n3,c,three\n4,d,4\n")
    with pytest.raises(PgDataError) as info:
        await copy_csv(pool, table, path, schema=schema)
    assert (info.value.row_number, info.value.column, info.value.sqlstate) == (3, "amount", "22P02")
    path.write_text("1,a\n2,\n")  # an unquoted empty field is NULL in CSV
    with pytest.raises(PgDataError) as info:
        await copy_csv(pool, table, path, ["id", "kind"], header=False, schema=schema)
    assert (info.value.row_number, info.value.column) == (2, "kind")
    assert await stored(admin, schema) == []


async def test_jsonl_from_a_file_and_from_lines(
    pool: PgPool, admin: asyncpg.Connection, schema: str, table: str, tmp_path: Path
) -> None:
    docs = [
        {
            "id": 1,
            "kind": "tab\there",
            "amount": 1.5,
            "ok": True,
            "meta": {"tags": ["a", "b"], "back\\slash": None},
        },
        {"id": 2, "kind": "no amount", "extra": "ignored"},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n\n")
    columns = ["id", "kind", "amount", "ok", "meta"]
    assert await copy_jsonl(pool, table, path, columns, schema=schema) == 2
    assert (
        await copy_jsonl(
            pool, table, [b'{"id": 3, "kind": "bytes"}', '{"id": 4, "kind": "str"}'], columns, schema=schema
        )
        == 2
    )
    rows = await stored(admin, schema)
    assert rows[0][:4] == (1, "tab\there", "1.5", True)
    assert json.loads(rows[0][4]) == docs[0]["meta"]
    assert rows[1] == (2, "no amount", None, None, None)
    assert [r[1] for r in rows[2:]] == ["bytes", "str"]


@pytest.mark.parametrize(
    ("line", "column", "reason"),
    [
        ('{"id": 3, "kind": "c", "amount": "lots"}', "amount", "invalid input syntax for type numeric"),
        ('{"id": 3}', "kind", "violates not-null constraint"),
        ('{"id": 3, "kind": "c"', None, "invalid JSON"),
        ('[3, "c"]', None, "expected a JSON object, got list"),
    ],
)
async def test_jsonl_bad_line_names_its_line_number(
    pool: PgPool,
    admin: asyncpg.Connection,
    schema: str,
    table: str,
    line: str,
    column: str | None,
    reason: str,
) -> None:
    lines = ['{"id": 1, "kind": "a"}', "", '{"id": 2, "kind": "b"}', line, '{"id": 4, "kind": "d"}']
    with pytest.raises(PgDataError) as info:
        await copy_jsonl(pool, table, lines, ["id", "kind", "amount"], schema=schema)
    assert (info.value.row_number, info.value.column) == (4, column)
    assert reason in str(info.value)
    assert await stored(admin, schema) == []
