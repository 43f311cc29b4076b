"""COPY from CSV and JSONL files: the server parses the values, so types follow the target's columns.

Files are read (and JSONL converted) in worker threads in chunks, so a large file neither blocks the
event loop nor sits in memory. A bad record is reported with its data row (CSV, after the header) or its
line (JSONL) and column, and nothing is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Sequence
from typing import IO, Any

import asyncpg

from airflow_provider_integrations.postgres._copy import copy_count, copy_error, table_columns
from airflow_provider_integrations.postgres.errors import PgDataError
from airflow_provider_integrations.postgres.pool import PgPool

PathOrFile = str | os.PathLike[str] | IO[bytes] | IO[str]
CHUNK = 1 << 20
# COPY's text format: backslash escapes, \N for NULL (PostgreSQL docs, "COPY", File Formats).
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


async def copy_csv(
    pool: PgPool,
    table: str,
    path_or_fileobj: PathOrFile,
    columns: Sequence[str] | None = None,
    header: bool = True,
    *,
    schema: str | None = None,
    delimiter: str = ",",
) -> int:
    """COPY a CSV file into ``table``; returns the rows loaded.

    With ``header`` and no ``columns``, the header names the target columns (in any order); without a
    header and ``columns``, the file must follow the table's column order.
    """
    f: IO[Any]
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        f, owned = await asyncio.to_thread(open, path_or_fileobj, "rb"), True
    else:
        f, owned = path_or_fileobj, False
    try:
        if header:
            first = await asyncio.to_thread(f.readline)
            if not first:
                return 0
            text = first.decode("utf-8-sig") if isinstance(first, bytes) else first.lstrip("\ufeff")
            names = next(csv.reader([text], delimiter=delimiter))
            columns = list(columns) if columns is not None else names
        async with pool.connection() as conn:
            try:
                status = await conn.copy_to_table(
                    table,
                    source=_read_chunks(f),
                    columns=columns,
                    schema_name=schema,
                    format="csv",
                    delimiter=delimiter,
                )
            except asyncpg.PostgresError as exc:
                # The header was consumed here, so the server's record number is the data row.
                names = list(columns) if columns else list(await table_columns(conn, table, schema))
                raise copy_error(exc, names) from exc
    finally:
        if owned:
            f.close()
    return copy_count(status)


async def _read_chunks(f: IO[Any]) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(f.read, CHUNK):
        yield chunk.encode() if isinstance(chunk, str) else chunk


async def copy_jsonl(
    pool: PgPool,
    table: str,
    path_or_lines: str | os.PathLike[str] | Iterable[str | bytes],
    columns: Sequence[str],
    *,
    schema: str | None = None,
) -> int:
    """COPY JSON objects, one per line, taking ``columns`` by key (a missing key loads NULL).

    Objects and arrays are stored as JSON text (for json/jsonb columns); blank lines are skipped and
    error row numbers are line numbers in the input.
    """
    opened: IO[str] | None = None
    lines: Iterable[str | bytes]
    if isinstance(path_or_lines, (str, os.PathLike)):
        opened = await asyncio.to_thread(open, path_or_lines, encoding="utf-8")
        lines = opened
    else:
        lines = path_or_lines
    line_of: list[int] = []  # record number - 1 -> input line, for the server's error context
    chunks = _jsonl_chunks(lines, columns, line_of)
    try:
        async with pool.connection() as conn:
            try:
                status = await conn.copy_to_table(
                    table, source=_threaded(chunks), columns=list(columns), schema_name=schema, format="text"
                )
            except asyncpg.PostgresError as exc:
                raise copy_error(exc, columns, lambda record: line_of[record - 1]) from exc
    finally:
        # A cancelled load may leave a worker thread inside the generator; it ends with the file.
        with contextlib.suppress(ValueError):
            chunks.close()
        if opened is not None:
            opened.close()
    return copy_count(status)


async def _threaded(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        yield chunk


def _jsonl_chunks(
    lines: Iterable[str | bytes], columns: Sequence[str], line_of: list[int]
) -> Generator[bytes, None, None]:
    buffer: list[str] = []
    size = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise PgDataError(f"invalid JSON: {exc}", row_number=number) from None
        if not isinstance(doc, dict):
            raise PgDataError(f"expected a JSON object, got {type(doc).__name__}", row_number=number)
        record = "\t".join(_text_value(doc.get(c)) for c in columns) + "\n"
        line_of.append(number)
        buffer.append(record)
        size += len(record)
        if size >= CHUNK:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode()


def _text_value(value: Any) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value).translate(_TEXT_ESCAPES)
