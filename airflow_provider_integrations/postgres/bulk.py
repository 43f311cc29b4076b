"""Bulk loads through COPY: rows from Python (here), CSV and JSONL files (``files``), and upserts.

Every load is one statement or one transaction, so a bad row commits nothing. The hot path does no
per-row Python work for lists and tuples: asyncpg encodes them in C, and only when a row fails is it
located (from the iterator's position, or the server's COPY context) and its column found.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from airflow_provider_integrations.postgres._copy import (
    TableColumn,
    check_columns,
    copy_count,
    copy_error,
    table_columns,
)
from airflow_provider_integrations.postgres.errors import PgDataError, PgError
from airflow_provider_integrations.postgres.files import copy_csv, copy_jsonl
from airflow_provider_integrations.postgres.ident import column_list, qualified, quote_ident
from airflow_provider_integrations.postgres.pool import PgPool

__all__ = ["Records", "UpsertResult", "copy_csv", "copy_jsonl", "copy_records", "upsert_records"]

Records = Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]]
# What asyncpg's COPY raises while encoding a row: a value of the wrong type or range, a short row.
# What asyncpg raises while encoding a value of the wrong type: decimal.InvalidOperation is an
# ArithmeticError, and a str where a date is due fails with AttributeError.
_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, IndexError, KeyError, ArithmeticError, AttributeError)


@dataclass(frozen=True, slots=True)
class UpsertResult:
    inserted: int
    updated: int
    #: Rows whose key existed with identical values (not rewritten when ``skip_unchanged``).
    unchanged: int = 0


class _Tracker:
    """Knows which input row asyncpg was encoding when it failed, at no per-row cost for lists."""

    def __init__(self, records: Records) -> None:
        self.pulled = 0
        self.last: Any = None
        self.source_failed = False
        self._list: Sequence[Any] | None = None
        self._iter: Iterator[Any] | None = None
        self.source: Any
        if isinstance(records, (list, tuple)):
            # A list iterator reports how many items are left, so the position is known afterwards.
            self._list, self._iter = records, iter(records)
            self.source = self._iter
        elif isinstance(records, AsyncIterable):
            self.source = self._acounted(records)
        else:
            self.source = self._counted(records)

    def position(self) -> int:
        if self._list is not None and self._iter is not None:
            self.pulled = len(self._list) - operator.length_hint(self._iter)
            self.last = self._list[self.pulled - 1] if self.pulled else None
        return self.pulled

    def _counted(self, records: Iterable[Sequence[Any]]) -> Iterator[Sequence[Any]]:
        it = iter(records)
        while True:
            try:
                row = next(it)
            except StopIteration:
                return
            except BaseException:
                self.source_failed = True
                raise
            self.pulled += 1
            self.last = row
            yield row

    async def _acounted(self, records: AsyncIterable[Sequence[Any]]) -> AsyncIterator[Sequence[Any]]:
        it = aiter(records)
        while True:
            try:
                row = await anext(it)
            except StopAsyncIteration:
                return
            except BaseException:
                self.source_failed = True
                raise
            self.pulled += 1
            self.last = row
            yield row


async def copy_records(
    pool: PgPool, table: str, columns: Sequence[str], records: Records, *, schema: str | None = None
) -> int:
    """COPY ``records`` (sequences in ``columns`` order) into ``table``; returns the rows loaded."""
    async with pool.connection() as conn, _naming_bad_rows(conn, table, schema, columns):
        return await _copy_rows(conn, table, schema, columns, records)


class _EncodeFailure(Exception):
    """asyncpg could not encode a row: located, but its column is found once the COPY has unwound."""

    def __init__(self, error: Exception, tracker: _Tracker) -> None:
        super().__init__(error)
        self.error = error
        self.tracker = tracker


async def _copy_rows(
    conn: Any, table: str, schema: str | None, columns: Sequence[str], records: Records
) -> int:
    tracker = _Tracker(records)
    try:
        status = await conn.copy_records_to_table(
            table, records=tracker.source, columns=list(columns), schema_name=schema
        )
    except _ENCODE_ERRORS as exc:
        if tracker.source_failed or not tracker.position():
            raise
        raise _EncodeFailure(exc, tracker) from exc
    except asyncpg.PostgresError as exc:
        raise copy_error(exc, columns) from exc
    return copy_count(status)


@asynccontextmanager
async def _naming_bad_rows(
    conn: Any, table: str, schema: str | None, columns: Sequence[str]
) -> AsyncIterator[None]:
    """Turn an :class:`_EncodeFailure` into :class:`PgDataError`; enter it *outside* any transaction,
    so the connection can be asked about the row after the rollback."""
    try:
        yield
    except _EncodeFailure as failure:
        raise await _encode_error(conn, failure, table, schema, columns) from failure.error


async def _encode_error(
    conn: Any, failure: _EncodeFailure, table: str, schema: str | None, columns: Sequence[str]
) -> PgDataError:
    row_number, row, exc = failure.tracker.pulled, failure.tracker.last, failure.error
    if not isinstance(row, Sequence) or isinstance(row, (str, bytes)):
        return PgDataError(f"expected a sequence of values, got {type(row).__name__}", row_number=row_number)
    if len(row) != len(columns):
        return PgDataError(f"has {len(row)} values, expected {len(columns)}", row_number=row_number)
    types = await table_columns(conn, table, schema)
    for name, value in zip(columns, row, strict=True):
        if value is None or name not in types:
            continue
        try:
            # asyncpg encodes a parameter with the codec COPY used, and reports a value it cannot
            # encode as DataError before sending anything; WHERE false keeps the server from
            # evaluating anything else that could fail.
            await conn.fetchval(f"SELECT $1::{types[name].type} WHERE false", value)
        except (asyncpg.exceptions.DataError, *_ENCODE_ERRORS):
            return PgDataError(
                f"{_short(value)} is not a valid {types[name].type}: {exc}",
                row_number=row_number,
                column=name,
            )
    return PgDataError(f"{type(exc).__name__}: {exc}", row_number=row_number)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def upsert_records(
    pool: PgPool,
    table: str,
    columns: Sequence[str],
    records: Records,
    keys: Sequence[str],
    *,
    schema: str | None = None,
    skip_unchanged: bool = True,
) -> UpsertResult:
    """Insert new rows and update existing ones (matched on ``keys``, a unique constraint) atomically.

    The rows are COPYed into a temporary table and merged with ``INSERT ... ON CONFLICT DO UPDATE`` in
    one transaction. With ``skip_unchanged`` rows equal to the stored ones are not rewritten, so a re-run
    writes nothing and reports them as ``unchanged``.
    """
    if not keys or any(k not in columns for k in keys):
        raise PgError(
            f"upsert keys {list(keys)!r} must be a non-empty subset of the columns {list(columns)!r}"
        )
    async with pool.connection() as conn, _naming_bad_rows(conn, table, schema, columns), conn.transaction():
        target = check_columns(await table_columns(conn, table, schema), columns, table, schema)
        staging = _staging_name(target)
        await conn.execute(f"CREATE TEMP TABLE {quote_ident(staging)} ({_ddl(target)}) ON COMMIT DROP")
        loaded = await _copy_rows(conn, staging, None, columns, records)
        row = await conn.fetchrow(
            _merge_sql(qualified(table, schema), staging, columns, keys, skip_unchanged)
        )
    inserted, updated = int(row["inserted"]), int(row["updated"])
    return UpsertResult(inserted, updated, loaded - inserted - updated)


def _staging_name(columns: list[TableColumn]) -> str:
    """The same name for every upsert of the same column names and types.

    asyncpg caches COPY's column codecs, and our merge statement, by SQL text: a stable name lets
    repeated upserts skip two prepare round trips, and putting the types in it keeps a cached codec
    from ever serving a staging table of other types.
    """
    shape = repr([(c.name, c.type, c.not_null) for c in columns]).encode()
    return f"_upsert_{hashlib.sha1(shape, usedforsecurity=False).hexdigest()[:16]}"


def _ddl(columns: list[TableColumn]) -> str:
    # The target's types and NOT NULLs, nothing else: no defaults (a serial's nextval would burn
    # sequence numbers), no other constraints (the merge enforces them).
    return ", ".join(f"{quote_ident(c.name)} {c.type}{' NOT NULL' if c.not_null else ''}" for c in columns)


def _merge_sql(target: str, staging: str, columns: Sequence[str], keys: Sequence[str], skip: bool) -> str:
    cols = column_list(columns)
    rest = [c for c in columns if c not in keys]
    if rest:
        sets = ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in rest)
        action = f"UPDATE SET {sets}"
        if skip:
            mine = ", ".join(f"t.{quote_ident(c)}" for c in rest)
            theirs = ", ".join(f"EXCLUDED.{quote_ident(c)}" for c in rest)
            action += f" WHERE ROW({mine}) IS DISTINCT FROM ROW({theirs})"
    else:
        action = "NOTHING"
    # xmax is 0 only for a freshly inserted row version; an updated one carries our transaction id.
    return (
        f"WITH merged AS (INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {quote_ident(staging)}"
        f" ON CONFLICT ({column_list(keys)}) DO {action} RETURNING (t.xmax = 0) AS fresh)"
        " SELECT count(*) FILTER (WHERE fresh) AS inserted, count(*) FILTER (WHERE NOT fresh) AS updated"
        " FROM merged"
    )
